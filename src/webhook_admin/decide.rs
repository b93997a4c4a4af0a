//! What `webhook register` does and what `webhook status` says, as pure functions of the
//! registration Partner Center holds and what was asked.

use crate::microsoft::models::webhooks::{GDAP_EVENTS, TEST_CREATED, WebhookRegistration};
use serde::Serialize;
use std::collections::BTreeSet;

/// The events registered when `--events` is not given: the GDAP events and `test-created`.
pub fn default_events() -> Vec<String> {
    GDAP_EVENTS
        .iter()
        .chain(&[TEST_CREATED])
        .map(|e| e.to_string())
        .collect()
}

/// What `register` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No registration: POST one.
    Create,
    /// One at the same URL with other events: PUT.
    Update,
    /// One at the same URL with these events: write nothing.
    Unchanged,
    /// One at another URL, without `--force`: write nothing, exit 1.
    Refuse,
    /// One at another URL, with `--force`: PUT.
    Replace,
}

fn set(events: &[String]) -> BTreeSet<&str> {
    events.iter().map(String::as_str).collect()
}

/// Decides what `register --url url --events events [--force]` does.
pub fn decide(
    existing: Option<&WebhookRegistration>,
    url: &str,
    events: &[String],
    force: bool,
) -> Decision {
    match existing {
        None => Decision::Create,
        Some(r) if r.webhook_url == url && set(&r.webhook_events) == set(events) => {
            Decision::Unchanged
        }
        Some(r) if r.webhook_url == url => Decision::Update,
        Some(_) if force => Decision::Replace,
        Some(_) => Decision::Refuse,
    }
}

/// The GDAP events a registration does not name.
pub fn missing_gdap_events(registration: &WebhookRegistration) -> Vec<String> {
    let have = set(&registration.webhook_events);
    GDAP_EVENTS
        .iter()
        .filter(|e| !have.contains(*e))
        .map(|e| e.to_string())
        .collect()
}

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// The registration, if any.
    pub registration: Option<RegistrationView>,
    /// The URL asked about (`--url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Whether the registration points at `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points_at_url: Option<bool>,
    /// The GDAP events the registration lacks (all of them when there is none).
    pub missing_gdap_events: Vec<String>,
}

/// A registration as `status` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationView {
    /// `SubscriberId`.
    pub subscriber_id: Option<String>,
    /// `WebhookUrl`.
    pub webhook_url: String,
    /// `WebhookEvents`.
    pub webhook_events: Vec<String>,
}

impl StatusReport {
    /// The report of `registration`, asked about `url`.
    pub fn new(registration: Option<&WebhookRegistration>, url: Option<&str>) -> StatusReport {
        let missing = match registration {
            Some(r) => missing_gdap_events(r),
            None => GDAP_EVENTS.iter().map(|e| e.to_string()).collect(),
        };
        StatusReport {
            registration: registration.map(|r| RegistrationView {
                subscriber_id: r.subscriber_id.clone(),
                webhook_url: r.webhook_url.clone(),
                webhook_events: r.webhook_events.clone(),
            }),
            url: url.map(str::to_string),
            points_at_url: url.map(|u| registration.is_some_and(|r| r.webhook_url == u)),
            missing_gdap_events: missing,
        }
    }

    /// Lines for people.
    pub fn text(&self) -> String {
        let mut out = match &self.registration {
            None => "No webhook registration: Partner Center sends this partner no events.\n"
                .to_string(),
            Some(r) => describe(&r.webhook_url, &r.webhook_events),
        };
        let Some(url) = &self.url else {
            return out;
        };
        match (&self.registration, self.points_at_url) {
            (Some(_), Some(true)) => out.push_str(&format!("It points at {url}.\n")),
            _ => out.push_str(&format!("It does not point at {url}.\n")),
        }
        if self.registration.is_some() {
            match self.missing_gdap_events.is_empty() {
                true => out.push_str("Every GDAP event is registered.\n"),
                false => out.push_str(&format!(
                    "GDAP events not registered: {}\n",
                    self.missing_gdap_events.join(", ")
                )),
            }
        }
        out
    }
}

/// A registration in two lines.
pub fn describe(url: &str, events: &[String]) -> String {
    format!("Webhook URL: {url}\nEvents: {}\n", events.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(url: &str, events: &[&str]) -> WebhookRegistration {
        WebhookRegistration {
            subscriber_id: Some("s".into()),
            webhook_url: url.into(),
            webhook_events: events.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn register_decides_from_what_is_there() {
        let ours = "https://hooks.contoso.com/pc";
        let wanted = default_events();
        let all: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let mut shuffled = all.clone();
        shuffled.reverse();
        let cases = [
            (None, false, Decision::Create),
            (Some(reg(ours, &shuffled)), false, Decision::Unchanged),
            (Some(reg(ours, &all[..3])), false, Decision::Update),
            (Some(reg("https://other/", &all)), false, Decision::Refuse),
            (Some(reg("https://other/", &all)), true, Decision::Replace),
            (Some(reg(ours, &all)), true, Decision::Unchanged),
        ];
        for (existing, force, want) in cases {
            assert_eq!(
                decide(existing.as_ref(), ours, &wanted, force),
                want,
                "{existing:?} force={force}"
            );
        }
    }

    #[test]
    fn status_names_the_missing_gdap_events() {
        let r = reg("https://h/", &["test-created", GDAP_EVENTS[0]]);
        let report = StatusReport::new(Some(&r), Some("https://other/"));
        assert_eq!(report.points_at_url, Some(false));
        assert_eq!(report.missing_gdap_events.len(), 7);
        let text = report.text();
        assert!(text.contains("does not point at https://other/"), "{text}");
        assert!(text.contains(GDAP_EVENTS[1]), "{text}");
        let none = StatusReport::new(None, None).text();
        assert!(none.starts_with("No webhook registration"), "{none}");
    }
}

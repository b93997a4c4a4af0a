//! Partner Center webhooks, the wire model: event names, the registration (what the world
//! keeps), the body of a registration request, and the body of an event.
//!
//! Contract: a registration names an absolute `https` URL — or `http` to a loopback host
//! (`127.0.0.1`, `::1`, `localhost`), for local receivers — and events from [`SUPPORTED_EVENTS`]
//! (an unknown name is refused, naming it). An event body serialises its fields in Microsoft's
//! order (`EventName`, `ResourceUri`, `ResourceName`, `AuditUri`, `ResourceChangeUtcDate`); the
//! bytes are what gets signed. Dates are Partner Center's: seven fraction digits, with `+00:00`
//! in event bodies and without an offset in validation results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The test event Partner Center sends for a validation request.
pub const TEST_CREATED: &str = "test-created";
/// A relationship was approved by the customer.
pub const RELATIONSHIP_APPROVED: &str = "granular-admin-relationship-approved";
/// A relationship became active.
pub const RELATIONSHIP_ACTIVATED: &str = "granular-admin-relationship-activated";
/// A relationship was terminated.
pub const RELATIONSHIP_TERMINATED: &str = "granular-admin-relationship-terminated";
/// A relationship expired.
pub const RELATIONSHIP_EXPIRED: &str = "granular-admin-relationship-expired";
/// An access assignment was created.
pub const ASSIGNMENT_CREATED: &str = "granular-admin-access-assignment-created";
/// An access assignment became active.
pub const ASSIGNMENT_ACTIVATED: &str = "granular-admin-access-assignment-activated";
/// An access assignment's roles changed.
pub const ASSIGNMENT_UPDATED: &str = "granular-admin-access-assignment-updated";
/// An access assignment was deleted.
pub const ASSIGNMENT_DELETED: &str = "granular-admin-access-assignment-deleted";

/// `ResourceName` of relationship events.
pub const RELATIONSHIP_RESOURCE: &str = "GranularAdminRelationship";
/// `ResourceName` of access-assignment events.
pub const ASSIGNMENT_RESOURCE: &str = "GranularAdminAccessAssignment";

/// Every event name a registration may hold (`GET /webhooks/v1/registration/events`). The
/// sandbox emits the GDAP events and `test-created`; the others can be registered but never fire.
pub const SUPPORTED_EVENTS: &[&str] = &[
    TEST_CREATED,
    "subscription-updated",
    "threshold-exceeded",
    "referral-created",
    "referral-updated",
    "relationship-request-accepted",
    "invoice-ready",
    RELATIONSHIP_APPROVED,
    RELATIONSHIP_ACTIVATED,
    RELATIONSHIP_TERMINATED,
    RELATIONSHIP_EXPIRED,
    ASSIGNMENT_CREATED,
    ASSIGNMENT_ACTIVATED,
    ASSIGNMENT_UPDATED,
    ASSIGNMENT_DELETED,
];

/// The partner's one webhook registration, as the world keeps (and persists) it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRegistration {
    /// `SubscriberId`.
    pub subscriber_id: String,
    /// Where events are POSTed.
    pub webhook_url: String,
    /// The events sent.
    pub webhook_events: Vec<String>,
    /// `SignatureTokenToMsSignatureHeader`: the signature goes in `x-ms-signature`.
    #[serde(default)]
    pub ms_signature_header: bool,
}

impl WebhookRegistration {
    /// Partner Center's JSON of the registration.
    pub fn wire(&self) -> Value {
        json!({
            "SubscriberId": self.subscriber_id,
            "WebhookUrl": self.webhook_url,
            "WebhookEvents": self.webhook_events,
        })
    }

    /// Whether events named `event` are sent.
    pub fn wants(&self, event: &str) -> bool {
        self.webhook_events.iter().any(|e| e == event)
    }
}

/// A registration request's body (`POST`/`PUT /webhooks/v1/registration`).
#[derive(Debug, Clone, Deserialize)]
pub struct RegistrationRequest {
    /// `WebhookUrl`.
    #[serde(rename = "WebhookUrl", alias = "webhookUrl")]
    pub webhook_url: String,
    /// `WebhookEvents`.
    #[serde(rename = "WebhookEvents", alias = "webhookEvents")]
    pub webhook_events: Vec<String>,
    /// `SignatureTokenToMsSignatureHeader`.
    #[serde(
        default,
        rename = "SignatureTokenToMsSignatureHeader",
        alias = "signatureTokenToMsSignatureHeader"
    )]
    pub ms_signature_header: bool,
}

impl RegistrationRequest {
    /// Parses and checks a request body; the error is the message of a `400`.
    pub fn parse(body: &[u8]) -> Result<RegistrationRequest, String> {
        let request: RegistrationRequest = serde_json::from_slice(body).map_err(|e| {
            format!("The request body must be JSON with WebhookUrl and WebhookEvents: {e}")
        })?;
        request.check()?;
        Ok(request)
    }

    /// Checks the URL and the event names.
    pub fn check(&self) -> Result<(), String> {
        check_url(&self.webhook_url)?;
        if self.webhook_events.is_empty() {
            return Err("WebhookEvents must name at least one event.".into());
        }
        match self
            .webhook_events
            .iter()
            .find(|e| !SUPPORTED_EVENTS.contains(&e.as_str()))
        {
            Some(unknown) => Err(format!("The event '{unknown}' is not a supported event.")),
            None => Ok(()),
        }
    }

    /// The registration this request makes, under `subscriber_id`.
    pub fn into_registration(self, subscriber_id: String) -> WebhookRegistration {
        WebhookRegistration {
            subscriber_id,
            webhook_url: self.webhook_url,
            webhook_events: self.webhook_events,
            ms_signature_header: self.ms_signature_header,
        }
    }
}

/// An absolute `https` URL, or `http` to a loopback host.
fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text)
        .map_err(|e| format!("WebhookUrl '{text}' is not an absolute URL: {e}"))?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "WebhookUrl '{text}' must be an absolute https URL (http only to 127.0.0.1, ::1 or localhost)."
        )),
    }
}

/// The body of an event, fields in Microsoft's order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventBody {
    /// `EventName`.
    pub event_name: String,
    /// `ResourceUri`.
    pub resource_uri: String,
    /// `ResourceName`.
    pub resource_name: String,
    /// `AuditUri` (always `null`).
    pub audit_uri: Option<String>,
    /// `ResourceChangeUtcDate`.
    pub resource_change_utc_date: String,
}

/// A change readers can see, before it becomes an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The event name.
    pub name: &'static str,
    /// The resource's path below the base URL (`/granularAdminRelationships/{id}`…).
    pub path: String,
    /// `ResourceName`.
    pub resource: &'static str,
    /// When the change happened.
    pub at: DateTime<Utc>,
}

impl Change {
    /// The event body of this change, with `base` in front of its path.
    pub fn body(&self, base: &str) -> EventBody {
        EventBody {
            event_name: self.name.to_string(),
            resource_uri: format!("{base}{}", self.path),
            resource_name: self.resource.to_string(),
            audit_uri: None,
            resource_change_utc_date: event_date(self.at),
        }
    }
}

fn seven_digits(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

/// `2026-12-06T10:00:00.1234567+00:00`.
pub fn event_date(t: DateTime<Utc>) -> String {
    format!("{}+00:00", seven_digits(t))
}

/// `2017-12-08T21:39:48.2386997` (validation results).
pub fn result_date(t: DateTime<Utc>) -> String {
    seven_digits(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, events: &[&str]) -> RegistrationRequest {
        RegistrationRequest {
            webhook_url: url.into(),
            webhook_events: events.iter().map(|e| e.to_string()).collect(),
            ms_signature_header: false,
        }
    }

    #[test]
    fn urls_must_be_https_or_loopback_http() {
        for ok in [
            "https://hooks.contoso.com/pc",
            "http://127.0.0.1:9000/x",
            "http://localhost/x",
            "http://[::1]:80/",
        ] {
            assert_eq!(request(ok, &[TEST_CREATED]).check(), Ok(()), "{ok}");
        }
        for bad in [
            "http://hooks.contoso.com/",
            "ftp://x/",
            "/relative",
            "https://",
        ] {
            assert!(request(bad, &[TEST_CREATED]).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_events_are_named() {
        let err = request("https://h/", &[TEST_CREATED, "made-up"])
            .check()
            .unwrap_err();
        assert!(err.contains("'made-up'"), "{err}");
    }

    #[test]
    fn bodies_keep_microsofts_field_order_and_date_format() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T10:00:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let change = Change {
            name: RELATIONSHIP_APPROVED,
            path: "/granularAdminRelationships/r1".into(),
            resource: RELATIONSHIP_RESOURCE,
            at,
        };
        let text = serde_json::to_string(&change.body("https://b")).unwrap();
        assert_eq!(
            text,
            r#"{"EventName":"granular-admin-relationship-approved","ResourceUri":"https://b/granularAdminRelationships/r1","ResourceName":"GranularAdminRelationship","AuditUri":null,"ResourceChangeUtcDate":"2026-12-06T10:00:00.1234567+00:00"}"#
        );
        assert_eq!(result_date(at), "2026-12-06T10:00:00.1234567");
    }
}

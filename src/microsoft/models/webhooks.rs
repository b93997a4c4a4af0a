//! Wire models of Partner Center's webhook registration API (`/webhooks/v1/registration`).
//!
//! Contract: the registration's fields are PascalCase as Partner Center writes them
//! (`SubscriberId`, `WebhookUrl`, `WebhookEvents`); validation events are camelCase
//! (`correlationId`, `status`, `results[]`). A result's `responseCode` is the receiver's answer
//! by name (`OK`, `InternalServerError`…) and absent when no answer came (`systemError`).

use serde::{Deserialize, Serialize};

/// The test event a validation request sends.
pub const TEST_CREATED: &str = "test-created";

/// The GDAP events Partner Center sends.
pub const GDAP_EVENTS: [&str; 8] = [
    "granular-admin-relationship-approved",
    "granular-admin-relationship-activated",
    "granular-admin-relationship-terminated",
    "granular-admin-relationship-expired",
    "granular-admin-access-assignment-created",
    "granular-admin-access-assignment-activated",
    "granular-admin-access-assignment-updated",
    "granular-admin-access-assignment-deleted",
];

/// The partner's webhook registration (one per partner tenant), or the body that asks for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebhookRegistration {
    /// Set by Partner Center; absent in a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_id: Option<String>,
    /// Where events are POSTed.
    pub webhook_url: String,
    /// The events sent.
    #[serde(default)]
    pub webhook_events: Vec<String>,
}

/// The answer to a validation request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationEvent {
    /// Names the validation event in status reads.
    pub correlation_id: String,
}

/// Where a validation event stands.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationStatus {
    /// The validation event.
    pub correlation_id: String,
    /// The partner tenant.
    #[serde(default)]
    pub partner_id: Option<String>,
    /// `pending`, `completed` or `failed` (verbatim).
    pub status: String,
    /// Where the event was sent.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// One result per delivery attempt.
    #[serde(default)]
    pub results: Vec<ValidationResult>,
}

impl ValidationStatus {
    /// Whether attempts remain.
    pub fn is_pending(&self) -> bool {
        self.status.eq_ignore_ascii_case("pending")
    }

    /// Whether the receiver accepted the event.
    pub fn is_completed(&self) -> bool {
        self.status.eq_ignore_ascii_case("completed")
    }
}

/// One delivery attempt of a validation event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationResult {
    /// The receiver's answer by name (`OK`, …); absent when none came.
    #[serde(default)]
    pub response_code: Option<String>,
    /// The answer's text, or why none came.
    #[serde(default)]
    pub response_message: Option<String>,
    /// The attempt failed on Partner Center's side (no answer).
    #[serde(default)]
    pub system_error: bool,
    /// When (UTC, as Partner Center writes it).
    #[serde(default)]
    pub date_time_utc: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsofts_documented_shapes_parse() {
        let r: WebhookRegistration = serde_json::from_str(r#"{"SubscriberId":"e82cac64-dc67-4cd3-849b-78b6127dd57d","WebhookUrl":"https://h/x","WebhookEvents":["referral-created"]}"#).unwrap();
        assert_eq!(r.webhook_events, ["referral-created"]);
        let s: ValidationStatus = serde_json::from_str(r#"{"correlationId":"04af2aea-d413-42db-824e-f328001484d1","partnerId":"4b1d1b0a","status":"completed","callbackUrl":"{{receiving-url}}","results":[{"responseCode":"OK","responseMessage":"","systemError":false,"dateTimeUtc":"2017-12-08T21:39:48.2386997"}]}"#).unwrap();
        assert!(s.is_completed() && !s.is_pending());
        assert_eq!(s.results[0].response_code.as_deref(), Some("OK"));
        let request = serde_json::to_value(WebhookRegistration {
            subscriber_id: None,
            webhook_url: "https://h/x".into(),
            webhook_events: vec![TEST_CREATED.into()],
        })
        .unwrap();
        assert_eq!(
            request,
            serde_json::json!({"WebhookUrl": "https://h/x", "WebhookEvents": ["test-created"]})
        );
    }
}

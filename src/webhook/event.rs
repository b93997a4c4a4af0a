//! A Partner Center webhook event (the body Partner Center POSTs) and what it concerns.
//!
//! Contract: the body is `{"EventName", "ResourceUri", "ResourceName", "AuditUri",
//! "ResourceChangeUtcDate"}` (Microsoft's field names; unknown fields are ignored). GDAP events
//! name their relationship in `ResourceUri`: `…/granularAdminRelationships/{id}` for the
//! relationship events and `…/granularAdminRelationships/{id}/accessAssignments/{assignment}`
//! for the access-assignment events; [`PartnerEvent::relationship_id`] reads it from there. An
//! event is identified by its name, resource and change time ([`PartnerEvent::identity`]):
//! Partner Center's retries of one event carry the same three, two changes of one resource
//! differ in the time.

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

/// The GDAP events the operator acts on (each names a relationship): Partner Center's, as the
/// registration client knows them.
pub use crate::microsoft::models::webhooks::GDAP_EVENTS;

/// Partner Center's validation event (`webhook test`).
pub use crate::microsoft::models::webhooks::TEST_CREATED as TEST_EVENT;

/// The path segment before a relationship's id in a GDAP event's `ResourceUri`.
const RELATIONSHIPS_SEGMENT: &str = "granularAdminRelationships";

/// An event as Partner Center sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartnerEvent {
    /// `{resource}-{action}`, e.g. `granular-admin-relationship-approved`.
    pub event_name: String,
    /// The changed resource.
    pub resource_uri: String,
    /// The resource's kind, e.g. `GranularAdminRelationship`.
    #[serde(default)]
    pub resource_name: Option<String>,
    /// The audit record, when there is one.
    #[serde(default)]
    pub audit_uri: Option<String>,
    /// When the resource changed.
    pub resource_change_utc_date: DateTime<FixedOffset>,
}

impl PartnerEvent {
    /// Parses a body; the error says what is wrong (never echoes the body).
    pub fn parse(body: &[u8]) -> Result<PartnerEvent, String> {
        serde_json::from_slice(body).map_err(|e| format!("not a Partner Center event: {e}"))
    }

    /// Whether it is one of the GDAP events the operator acts on.
    pub fn is_gdap(&self) -> bool {
        GDAP_EVENTS.contains(&self.event_name.as_str())
    }

    /// The GDAP relationship a GDAP event concerns (from `ResourceUri`); `None` for other events
    /// or a URI without one.
    pub fn relationship_id(&self) -> Option<String> {
        if !self.is_gdap() {
            return None;
        }
        let url = url::Url::parse(&self.resource_uri).ok()?;
        let mut segments = url.path_segments()?;
        segments.find(|s| s.eq_ignore_ascii_case(RELATIONSHIPS_SEGMENT))?;
        let id = segments.next().filter(|id| is_relationship_id(id))?;
        Some(id.to_string())
    }

    /// What identifies the event across deliveries: name, resource and change time.
    pub fn identity(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.event_name,
            self.resource_uri,
            self.resource_change_utc_date.to_rfc3339()
        )
    }
}

/// Microsoft's relationship ids are a GUID with a suffix (`{guid}-{guid}`); anything of
/// letters, digits and dashes, at most 100 long, is taken, nothing else.
fn is_relationship_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, uri: &str) -> PartnerEvent {
        let body = serde_json::json!({
            "EventName": name,
            "ResourceUri": uri,
            "ResourceName": "GranularAdminRelationship",
            "AuditUri": null,
            "ResourceChangeUtcDate": "2018-02-17T00:05:39.5485487+00:00"
        });
        PartnerEvent::parse(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn relationship_events_name_their_relationship_in_the_resource_uri() {
        let e = event(
            "granular-admin-relationship-approved",
            "https://api.partnercenter.microsoft.com/granularAdminRelationships/abc-123",
        );
        assert_eq!(e.relationship_id().as_deref(), Some("abc-123"));
    }

    #[test]
    fn assignment_events_name_the_relationship_before_the_assignment() {
        let e = event(
            "granular-admin-access-assignment-activated",
            "https://partner.microsoft.com/granularAdminRelationships/rel-1/accessAssignments/a-9",
        );
        assert_eq!(e.relationship_id().as_deref(), Some("rel-1"));
    }

    #[test]
    fn other_events_and_odd_uris_concern_no_relationship() {
        let test = event(
            TEST_EVENT,
            "https://api.partnercenter.microsoft.com/granularAdminRelationships/x",
        );
        assert_eq!(test.relationship_id(), None);
        let odd = event(
            "granular-admin-relationship-approved",
            "https://x/granularAdminRelationships/a%2Fb",
        );
        assert_eq!(odd.relationship_id(), None);
        let none = event("granular-admin-relationship-approved", "https://x/other/1");
        assert_eq!(none.relationship_id(), None);
    }

    #[test]
    fn seven_fractional_digits_parse_and_retries_share_an_identity() {
        let a = event(
            "granular-admin-relationship-approved",
            "https://x/granularAdminRelationships/r",
        );
        let b = a.clone();
        assert_eq!(a.identity(), b.identity());
        let mut later = a.clone();
        later.resource_change_utc_date += chrono::Duration::seconds(1);
        assert_ne!(a.identity(), later.identity());
    }

    #[test]
    fn a_body_that_is_not_an_event_is_refused() {
        assert!(PartnerEvent::parse(b"{\"EventName\": 1}").is_err());
        assert!(PartnerEvent::parse(b"not json").is_err());
    }
}

//! The observe step: find the relationship (by the recorded id, the adopted id, or the display
//! name — always looked up before any create) and its access assignments, and reduce them to the
//! plan's views.

use super::desired::Desired;
use super::plan::{FailedAssignment, Observed, RemoteAssignment, RemoteRelationship};
use crate::api::{GdapRelationship, IsoDays};
use crate::microsoft::models::gdap::{AccessAssignment, Relationship};
use crate::microsoft::{DelegatedToken, GdapApi, Reason, RelationshipFilter, Result};
use chrono::{DateTime, Utc};

/// Annotation recording when the operator asked Microsoft to terminate (deletion).
pub const TERMINATE_REQUESTED_ANNOTATION: &str = "gdap.io/terminate-requested-at";

/// Reads Microsoft's side for `object`.
pub async fn observe(
    object: &GdapRelationship,
    desired: &Result<Desired, String>,
    gdap: &dyn GdapApi,
    token: &DelegatedToken,
) -> Result<Observed> {
    let status = object.status.as_ref();
    let recorded = status.and_then(|s| s.relationship_id.as_deref());
    let adopt = object.spec.relationship_id.as_deref();
    let display_name = desired
        .as_ref()
        .ok()
        .map(|d| d.display_name.as_str())
        .or(status.and_then(|s| s.display_name.as_deref()));
    let relationship = find(gdap, token, adopt, recorded, display_name).await?;
    let assignments = match &relationship {
        Some(r) if r.status.as_ref().is_some_and(|s| s.as_str() == "active") => {
            gdap.list_access_assignments(token, &r.id).await?
        }
        _ => Vec::new(),
    };
    Ok(Observed {
        relationship: relationship.as_ref().map(remote_relationship),
        assignments: assignments.iter().map(remote_assignment).collect(),
        failed_assignments: failed_assignments(object),
        deleting: object.metadata.deletion_timestamp.is_some(),
        termination_requested_at: annotation_time(object, TERMINATE_REQUESTED_ANNOTATION),
    })
}

/// By id when one is known (the adopted id is authoritative), else by display name.
async fn find(
    gdap: &dyn GdapApi,
    token: &DelegatedToken,
    adopt: Option<&str>,
    recorded: Option<&str>,
    display_name: Option<&str>,
) -> Result<Option<Relationship>> {
    if let Some(id) = adopt.or(recorded) {
        match gdap.get_relationship(token, id).await {
            Ok(r) => return Ok(Some(r)),
            Err(e) if e.reason() == Reason::NotFound && adopt.is_some() => return Ok(None),
            Err(e) if e.reason() == Reason::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let Some(name) = display_name else {
        return Ok(None);
    };
    let filter = RelationshipFilter {
        display_name: Some(name.to_string()),
        ..Default::default()
    };
    let mut found = gdap.list_relationships(token, &filter).await?;
    found.retain(|r| r.display_name == name);
    // Prefer a live one; among equals, the newest.
    found.sort_by_key(|r| (!is_finished(r), r.created_date_time));
    Ok(found.pop())
}

fn is_finished(r: &Relationship) -> bool {
    matches!(
        r.status.as_ref().map(|s| s.as_str()),
        Some("terminated" | "expired")
    )
}

/// The plan's view of a relationship.
pub fn remote_relationship(r: &Relationship) -> RemoteRelationship {
    RemoteRelationship {
        id: r.id.clone(),
        display_name: r.display_name.clone(),
        customer: r
            .customer
            .as_ref()
            .map(|c| c.tenant_id.to_ascii_lowercase()),
        status: r
            .status
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        role_ids: r
            .access_details
            .role_ids()
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        duration_days: r.duration.parse::<IsoDays>().ok().map(|d| d.days()),
        auto_extend: r
            .auto_extend_duration
            .as_deref()
            .is_some_and(|d| d != "PT0S" && d != "P0D"),
        activated_at: r.activated_date_time,
        ends_at: r.end_date_time,
        modified_at: r.last_modified_date_time,
        etag: r.etag.clone(),
    }
}

/// The plan's view of an access assignment.
pub fn remote_assignment(a: &AccessAssignment) -> RemoteAssignment {
    RemoteAssignment {
        id: a.id.clone(),
        group_id: a.access_container.access_container_id.to_ascii_lowercase(),
        role_ids: a
            .access_details
            .role_ids()
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        status: a
            .status
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        etag: a.etag.clone(),
    }
}

fn failed_assignments(
    object: &GdapRelationship,
) -> std::collections::BTreeMap<String, FailedAssignment> {
    let rows = object
        .status
        .as_ref()
        .map(|s| s.access_assignments.as_slice())
        .unwrap_or_default();
    rows.iter()
        .filter_map(|row| {
            let at = row.failed_at.as_ref()?;
            let at = DateTime::<Utc>::from_timestamp(at.0.as_second(), 0)?;
            Some((
                row.security_group_id.clone(),
                FailedAssignment {
                    role_ids: row.roles.iter().cloned().collect(),
                    at,
                },
            ))
        })
        .collect()
}

/// An RFC 3339 time stored in an annotation.
pub fn annotation_time(object: &GdapRelationship, key: &str) -> Option<DateTime<Utc>> {
    let text = object.metadata.annotations.as_ref()?.get(key)?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

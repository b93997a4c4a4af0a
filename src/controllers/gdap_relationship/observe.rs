//! The observe step: what the object records (Kubernetes side) and what Microsoft reports — the
//! relationship (by the recorded id, the adopted id, or the display name; always looked up before
//! any create), its access assignments, the role changes Microsoft is applying, and while
//! deleting its `terminate` requests. Reads only.

use super::desired::Intent;
use super::plan::{
    FailedAssignment, Observed, Remote, RemoteAssignment, RemoteRelationship, RemoteUpdate,
    Unreadable,
};
use crate::api::conditions::reasons;
use crate::api::{GdapRelationship, IsoDays};
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::credentials_in_use::newest_termination;
use crate::controllers::failure::Failure;
use crate::controllers::withdrawals;
use crate::microsoft::models::gdap::{
    AccessAssignment, AccessDetails, Operation, OperationType, Relationship,
    RelationshipStatus as State,
};
use crate::microsoft::{self, DelegatedToken, GdapApi, Reason, RelationshipFilter};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Annotation recording that a create may have been sent, with the display name and time.
pub const CREATE_INTENT_ANNOTATION: &str = "gdap.io/create-intent";

/// Why Microsoft's side could not be observed: the observe stage's errors.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The credentials Secret is missing, incomplete, or could not be read.
    #[error("{message}")]
    Credentials {
        /// What is wrong and what to do (never a secret).
        message: String,
        /// The Kubernetes API failed (retrying helps), rather than the Secret being wrong.
        transient: bool,
        /// The condition reason.
        reason: &'static str,
    },
    /// Microsoft could not be read.
    #[error("reading Microsoft Graph failed: {0}")]
    Microsoft(#[from] microsoft::Error),
}

impl ObserveError {
    /// Retrying later can help without anybody acting.
    pub fn is_transient(&self) -> bool {
        match self {
            ObserveError::Credentials { transient, .. } => *transient,
            ObserveError::Microsoft(e) => microsoft_is_transient(e),
        }
    }

    /// As a failure for the report.
    pub fn failure(&self) -> Failure {
        let reason = match self {
            ObserveError::Credentials { reason, .. } => reason,
            ObserveError::Microsoft(e) => microsoft_reason(e),
        };
        Failure::new(reason, self.to_string(), self.is_transient())
    }
}

/// The condition reason of a Microsoft error.
pub fn microsoft_reason(error: &microsoft::Error) -> &'static str {
    match error.reason() {
        r if r.is_transient() || r == Reason::OutcomeUnknown => reasons::TRANSIENT_ERROR,
        Reason::RefreshTokenExpired
        | Reason::RefreshTokenRevoked
        | Reason::RefreshTokenInvalid
        | Reason::InvalidClientSecret
        | Reason::ClientSecretExpired
        | Reason::AppNotInTenant
        | Reason::ConsentMissing => reasons::CREDENTIALS_INVALID,
        _ => reasons::MICROSOFT_ERROR,
    }
}

/// Whether retrying a failed Microsoft call later can help (a write whose outcome is unknown is
/// looked up again, which is safe to retry).
pub fn microsoft_is_transient(error: &microsoft::Error) -> bool {
    error.is_transient() || error.reason() == Reason::OutcomeUnknown
}

/// Reads both sides for `object`. Microsoft is read only with usable credentials.
pub async fn observe(
    object: &GdapRelationship,
    intent: &Intent,
    credentials: Result<&Credentials, &CredentialsError>,
) -> (Observed, Option<ObserveError>) {
    let deleting = object.metadata.deletion_timestamp.is_some();
    let recorded_id = object
        .status
        .as_ref()
        .and_then(|s| s.relationship_id.clone());
    let mut observed = Observed {
        deleting,
        create_intent: object
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(CREATE_INTENT_ANNOTATION)),
        recorded_id: recorded_id.clone(),
        withdrawal_recorded: false,
        failed_assignments: failed_assignments(object),
        microsoft: Err(Unreadable { transient: true }),
    };
    let credentials = match credentials {
        Ok(c) => c,
        Err(e) => {
            observed.microsoft = Err(Unreadable {
                transient: e.is_transient(),
            });
            let error = ObserveError::Credentials {
                message: e.to_string(),
                transient: e.is_transient(),
                reason: e.reason(),
            };
            return (observed, Some(error));
        }
    };
    let token = credentials.clients.tokens.partner_graph();
    let gdap = credentials.clients.gdap.as_ref();
    match read_microsoft(
        object,
        intent,
        gdap,
        &token,
        recorded_id.as_deref(),
        deleting,
    )
    .await
    {
        Ok(remote) => {
            observed.withdrawal_recorded = remote
                .relationship
                .as_ref()
                .is_some_and(|r| withdrawals::recorded(&credentials.secret, &r.id));
            observed.microsoft = Ok(remote);
            (observed, None)
        }
        Err(e) => {
            observed.microsoft = Err(Unreadable {
                transient: microsoft_is_transient(&e),
            });
            (observed, Some(e.into()))
        }
    }
}

async fn read_microsoft(
    object: &GdapRelationship,
    intent: &Intent,
    gdap: &dyn GdapApi,
    token: &DelegatedToken,
    recorded_id: Option<&str>,
    deleting: bool,
) -> microsoft::Result<Remote> {
    let adopt = intent.adopt_id.as_deref();
    let found = find(gdap, token, adopt, recorded_id, &intent.display_name).await?;
    let Some(found) = found else {
        return Ok(Remote::default());
    };
    let relationship = remote_relationship(&found);
    let mut remote = Remote::default();
    if relationship.status == State::Active {
        let assignments = gdap.list_access_assignments(token, &found.id).await?;
        remote.assignments = assignments.iter().map(remote_assignment).collect();
        if !deleting && role_change_possible(object, intent, &remote.assignments) {
            let operations = gdap.list_operations(token, &found.id).await?;
            remote.updates = operations.iter().filter_map(remote_update).collect();
        }
    }
    let terminable = matches!(
        relationship.status,
        State::Active | State::TerminationRequested | State::Terminating
    );
    if deleting && terminable {
        let requests = gdap.list_requests(token, &found.id).await?;
        remote.termination = newest_termination(&requests);
    }
    remote.relationship = Some(relationship);
    Ok(remote)
}

/// Role changes matter when an assignment's roles differ from the spec's or the status shows one
/// pending; otherwise the operations are not read.
fn role_change_possible(
    object: &GdapRelationship,
    intent: &Intent,
    assignments: &[RemoteAssignment],
) -> bool {
    let pending = object.status.as_ref().is_some_and(|s| {
        s.access_assignments
            .iter()
            .any(|a| a.pending_update.is_some())
    });
    let Ok(desired) = &intent.spec else {
        return pending;
    };
    pending
        || assignments.iter().filter(|a| a.is_live()).any(|a| {
            desired
                .assignments
                .get(&a.group_id)
                .is_some_and(|roles| *roles != a.role_ids)
        })
}

/// By id when one is known (the adopted id is authoritative), else by display name.
async fn find(
    gdap: &dyn GdapApi,
    token: &DelegatedToken,
    adopt: Option<&str>,
    recorded: Option<&str>,
    display_name: &str,
) -> microsoft::Result<Option<Relationship>> {
    if let Some(id) = adopt.or(recorded) {
        match gdap.get_relationship(token, id).await {
            Ok(r) => return Ok(Some(r)),
            Err(e) if e.reason() == Reason::NotFound && adopt.is_some() => return Ok(None),
            Err(e) if e.reason() == Reason::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let filter = RelationshipFilter {
        display_name: Some(display_name.to_string()),
        ..Default::default()
    };
    let mut found = gdap.list_relationships(token, &filter).await?;
    found.retain(|r| r.display_name == display_name);
    // Prefer a live one; among equals, the newest.
    found.sort_by_key(|r| (!is_finished(r), r.created_date_time));
    Ok(found.pop())
}

fn is_finished(r: &Relationship) -> bool {
    matches!(r.status, Some(State::Terminated | State::Expired))
}

fn role_ids(details: &AccessDetails) -> BTreeSet<String> {
    details
        .role_ids()
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect()
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
        status: r.status.clone().unwrap_or(State::Unknown(String::new())),
        role_ids: role_ids(&r.access_details),
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
    use crate::microsoft::models::gdap::AccessAssignmentStatus as S;
    RemoteAssignment {
        id: a.id.clone(),
        group_id: a.access_container.access_container_id.to_ascii_lowercase(),
        role_ids: role_ids(&a.access_details),
        status: a.status.clone().unwrap_or(S::Unknown(String::new())),
        etag: a.etag.clone(),
    }
}

/// An access-assignment role change, from its operation (whose `data` is the target assignment).
fn remote_update(op: &Operation) -> Option<RemoteUpdate> {
    if op.operation_type != OperationType::AccessAssignmentUpdate {
        return None;
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Target {
        id: String,
        #[serde(default)]
        access_details: AccessDetails,
    }
    let target: Target = serde_json::from_str(&op.data).ok()?;
    Some(RemoteUpdate {
        operation_id: op.id.clone(),
        assignment_id: target.id,
        role_ids: role_ids(&target.access_details),
        status: op.status.clone(),
        modified_at: op.last_modified_date_time,
    })
}

fn failed_assignments(object: &GdapRelationship) -> BTreeMap<String, FailedAssignment> {
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

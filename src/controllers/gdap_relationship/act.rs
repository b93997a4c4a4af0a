//! The act step: perform the one action the plan chose, through the delegated (partner user)
//! token only. Crash safety for creates: intent is recorded on the object before the POST, the
//! display name was looked up in observe, and the id is written to status right after.

use super::desired::Desired;
use super::observe::{TERMINATE_REQUESTED_ANNOTATION, remote_relationship};
use super::plan::{Action, Observed};
use super::status::Outcome;
use crate::api::GdapRelationship;
use crate::api::conditions::reasons;
use crate::microsoft::models::gdap::{
    AccessContainer, AccessDetails, CustomerParticipant, NewAccessAssignment, NewRelationship,
    RelationshipPatch,
};
use crate::microsoft::{DelegatedToken, Error, GdapApi, Reason};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// Annotation recording that a create was started, with the display name used.
pub const CREATE_INTENT_ANNOTATION: &str = "gdap.io/create-intent";

/// What act needs besides the plan.
pub struct Target<'a> {
    /// The object.
    pub object: &'a GdapRelationship,
    /// Its API (for annotations and the immediate id record).
    pub api: &'a Api<GdapRelationship>,
    /// The resolved spec.
    pub desired: &'a Desired,
    /// The GDAP client.
    pub gdap: &'a dyn GdapApi,
    /// The partner user's Graph token.
    pub token: &'a DelegatedToken,
}

/// A short, past-tense description of what was done, for events.
pub type Done = Option<(&'static str, String)>;

/// Performs `action`, folding its visible result into `observed`.
pub async fn act(action: &Action, t: &Target<'_>, observed: &mut Observed) -> (Outcome, Done) {
    match run(action, t, observed).await {
        Ok(done) => (Outcome::Ok, done),
        Err(Failure::Assignment { group_id, error }) if !error.is_transient() => (
            Outcome::AssignmentRefused {
                group_id,
                message: error.to_string(),
            },
            None,
        ),
        Err(Failure::Assignment { error, .. } | Failure::Microsoft(error)) => {
            (outcome_of(&error), None)
        }
        Err(Failure::Kube(e)) => (
            Outcome::Failed {
                reason: reasons::TRANSIENT_ERROR,
                message: format!("Kubernetes API: {e}"),
                transient: true,
            },
            None,
        ),
    }
}

/// A Microsoft error as an outcome with the right reason.
pub fn outcome_of(error: &Error) -> Outcome {
    let reason = match error.reason() {
        r if r.is_transient() => reasons::TRANSIENT_ERROR,
        Reason::RefreshTokenExpired
        | Reason::RefreshTokenRevoked
        | Reason::InvalidClientSecret
        | Reason::ClientSecretExpired
        | Reason::AppNotInTenant
        | Reason::ConsentMissing => reasons::CREDENTIALS_INVALID,
        _ => reasons::MICROSOFT_ERROR,
    };
    Outcome::Failed {
        reason,
        message: error.to_string(),
        transient: error.is_transient() || error.reason() == Reason::OutcomeUnknown,
    }
}

enum Failure {
    Microsoft(Error),
    Assignment { group_id: String, error: Error },
    Kube(kube::Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Microsoft(e)
    }
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Self {
        Failure::Kube(e)
    }
}

async fn run(action: &Action, t: &Target<'_>, observed: &mut Observed) -> Result<Done, Failure> {
    let d = t.desired;
    let remote = observed.relationship.clone().unwrap_or_default();
    let etag = remote.etag.clone().unwrap_or_default();
    match action {
        Action::Create => {
            annotate(
                t,
                CREATE_INTENT_ANNOTATION,
                &format!("{} {}", d.display_name, chrono::Utc::now().to_rfc3339()),
            )
            .await?;
            let created = t
                .gdap
                .create_relationship(t.token, &new_relationship(d))
                .await?;
            record_id(t, &created.id).await?;
            observed.relationship = Some(remote_relationship(&created));
            Ok(Some((
                "Created",
                format!(
                    "created relationship {} ({})",
                    created.id, created.display_name
                ),
            )))
        }
        Action::UpdateDraft => {
            let patch = RelationshipPatch {
                access_details: Some(AccessDetails::from_role_ids(d.role_ids.iter().cloned())),
                duration: Some(format!("P{}D", d.duration_days)),
                auto_extend_duration: Some(auto_extend_value(d.auto_extend).into()),
                ..Default::default()
            };
            t.gdap
                .update_relationship(t.token, &remote.id, &etag, &patch)
                .await?;
            Ok(Some((
                "Updated",
                "updated the draft relationship to match the spec".into(),
            )))
        }
        Action::Lock => {
            t.gdap.lock_for_approval(t.token, &remote.id).await?;
            if let Some(r) = observed.relationship.as_mut() {
                r.status = "approvalPending".into();
                r.modified_at = Some(chrono::Utc::now());
            }
            Ok(None) // the ApprovalRequested event carries the link
        }
        Action::SetAutoExtend(on) => {
            let patch = RelationshipPatch {
                auto_extend_duration: Some(auto_extend_value(*on).into()),
                ..Default::default()
            };
            t.gdap
                .update_relationship(t.token, &remote.id, &etag, &patch)
                .await?;
            if let Some(r) = observed.relationship.as_mut() {
                r.auto_extend = *on;
            }
            Ok(Some((
                "AutoExtendChanged",
                format!("auto-extension turned {}", if *on { "on" } else { "off" }),
            )))
        }
        Action::CreateAssignment { group_id, role_ids } => {
            let new = NewAccessAssignment {
                access_container: AccessContainer::security_group(group_id),
                access_details: AccessDetails::from_role_ids(role_ids.iter().cloned()),
            };
            let created = t
                .gdap
                .create_access_assignment(t.token, &remote.id, &new)
                .await
                .map_err(|error| Failure::Assignment {
                    group_id: group_id.clone(),
                    error,
                })?;
            observed.assignments.retain(|a| &a.group_id != group_id);
            observed
                .assignments
                .push(super::observe::remote_assignment(&created));
            Ok(Some((
                "AssignmentCreated",
                format!(
                    "assigned security group {group_id} ({} roles)",
                    role_ids.len()
                ),
            )))
        }
        Action::UpdateAssignment {
            id,
            group_id,
            role_ids,
        } => {
            let etag = assignment_etag(observed, id);
            let details = AccessDetails::from_role_ids(role_ids.iter().cloned());
            t.gdap
                .update_access_assignment(t.token, &remote.id, id, &etag, &details)
                .await
                .map_err(|error| Failure::Assignment {
                    group_id: group_id.clone(),
                    error,
                })?;
            Ok(Some((
                "AssignmentUpdated",
                format!("changed the roles of security group {group_id}"),
            )))
        }
        Action::DeleteAssignment { id, group_id } => {
            let etag = assignment_etag(observed, id);
            t.gdap
                .delete_access_assignment(t.token, &remote.id, id, &etag)
                .await?;
            observed.assignments.retain(|a| &a.id != id);
            Ok(Some((
                "AssignmentDeleted",
                format!("removed security group {group_id} (not in spec.accessAssignments)"),
            )))
        }
        Action::DeleteDraft => {
            t.gdap
                .delete_relationship(t.token, &remote.id, &etag)
                .await?;
            observed.relationship = None;
            Ok(Some((
                "Deleted",
                format!("deleted the unlocked relationship {}", remote.id),
            )))
        }
        Action::Terminate => {
            annotate(
                t,
                TERMINATE_REQUESTED_ANNOTATION,
                &chrono::Utc::now().to_rfc3339(),
            )
            .await?;
            t.gdap.terminate_relationship(t.token, &remote.id).await?;
            Ok(Some((
                "TerminationRequested",
                format!("asked Microsoft to terminate relationship {}", remote.id),
            )))
        }
        Action::Release(_) | Action::Wait(_) | Action::Idle | Action::Refuse(_) => Ok(None),
    }
}

/// The ETag Graph gave an access assignment (empty when unknown: Graph then answers 400).
fn assignment_etag(observed: &Observed, id: &str) -> String {
    observed
        .assignments
        .iter()
        .find(|a| a.id == id)
        .and_then(|a| a.etag.clone())
        .unwrap_or_default()
}

fn auto_extend_value(on: bool) -> &'static str {
    if on { "P180D" } else { "PT0S" }
}

fn new_relationship(d: &Desired) -> NewRelationship {
    NewRelationship {
        display_name: d.display_name.clone(),
        duration: format!("P{}D", d.duration_days),
        customer: Some(CustomerParticipant {
            tenant_id: d.customer.clone(),
            display_name: None,
        }),
        access_details: AccessDetails::from_role_ids(d.role_ids.iter().cloned()),
        auto_extend_duration: Some(auto_extend_value(d.auto_extend).into()),
    }
}

async fn annotate(t: &Target<'_>, key: &str, value: &str) -> Result<(), kube::Error> {
    let name = t.object.metadata.name.as_deref().unwrap_or_default();
    let patch = json!({"metadata": {"annotations": {key: value}}});
    t.api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Writes the new id to status at once, so a crash before the report cannot lose it.
async fn record_id(t: &Target<'_>, id: &str) -> Result<(), kube::Error> {
    let name = t.object.metadata.name.as_deref().unwrap_or_default();
    let patch = json!({"status": {"relationshipId": id, "displayName": t.desired.display_name}});
    t.api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

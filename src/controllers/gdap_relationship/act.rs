//! The act step: a small interpreter of the plan's [`Action`]. Microsoft writes go through the
//! partner user's delegated token only; the two Kubernetes-side writes (the create intent on the
//! object, the withdrawal record on the credentials Secret) go through [`Bookkeeping`]. It reads
//! no clock and never guesses Microsoft's next state: it returns what Microsoft answered, and
//! the next observe sees the rest.
//!
//! Two refusals mean "it exists": a relationship create answered that the display name exists
//! ([`Applied::NameTaken`]; names are unique per partner), and an access assignment create
//! answered `409` (one live assignment per group; [`Applied::Assigned`] without an id). Both are
//! remembered like a success (`pending`) and read again later — never `AssignmentFailed`, never
//! a delete and a second try.
//!
//! One step only reads: [`Action::VerifyAccess`] gets the partner user's delegated Graph token
//! for the customer tenant and reads the customer's Microsoft Graph service principal
//! (`GET /servicePrincipals?$filter=appId eq '00000003-…'`, which every GDAP role may read), and
//! answers what that says about the user's access ([`AccessCheck`]); a transient failure or
//! credentials Entra refuses are the step's error, like any other call's.

use super::observe::{microsoft_is_transient, microsoft_reason, remote_relationship};
use super::observed::RemoteRelationship;
use super::step::Action;
use crate::api::conditions::{events, reasons};
use crate::api::consent_rules::MICROSOFT_GRAPH_APP_ID;
use crate::controllers::failure::Failure;
use crate::controllers::microsoft_failure::{self, Caller};
use crate::controllers::withdrawals::Withdrawal;
use crate::microsoft::models::gdap::{RelationshipStatus as RelationshipState, Updated};
use crate::microsoft::{
    self, Audience, DelegatedToken, DirectoryApi, GdapApi, Reason, TokenProvider,
};
use async_trait::async_trait;

/// The Kubernetes-side writes an action may need.
#[async_trait]
pub trait Bookkeeping: Send + Sync {
    /// Sets the create-intent annotation on the object.
    async fn record_create_intent(&self, value: &str) -> Result<(), kube::Error>;
    /// Adds a withdrawal record to the credentials Secret.
    async fn record_withdrawal(&self, record: &Withdrawal) -> Result<(), kube::Error>;
    /// Records on the object that its current relationship is now `relationship_id`, of
    /// `generation` (the hand-over to a successor).
    async fn record_generation(
        &self,
        generation: u32,
        relationship_id: &str,
    ) -> Result<(), kube::Error>;
}

/// What act works with.
pub struct Target<'a> {
    /// The GDAP client.
    pub gdap: &'a dyn GdapApi,
    /// The partner user's Graph token.
    pub token: &'a DelegatedToken,
    /// The directory client (the access check's read in the customer tenant).
    pub directory: &'a dyn DirectoryApi,
    /// The partner's tokens (the access check's delegated token for the customer tenant).
    pub tokens: &'a TokenProvider,
    /// Kubernetes-side writes.
    pub bookkeeping: &'a dyn Bookkeeping,
}

/// What an action did, with what Microsoft answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Nothing was written (wait, idle, refuse, release).
    Nothing,
    /// Written; the event to publish.
    Done {
        /// Event reason (`api::conditions::events`).
        reason: &'static str,
        /// Event note.
        note: String,
    },
    /// The relationship was created; Microsoft's answer, with status `approvalPending` when the
    /// lock that follows the create in the same pass succeeded (`created` when it did not).
    Created(RemoteRelationship),
    /// A successor was created; Microsoft's answer.
    SuccessorCreated(RemoteRelationship),
    /// The object switched to its successor.
    HandedOver {
        /// The successor's generation.
        generation: u32,
        /// The successor's id.
        relationship_id: String,
    },
    /// Microsoft refused a relationship create because a relationship with the display name
    /// exists (perhaps the object's own, created before a crash): read again later.
    NameTaken {
        /// The display name.
        display_name: String,
    },
    /// Microsoft accepted a relationship create (a success status arrived) but its answer, with
    /// the id, was cut short: the relationship exists; read again later, never create again.
    CreatedUnanswered {
        /// The display name.
        display_name: String,
    },
    /// A security group was assigned; `id: None`: Microsoft answered `409`, the group has an
    /// assignment already (perhaps the operator's own, made before a crash): read again later.
    Assigned {
        /// The group.
        group_id: String,
        /// Microsoft's id of the new assignment.
        id: Option<String>,
        /// How many roles were assigned.
        roles: usize,
    },
    /// A role change was accepted as a long-running operation.
    UpdateAccepted {
        /// The assignment's security group.
        group_id: String,
        /// The operation's id, when Microsoft gave one.
        operation_id: Option<String>,
        /// The roles being applied.
        role_ids: Vec<String>,
    },
    /// The access check ran (reads only); what it found.
    AccessChecked(AccessCheck),
}

/// What the access check found about the partner user's delegated access to the customer.
#[derive(Debug, Clone, PartialEq)]
pub enum AccessCheck {
    /// Entra issued the delegated token for the customer tenant and Graph answered the read.
    Works,
    /// Entra refused the token or Graph refused the read: the access does not work.
    Refused {
        /// Microsoft's error (its AADSTS code or Graph error code and text).
        message: String,
    },
    /// Microsoft's answer says nothing about the user's access (e.g. the partner's application
    /// is not consented in the customer tenant).
    Unverifiable {
        /// The condition reason (`controllers::microsoft_failure`).
        reason: &'static str,
        /// Microsoft's error.
        message: String,
    },
}

/// Why an action failed: the act stage's errors.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// Microsoft refused or failed a write on the relationship.
    #[error("{0}")]
    Microsoft(microsoft::Error),
    /// Microsoft refused or failed a write on one access assignment.
    #[error("security group {group_id}: {error}")]
    Assignment {
        /// The group.
        group_id: String,
        /// Microsoft's error.
        error: microsoft::Error,
    },
    /// A Kubernetes-side write failed.
    #[error("Kubernetes API: {0}")]
    Kubernetes(#[from] kube::Error),
}

impl From<microsoft::Error> for ActError {
    fn from(e: microsoft::Error) -> Self {
        ActError::Microsoft(e)
    }
}

impl ActError {
    /// Retrying later can help without anybody acting.
    pub fn is_transient(&self) -> bool {
        match self {
            ActError::Microsoft(e) | ActError::Assignment { error: e, .. } => {
                microsoft_is_transient(e)
            }
            ActError::Kubernetes(_) => true,
        }
    }

    /// A permanent refusal of one assignment (reported on its entry, retried much later).
    pub fn refused_group(&self) -> Option<&str> {
        match self {
            ActError::Assignment { group_id, .. } if !self.is_transient() => Some(group_id),
            _ => None,
        }
    }

    /// As a failure for the report.
    pub fn failure(&self) -> Failure {
        let reason = match self {
            ActError::Kubernetes(_) => reasons::KUBERNETES_ERROR,
            ActError::Assignment { .. } if self.refused_group().is_some() => {
                reasons::ASSIGNMENT_FAILED
            }
            ActError::Microsoft(e) | ActError::Assignment { error: e, .. } => microsoft_reason(e),
        };
        Failure::new(reason, self.to_string(), self.is_transient())
    }
}

/// Locks for approval the relationship a create just made, in the same pass: the object's own
/// create is always followed by the lock (its draft is the spec), and Microsoft's writes act on
/// the true state, so no read has to show the draft first. Its status is then
/// `approvalPending`. A refused lock is left to the next pass, which plans `Lock` on the draft:
/// the create's answer is kept either way.
async fn lock_new(t: &Target<'_>, mut created: RemoteRelationship) -> RemoteRelationship {
    match t.gdap.lock_for_approval(t.token, &created.id).await {
        Ok(_) => created.status = RelationshipState::ApprovalPending,
        Err(e) if e.write_landed_unanswered() => {
            created.status = RelationshipState::ApprovalPending;
        }
        Err(e) => {
            tracing::info!(error = %e, relationship = %created.id, "the lock right after the create failed; the next pass locks the draft");
        }
    }
    created
}

fn done(reason: &'static str, note: String) -> Applied {
    Applied::Done { reason, note }
}

/// Performs `action`.
pub async fn act(action: &Action, t: &Target<'_>) -> Result<Applied, ActError> {
    match action {
        Action::RecordCreateIntent { annotation } => {
            t.bookkeeping.record_create_intent(annotation).await?;
            Ok(Applied::Nothing)
        }
        Action::Create { body } => match t.gdap.create_relationship(t.token, body).await {
            Ok(created) => Ok(Applied::Created(
                lock_new(t, remote_relationship(&created)).await,
            )),
            Err(e) => exists_after_create(&e, &body.display_name).ok_or_else(|| e.into()),
        },
        Action::CreateSuccessor { body, .. } => {
            match t.gdap.create_relationship(t.token, body).await {
                Ok(created) => Ok(Applied::SuccessorCreated(remote_relationship(&created))),
                Err(e) => exists_after_create(&e, &body.display_name).ok_or_else(|| e.into()),
            }
        }
        Action::HandOver {
            generation,
            relationship_id,
        } => {
            t.bookkeeping
                .record_generation(*generation, relationship_id)
                .await?;
            Ok(Applied::HandedOver {
                generation: *generation,
                relationship_id: relationship_id.clone(),
            })
        }
        Action::UpdateDraft { id, etag, patch } => {
            t.gdap.update_relationship(t.token, id, etag, patch).await?;
            let note = "updated the draft relationship to match the spec".to_string();
            Ok(done(events::UPDATED, note))
        }
        Action::Lock { id } => {
            match t.gdap.lock_for_approval(t.token, id).await {
                Ok(_) => {}
                Err(e) if e.write_landed_unanswered() => {} // locked; only the answer was lost
                Err(e) => return Err(e.into()),
            }
            Ok(Applied::Nothing) // the ApprovalRequested event carries the link
        }
        Action::SetAutoExtend {
            id,
            etag,
            on,
            patch,
        } => {
            t.gdap.update_relationship(t.token, id, etag, patch).await?;
            let state = if *on { "on" } else { "off" };
            Ok(done(
                events::AUTO_EXTEND_CHANGED,
                format!("auto-extension turned {state}"),
            ))
        }
        Action::CreateAssignment {
            relationship_id,
            group_id,
            body,
        } => {
            let roles = body.access_details.unified_roles.len();
            let id = match t
                .gdap
                .create_access_assignment(t.token, relationship_id, body)
                .await
            {
                Ok(created) => Some(created.id),
                Err(e) if matches!(e.reason(), Reason::Conflict | Reason::AlreadyExists) => None,
                Err(error) => return Err(assignment_error(group_id, error)),
            };
            Ok(Applied::Assigned {
                group_id: group_id.clone(),
                id,
                roles,
            })
        }
        Action::UpdateAssignment {
            relationship_id,
            assignment_id,
            etag,
            group_id,
            access_details,
        } => {
            let answer = t
                .gdap
                .update_access_assignment(
                    t.token,
                    relationship_id,
                    assignment_id,
                    etag,
                    access_details,
                )
                .await
                .map_err(|error| assignment_error(group_id, error))?;
            let role_ids = access_details
                .role_ids()
                .iter()
                .map(|r| r.to_ascii_lowercase())
                .collect();
            Ok(match answer {
                Updated::Accepted { operation_id, .. } => Applied::UpdateAccepted {
                    group_id: group_id.clone(),
                    operation_id,
                    role_ids,
                },
                Updated::Done(_) => done(
                    events::ASSIGNMENT_UPDATE_REQUESTED,
                    format!("changed the roles of security group {group_id}"),
                ),
            })
        }
        Action::DeleteAssignment {
            relationship_id,
            assignment_id,
            etag,
            group_id,
        } => {
            t.gdap
                .delete_access_assignment(t.token, relationship_id, assignment_id, etag)
                .await?;
            Ok(done(
                events::ASSIGNMENT_DELETED,
                format!("removed security group {group_id} (not in spec.accessAssignments)"),
            ))
        }
        Action::DeleteDraft { id, etag } => {
            t.gdap.delete_relationship(t.token, id, etag).await?;
            Ok(done(
                events::DELETED,
                format!("deleted the unlocked relationship {id}"),
            ))
        }
        Action::Terminate { id } => {
            t.gdap.terminate_relationship(t.token, id).await?;
            Ok(done(
                events::TERMINATION_REQUESTED,
                format!("asked Microsoft to terminate relationship {id}"),
            ))
        }
        Action::RecordWithdrawal { record } => {
            t.bookkeeping.record_withdrawal(record).await?;
            Ok(done(
                events::WITHDRAWAL_RECORDED,
                format!(
                    "relationship {} awaits the customer's approval and Graph cannot withdraw it; the operator remembers it on the credentials Secret and terminates it if the customer approves it (the request lapses after 90 days)",
                    record.relationship_id
                ),
            ))
        }
        Action::VerifyAccess { customer, .. } => verify_access(t, customer).await,
        Action::Release(_) | Action::Wait(_) | Action::Idle | Action::Refuse(_) => {
            Ok(Applied::Nothing)
        }
    }
}

/// The access check: the partner user's delegated token for `customer` and one read there.
async fn verify_access(t: &Target<'_>, customer: &str) -> Result<Applied, ActError> {
    let token = t.tokens.delegated_token(customer, Audience::Graph);
    let error = match t
        .directory
        .service_principal_by_app_id(&token, MICROSOFT_GRAPH_APP_ID)
        .await
    {
        Ok(_) => return Ok(Applied::AccessChecked(AccessCheck::Works)),
        Err(e) => e,
    };
    let message = error.to_string();
    match microsoft_failure::reason(&error, Caller::PartnerUserInCustomer) {
        reasons::ACCESS_REFUSED => Ok(Applied::AccessChecked(AccessCheck::Refused { message })),
        reasons::TRANSIENT_ERROR | reasons::CREDENTIALS_INVALID => Err(error.into()),
        reason => Ok(Applied::AccessChecked(AccessCheck::Unverifiable {
            reason,
            message,
        })),
    }
}

/// Microsoft refused a relationship create because the display name exists (Graph answers `400`
/// with "already exists", or `409`).
/// A create that did not answer with the relationship, yet it exists: "the name exists" and
/// "accepted, answer cut short" both mean read again later; `None` for a create that failed.
fn exists_after_create(error: &microsoft::Error, display_name: &str) -> Option<Applied> {
    let display_name = display_name.to_string();
    if name_taken(error) {
        Some(Applied::NameTaken { display_name })
    } else if error.write_landed_unanswered() {
        Some(Applied::CreatedUnanswered { display_name })
    } else {
        None
    }
}

fn name_taken(error: &microsoft::Error) -> bool {
    match error.reason() {
        Reason::Conflict | Reason::AlreadyExists => true,
        Reason::InvalidRequest => error.detail_contains("already exists"),
        _ => false,
    }
}

fn assignment_error(group_id: &str, error: microsoft::Error) -> ActError {
    ActError::Assignment {
        group_id: group_id.to_string(),
        error,
    }
}

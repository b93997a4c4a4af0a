//! The plan's vocabulary: the one step to take ([`Action`], with the data its request needs),
//! what the controller waits for, why it refuses or releases, and the timing knobs. Plain data,
//! shared by `plan`, `settle` and `assignments` (which decide) and `act` and `report` (which
//! carry it out and tell of it).

use super::writes::Awaited;
use crate::api::rules::FieldProblem;
use crate::controllers::withdrawals::Withdrawal;
use crate::microsoft::models::gdap::{
    AccessDetails, NewAccessAssignment, NewRelationship, RelationshipPatch,
};
use chrono::{DateTime, Utc};
use std::time::Duration;

pub use crate::controllers::timing::Timing;

/// Why the plan refuses to write: the plan stage's errors, all permanent until the spec changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The spec cannot be resolved.
    InvalidSpec(FieldProblem),
    /// Roles or duration changed after the lock for approval.
    Immutable {
        /// `spec.roles` changed.
        roles_changed: bool,
        /// `spec.duration` changed.
        duration_changed: bool,
    },
    /// `spec.relationshipId` names a relationship Microsoft does not know.
    AdoptNotFound(String),
    /// The display name belongs to a relationship with another customer.
    CustomerMismatch {
        /// That relationship's customer.
        found: String,
    },
    /// The display name belongs to a relationship this object did not create (made by hand or by
    /// another tool): it is reported, never adopted, changed or terminated.
    NotOurs {
        /// Its id.
        id: String,
        /// Its `createdDateTime`.
        created_at: Option<DateTime<Utc>>,
    },
    /// A write of the operator's is still not shown `propagation_timeout` after it was made; the
    /// operator does not send it again by itself.
    PropagationTimedOut {
        /// What is awaited.
        what: Awaited,
        /// When it was written.
        since: DateTime<Utc>,
    },
}

/// What the controller is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The customer's approval.
    Approval,
    /// The customer's approval of the successor.
    SuccessorApproval,
    /// Microsoft provisioning after approval.
    Activation,
    /// Access assignments or role changes finishing.
    Assignments,
    /// Microsoft finishing a termination.
    Termination,
    /// A termination that takes longer than the timeout: checked again at the resync interval
    /// and reported; released when it finishes (or when the user sets `deletionPolicy: Orphan`).
    TerminationOverdue,
    /// `managementPolicy: Observe` and nothing to adopt yet.
    NothingToObserve,
    /// Microsoft's side cannot be read (the report says why); looked at again after a backoff.
    Unreadable,
    /// Deletion: AppConsents relying on the relationship (`Observed::consents`, which the status
    /// names) are still removing their consents, which needs the relationship's access; nothing
    /// is sent to Microsoft until they are done. Looked at again at the poll interval.
    Consents,
    /// Microsoft accepted a write of the operator's and its reads do not show it yet (they lag):
    /// nothing is written again; looked at again with a backoff.
    Propagating {
        /// What is awaited (the oldest unshown write).
        what: Awaited,
        /// When it was written.
        since: DateTime<Utc>,
    },
}

/// The one step to take, with the data its request needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Record on the object that a create is about to be sent (the value is the annotation's);
    /// only for a `spec.displayName`: the default name carries the object's uid.
    RecordCreateIntent { annotation: String },
    /// Create the relationship, then lock it for approval at once (its id comes from the create's
    /// answer; a draft the lock missed is locked by [`Action::Lock`] next).
    Create { body: NewRelationship },
    /// Create the successor of `generation` (its display name carries the generation).
    CreateSuccessor {
        generation: u32,
        body: NewRelationship,
    },
    /// Switch the object to its active successor: record the generation and id on the object.
    HandOver {
        generation: u32,
        relationship_id: String,
    },
    /// PATCH a relationship still in `created` to match the spec.
    UpdateDraft {
        id: String,
        etag: String,
        patch: RelationshipPatch,
    },
    /// Lock for approval.
    Lock { id: String },
    /// PATCH `autoExtendDuration` of an active relationship.
    SetAutoExtend {
        id: String,
        etag: String,
        on: bool,
        patch: RelationshipPatch,
    },
    /// Create an access assignment.
    CreateAssignment {
        relationship_id: String,
        group_id: String,
        body: NewAccessAssignment,
    },
    /// PATCH an access assignment's roles (Microsoft applies it as a long-running operation).
    UpdateAssignment {
        relationship_id: String,
        assignment_id: String,
        etag: String,
        group_id: String,
        access_details: AccessDetails,
    },
    /// Delete an access assignment that is no longer in the spec.
    DeleteAssignment {
        relationship_id: String,
        assignment_id: String,
        etag: String,
        group_id: String,
    },
    /// Delete a relationship that was never locked (object deletion).
    DeleteDraft { id: String, etag: String },
    /// Ask Microsoft to terminate (object deletion).
    Terminate { id: String },
    /// Remember a relationship awaiting approval whose object is being deleted, on the
    /// credentials Secret, so it is terminated if the customer approves it later.
    RecordWithdrawal { record: Withdrawal },
    /// Remove the finalizer: nothing (more) to do in Microsoft.
    Release(ReleaseReason),
    /// Wait for Microsoft or the customer.
    Wait(Waiting),
    /// Check that the partner user's delegated access to `customer` works: a delegated Graph
    /// token for the customer tenant and one read there (reads only; steady state, when the
    /// check is due).
    VerifyAccess {
        /// The customer tenant id.
        customer: String,
        /// The access was put in place less than `--propagation-timeout` ago and has not been
        /// found working yet: a refusal may be Microsoft still propagating it (reported as
        /// such, and checked again soon), not a finding.
        settling: bool,
    },
    /// Steady state: report and look again later.
    Idle,
    /// Do not write; report why.
    Refuse(PlanError),
}

impl Action {
    /// Whether the action writes (to Microsoft or to Kubernetes).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Action::Release(_)
                | Action::Wait(_)
                | Action::Idle
                | Action::VerifyAccess { .. }
                | Action::Refuse(_)
        )
    }
}

/// Why the finalizer is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// `deletionPolicy: Orphan` or `managementPolicy: Observe`.
    Orphaned,
    /// Nothing exists in Microsoft (or nothing was ever created).
    NothingToDelete,
    /// Deleted or terminated.
    Done,
    /// Approval pending: Graph cannot withdraw it; a withdrawal record terminates it if approved.
    CannotWithdraw,
}

/// The decision: one action and when to reconcile again.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What to do now.
    pub action: Action,
    /// When to look again (after the action, if it succeeds).
    pub requeue: Duration,
}

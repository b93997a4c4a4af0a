//! What observe found for one GdapRelationship, reduced to what decisions need: the object's
//! own records and Microsoft's side (the relationship, its access assignments, role changes,
//! terminate requests, successor and predecessor). Plain data; `plan` decides on it.

use super::writes::Pending;
use crate::microsoft::models::gdap::{
    AccessAssignmentStatus as AssignmentState, OperationStatus, RelationshipStatus as State,
    RequestStatus,
};
use chrono::{DateTime, Duration as Span, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// A relationship as Microsoft reports it, reduced to what decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRelationship {
    /// Microsoft's id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Customer tenant id, lower case, once known.
    pub customer: Option<String>,
    /// The customer's name, as Microsoft shows it (`customer.displayName`).
    pub customer_name: Option<String>,
    /// Microsoft's status.
    pub status: State,
    /// Role template ids, lower case.
    pub role_ids: BTreeSet<String>,
    /// Duration in days, when it parses.
    pub duration_days: Option<u32>,
    /// Whether auto-extension is on.
    pub auto_extend: bool,
    /// When it became active.
    pub activated_at: Option<DateTime<Utc>>,
    /// When it ends.
    pub ends_at: Option<DateTime<Utc>>,
    /// When it was last modified (the lock time while approval is pending).
    pub modified_at: Option<DateTime<Utc>>,
    /// ETag for PATCH/DELETE.
    pub etag: Option<String>,
}

/// An access assignment as Microsoft reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAssignment {
    /// Microsoft's id.
    pub id: String,
    /// Security group id, lower case.
    pub group_id: String,
    /// Role template ids, lower case.
    pub role_ids: BTreeSet<String>,
    /// Microsoft's status.
    pub status: AssignmentState,
    /// ETag for PATCH/DELETE.
    pub etag: Option<String>,
}

impl RemoteAssignment {
    /// Not being deleted and not gone.
    pub fn is_live(&self) -> bool {
        !matches!(
            self.status,
            AssignmentState::Deleting | AssignmentState::Deleted
        )
    }
}

/// A role change of an access assignment, as Microsoft's long-running operation reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUpdate {
    /// The operation's id.
    pub operation_id: String,
    /// The assignment it changes.
    pub assignment_id: String,
    /// The roles it applies.
    pub role_ids: BTreeSet<String>,
    /// Its progress.
    pub status: OperationStatus,
    /// When it last changed (its end, once finished).
    pub modified_at: Option<DateTime<Utc>>,
}

impl RemoteUpdate {
    /// Still being applied.
    pub fn is_running(&self) -> bool {
        matches!(
            self.status,
            OperationStatus::NotStarted | OperationStatus::Running
        )
    }
}

/// A `terminate` request of the relationship (`…/requests`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRequest {
    /// Its status (`None` when Microsoft did not say).
    pub status: Option<RequestStatus>,
    /// When it was made.
    pub created_at: Option<DateTime<Utc>>,
}

/// An assignment that failed permanently before, remembered in status so it is not retried in a loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAssignment {
    /// The roles that were refused.
    pub role_ids: BTreeSet<String>,
    /// When it failed.
    pub at: DateTime<Utc>,
}

/// How observe found the current relationship: what the object's claim to it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FoundBy {
    /// By an id the object states: `spec.relationshipId`, or the id its hand-over recorded
    /// (`gdap.io/relationship-id`); or Microsoft's answer to its own create.
    #[default]
    Id,
    /// By the id `status.relationshipId` records (the object's own when it recorded a create
    /// intent; else it was only observed, e.g. under `managementPolicy: Observe`).
    RecordedId,
    /// By its display name only.
    DisplayName,
}

/// The object's create intent (`gdap.io/create-intent`): the display name and when it was
/// recorded, right before the first create was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateIntent {
    /// The display name the create was for.
    pub display_name: String,
    /// When the intent was recorded (the operator's clock).
    pub at: DateTime<Utc>,
    /// The id Microsoft answered the create with (`gdap.io/created-relationship-id`), once
    /// recorded.
    pub created_id: Option<String>,
}

/// How far before the create intent Microsoft's `createdDateTime` of a relationship found by
/// display name may lie (clock skew between the operator and Microsoft) for it still to be the
/// object's own; one created earlier was made by someone else.
pub const CLOCK_SKEW: Span = Span::seconds(1);

/// Microsoft's side of one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Remote {
    /// The relationship, when one exists (by id or display name).
    pub relationship: Option<RemoteRelationship>,
    /// How it was found.
    pub found_by: FoundBy,
    /// Its `createdDateTime`, as Microsoft reports it.
    pub relationship_created_at: Option<DateTime<Utc>>,
    /// The object's create intent, when it recorded one that can be read.
    pub create_intent: Option<CreateIntent>,
    /// The operator's writes Microsoft accepted and may not show yet (the object's annotation
    /// `gdap.io/pending-writes`; see `pending`).
    pub pending: Pending,
    /// Its access assignments (empty unless active).
    pub assignments: Vec<RemoteAssignment>,
    /// Role changes of its assignments (read when a change is due or pending).
    pub updates: Vec<RemoteUpdate>,
    /// The newest `terminate` request (read while deleting).
    pub termination: Option<RemoteRequest>,
    /// The successor being requested: the first live relationship of a later generation (read
    /// when renewal is on or a successor is recorded).
    pub successor: Option<Linked>,
    /// The generation a new successor would get (the first unused one).
    pub next_generation: u32,
    /// The previous generation's relationship, while it may still need terminating.
    pub predecessor: Option<Linked>,
}

/// A successor or predecessor relationship, with what deciding about it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// Its generation (0 for the first relationship, then 1, 2, …).
    pub generation: u32,
    /// The relationship.
    pub relationship: RemoteRelationship,
    /// Its access assignments (while active).
    pub assignments: Vec<RemoteAssignment>,
    /// Role changes of its assignments.
    pub updates: Vec<RemoteUpdate>,
    /// Its newest `terminate` request (when it may need terminating).
    pub termination: Option<RemoteRequest>,
    /// A withdrawal record for it exists on the credentials Secret.
    pub withdrawal_recorded: bool,
}

pub use crate::controllers::failure::Unreadable;

/// Everything observed for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The object is being deleted.
    pub deleting: bool,
    /// The object records that a create may have been sent (`gdap.io/create-intent`).
    pub create_intent: bool,
    /// The relationship id the status records.
    pub recorded_id: Option<String>,
    /// A withdrawal record for the relationship exists on the credentials Secret.
    pub withdrawal_recorded: bool,
    /// The generation of the current relationship (`gdap.io/generation`; 0 before any successor).
    pub generation: u32,
    /// Assignments that failed permanently, by group id (from status).
    pub failed_assignments: BTreeMap<String, FailedAssignment>,
    /// Microsoft's side.
    pub microsoft: Result<Remote, Unreadable>,
    /// The AppConsents relying on the relationship that its deletion waits for (their names,
    /// sorted): they still have to remove their consents, which needs the relationship's access
    /// (see `consents`). Read only while the object is being deleted with `deletionPolicy:
    /// Delete`; empty otherwise.
    pub consents: Result<Vec<String>, Unreadable>,
    /// When the partner user's delegated access to the customer was last checked through the
    /// current relationship (`status.accessVerifiedAt`, kept only while `status.relationshipId`
    /// names the relationship observed now): the next check is due an
    /// `--access-verify-interval` after it; `None` makes it due at once.
    pub access_verified_at: Option<DateTime<Utc>>,
    /// Since when the status says every access assignment is active (`AccessAssigned=True`'s
    /// `lastTransitionTime`): GDAP access propagates for a while after that, so a refusal before
    /// the first finding that the access works is not believed until `--propagation-timeout`.
    pub access_in_place_since: Option<DateTime<Utc>>,
}

impl Observed {
    /// The relationship, when Microsoft was read and one exists.
    pub fn relationship(&self) -> Option<&RemoteRelationship> {
        self.microsoft.as_ref().ok()?.relationship.as_ref()
    }
}

//! The plan's vocabulary: the one step to take ([`Action`], with the data its request needs),
//! what the controller waits for, why it refuses or releases, and the timing knobs. Plain data,
//! shared by `plan` (which decides) and `act`, `status` and `report` (which carry it out and
//! tell of it).

use super::gaps::{Excess, MissingRole};
use super::pending::{Awaited, Write};
use super::tenant::Remains;
use crate::api::rules::FieldProblem;
use crate::controllers::context::Settings;
use crate::microsoft::models::directory::NewAppRoleAssignment;
use crate::microsoft::models::partner_center::ApplicationConsent;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The consent controller's timing: the knobs every controller shares and its own intervals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// Poll, resync and the propagation timeout (`--poll-interval`, `--resync-interval`,
    /// `--propagation-timeout`).
    pub general: crate::controllers::timing::Timing,
    /// How often a complete consent is verified and how long a new role settles first.
    pub consent: ConsentIntervals,
}

pub use crate::controllers::timing::ConsentIntervals;

impl Timing {
    /// The consent controller's timing from the operator's settings.
    pub fn from_settings(settings: &Settings) -> Self {
        Timing {
            general: settings.timing,
            consent: settings.consent,
        }
    }
}

/// Why the plan refuses to write: all permanent until the spec or the world changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The spec cannot be resolved (or names an application permission the resource lacks).
    InvalidSpec(FieldProblem),
    /// No relationship gives the partner user a consent-capable role.
    NoConsentCapableRole,
    /// The verified consent is incomplete now and `reconsent: Report` (or `managementPolicy:
    /// Observe`) forbids repairing it.
    Revoked,
    /// These application permissions need a role the partner user does not hold, to grant them
    /// or (`removing`) to remove them.
    PrivilegedRoleRequired {
        /// The permissions.
        missing: Vec<MissingRole>,
        /// They are to be removed (narrowed away or deleted), not granted.
        removing: bool,
    },
    /// Graph refused the partner user's reads of a verified consent (`403`) although the
    /// relationship gives the consent-capable role and no write of the operator is propagating:
    /// unexplained, so reported with Microsoft's answer and never repaired blindly.
    AccessDenied {
        /// Microsoft's answer.
        detail: String,
    },
    /// `managementPolicy: Observe` and the tenant gives the app more than the spec: reported,
    /// nothing changed.
    ExcessAccess(Excess),
    /// Deleting, the partner user can no longer reach the tenant (no GDAP access, or Entra and
    /// Graph refuse the app's delegated path) and the app still holds these permissions there:
    /// a customer administrator must remove the enterprise application, or
    /// `deletionPolicy: Orphan` leaves them.
    PermissionsRemain(Remains),
    /// Microsoft has not shown a write (or let the partner user in through a GDAP role) within
    /// `--propagation-timeout`; the operator does not write again by itself.
    PropagationTimedOut {
        /// What was awaited.
        what: Awaited,
        /// Since when.
        since: DateTime<Utc>,
    },
}

/// What the controller is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// A side could not be read (the report says why); looked at again after a backoff.
    Unreadable,
    /// The referenced GdapRelationship (or its relationship) is not ready.
    Relationship,
    /// The relationship gives the consent-capable role for less than the settle time.
    Settling,
    /// The prerequisites hold but Entra does not let the partner user into the tenant yet.
    AccessPropagating,
    /// Resource service principals are missing and may not be created.
    ServicePrincipals,
    /// `managementPolicy: Observe` and nothing verified yet.
    NotConsented,
    /// Microsoft does not show a write of the operator yet (or Entra does not let the partner
    /// user in through a recent GDAP role): its reads lag or it still propagates. Nothing is
    /// written again.
    Propagating {
        /// What is awaited.
        what: Awaited,
        /// Since when (the write, or the role's arrival).
        since: DateTime<Utc>,
    },
}

/// The one step to take, with the data its request needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Partner Center consent of the delegated scopes. With `replace`, the existing consent is
    /// deleted first (Microsoft's way to change one); without, an "already exists" answer means
    /// the existing consent does not give the app what it needs, and it is replaced too.
    Consent {
        /// The body.
        body: ApplicationConsent,
        /// Delete the existing consent first.
        replace: bool,
    },
    /// Create a resource's service principal in the customer tenant.
    CreateServicePrincipal {
        /// The resource's appId.
        app_id: String,
    },
    /// Grant an application permission to the app's service principal.
    GrantAppRole {
        /// The permission, for messages.
        role: String,
        /// The resource's appId, for messages.
        resource: String,
        /// The request body.
        body: NewAppRoleAssignment,
    },
    /// Remove an application permission (not in the spec, or the object is deleted).
    RevokeAppRole {
        /// The permission, for messages.
        role: String,
        /// The resource's appId, for messages.
        resource: String,
        /// The resource's service principal id.
        resource_sp_id: String,
        /// The assignment's id.
        assignment_id: String,
    },
    /// Partner Center DELETE of the consent (object deletion): removes the delegated grants.
    RemoveConsent,
    /// Remove the finalizer: nothing (more) to do in Microsoft.
    Release(ReleaseReason),
    /// Wait.
    Wait(Waiting),
    /// The consent is complete (verified now); look again at the verify interval.
    Idle,
    /// Do not write; report why.
    Refuse(PlanError),
}

/// Why the finalizer is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// `deletionPolicy: Orphan` or `managementPolicy: Observe`.
    Orphaned,
    /// Nothing of the consent is there (or nothing was ever consented): the tenant read (through
    /// the delegated path or the app-only token) shows nothing left.
    NothingToDelete,
    /// The application permissions and the consent were removed.
    Done,
}

impl Action {
    /// The write this action makes in Microsoft, to remember until a read shows it.
    pub fn write(&self) -> Option<Write> {
        Some(match self {
            Action::Consent { body, replace } => Write::consent(body, *replace),
            Action::CreateServicePrincipal { app_id } => Write::ServicePrincipal {
                app_id: app_id.clone(),
            },
            Action::GrantAppRole { body, .. } => Write::AppRole {
                resource_sp_id: body.resource_id.clone(),
                app_role_id: body.app_role_id.to_ascii_lowercase(),
            },
            Action::RevokeAppRole { assignment_id, .. } => Write::AppRoleRemoval {
                assignment_id: assignment_id.clone(),
            },
            Action::RemoveConsent => Write::ConsentRemoval,
            Action::Release(_) | Action::Wait(_) | Action::Idle | Action::Refuse(_) => {
                return None;
            }
        })
    }
}

/// The decision: one action and when to reconcile again.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What to do now.
    pub action: Action,
    /// When to look again (after the action, if it succeeds).
    pub requeue: Duration,
}

//! The pure heart of the AppConsent controller: given what the object asks for, what was observed
//! (the partner user's access to the customer, and the customer tenant) and the time, decide the
//! one next step and when to look again. No I/O, no clock.
//!
//! Order (see the module docs of `app_consent`): prerequisites → the first consent through
//! Partner Center (Microsoft Graph only, when Entra refuses the delegated token in the customer)
//! → the resources' service principals → the delegated grants (a Partner Center consent that
//! replaces the previous one) → the application permissions (Graph app role assignments). A
//! complete consent is verified again every `verify` interval; a verified consent found
//! incomplete is revoked: reported, and repaired only with `reconsent: Automatic`.
//!
//! **Microsoft is eventually consistent** (see `pending`). Every write is remembered until a read
//! shows it; a gap that a remembered write covers is a wait (`Waiting::Propagating`, polled from
//! `poll` with a backoff), never a second write and never a delete-and-redo, for up to
//! `propagation_timeout` after the write, then a refusal that names it
//! (`PlanError::PropagationTimedOut`). The partner user's new GDAP role propagates the same way:
//! Entra's AADSTS50020 for the customer within `propagation_timeout` of the role is a wait too.
//! After a write the controller looks again after `poll`, not at once: the next read is likely
//! to lag anyway.

use super::desired::{self, Intent};
use super::pending::{Awaited, Pending, Write, Written};
use crate::api::ReconsentPolicy;
use crate::api::consent_rules::{
    CONSENT_CAPABLE_ROLE_IDS, MICROSOFT_GRAPH_APP_ID, OPERATOR_GRAPH_SCOPES, ResolvedGrant,
    roles_granting_app_roles,
};
use crate::api::rules::FieldProblem;
use crate::controllers::pending_writes;
use crate::microsoft::models::directory::NewAppRoleAssignment;
use crate::microsoft::models::partner_center::ApplicationConsent;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One active relationship with the customer, as the partner user benefits from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRelationship {
    /// Microsoft's id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// The relationship's roles (template ids, lower case).
    pub role_ids: BTreeSet<String>,
    /// The roles its active access assignments give security groups the partner user is in.
    pub user_role_ids: BTreeSet<String>,
    /// Since when it gives the user a consent-capable role: the later of its activation and the
    /// creation of the earliest such access assignment (`None`: it does not, or Microsoft gave no
    /// times).
    pub consent_capable_since: Option<DateTime<Utc>>,
}

impl RemoteRelationship {
    /// It gives the partner user a consent-capable role.
    pub fn gives_consent_role(&self) -> bool {
        CONSENT_CAPABLE_ROLE_IDS
            .iter()
            .any(|r| self.user_role_ids.contains(*r))
    }
}

/// The GdapRelationship object `spec.relationshipRef` names, as Kubernetes has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// No such object in the namespace.
    Missing,
    /// It exists but is not Ready; the message is its Ready condition's.
    NotReady {
        /// Why, in the GdapRelationship's words.
        message: String,
    },
    /// Ready, with its relationship id.
    Ready {
        /// Microsoft's relationship id (`status.relationshipId`).
        relationship_id: Option<String>,
    },
}

/// The partner side: what gives the partner user access to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartnerSide {
    /// The referenced GdapRelationship (when `spec.relationshipRef` is set).
    pub reference: Option<Reference>,
    /// The active relationships with the customer.
    pub relationships: Vec<RemoteRelationship>,
    /// The customer's name, as the partner's relationships with it show it.
    pub customer_name: Option<String>,
}

impl PartnerSide {
    /// Every role the partner user holds in the customer, over all active relationships.
    pub fn held_roles(&self) -> BTreeSet<String> {
        self.relationships
            .iter()
            .flat_map(|r| r.user_role_ids.iter().cloned())
            .collect()
    }
}

/// A resource's service principal in the customer tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePrincipal {
    /// Object id.
    pub id: String,
    /// Its application permissions: name (lower case) → app role id.
    pub app_roles: BTreeMap<String, String>,
}

/// An application permission granted to the app's service principal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleAssignment {
    /// The assignment's id.
    pub id: String,
    /// The resource service principal's id.
    pub resource_id: String,
    /// The app role's id.
    pub app_role_id: String,
    /// The resource's appId, when its service principal could be read.
    pub resource_app_id: Option<String>,
    /// The app role's name (its `value`), when the resource's service principal lists it.
    pub role: Option<String>,
}

impl RoleAssignment {
    /// The resource, as messages and role checks name it: its appId, else its service
    /// principal's id.
    pub fn resource(&self) -> &str {
        self.resource_app_id.as_deref().unwrap_or(&self.resource_id)
    }

    /// The permission's name, else the app role's id.
    pub fn role_name(&self) -> &str {
        self.role.as_deref().unwrap_or(&self.app_role_id)
    }
}

/// The customer tenant, as far as the consent goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantView {
    /// The app's service principal id.
    pub app_principal: Option<String>,
    /// Each resource the consent needs (the grants' and Microsoft Graph) → its service
    /// principal, or `None` when the tenant lacks it.
    pub resources: BTreeMap<String, Option<ResourcePrincipal>>,
    /// The app's delegated grants: resource appId → scopes (lower case).
    pub grants: BTreeMap<String, BTreeSet<String>>,
    /// The app's application permissions.
    pub assignments: Vec<RoleAssignment>,
}

/// What the partner user's delegated token in the customer tenant allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenant {
    /// Entra refused the token because the app is not consented there (AADSTS90099 / 65001), or
    /// Graph refused the reads the consent should allow.
    NotConsented {
        /// Microsoft's answer, for messages.
        detail: String,
    },
    /// Entra refused the token because the user has no GDAP access there (AADSTS50020).
    NoAccess {
        /// Microsoft's answer, for messages.
        detail: String,
    },
    /// Entra issued the token but Graph refused the reads (`403`): the consent lacks the scopes,
    /// the user lacks a role, or Microsoft still propagates either.
    Denied {
        /// Microsoft's answer, for messages.
        detail: String,
    },
    /// Read.
    Read(TenantView),
}

impl Tenant {
    /// Microsoft's answer when the partner user's delegated path into the tenant is closed.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Tenant::NotConsented { detail }
            | Tenant::NoAccess { detail }
            | Tenant::Denied { detail } => Some(detail),
            Tenant::Read(_) => None,
        }
    }
}

/// What the app still holds in the customer tenant, read with the app-only token when the
/// partner user's delegated path is closed during deletion (the app-only token keeps working
/// while the app's service principal exists there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remains {
    /// The app has no service principal in the tenant (Entra refuses the app-only token with
    /// AADSTS7000229/700016): nothing of the consent is left.
    Nothing,
    /// What the app's service principal holds.
    Holds {
        /// Delegated grants: resource (appId, else service principal id) → scopes.
        grants: BTreeMap<String, BTreeSet<String>>,
        /// Application permissions.
        roles: Vec<RoleAssignment>,
    },
    /// Graph refuses the app-only token because it carries no permission at all: the app holds
    /// no Microsoft Graph application permission there (whether delegated grants remain, Graph
    /// cannot tell this token).
    NoAppPermissions,
    /// The service principal is there, but what it holds could not be read (Microsoft's answer).
    Unknown {
        /// Microsoft's answer, for messages.
        detail: String,
    },
}

impl Remains {
    /// Nothing is left.
    pub fn is_nothing(&self) -> bool {
        match self {
            Remains::Nothing => true,
            Remains::Holds { grants, roles } => grants.is_empty() && roles.is_empty(),
            Remains::NoAppPermissions | Remains::Unknown { .. } => false,
        }
    }

    /// How many permissions are left (delegated grants per resource and application
    /// permissions; an unreadable service principal counts as one).
    pub fn count(&self) -> usize {
        match self {
            Remains::Nothing => 0,
            Remains::Holds { grants, roles } => grants.len() + roles.len(),
            Remains::NoAppPermissions | Remains::Unknown { .. } => 1,
        }
    }
}

/// A side could not be read (credentials or Microsoft failed); the report says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable {
    /// Retrying later can help without anybody acting.
    pub transient: bool,
}

/// Everything observed for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The object is being deleted.
    pub deleting: bool,
    /// The status records a complete consent verified before at the current generation
    /// (`status.lastVerifiedAt`, `status.verifiedGeneration`).
    pub verified_before: bool,
    /// The status records a consent the operator made (`status.consentedAt`).
    pub consented_before: bool,
    /// The partner side.
    pub partner: Result<PartnerSide, Unreadable>,
    /// The customer tenant.
    pub tenant: Result<Tenant, Unreadable>,
    /// The operator's writes that Microsoft did not show yet (annotation
    /// `gdap.io/pending-writes`).
    pub pending: Pending,
    /// While deleting with the delegated path closed: what the app still holds, read with the
    /// app-only token (`None`: not read).
    pub remains: Option<Remains>,
}

impl Observed {
    /// The tenant view, when it was read.
    pub fn view(&self) -> Option<&TenantView> {
        match &self.tenant {
            Ok(Tenant::Read(v)) => Some(v),
            _ => None,
        }
    }
}

/// Timing knobs (from the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How soon to look again while waiting for Microsoft or a relationship.
    pub poll: Duration,
    /// How soon to look again after a refusal a person must fix.
    pub resync: Duration,
    /// How often a complete consent is verified (`--consent-verify-interval`).
    pub verify: Duration,
    /// How long a relationship must have given the partner user a consent-capable role before
    /// the first consent (`--consent-settle-time`).
    pub settle: Duration,
    /// How long the operator waits for Microsoft to show one of its own writes (or to propagate
    /// a consent) before it reports the wait as a failure (`--propagation-timeout`).
    pub propagation_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: Duration::from_secs(30),
            resync: Duration::from_secs(600),
            verify: Duration::from_secs(3600),
            settle: Duration::from_secs(900),
            propagation_timeout: Duration::from_secs(3600),
        }
    }
}

/// The consent controller's own intervals (`--consent-verify-interval`,
/// `--consent-settle-time`); poll and resync are shared with the other controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentIntervals {
    /// How often a complete consent is verified.
    pub verify: Duration,
    /// How long a relationship must have given the consent-capable role before the first consent.
    pub settle: Duration,
}

impl Default for ConsentIntervals {
    fn default() -> Self {
        let t = Timing::default();
        ConsentIntervals {
            verify: t.verify,
            settle: t.settle,
        }
    }
}

/// The relationship the consent relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The relationship.
    pub relationship: RemoteRelationship,
    /// The GdapRelationship object, when `spec.relationshipRef` names it.
    pub object: Option<String>,
}

/// Why the prerequisites do not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    /// `spec.relationshipRef` names no object.
    ReferenceMissing,
    /// The referenced GdapRelationship is not Ready.
    ReferenceNotReady {
        /// Its Ready condition's message.
        message: String,
    },
    /// It is Ready but Microsoft does not list its relationship as active with the customer.
    ReferenceNotActive {
        /// The relationship id it records.
        id: Option<String>,
    },
    /// No relationship gives the partner user a consent-capable role (the referenced one, or
    /// any active one with the customer).
    NoConsentCapableRole {
        /// The relationships looked at.
        considered: Vec<RemoteRelationship>,
    },
    /// The relationship gives it, but for less than the settle time.
    Settling {
        /// The relationship.
        chosen: Box<Chosen>,
        /// When the settle time ends.
        until: DateTime<Utc>,
    },
}

/// The prerequisites of a consent: a relationship (the referenced one, else any active one) that
/// gives the partner user a consent-capable role, for at least the settle time. Without a
/// reference, the one that has given it longest is chosen.
pub fn prerequisites(
    intent: &Intent,
    partner: &PartnerSide,
    settle: Duration,
    now: DateTime<Utc>,
) -> Result<Chosen, Unmet> {
    let candidates: Vec<&RemoteRelationship> = match (&intent.relationship_ref, &partner.reference)
    {
        (Some(_), None | Some(Reference::Missing)) => return Err(Unmet::ReferenceMissing),
        (Some(_), Some(Reference::NotReady { message })) => {
            return Err(Unmet::ReferenceNotReady {
                message: message.clone(),
            });
        }
        (Some(_), Some(Reference::Ready { relationship_id })) => {
            let found = relationship_id
                .as_ref()
                .and_then(|id| partner.relationships.iter().find(|r| &r.id == id));
            match found {
                Some(r) => vec![r],
                None => {
                    return Err(Unmet::ReferenceNotActive {
                        id: relationship_id.clone(),
                    });
                }
            }
        }
        (None, _) => partner.relationships.iter().collect(),
    };
    let best = candidates
        .iter()
        .filter(|r| r.gives_consent_role())
        .min_by_key(|r| r.consent_capable_since)
        .map(|r| Chosen {
            relationship: (*r).clone(),
            object: intent.relationship_ref.clone(),
        });
    let Some(chosen) = best else {
        return Err(Unmet::NoConsentCapableRole {
            considered: candidates.into_iter().cloned().collect(),
        });
    };
    let settle = chrono::Duration::from_std(settle).unwrap_or(chrono::Duration::MAX);
    match chosen.relationship.consent_capable_since {
        Some(since) if since + settle > now => Err(Unmet::Settling {
            until: since + settle,
            chosen: Box::new(chosen),
        }),
        _ => Ok(chosen),
    }
}

/// An application permission the spec wants that is not granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingRole {
    /// The resource's appId.
    pub resource: String,
    /// The permission's name, as the spec writes it.
    pub role: String,
    /// The resource's service principal id.
    pub resource_sp_id: String,
    /// The app role's id.
    pub app_role_id: String,
}

/// What the customer tenant lacks of the consent the spec describes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gaps {
    /// The app has no service principal there.
    pub app_missing: bool,
    /// Resources (appIds) whose service principal is missing.
    pub missing_principals: Vec<String>,
    /// Delegated scopes not granted, per resource.
    pub missing_scopes: Vec<(String, Vec<String>)>,
    /// Application permissions not granted.
    pub missing_roles: Vec<MissingRole>,
    /// Application permissions the resource does not offer: (field path, name, resource).
    pub unknown_roles: Vec<(String, String, String)>,
}

impl Gaps {
    /// Nothing is missing.
    pub fn is_empty(&self) -> bool {
        !self.app_missing
            && self.missing_principals.is_empty()
            && self.missing_scopes.is_empty()
            && self.missing_roles.is_empty()
            && self.unknown_roles.is_empty()
    }
}

/// Compares the tenant with the spec.
pub fn gaps(intent: &Intent, grants: &[ResolvedGrant], view: &TenantView) -> Gaps {
    let mut gaps = Gaps {
        app_missing: view.app_principal.is_none(),
        ..Default::default()
    };
    let principal = |app: &str| view.resources.get(app).and_then(Option::as_ref);
    let mut needed: Vec<&str> = grants.iter().map(|g| g.resource_app_id.as_str()).collect();
    if intent.manages() && !needed.contains(&MICROSOFT_GRAPH_APP_ID) {
        needed.insert(0, MICROSOFT_GRAPH_APP_ID);
    }
    gaps.missing_principals = needed
        .iter()
        .filter(|app| principal(app).is_none())
        .map(|app| app.to_string())
        .collect();
    for (resource, scopes) in desired::delegated(intent, grants) {
        let held = view.grants.get(&resource);
        let missing: Vec<String> = scopes
            .into_iter()
            .filter(|s| !held.is_some_and(|h| h.contains(&s.to_ascii_lowercase())))
            .collect();
        if !missing.is_empty() {
            gaps.missing_scopes.push((resource, missing));
        }
    }
    for grant in grants {
        let Some(sp) = principal(&grant.resource_app_id) else {
            continue;
        };
        for (j, role) in grant.app_roles.iter().enumerate() {
            let Some(role_id) = sp.app_roles.get(&role.to_ascii_lowercase()) else {
                gaps.unknown_roles.push((
                    format!("spec.grants[{}].appRoles[{j}]", grant.index),
                    role.clone(),
                    grant.resource_app_id.clone(),
                ));
                continue;
            };
            let granted = view
                .assignments
                .iter()
                .any(|a| a.resource_id == sp.id && &a.app_role_id == role_id);
            if !granted {
                gaps.missing_roles.push(MissingRole {
                    resource: grant.resource_app_id.clone(),
                    role: role.clone(),
                    resource_sp_id: sp.id.clone(),
                    app_role_id: role_id.clone(),
                });
            }
        }
    }
    gaps
}

impl Gaps {
    /// Some gap is not covered by a pending write of the operator (so it is not lag of the
    /// operator's own change).
    pub fn uncovered(&self, pending: &Pending) -> bool {
        (self.app_missing && pending.consent().is_none())
            || self
                .missing_principals
                .iter()
                .any(|app| pending.service_principal(app).is_none())
            || self
                .missing_scopes
                .iter()
                .any(|(resource, scopes)| pending.consent_covering(resource, scopes).is_none())
            || self.missing_roles.iter().any(|m| {
                pending
                    .app_role(&m.resource_sp_id, &m.app_role_id)
                    .is_none()
            })
    }
}

/// What the customer tenant gives the app beyond the spec: access to remove (the spec is the
/// truth about what the app may do there).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Excess {
    /// Delegated scopes granted but not wanted, per resource (appId, else service principal
    /// id); a resource the spec does not name lists every scope it holds.
    pub scopes: Vec<(String, Vec<String>)>,
    /// Application permissions granted but not wanted.
    pub roles: Vec<RoleAssignment>,
}

impl Excess {
    /// Nothing beyond the spec.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.roles.is_empty()
    }
}

/// The delegated scopes the tenant may hold per resource: the spec's, and on Microsoft Graph
/// the operator's own (never counted as excess, also under `managementPolicy: Observe`).
fn allowed_scopes(intent: &Intent, grants: &[ResolvedGrant]) -> BTreeMap<String, BTreeSet<String>> {
    let mut allowed: BTreeMap<String, BTreeSet<String>> = desired::delegated(intent, grants)
        .into_iter()
        .map(|(resource, scopes)| {
            let scopes = scopes.iter().map(|s| s.to_ascii_lowercase()).collect();
            (resource, scopes)
        })
        .collect();
    allowed
        .entry(MICROSOFT_GRAPH_APP_ID.to_string())
        .or_default()
        .extend(OPERATOR_GRAPH_SCOPES.iter().map(|s| s.to_ascii_lowercase()));
    allowed
}

/// Compares the tenant with the spec the other way: what is granted and not wanted.
pub fn excess(intent: &Intent, grants: &[ResolvedGrant], view: &TenantView) -> Excess {
    let allowed = allowed_scopes(intent, grants);
    let scopes = view
        .grants
        .iter()
        .filter_map(|(resource, held)| {
            let extra: Vec<String> = match allowed.get(resource) {
                Some(ok) => held.difference(ok).cloned().collect(),
                None => held.iter().cloned().collect(),
            };
            (!extra.is_empty()).then(|| (resource.clone(), extra))
        })
        .collect();
    let wanted: BTreeSet<(String, String)> = grants
        .iter()
        .filter_map(|g| {
            let sp = view.resources.get(&g.resource_app_id)?.as_ref()?;
            Some(g.app_roles.iter().filter_map(move |role| {
                let id = sp.app_roles.get(&role.to_ascii_lowercase())?;
                Some((sp.id.clone(), id.clone()))
            }))
        })
        .flatten()
        .collect();
    let roles = view
        .assignments
        .iter()
        .filter(|a| !wanted.contains(&(a.resource_id.clone(), a.app_role_id.clone())))
        .cloned()
        .collect();
    Excess { scopes, roles }
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

fn at(action: Action, requeue: Duration) -> Plan {
    Plan { action, requeue }
}

fn now_(action: Action) -> Plan {
    at(action, Duration::ZERO)
}

/// A write: Microsoft will not show it at once, so the controller looks again after `poll`.
fn write(action: Action, timing: &Timing) -> Plan {
    at(action, timing.poll)
}

/// The wait for `what`, pending since `since`: polled from `poll`, each look about twice as far
/// from `since` as the previous one (up to `resync`), and a refusal once `propagation_timeout`
/// has passed.
pub fn propagating(
    what: Awaited,
    since: DateTime<Utc>,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    let (poll, resync) = (timing.poll, timing.resync);
    match pending_writes::next_look(since, now, poll, resync, timing.propagation_timeout) {
        Some(requeue) => wait(Waiting::Propagating { what, since }, requeue),
        None => at(
            Action::Refuse(PlanError::PropagationTimedOut { what, since }),
            timing.resync,
        ),
    }
}

fn awaiting(w: &Written, timing: &Timing, now: DateTime<Utc>) -> Plan {
    propagating(w.write.awaited(), w.at, timing, now)
}

/// The pending writes after this reconcile: those the tenant still does not show (none once the
/// consent is verified complete), and the action's write at `now` when it succeeded (`wrote`).
pub fn pending_after(observed: &Observed, plan: &Plan, wrote: bool, now: DateTime<Utc>) -> Pending {
    let mut pending = match (&plan.action, &observed.tenant) {
        (Action::Idle, _) => Pending::default(),
        (_, Ok(tenant)) => observed.pending.pruned(tenant),
        (_, Err(_)) => observed.pending.clone(),
    };
    if wrote && let Some(w) = plan.action.write() {
        pending = pending.recorded(w, now);
    }
    pending
}

/// Since when the partner user holds the consent-capable role the consent relies on, while
/// that is recent enough (within `propagation_timeout`) for Microsoft to be still propagating
/// it: a refusal for a missing role or access (Partner Center 403, AADSTS50020, a Graph 403 on
/// a write) is then a wait, not a failure.
pub fn access_propagating_since(
    intent: &Intent,
    partner: &PartnerSide,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let chosen = prerequisites(intent, partner, timing.settle, now).ok()?;
    let since = chosen.relationship.consent_capable_since?;
    let timeout = chrono::Duration::from_std(timing.propagation_timeout).ok()?;
    (now < since.checked_add_signed(timeout)?).then_some(since)
}

fn wait(waiting: Waiting, requeue: Duration) -> Plan {
    at(Action::Wait(waiting), requeue)
}

/// Decides the next step.
pub fn plan(intent: &Intent, observed: &Observed, timing: &Timing, now: DateTime<Utc>) -> Plan {
    if observed.deleting {
        return plan_deletion(intent, observed, timing, now);
    }
    let grants = match &intent.grants {
        Ok(g) => g,
        Err(p) => {
            return at(
                Action::Refuse(PlanError::InvalidSpec(p.clone())),
                timing.resync,
            );
        }
    };
    let (Ok(partner), Ok(tenant)) = (&observed.partner, &observed.tenant) else {
        return wait(Waiting::Unreadable, timing.poll);
    };
    let now_at = Moment { timing, now };
    match tenant {
        Tenant::Read(view) => plan_read(intent, grants, view, partner, observed, now_at),
        _ => plan_closed(intent, grants, tenant, partner, observed, now_at),
    }
}

/// The timing knobs and the time, which every step of the plan needs together.
#[derive(Clone, Copy)]
struct Moment<'a> {
    timing: &'a Timing,
    now: DateTime<Utc>,
}

/// The operator may consent again after a revocation.
fn repair_allowed(intent: &Intent) -> bool {
    intent.manages() && intent.reconsent == ReconsentPolicy::Automatic
}

/// A consent verified complete at this generation that the tenant now shows incomplete for a
/// reason no pending write of the operator explains: the customer revoked (part of) it. A
/// closed delegated path counts only when Entra says the app is not consented (AADSTS65001)
/// while the relationship still gives the consent-capable role; a lapsed relationship, a lost
/// role, GDAP access still propagating and an unexplained Graph `403` are not revocations.
pub fn revocation_seen(
    intent: &Intent,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> bool {
    if !observed.verified_before || observed.deleting {
        return false;
    }
    let (Ok(partner), Ok(tenant), Ok(grants)) =
        (&observed.partner, &observed.tenant, &intent.grants)
    else {
        return false;
    };
    match tenant {
        Tenant::Read(view) => gaps(intent, grants, view).uncovered(&observed.pending),
        Tenant::NotConsented { .. } => {
            observed.pending.consent().is_none()
                && prerequisites(intent, partner, timing.settle, now).is_ok()
        }
        Tenant::NoAccess { .. } | Tenant::Denied { .. } => false,
    }
}

/// The plan when the tenant could be read with the partner user's delegated token.
fn plan_read(
    intent: &Intent,
    grants: &[ResolvedGrant],
    view: &TenantView,
    partner: &PartnerSide,
    observed: &Observed,
    m: Moment,
) -> Plan {
    let timing = m.timing;
    let gaps = gaps(intent, grants, view);
    if let Some((field, role, resource)) = gaps.unknown_roles.first() {
        let problem = FieldProblem::new(
            field.clone(),
            format!(
                "{role:?} is not an application permission of {} in the customer tenant",
                crate::api::consent_rules::describe_resource(resource)
            ),
        );
        return at(
            Action::Refuse(PlanError::InvalidSpec(problem)),
            timing.resync,
        );
    }
    let excess = excess(intent, grants, view);
    if gaps.is_empty() && excess.is_empty() {
        return at(Action::Idle, timing.verify);
    }
    if gaps.is_empty() && !intent.manages() {
        return at(
            Action::Refuse(PlanError::ExcessAccess(excess)),
            timing.verify,
        );
    }
    if !repair_allowed(intent) && revocation_seen(intent, observed, timing, m.now) {
        return at(Action::Refuse(PlanError::Revoked), timing.verify);
    }
    if !intent.manages() {
        return wait(Waiting::NotConsented, timing.verify);
    }
    if let Err(unmet) = prerequisites(intent, partner, timing.settle, m.now) {
        return unmet_plan(unmet, m);
    }
    let differences = Differences {
        gaps: &gaps,
        excess: &excess,
    };
    next_step(
        intent,
        grants,
        view,
        differences,
        partner,
        &observed.pending,
        m,
    )
}

/// The plan for prerequisites that do not hold.
fn unmet_plan(unmet: Unmet, m: Moment) -> Plan {
    match unmet {
        Unmet::Settling { until, .. } => {
            let left = (until - m.now).to_std().unwrap_or(Duration::ZERO);
            wait(
                Waiting::Settling,
                left.clamp(Duration::from_secs(1), m.timing.poll),
            )
        }
        Unmet::NoConsentCapableRole { .. } => at(
            Action::Refuse(PlanError::NoConsentCapableRole),
            m.timing.resync,
        ),
        _ => wait(Waiting::Relationship, m.timing.poll),
    }
}

/// The plan when the partner user's delegated path into the tenant is closed (AADSTS65001 or
/// 50020, or a Graph `403`). The partner side explains it first: a relationship that ended or
/// lost the consent-capable role is reported as such, never as a revocation.
fn plan_closed(
    intent: &Intent,
    grants: &[ResolvedGrant],
    tenant: &Tenant,
    partner: &PartnerSide,
    observed: &Observed,
    m: Moment,
) -> Plan {
    let timing = m.timing;
    let chosen = match prerequisites(intent, partner, timing.settle, m.now) {
        Ok(chosen) => Some(chosen),
        Err(unmet) if intent.manages() || observed.verified_before => {
            return unmet_plan(unmet, m);
        }
        Err(_) => None,
    };
    if let Tenant::NoAccess { .. } = tenant {
        return match chosen.map(|c| c.relationship.consent_capable_since) {
            Some(Some(since)) => propagating(Awaited::GdapAccess, since, timing, m.now),
            Some(None) => wait(Waiting::AccessPropagating, timing.poll),
            None => wait(Waiting::NotConsented, timing.verify),
        };
    }
    if let Some(w) = observed.pending.consent() {
        return awaiting(w, timing, m.now);
    }
    if observed.verified_before {
        if let Tenant::Denied { detail } = tenant {
            let detail = detail.clone();
            return at(
                Action::Refuse(PlanError::AccessDenied { detail }),
                timing.resync,
            );
        }
        if !repair_allowed(intent) {
            return at(Action::Refuse(PlanError::Revoked), timing.verify);
        }
    }
    if !intent.manages() {
        return wait(Waiting::NotConsented, timing.verify);
    }
    write(first_consent(intent, grants), timing)
}

/// The first consent: Microsoft Graph only (every tenant has its service principal), so a
/// missing service principal of another resource cannot fail it; the rest follows with the
/// delegated token it makes possible.
fn first_consent(intent: &Intent, grants: &[ResolvedGrant]) -> Action {
    let graph: Vec<(String, Vec<String>)> = desired::delegated(intent, grants)
        .into_iter()
        .filter(|(resource, _)| resource == MICROSOFT_GRAPH_APP_ID)
        .collect();
    Action::Consent {
        body: desired::consent_body(intent, &graph),
        replace: false,
    }
}

/// How the tenant differs from the spec, both ways.
#[derive(Clone, Copy)]
struct Differences<'a> {
    gaps: &'a Gaps,
    excess: &'a Excess,
}

/// The removal of an application permission.
fn revoke(a: &RoleAssignment) -> Action {
    Action::RevokeAppRole {
        role: a.role_name().to_string(),
        resource: a.resource().to_string(),
        resource_sp_id: a.resource_id.clone(),
        assignment_id: a.id.clone(),
    }
}

/// An application permission as refusals name it.
fn as_missing(a: &RoleAssignment) -> MissingRole {
    MissingRole {
        resource: a.resource().to_string(),
        role: a.role_name().to_string(),
        resource_sp_id: a.resource_id.clone(),
        app_role_id: a.app_role_id.clone(),
    }
}

/// The partner user holds a role that may grant or remove `resource`'s application permissions.
fn may_write_app_roles(held: &BTreeSet<String>, resource: &str) -> bool {
    roles_granting_app_roles(resource)
        .iter()
        .any(|r| held.contains(*r))
}

/// The next step once the tenant could be read; a difference a pending write covers is waited
/// for. Narrowing comes first: access the spec no longer gives is removed before anything is
/// added.
fn next_step(
    intent: &Intent,
    grants: &[ResolvedGrant],
    view: &TenantView,
    d: Differences,
    partner: &PartnerSide,
    pending: &Pending,
    m: Moment,
) -> Plan {
    let (timing, now) = (m.timing, m.now);
    let (gaps, excess) = (d.gaps, d.excess);
    if gaps.app_missing {
        return match pending.consent() {
            Some(w) => awaiting(w, timing, now),
            None => write(first_consent(intent, grants), timing),
        };
    }
    let held = partner.held_roles();
    let removable = excess.roles.iter().find(|a| {
        may_write_app_roles(&held, a.resource()) && pending.app_role_removal(&a.id).is_none()
    });
    if let Some(a) = removable {
        return write(revoke(a), timing);
    }
    if !gaps.missing_principals.is_empty() {
        let uncovered = gaps
            .missing_principals
            .iter()
            .find(|app| pending.service_principal(app).is_none());
        return match uncovered {
            Some(_) if !intent.create_missing_service_principals => {
                wait(Waiting::ServicePrincipals, timing.resync)
            }
            Some(app_id) => write(
                Action::CreateServicePrincipal {
                    app_id: app_id.clone(),
                },
                timing,
            ),
            None => oldest(
                gaps.missing_principals
                    .iter()
                    .filter_map(|app| pending.service_principal(app)),
                timing,
                now,
            ),
        };
    }
    if !gaps.missing_scopes.is_empty() || !excess.scopes.is_empty() {
        return change_scopes(intent, grants, view, d, pending, m);
    }
    let awaited = |m: &MissingRole| pending.app_role(&m.resource_sp_id, &m.app_role_id);
    if let Some(m) = gaps
        .missing_roles
        .iter()
        .find(|m| may_write_app_roles(&held, &m.resource) && awaited(m).is_none())
    {
        return write(
            Action::GrantAppRole {
                role: m.role.clone(),
                resource: m.resource.clone(),
                body: NewAppRoleAssignment {
                    principal_id: view.app_principal.clone().unwrap_or_default(),
                    resource_id: m.resource_sp_id.clone(),
                    app_role_id: m.app_role_id.clone(),
                },
            },
            timing,
        );
    }
    let propagating: Vec<&Written> = gaps
        .missing_roles
        .iter()
        .filter_map(awaited)
        .chain(
            excess
                .roles
                .iter()
                .filter_map(|a| pending.app_role_removal(&a.id)),
        )
        .collect();
    if !propagating.is_empty() {
        return oldest(propagating.into_iter(), timing, now);
    }
    let (missing, removing) = match gaps.missing_roles.is_empty() {
        false => (gaps.missing_roles.clone(), false),
        true => (excess.roles.iter().map(as_missing).collect(), true),
    };
    at(
        Action::Refuse(PlanError::PrivilegedRoleRequired { missing, removing }),
        timing.resync,
    )
}

/// Delegated scopes to add or remove: one Partner Center consent with every resource's wanted
/// scopes, replacing the existing consent (Microsoft's way to change one) — unless pending
/// consents of the operator already cover every difference.
fn change_scopes(
    intent: &Intent,
    grants: &[ResolvedGrant],
    view: &TenantView,
    d: Differences,
    pending: &Pending,
    m: Moment,
) -> Plan {
    let adding = d
        .gaps
        .missing_scopes
        .iter()
        .map(|(resource, scopes)| pending.consent_covering(resource, scopes));
    let removing = d
        .excess
        .scopes
        .iter()
        .map(|(resource, scopes)| pending.consent_removing(resource, scopes));
    let covering: Option<Vec<&Written>> = adding.chain(removing).collect();
    if let Some(covering) = covering {
        return oldest(covering.into_iter(), m.timing, m.now);
    }
    let body = desired::consent_body(intent, &desired::delegated(intent, grants));
    write(
        Action::Consent {
            body,
            replace: !view.grants.is_empty(),
        },
        m.timing,
    )
}

/// The wait for the oldest of `writes` (the first to time out).
fn oldest<'a>(
    writes: impl Iterator<Item = &'a Written>,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    match writes.min_by_key(|w| w.at) {
        Some(w) => awaiting(w, timing, now),
        None => wait(Waiting::Unreadable, timing.poll),
    }
}

/// Deletion: remove every application permission of the app, then the consent (policy
/// `Delete`), or release (`Orphan`, `Observe`); never release because something could not be
/// read — nor because a read does not show a write of the operator yet (a pending consent is
/// removed through Partner Center, which acts on Microsoft's true state; a removal the reads do
/// not show yet is waited for, not repeated). When the delegated path is closed, what is left
/// is read with the app-only token (`Observed::remains`): the object is released only when
/// nothing is, else it keeps its finalizer and says what remains.
fn plan_deletion(
    intent: &Intent,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    if intent.orphans_on_delete() {
        return now_(Action::Release(ReleaseReason::Orphaned));
    }
    let pending = &observed.pending;
    let tenant = match &observed.tenant {
        Ok(t) => t,
        Err(_) if !observed.consented_before && !observed.verified_before && pending.is_empty() => {
            return now_(Action::Release(ReleaseReason::NothingToDelete));
        }
        Err(_) => return wait(Waiting::Unreadable, timing.poll),
    };
    let m = Moment { timing, now };
    match tenant {
        Tenant::Read(view) => delete_in_view(view, tenant, observed, m),
        _ => delete_closed(intent, tenant, observed, m),
    }
}

/// Deletion through the partner user's delegated token: the app's application permissions,
/// then its consent.
fn delete_in_view(view: &TenantView, tenant: &Tenant, observed: &Observed, m: Moment) -> Plan {
    let (timing, now) = (m.timing, m.now);
    let pending = &observed.pending;
    let (removing, granted): (Vec<&RoleAssignment>, Vec<&RoleAssignment>) = view
        .assignments
        .iter()
        .partition(|a| pending.app_role_removal(&a.id).is_some());
    let held = observed
        .partner
        .as_ref()
        .map(PartnerSide::held_roles)
        .unwrap_or_default();
    if let Some(a) = granted
        .iter()
        .find(|a| may_write_app_roles(&held, a.resource()))
    {
        return write(revoke(a), timing);
    }
    if !removing.is_empty() {
        let writes = removing
            .iter()
            .filter_map(|a| pending.app_role_removal(&a.id));
        return oldest(writes, timing, now);
    }
    if !granted.is_empty() {
        let missing = granted.into_iter().map(as_missing).collect();
        return at(
            Action::Refuse(PlanError::PrivilegedRoleRequired {
                missing,
                removing: true,
            }),
            timing.poll,
        );
    }
    let unseen_role = pending.app_roles().find(|w| !w.write.shown_in(tenant));
    if let Some(w) = unseen_role {
        // Granted, but not shown yet: its assignment id comes with the read that shows it.
        return awaiting(w, timing, now);
    }
    if !view.grants.is_empty() {
        return match pending.consent_removal() {
            Some(w) => awaiting(w, timing, now),
            None => write(Action::RemoveConsent, timing),
        };
    }
    if pending.consent().is_some() {
        return write(Action::RemoveConsent, timing);
    }
    now_(Action::Release(ReleaseReason::Done))
}

/// Deletion with the delegated path closed: the operator's own writes still in flight first,
/// then what the app-only token shows is left.
fn delete_closed(intent: &Intent, tenant: &Tenant, observed: &Observed, m: Moment) -> Plan {
    let (timing, now) = (m.timing, m.now);
    let pending = &observed.pending;
    let no_access = matches!(tenant, Tenant::NoAccess { .. });
    if removal_explains(tenant, pending) {
        return now_(Action::Release(ReleaseReason::Done));
    }
    if let Some(w) = pending.app_roles().next() {
        return awaiting(w, timing, now);
    }
    if !no_access && pending.consent().is_some() {
        return write(Action::RemoveConsent, timing);
    }
    let recent_access = observed
        .partner
        .as_ref()
        .ok()
        .and_then(|p| access_propagating_since(intent, p, timing, now));
    if let (true, Some(since)) = (no_access, recent_access) {
        return propagating(Awaited::GdapAccess, since, timing, now);
    }
    let Some(remains) = &observed.remains else {
        return wait(Waiting::Unreadable, timing.poll);
    };
    // Entra refuses the delegated token for want of any delegated grant (AADSTS65001), and the
    // app-only token carries no application permission: nothing of the consent is left.
    let nothing_left = remains.is_nothing()
        || (matches!(remains, Remains::NoAppPermissions)
            && matches!(tenant, Tenant::NotConsented { .. }));
    if nothing_left {
        let removed = pending.consent_removal().is_some();
        let why = if removed {
            ReleaseReason::Done
        } else {
            ReleaseReason::NothingToDelete
        };
        return now_(Action::Release(why));
    }
    if let Remains::Holds { grants, roles } = remains {
        let removals: Option<Vec<&Written>> = roles
            .iter()
            .map(|a| pending.app_role_removal(&a.id))
            .chain((!grants.is_empty()).then(|| pending.consent_removal()))
            .collect();
        if let Some(removals) = removals {
            // The app-only reads lag too: the operator's own removals are not shown yet.
            return oldest(removals.into_iter(), timing, now);
        }
        let consent_capable = observed
            .partner
            .as_ref()
            .is_ok_and(|p| prerequisites(intent, p, Duration::ZERO, now).is_ok());
        if !no_access
            && consent_capable
            && !grants.is_empty()
            && pending.consent_removal().is_none()
        {
            // Partner Center removes delegated grants without a customer token, as long as a
            // relationship gives the partner user a consent-capable role.
            return write(Action::RemoveConsent, timing);
        }
    }
    at(
        Action::Refuse(PlanError::PermissionsRemain(remains.clone())),
        timing.resync,
    )
}

/// Entra refuses the app's delegated token because the operator removed the consent, after a
/// read that showed no application permission left: the deletion is complete, nothing needs to
/// be read with the app-only token.
pub fn removal_explains(tenant: &Tenant, pending: &Pending) -> bool {
    matches!(tenant, Tenant::NotConsented { .. }) && pending.consent_removal().is_some()
}

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

use super::desired::{Intent, Wanted};
use super::gaps::{Excess, Gaps, MissingRole, excess, gaps};
use super::pending::{Awaited, Pending, Written};
use super::prerequisites::{Unmet, prerequisites};
use crate::api::ReconsentPolicy;
use crate::api::consent_rules::roles_granting_app_roles;
use crate::api::rules::FieldProblem;
use crate::controllers::pending_writes;
use crate::microsoft::models::directory::NewAppRoleAssignment;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::time::Duration;

// The observed model and the step types are read through this module by the rest of the crate.
pub use super::observed::{Observed, PartnerSide, Reference, RemoteRelationship, Unreadable};
pub use super::step::{Action, ConsentIntervals, Plan, PlanError, ReleaseReason, Timing, Waiting};
pub use super::tenant::{Remains, ResourcePrincipal, RoleAssignment, Tenant, TenantView};

fn at(action: Action, requeue: Duration) -> Plan {
    Plan { action, requeue }
}

fn now_(action: Action) -> Plan {
    at(action, Duration::ZERO)
}

/// A write: Microsoft will not show it at once, so the controller looks again after `poll`.
fn write(action: Action, timing: &Timing) -> Plan {
    at(action, timing.general.poll)
}

/// Waiting for `what`, pending since `since`, as long as Microsoft may still show it; then a
/// refusal, looked at again after `resync`.
pub fn propagating(
    what: Awaited,
    since: DateTime<Utc>,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Plan {
    let Some(requeue) = pending_writes::next_look(since, now, &timing.general) else {
        let timed_out = PlanError::PropagationTimedOut { what, since };
        return at(Action::Refuse(timed_out), timing.general.resync);
    };
    wait(Waiting::Propagating { what, since }, requeue)
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
    let chosen = prerequisites(intent, partner, timing.consent.settle, now).ok()?;
    let since = chosen.relationship.consent_capable_since?;
    let timeout = chrono::Duration::from_std(timing.general.propagation_timeout).ok()?;
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
    let wanted = match &intent.wanted {
        Ok(g) => g,
        Err(p) => {
            return at(
                Action::Refuse(PlanError::InvalidSpec(p.clone())),
                timing.general.resync,
            );
        }
    };
    let (Ok(partner), Ok(tenant)) = (&observed.partner, &observed.tenant) else {
        return wait(Waiting::Unreadable, timing.general.poll);
    };
    let now_at = Moment { timing, now };
    match tenant {
        Tenant::Read(view) => plan_read(intent, wanted, view, partner, observed, now_at),
        _ => plan_closed(intent, wanted, tenant, partner, observed, now_at),
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
    let (Ok(partner), Ok(tenant), Ok(wanted)) =
        (&observed.partner, &observed.tenant, &intent.wanted)
    else {
        return false;
    };
    match tenant {
        Tenant::Read(view) => gaps(wanted, view).uncovered(&observed.pending),
        Tenant::NotConsented { .. } => {
            observed.pending.consent().is_none()
                && prerequisites(intent, partner, timing.consent.settle, now).is_ok()
        }
        Tenant::NoAccess { .. } | Tenant::Denied { .. } => false,
    }
}

/// The plan when the tenant could be read with the partner user's delegated token.
fn plan_read(
    intent: &Intent,
    wanted: &Wanted,
    view: &TenantView,
    partner: &PartnerSide,
    observed: &Observed,
    m: Moment,
) -> Plan {
    let timing = m.timing;
    let gaps = gaps(wanted, view);
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
            timing.general.resync,
        );
    }
    let excess = excess(wanted, view);
    if gaps.is_empty() && excess.is_empty() {
        return at(Action::Idle, timing.consent.verify);
    }
    if gaps.is_empty() && !intent.manages() {
        return at(
            Action::Refuse(PlanError::ExcessAccess(excess)),
            timing.consent.verify,
        );
    }
    if !repair_allowed(intent) && revocation_seen(intent, observed, timing, m.now) {
        return at(Action::Refuse(PlanError::Revoked), timing.consent.verify);
    }
    if !intent.manages() {
        return wait(Waiting::NotConsented, timing.consent.verify);
    }
    if let Err(unmet) = prerequisites(intent, partner, timing.consent.settle, m.now) {
        return unmet_plan(unmet, m);
    }
    let differences = Differences {
        gaps: &gaps,
        excess: &excess,
    };
    next_step(
        intent,
        wanted,
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
                left.clamp(Duration::from_secs(1), m.timing.general.poll),
            )
        }
        Unmet::NoConsentCapableRole { .. } => at(
            Action::Refuse(PlanError::NoConsentCapableRole),
            m.timing.general.resync,
        ),
        _ => wait(Waiting::Relationship, m.timing.general.poll),
    }
}

/// The plan when the partner user's delegated path into the tenant is closed (AADSTS65001 or
/// 50020, or a Graph `403`). The partner side explains it first: a relationship that ended or
/// lost the consent-capable role is reported as such, never as a revocation.
fn plan_closed(
    intent: &Intent,
    wanted: &Wanted,
    tenant: &Tenant,
    partner: &PartnerSide,
    observed: &Observed,
    m: Moment,
) -> Plan {
    let timing = m.timing;
    let chosen = match prerequisites(intent, partner, timing.consent.settle, m.now) {
        Ok(chosen) => Some(chosen),
        Err(unmet) if intent.manages() || observed.verified_before => {
            return unmet_plan(unmet, m);
        }
        Err(_) => None,
    };
    if let Tenant::NoAccess { .. } = tenant {
        return match chosen.map(|c| c.relationship.consent_capable_since) {
            Some(Some(since)) => propagating(Awaited::GdapAccess, since, timing, m.now),
            Some(None) => wait(Waiting::AccessPropagating, timing.general.poll),
            None => wait(Waiting::NotConsented, timing.consent.verify),
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
                timing.general.resync,
            );
        }
        if !repair_allowed(intent) {
            return at(Action::Refuse(PlanError::Revoked), timing.consent.verify);
        }
    }
    if !intent.manages() {
        return wait(Waiting::NotConsented, timing.consent.verify);
    }
    write(first_consent(wanted), timing)
}

/// The first consent: Microsoft Graph only (every tenant has its service principal), so a
/// missing service principal of another resource cannot fail it; the rest follows with the
/// delegated token it makes possible.
fn first_consent(wanted: &Wanted) -> Action {
    Action::Consent {
        body: wanted.first_consent.clone(),
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
    wanted: &Wanted,
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
            None => write(first_consent(wanted), timing),
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
                wait(Waiting::ServicePrincipals, timing.general.resync)
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
        return change_scopes(wanted, view, d, pending, m);
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
        timing.general.resync,
    )
}

/// Delegated scopes to add or remove: one Partner Center consent with every resource's wanted
/// scopes, replacing the existing consent (Microsoft's way to change one) — unless pending
/// consents of the operator already cover every difference.
fn change_scopes(
    wanted: &Wanted,
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
    let body = wanted.consent.clone();
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
        None => wait(Waiting::Unreadable, timing.general.poll),
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
        Err(_) => return wait(Waiting::Unreadable, timing.general.poll),
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
            timing.general.poll,
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
        return wait(Waiting::Unreadable, timing.general.poll);
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
        timing.general.resync,
    )
}

/// Entra refuses the app's delegated token because the operator removed the consent, after a
/// read that showed no application permission left: the deletion is complete, nothing needs to
/// be read with the app-only token.
pub fn removal_explains(tenant: &Tenant, pending: &Pending) -> bool {
    matches!(tenant, Tenant::NotConsented { .. }) && pending.consent_removal().is_some()
}

//! The report step's pure half: the status (fields and conditions) that describes what was
//! observed, what the plan decided and how the action went. When a side could not be read the
//! status keeps what was known; `Synced` and the failure counters change, and a permanent failure
//! (something a person must fix) also makes `Ready` False.
//!
//! Conditions: `PrerequisitesMet` (a relationship gives the partner user a consent-capable role,
//! settled), `ServicePrincipalsPresent` (the resources' service principals exist; only once the
//! tenant could be read), `Consented` (the whole consent verified in the tenant), `Synced` (the
//! last reconcile applied the spec without error) and `Ready` (consented and verified).
//!
//! While Microsoft does not show a write of the operator yet, or does not let the partner user in
//! through a recent GDAP role, `Consented` and `Ready` are False with `Propagating`, and the
//! message says what is awaited, since when, how long that has been and until when the operator
//! waits (`--propagation-timeout`); after that they are False with `PropagationTimedOut`.

use super::act::Applied;
use super::desired::Intent;
use super::gaps::{Excess, Gaps, MissingRole, excess, gaps};
use super::observed::Observed;
use super::pending::{Awaited, PENDING_WRITES_ANNOTATION};
use super::plan::revocation_seen;
use super::prerequisites::{Chosen, Unmet, prerequisites};
use super::step::{Action, Plan, PlanError, Timing, Waiting};
use super::tenant::{Remains, Tenant};
use crate::api::conditions::{reasons, types};
use crate::api::consent_rules::{describe_resource, roles_granting_app_roles};
use crate::api::{AppConsentStatus, ConsentRelationship, ReconsentPolicy, RoleCatalog};
pub use crate::controllers::conditions::to_time;
use crate::controllers::conditions::{Wanted, merge_at};
use crate::controllers::failure::Failure;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// How the reconcile went after the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The action ran (or there was nothing to run).
    Applied(Applied),
    /// Observing or acting failed.
    Failed {
        /// The failure.
        failure: Failure,
        /// A customer administrator's admin consent is the way out (no MFA, Partner Center
        /// refuses the user).
        manual: bool,
    },
}

impl Outcome {
    /// The failure, if any.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Failed { failure, .. } => Some(failure),
            Outcome::Applied(_) => None,
        }
    }
}

/// Everything the report needs.
pub struct Inputs<'a> {
    /// What the object asks for.
    pub intent: &'a Intent,
    /// What was observed.
    pub observed: &'a Observed,
    /// The decision.
    pub plan: &'a Plan,
    /// How it went.
    pub outcome: &'a Outcome,
    /// The status before this reconcile.
    pub previous: &'a AppConsentStatus,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The timing knobs (the settle time appears in messages).
    pub timing: Timing,
    /// The admin-consent link for this customer and application.
    pub manual_consent_url: String,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The consent the spec describes is complete in the tenant, as read in this reconcile (access
/// beyond the spec may still be there: see [`settled`]).
pub fn verified(i: &Inputs) -> bool {
    i.outcome.failure().is_none()
        && !i.observed.deleting
        && current_gaps(i).is_some_and(|g| g.is_empty())
}

/// The tenant matches the spec both ways: complete, and nothing beyond it.
pub fn settled(i: &Inputs) -> bool {
    matches!(i.plan.action, Action::Idle) && i.outcome.failure().is_none()
}

/// The new status.
pub fn build(i: &Inputs) -> AppConsentStatus {
    let mut status = i.previous.clone();
    status.observed_generation = i.generation;
    match i.outcome.failure() {
        Some(_) => {
            status.failed_attempts = i.previous.failed_attempts.saturating_add(1);
            status.last_failure_time = Some(to_time(i.now));
        }
        None => status.failed_attempts = 0,
    }
    if let Outcome::Applied(Applied::Consented(_)) = i.outcome {
        status.consented_at = Some(to_time(i.now));
    }
    if verified(i) {
        status.last_verified_at = Some(to_time(i.now));
        status.verified_generation = i.generation;
    }
    if let Ok(partner) = &i.observed.partner
        && partner.customer_name.is_some()
    {
        status.customer_display_name = partner.customer_name.clone();
    }
    if let Ok(partner) = &i.observed.partner {
        status.relationship = match prerequisites(i.intent, partner, i.timing.consent.settle, i.now)
        {
            Ok(chosen) => Some(relationship(&chosen)),
            Err(Unmet::Settling { chosen, .. }) => Some(relationship(&chosen)),
            Err(_) => None,
        };
    }
    if let Some(g) = current_gaps(i) {
        status.missing_service_principals = g.missing_principals;
    }
    status.manual_consent_url = needs_manual(i).then(|| i.manual_consent_url.clone());
    let wanted = conditions(i);
    status.conditions = merge_at(&i.previous.conditions, &wanted, i.generation, i.now);
    status
}

fn current_gaps(i: &Inputs) -> Option<Gaps> {
    let wanted = i.intent.wanted.as_ref().ok()?;
    Some(gaps(wanted, i.observed.view()?))
}

fn relationship(chosen: &Chosen) -> ConsentRelationship {
    ConsentRelationship {
        id: chosen.relationship.id.clone(),
        display_name: Some(chosen.relationship.display_name.clone()),
        object_name: chosen.object.clone(),
        roles: role_names(&chosen.relationship.user_role_ids),
    }
}

fn role_names(ids: &BTreeSet<String>) -> Vec<String> {
    let catalog = RoleCatalog::builtin();
    ids.iter()
        .map(|id| {
            catalog
                .find(id)
                .map(|r| r.name.clone())
                .unwrap_or(id.clone())
        })
        .collect()
}

fn role_list(ids: &[&str]) -> String {
    let names = role_names(&ids.iter().map(|s| s.to_string()).collect());
    names.join(" or ")
}

/// Automation cannot consent; a customer administrator can, with the admin-consent link.
fn needs_manual(i: &Inputs) -> bool {
    if let Outcome::Failed { manual: true, .. } = i.outcome {
        return true;
    }
    if i.observed.deleting {
        return false;
    }
    matches!(
        i.plan.action,
        Action::Refuse(
            PlanError::NoConsentCapableRole
                | PlanError::PrivilegedRoleRequired {
                    removing: false,
                    ..
                }
        )
    )
}

fn conditions(i: &Inputs) -> Vec<Wanted> {
    let synced = synced(i);
    let failure = i.outcome.failure();
    if failure.is_some_and(|f| f.transient && f.reason != reasons::PROPAGATING) {
        return vec![synced];
    }
    let mut wanted = Vec::new();
    if let Some(p) = prerequisites_met(i) {
        wanted.push(p);
    }
    if let Some(sp) = service_principals(i) {
        wanted.push(sp);
    }
    let consented = consented(i);
    let ready = ready(i, &consented, &synced);
    wanted.extend([consented, synced, ready]);
    wanted
}

fn synced(i: &Inputs) -> Wanted {
    let refused = |reason, message: String| Wanted::new(types::SYNCED, false, reason, message);
    if let Some(f) = i.outcome.failure() {
        if i.observed.deleting && !f.transient && f.reason == reasons::CREDENTIALS_INVALID {
            return refused(
                reasons::CREDENTIALS_NEEDED_FOR_DELETION,
                format!(
                    "{}; deleting this object must first remove the consent in Microsoft, which needs working credentials: restore the credentials Secret (the operator retries), or set spec.deletionPolicy: Orphan to leave the consent in place and release the object",
                    f.message
                ),
            );
        }
        return refused(f.reason, f.message.clone());
    }
    if let Action::Refuse(error) = &i.plan.action {
        let (reason, message) = refusal(i, error);
        return refused(reason, message);
    }
    Wanted::new(
        types::SYNCED,
        true,
        reasons::RECONCILED,
        "the spec is applied",
    )
}

fn prerequisites_met(i: &Inputs) -> Option<Wanted> {
    let partner = i.observed.partner.as_ref().ok()?;
    let cond =
        |ok, reason, message: String| Wanted::new(types::PREREQUISITES_MET, ok, reason, message);
    Some(
        match prerequisites(i.intent, partner, i.timing.consent.settle, i.now) {
            Ok(chosen) => cond(
                true,
                reasons::ACTIVE,
                format!(
                    "{} gives the partner user {} in the customer tenant",
                    describe_chosen(&chosen),
                    role_names(&chosen.relationship.user_role_ids).join(", ")
                ),
            ),
            Err(unmet) => {
                let (reason, message) = unmet_text(i, &unmet);
                cond(false, reason, message)
            }
        },
    )
}

fn describe_chosen(chosen: &Chosen) -> String {
    let r = &chosen.relationship;
    match &chosen.object {
        Some(name) => format!(
            "GdapRelationship {name} (relationship {:?}, {})",
            r.display_name, r.id
        ),
        None => format!("relationship {:?} ({})", r.display_name, r.id),
    }
}

fn reference_name(i: &Inputs) -> String {
    i.intent.relationship_ref.clone().unwrap_or_default()
}

/// The reason and message of unmet prerequisites.
pub fn unmet_text(i: &Inputs, unmet: &Unmet) -> (&'static str, String) {
    let capable = role_list(&crate::api::consent_rules::CONSENT_CAPABLE_ROLE_IDS);
    match unmet {
        Unmet::ReferenceMissing => (
            reasons::RELATIONSHIP_NOT_ACTIVE,
            format!(
                "GdapRelationship {} (spec.relationshipRef) does not exist in this namespace; the consent waits for it",
                reference_name(i)
            ),
        ),
        Unmet::ReferenceNotReady { message } => (
            reasons::RELATIONSHIP_NOT_ACTIVE,
            format!(
                "GdapRelationship {} is not Ready ({message}); the consent waits until it is",
                reference_name(i)
            ),
        ),
        Unmet::ReferenceNotActive { id } => (
            reasons::RELATIONSHIP_NOT_ACTIVE,
            format!(
                "GdapRelationship {} is Ready but Microsoft lists no active relationship {} with customer {}; the consent waits",
                reference_name(i),
                id.as_deref().unwrap_or("(no id yet)"),
                i.intent.customer
            ),
        ),
        Unmet::NoConsentCapableRole { considered } => {
            let found: Vec<String> = considered
                .iter()
                .map(|r| {
                    let roles = role_names(&r.user_role_ids);
                    let gives = if roles.is_empty() {
                        "no role".to_string()
                    } else {
                        roles.join(", ")
                    };
                    format!("{:?} ({}) gives it {gives}", r.display_name, r.id)
                })
                .collect();
            let scope = match &i.intent.relationship_ref {
                Some(name) => format!("GdapRelationship {name}'s relationship does not"),
                None => format!(
                    "no active GDAP relationship with customer {} does",
                    i.intent.customer
                ),
            };
            let found = if found.is_empty() {
                String::new()
            } else {
                format!(" ({})", found.join("; "))
            };
            (
                reasons::NO_CONSENT_CAPABLE_ROLE,
                format!(
                    "{scope} give the partner user {capable} through an access assignment to one of its security groups{found}. Partner Center consents only with one of those roles: add one to a relationship and assign it to the user's group, or have a customer Global Administrator open status.manualConsentUrl"
                ),
            )
        }
        Unmet::Settling { chosen, until } => (
            reasons::SETTLING,
            format!(
                "{} gives the partner user a consent-capable role only since recently; Microsoft needs time to propagate it, so the consent waits until {} (--consent-settle-time {})",
                describe_chosen(chosen),
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                humantime::format_duration(i.timing.consent.settle)
            ),
        ),
    }
}

fn service_principals(i: &Inputs) -> Option<Wanted> {
    let g = current_gaps(i)?;
    let cond = |ok, reason, message: String| {
        Wanted::new(types::SERVICE_PRINCIPALS_PRESENT, ok, reason, message)
    };
    if g.missing_principals.is_empty() {
        return Some(cond(
            true,
            reasons::RECONCILED,
            "every resource of spec.grants has its service principal in the customer tenant".into(),
        ));
    }
    let names: Vec<String> = g
        .missing_principals
        .iter()
        .map(|a| describe_resource(a))
        .collect();
    let next = if i.intent.create_missing_service_principals {
        "the operator creates them (spec.createMissingServicePrincipals)"
    } else {
        "license the workload, drop the grant, or set spec.createMissingServicePrincipals: true to create them"
    };
    Some(cond(
        false,
        reasons::SERVICE_PRINCIPALS_MISSING,
        format!(
            "the customer tenant lacks the service principal of {} — the workload is probably not licensed there; nothing more is consented until it exists: {next}",
            names.join(", ")
        ),
    ))
}

fn consented(i: &Inputs) -> Wanted {
    let cond = |ok, reason, message: String| Wanted::new(types::CONSENTED, ok, reason, message);
    if verified(i) {
        return cond(true, reasons::RECONCILED, verified_text(i));
    }
    if let Some(f) = i.outcome.failure() {
        return cond(false, f.reason, f.message.clone());
    }
    if let Action::Refuse(e) = &i.plan.action {
        let (reason, message) = refusal(i, e);
        return cond(false, reason, message);
    }
    if let Action::Wait(Waiting::Propagating { what, since }) = i.plan.action {
        return cond(
            false,
            reasons::PROPAGATING,
            propagating_text(i, what, since),
        );
    }
    if let Action::Wait(Waiting::Relationship | Waiting::Settling) = i.plan.action
        && let Some(c) = prerequisites_met(i).filter(|c| !c.status)
    {
        return cond(false, c.reason, c.message);
    }
    if revocation_seen(i.intent, i.observed, &i.timing, i.now) {
        return cond(
            false,
            reasons::REVOKED,
            format!(
                "{}; consenting again (spec.reconsent: Automatic)",
                revoked_text(i)
            ),
        );
    }
    cond(false, reasons::NOT_CONSENTED, progress_text(i))
}

fn verified_text(i: &Inputs) -> String {
    let Ok(grants) = &i.intent.grants else {
        return String::new();
    };
    let parts: Vec<String> = grants
        .iter()
        .map(|g| {
            let mut what = Vec::new();
            if !g.scopes.is_empty() {
                what.push(format!("delegated {}", g.scopes.join(", ")));
            }
            if !g.app_roles.is_empty() {
                what.push(format!("application {}", g.app_roles.join(", ")));
            }
            format!(
                "{}: {}",
                describe_resource(&g.resource_app_id),
                what.join("; ")
            )
        })
        .collect();
    format!(
        "in place in the customer tenant (verified every --consent-verify-interval, last at status.lastVerifiedAt): {}",
        parts.join(" | ")
    )
}

/// What is gone of a verified consent.
fn revoked_text(i: &Inputs) -> String {
    let since = i
        .previous
        .last_verified_at
        .as_ref()
        .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let what = match (&i.observed.tenant, current_gaps(i)) {
        (Ok(Tenant::NotConsented { detail }), _) => {
            format!(
                "Entra no longer issues the partner user a token for the app there, although the GDAP relationship still gives the consent-capable role ({detail})"
            )
        }
        (_, Some(g)) => describe_gaps(&g),
        _ => "it could not be read".into(),
    };
    format!("the consent verified at {since} is no longer complete: {what}")
}

fn describe_gaps(g: &Gaps) -> String {
    let mut parts = Vec::new();
    if g.app_missing {
        parts.push("the app's service principal is gone".to_string());
    }
    for app in &g.missing_principals {
        parts.push(format!(
            "no service principal of {}",
            describe_resource(app)
        ));
    }
    for (resource, scopes) in &g.missing_scopes {
        parts.push(format!(
            "delegated {} of {} not granted",
            scopes.join(", "),
            describe_resource(resource)
        ));
    }
    for m in &g.missing_roles {
        parts.push(format!(
            "application permission {} of {} not granted",
            m.role,
            describe_resource(&m.resource)
        ));
    }
    parts.join("; ")
}

fn progress_text(i: &Inputs) -> String {
    match (&i.plan.action, &i.observed.tenant) {
        (Action::Consent { .. }, _) => "consenting through Partner Center".into(),
        (Action::CreateServicePrincipal { app_id }, _) => format!(
            "creating the service principal of {}",
            describe_resource(app_id)
        ),
        (Action::GrantAppRole { role, resource, .. }, _) => format!(
            "granting the application permission {role} of {}",
            describe_resource(resource)
        ),
        (Action::RevokeAppRole { role, resource, .. }, _) => format!(
            "removing the application permission {role} of {}, which spec.grants does not give",
            describe_resource(resource)
        ),
        (Action::Wait(w), _) => describe_wait(*w).into(),
        (_, Ok(Tenant::NotConsented { .. })) => "not consented in the customer tenant yet".into(),
        _ => match current_gaps(i) {
            Some(g) if !g.is_empty() => format!("not complete yet: {}", describe_gaps(&g)),
            _ => "not consented yet".into(),
        },
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A duration in whole seconds, as people read it (`1m 30s`).
fn span(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0) as u64;
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

/// When the wait for something pending since `since` ends.
fn deadline(timing: &Timing, since: DateTime<Utc>) -> DateTime<Utc> {
    chrono::Duration::from_std(timing.general.propagation_timeout)
        .ok()
        .and_then(|t| since.checked_add_signed(t))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The write (or access) awaited, in words.
fn awaited_text(what: Awaited, since: DateTime<Utc>) -> String {
    let since = at(since);
    match what {
        Awaited::Consent => format!("the Partner Center consent made at {since}"),
        Awaited::ServicePrincipal => format!("the service principal created at {since}"),
        Awaited::AppRole => format!("the application permission granted at {since}"),
        Awaited::AppRoleRemoval => format!("the application permission removed at {since}"),
        Awaited::ConsentRemoval => format!("the consent removed at {since}"),
        Awaited::GdapAccess => format!("the partner user's GDAP role given at {since}"),
    }
}

/// What Microsoft shows instead, in words.
fn lagging_text(i: &Inputs, what: Awaited) -> String {
    match (&i.observed.tenant, what) {
        (Ok(Tenant::NoAccess { detail }), _) => {
            format!("Entra does not let the partner user into the customer tenant yet ({detail})")
        }
        (Ok(Tenant::NotConsented { detail } | Tenant::Denied { detail }), _) => {
            format!("Entra (or Graph) does not honour the consent yet ({detail})")
        }
        (Ok(Tenant::Read(_)), Awaited::AppRoleRemoval | Awaited::ConsentRemoval) => {
            "Graph's reads still show what was removed".into()
        }
        (Ok(Tenant::Read(_)), _) => match current_gaps(i) {
            Some(g) if !g.is_empty() => {
                format!("Graph's reads do not show it yet: {}", describe_gaps(&g))
            }
            _ => "Graph's reads do not show it yet".into(),
        },
        (Err(_), _) => "the customer tenant could not be read".into(),
    }
}

/// The message of a `Propagating` wait: what, since when, how long so far, until when.
pub fn propagating_text(i: &Inputs, what: Awaited, since: DateTime<Utc>) -> String {
    format!(
        "{} is not visible yet: {}. Microsoft is eventually consistent; the operator waits without writing again (waited {} so far, at most until {}, --propagation-timeout {})",
        awaited_text(what, since),
        lagging_text(i, what),
        span(i.now - since),
        at(deadline(&i.timing, since)),
        humantime::format_duration(i.timing.general.propagation_timeout)
    )
}

/// The failure of a write Microsoft refused for a missing GDAP role or access while the partner
/// user's consent-capable role is recent (since `since`): a wait, retried with the backoff.
pub fn propagating_refusal(
    refusal: &str,
    since: DateTime<Utc>,
    timing: &Timing,
    now: DateTime<Utc>,
) -> Failure {
    Failure::new(
        reasons::PROPAGATING,
        format!(
            "{refusal}; the partner user's consent-capable GDAP role dates from {}, and Microsoft may still be propagating it: retrying with a backoff (waited {} so far, at most until {}, --propagation-timeout {})",
            at(since),
            span(now - since),
            at(deadline(timing, since)),
            humantime::format_duration(timing.general.propagation_timeout)
        ),
        true,
    )
}

fn timed_out_text(i: &Inputs, what: Awaited, since: DateTime<Utc>) -> String {
    let timeout = humantime::format_duration(i.timing.general.propagation_timeout);
    if what == Awaited::GdapAccess {
        return format!(
            "{} is still not honoured more than --propagation-timeout {timeout} later: {}. Check that the partner user is a member of the security group the relationship's access assignment names, and that the assignment is active",
            awaited_text(what, since),
            lagging_text(i, what)
        );
    }
    format!(
        "{} is still not visible more than --propagation-timeout {timeout} later: {}. The operator does not write again by itself: check the customer tenant (Entra admin center, Enterprise applications), then remove the annotation {PENDING_WRITES_ANNOTATION} from this object to let it try again",
        awaited_text(what, since),
        lagging_text(i, what)
    )
}

/// What a wait is for, in words.
pub fn describe_wait(w: Waiting) -> &'static str {
    match w {
        Waiting::Propagating { .. } => {
            "Microsoft does not show a write of the operator yet (or a new GDAP role is still propagating); waiting without writing again"
        }
        Waiting::Unreadable => "Microsoft's side cannot be read; retrying after a backoff",
        Waiting::Relationship => "waiting for the GDAP relationship (see PrerequisitesMet)",
        Waiting::Settling => {
            "waiting for Microsoft to propagate the relationship's roles (see PrerequisitesMet)"
        }
        Waiting::AccessPropagating => {
            "Entra does not let the partner user into the customer tenant yet (AADSTS50020); Microsoft may still be propagating the GDAP access"
        }
        Waiting::ServicePrincipals => {
            "waiting for the missing service principals (see ServicePrincipalsPresent)"
        }
        Waiting::NotConsented => {
            "managementPolicy: Observe and the consent is not complete in the customer tenant; the operator only verifies"
        }
    }
}

/// The reason and message of a refusal.
pub fn refusal(i: &Inputs, error: &PlanError) -> (&'static str, String) {
    match error {
        PlanError::InvalidSpec(problem) => (reasons::INVALID_SPEC, problem.to_string()),
        PlanError::NoConsentCapableRole => match &i.observed.partner {
            Ok(partner) => match prerequisites(i.intent, partner, i.timing.consent.settle, i.now) {
                Err(unmet) => unmet_text(i, &unmet),
                Ok(_) => (reasons::NO_CONSENT_CAPABLE_ROLE, String::new()),
            },
            Err(_) => (reasons::NO_CONSENT_CAPABLE_ROLE, String::new()),
        },
        PlanError::Revoked => {
            let next = if i.intent.manages() {
                match i.intent.reconsent {
                    ReconsentPolicy::Report => {
                        "spec.reconsent is Report, so the operator changes nothing: set spec.reconsent: Automatic to consent again, or ask the customer why they revoked it"
                    }
                    ReconsentPolicy::Automatic => "",
                }
            } else {
                "managementPolicy: Observe, so the operator changes nothing"
            };
            (reasons::REVOKED, format!("{}. {next}", revoked_text(i)))
        }
        PlanError::PrivilegedRoleRequired { missing, removing } => (
            reasons::PRIVILEGED_ROLE_REQUIRED,
            privileged_text(i, missing, *removing),
        ),
        PlanError::AccessDenied { detail } => (
            reasons::ACCESS_DENIED,
            format!(
                "Graph refuses the partner user's reads of the consent in the customer tenant ({detail}), although {} and no write of the operator is propagating. The consent cannot be verified; the operator changes nothing. Check the relationship's access assignments and the app's delegated grants in the customer tenant",
                relationship_text(i)
            ),
        ),
        PlanError::ExcessAccess(excess) => (
            reasons::EXCESS_ACCESS,
            format!(
                "the customer tenant gives the application more than spec.grants: {}. managementPolicy: Observe, so the operator changes nothing (Manage would remove it)",
                describe_excess(excess)
            ),
        ),
        PlanError::PermissionsRemain(remains) => {
            (reasons::PERMISSIONS_REMAIN, remains_text(i, remains))
        }
        PlanError::PropagationTimedOut { what, since } => (
            reasons::PROPAGATION_TIMED_OUT,
            timed_out_text(i, *what, *since),
        ),
    }
}

/// The relationship behind the consent, for messages.
fn relationship_text(i: &Inputs) -> String {
    let chosen = i
        .observed
        .partner
        .as_ref()
        .ok()
        .and_then(|p| prerequisites(i.intent, p, i.timing.consent.settle, i.now).ok());
    match chosen {
        Some(c) => format!(
            "{} gives the partner user a consent-capable role",
            describe_chosen(&c)
        ),
        None => "the GDAP relationship gives the partner user a consent-capable role".into(),
    }
}

/// The delegated scopes a consent that replaced the previous one removed (access beyond the
/// spec), in words; `None` when it removed none.
pub fn scopes_removed(i: &Inputs) -> Option<String> {
    let Action::Consent { replace: true, .. } = i.plan.action else {
        return None;
    };
    let (wanted, view) = (i.intent.wanted.as_ref().ok()?, i.observed.view()?);
    let excess = excess(wanted, view);
    let scopes_only = Excess {
        scopes: excess.scopes,
        roles: Vec::new(),
    };
    (!scopes_only.is_empty()).then(|| describe_excess(&scopes_only))
}

/// Access beyond the spec, in words.
pub fn describe_excess(excess: &Excess) -> String {
    let mut parts = Vec::new();
    for (resource, scopes) in &excess.scopes {
        parts.push(format!(
            "delegated {} of {}",
            scopes.join(", "),
            describe_resource(resource)
        ));
    }
    for a in &excess.roles {
        parts.push(format!(
            "application permission {} of {}",
            a.role_name(),
            describe_resource(a.resource())
        ));
    }
    parts.join("; ")
}

/// What deletion leaves in the tenant, and what to do.
fn remains_text(i: &Inputs, remains: &Remains) -> String {
    let what = match remains {
        Remains::Holds { grants, roles } => {
            let excess = Excess {
                scopes: grants
                    .iter()
                    .map(|(r, s)| (r.clone(), s.iter().cloned().collect()))
                    .collect(),
                roles: roles.clone(),
            };
            format!("the application still holds {}", describe_excess(&excess))
        }
        Remains::NoAppPermissions => "the application holds no Microsoft Graph application permission there any more, but whether delegated grants remain cannot be read with its app-only token".into(),
        Remains::Unknown { detail } => format!(
            "the application's service principal is still in the customer tenant, and what it holds could not be read with its app-only token ({detail})"
        ),
        Remains::Nothing => "nothing".into(),
    };
    let closed = match &i.observed.tenant {
        Ok(t) => t.refusal().unwrap_or_default().to_string(),
        Err(_) => String::new(),
    };
    format!(
        "deleting: {what}, and the partner user can no longer remove it ({closed}). A customer administrator must delete the enterprise application {} in the customer tenant (Entra admin center, Enterprise applications), or restore the GDAP relationship; the operator looks again every --resync-interval. Set spec.deletionPolicy: Orphan to leave the permissions in place and release the object",
        i.intent.application_id
    )
}

fn privileged_text(i: &Inputs, missing: &[MissingRole], removing: bool) -> String {
    let held: BTreeSet<String> = i
        .observed
        .partner
        .as_ref()
        .map(|p| p.held_roles())
        .unwrap_or_default();
    let mut by_resource: Vec<(String, Vec<String>)> = Vec::new();
    for m in missing {
        match by_resource.iter_mut().find(|(r, _)| *r == m.resource) {
            Some((_, roles)) => roles.push(m.role.clone()),
            None => by_resource.push((m.resource.clone(), vec![m.role.clone()])),
        }
    }
    let parts: Vec<String> = by_resource
        .iter()
        .map(|(resource, roles)| {
            format!(
                "{} of {} needs {}",
                roles.join(", "),
                describe_resource(resource),
                role_list(roles_granting_app_roles(resource))
            )
        })
        .collect();
    let holds = if held.is_empty() {
        "no role".to_string()
    } else {
        role_names(&held).join(", ")
    };
    let verb = if removing { "removing" } else { "granting" };
    format!(
        "{verb} the application permissions {}, and the partner user holds only {holds} in the customer tenant (Entra reserves Microsoft Graph app roles for Global and Privileged Role Administrators). Add Privileged Role Administrator (or Global Administrator) to a GDAP relationship with an access assignment for the user's group, or have a customer Global Administrator open status.manualConsentUrl{}",
        parts.join("; "),
        if i.observed.deleting {
            ", or set spec.deletionPolicy: Orphan"
        } else {
            ""
        }
    )
}

fn ready(i: &Inputs, consented: &Wanted, synced: &Wanted) -> Wanted {
    if settled(i) {
        return Wanted::new(
            types::READY,
            true,
            reasons::RECONCILED,
            "the application is consented with every grant",
        );
    }
    let (reason, message) = if !synced.status {
        (synced.reason, synced.message.clone())
    } else if let Action::Wait(w) = i.plan.action {
        let from = |type_: &str| {
            prerequisites_met(i)
                .into_iter()
                .chain(service_principals(i))
                .find(|c| c.type_ == type_ && !c.status)
        };
        match w {
            Waiting::Relationship | Waiting::Settling => match from(types::PREREQUISITES_MET) {
                Some(c) => (c.reason, c.message),
                None => (reasons::RELATIONSHIP_NOT_ACTIVE, describe_wait(w).into()),
            },
            Waiting::ServicePrincipals => match from(types::SERVICE_PRINCIPALS_PRESENT) {
                Some(c) => (c.reason, c.message),
                None => (reasons::SERVICE_PRINCIPALS_MISSING, describe_wait(w).into()),
            },
            Waiting::AccessPropagating => (reasons::SETTLING, describe_wait(w).into()),
            Waiting::Propagating { what, since } => {
                (reasons::PROPAGATING, propagating_text(i, what, since))
            }
            _ => (consented.reason, consented.message.clone()),
        }
    } else if consented.status {
        (reasons::RECONCILING, progress_text(i))
    } else {
        (consented.reason, consented.message.clone())
    };
    Wanted::new(types::READY, false, reason, message)
}

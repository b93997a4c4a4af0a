//! A fleet's status after a pass (pure): the counts, the oldest pending approval, the recent
//! prunes (for the hourly rate) and the Ready condition.

use super::act::Done;
use super::decide::FleetPlan;
use super::observe::Observed;
use super::plan::{Owner, Phase};
use crate::api::conditions::{reasons, types};
use crate::api::{GdapFleetStatus, PendingApproval};
use crate::controllers::conditions::{Wanted, from_time, merge_at, to_time};
use crate::controllers::failure::Failure;
use chrono::{DateTime, Duration as Span, Utc};

/// How many managed-elsewhere customers the status names.
const NAMED: usize = 20;

/// What the status is built from.
pub struct Inputs<'a> {
    /// What the pass found.
    pub observed: &'a Observed,
    /// What it decided.
    pub plan: &'a FleetPlan,
    /// What acting did.
    pub done: &'a Done,
    /// The fleet is paused.
    pub paused: bool,
    /// The spec's generation.
    pub generation: Option<i64>,
    /// The time of the pass.
    pub now: DateTime<Utc>,
}

/// The failure of a pass, if any: the namespace unreadable, writes refused, or Partner Center's
/// list unreadable.
pub fn failure(inputs: &Inputs<'_>) -> Option<Failure> {
    if let Some(f) = &inputs.observed.unlisted {
        return Some(f.clone());
    }
    if inputs.done.failed > 0 {
        let forbidden = inputs.done.forbidden;
        let (reason, hint) = match forbidden {
            true => (
                reasons::KUBERNETES_FORBIDDEN,
                " (the operator's RBAC must allow create, patch and delete of gdaprelationships, appconsents and tenantsyncs: the Helm chart grants them)",
            ),
            false => (reasons::KUBERNETES_ERROR, ""),
        };
        return Some(Failure::new(
            reason,
            format!(
                "{} writes of customers' objects failed: {}{hint}",
                inputs.done.failed,
                inputs.done.errors.join("; ")
            ),
            !forbidden,
        ));
    }
    let pc = inputs.observed.partner_center.as_ref().err()?;
    let transient = inputs
        .observed
        .credentials_failure
        .as_ref()
        .is_none_or(|f| f.transient);
    Some(Failure::new(
        reasons::CUSTOMER_LIST_UNREADABLE,
        format!("{pc} (nothing is pruned or let go until the list can be read)"),
        transient,
    ))
}

/// The status after the pass.
pub fn build(inputs: &Inputs<'_>, previous: &GdapFleetStatus) -> GdapFleetStatus {
    if inputs.plan.blind {
        return blind(inputs, previous);
    }
    let c = inputs.plan.members.counts;
    let failure = failure(inputs);
    let mut status = GdapFleetStatus {
        customers: c.active + c.awaiting_approval + c.failed + c.waiting + c.managed_elsewhere,
        active: c.active,
        awaiting_approval: c.awaiting_approval,
        failed: c.failed + inputs.plan.invalid.len() as u32,
        waiting: c.waiting,
        excluded: c.excluded,
        filtered_out: c.filtered_out,
        managed_elsewhere: c.managed_elsewhere,
        access_refused: access_refused(inputs),
        pruning: c.pruning.saturating_sub(inputs.done.pruned.len() as u32),
        managed_elsewhere_customers: inputs
            .plan
            .members
            .elsewhere
            .iter()
            .take(NAMED)
            .cloned()
            .collect(),
        oldest_pending_approval: oldest_pending(inputs),
        pruned_at: pruned_at(inputs, previous),
        next_prune_at: inputs.plan.members.next_prune_at.map(to_time),
        customer_list_read_at: inputs
            .observed
            .list_read_at
            .map(to_time)
            .or(previous.customer_list_read_at.clone()),
        failed_attempts: match failure {
            Some(_) => previous.failed_attempts.saturating_add(1),
            None => 0,
        },
        observed_generation: inputs.generation,
        conditions: Vec::new(),
    };
    let ready = ready(inputs, &status, failure.as_ref());
    status.conditions = merge_at(
        &previous.conditions,
        &[ready],
        inputs.generation,
        inputs.now,
    );
    status
}

/// The namespace could not be listed: the counts stay as they were; Ready says why.
fn blind(inputs: &Inputs<'_>, previous: &GdapFleetStatus) -> GdapFleetStatus {
    let failure = failure(inputs).expect("a blind pass has a failure");
    let ready = Wanted::new(types::READY, false, failure.reason, failure.message);
    GdapFleetStatus {
        failed_attempts: previous.failed_attempts.saturating_add(1),
        conditions: merge_at(
            &previous.conditions,
            &[ready],
            inputs.generation,
            inputs.now,
        ),
        ..previous.clone()
    }
}

/// The Ready condition.
fn ready(inputs: &Inputs<'_>, status: &GdapFleetStatus, failure: Option<&Failure>) -> Wanted {
    let not = |reason, message: String| Wanted::new(types::READY, false, reason, message);
    if let Some(f) = failure {
        return not(f.reason, f.message.clone());
    }
    if inputs.paused {
        return not(
            reasons::PAUSED,
            "spec.rollout.paused: the fleet creates, changes, prunes and lets go of nothing".into(),
        );
    }
    if let Some((tenant, bad)) = inputs.plan.invalid.first() {
        return not(
            reasons::INVALID_SPEC,
            format!(
                "spec.customers.list[tenantId={tenant}].overrides.{}: {} ({} customers with invalid overrides are left as they are)",
                bad.part,
                bad.message,
                inputs.plan.invalid.len()
            ),
        );
    }
    if status.failed > 0 {
        return not(
            reasons::CUSTOMERS_FAILED,
            format!(
                "{} customers' relationships failed, expired or were terminated: see `kubectl get gdap -l gdap.io/fleet` and their Ready conditions",
                status.failed
            ),
        );
    }
    if status.awaiting_approval + status.waiting + status.pruning > 0 {
        return not(
            reasons::ROLLING_OUT,
            format!(
                "{} of {} customers active; {} awaiting approval, {} waiting for rollout room, {} to prune",
                status.active,
                status.customers,
                status.awaiting_approval,
                status.waiting,
                status.pruning
            ),
        );
    }
    Wanted::new(
        types::READY,
        true,
        reasons::ALL_ACTIVE,
        format!(
            "every covered customer's relationship is active ({}; {} managed elsewhere)",
            status.active, status.managed_elsewhere
        ),
    )
}

/// Covered customers whose active relationship's delegated access was refused.
fn access_refused(inputs: &Inputs<'_>) -> u32 {
    inputs
        .observed
        .seen
        .iter()
        .filter(|s| s.child.owner == Owner::ThisFleet && s.access_refused)
        .count() as u32
}

/// The fleet's relationship that has awaited approval longest.
fn oldest_pending(inputs: &Inputs<'_>) -> Option<PendingApproval> {
    inputs
        .observed
        .seen
        .iter()
        .filter(|s| s.child.owner == Owner::ThisFleet && s.child.phase == Phase::AwaitingApproval)
        .min_by_key(|s| (s.created, s.child.name.clone()))
        .map(|s| PendingApproval {
            tenant_id: s.child.tenant_id.clone(),
            name: s.child.name.clone(),
            since: s.created.map(to_time),
        })
}

/// The prunes of the last hour, this pass's included.
fn pruned_at(
    inputs: &Inputs<'_>,
    previous: &GdapFleetStatus,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    let hour_ago = inputs.now - Span::hours(1);
    let mut times: Vec<DateTime<Utc>> = previous
        .pruned_at
        .iter()
        .map(from_time)
        .chain(inputs.done.pruned.iter().map(|(_, at)| *at))
        .filter(|t| *t > hour_ago)
        .collect();
    times.sort();
    times.into_iter().map(to_time).collect()
}

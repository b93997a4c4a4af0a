//! `gdap-operator plan` for a GdapFleet: Partner Center's customer list and (with
//! `--from-cluster`) the namespace's GdapRelationships are read through the fleet controller's own
//! `observe`, and the steps are its own `decide` — what the next pass of the fleet creates,
//! changes, prunes and lets go, within the rollout limit and the prune rate — so the plan cannot
//! disagree with the operator. Each customer's relationship then goes its own way (approval,
//! activation), as a GdapRelationship's plan shows.

use super::describe::Step;
use super::report::{ObjectPlan, Verdict};
use crate::api::GdapFleet;
use crate::controllers::conditions::from_time;
use crate::controllers::credentials::Credentials;
use crate::controllers::gdap_fleet::children::Objects;
use crate::controllers::gdap_fleet::decide::{FleetPlan, decide};
use crate::controllers::gdap_fleet::desired::resolve;
use crate::controllers::gdap_fleet::observe::{CustomerLists, observe};
use crate::controllers::gdap_fleet::plan::Owner;
use chrono::Utc;
use kube::ResourceExt;
use std::collections::HashSet;
use std::time::Duration;

/// Reads a fleet's live uid, status and namespace from the cluster; `false` when it is not there.
async fn merge_live(
    client: &kube::Client,
    fleet: &mut GdapFleet,
    namespace: &str,
) -> anyhow::Result<bool> {
    let api: kube::Api<GdapFleet> = kube::Api::namespaced(client.clone(), namespace);
    let Some(live) = api.get_opt(&fleet.name_any()).await? else {
        return Ok(false);
    };
    fleet.metadata.uid = live.metadata.uid;
    fleet.metadata.deletion_timestamp = live.metadata.deletion_timestamp;
    fleet.status = live.status;
    Ok(true)
}

/// Plans one fleet: observe (reads only), then the fleet's own decision for its next pass.
pub async fn plan_fleet(
    mut fleet: GdapFleet,
    mut entry: ObjectPlan,
    credentials: &Credentials,
    cluster: Option<(&kube::Client, &str)>,
) -> ObjectPlan {
    let namespace = fleet
        .namespace()
        .or_else(|| cluster.map(|(_, n)| n.to_string()))
        .unwrap_or_default();
    fleet.metadata.namespace = Some(namespace.clone());
    let api = match cluster {
        Some((client, _)) => match merge_live(client, &mut fleet, &namespace).await {
            Ok(found) => {
                if !found {
                    entry
                        .notes
                        .push("not in the cluster yet: planned as new".into());
                }
                Some(kube::Api::namespaced(client.clone(), &namespace))
            }
            Err(e) => {
                return failed(
                    entry,
                    format!("reading the fleet from the cluster failed: {e}"),
                );
            }
        },
        None => {
            entry.notes.push(
                "without --from-cluster no GdapRelationship is assumed to exist in the namespace"
                    .into(),
            );
            None
        }
    };
    let intent = resolve(&fleet);
    let pruned = fleet
        .status
        .as_ref()
        .map(|s| s.pruned_at.iter().map(from_time).collect())
        .unwrap_or_default();
    let now = Utc::now();
    let observed = observe(
        api.as_ref(),
        pruned,
        &CustomerLists::default(),
        &intent,
        Ok(credentials),
        Duration::ZERO,
        now,
    )
    .await;
    if let Some(f) = observed.unlisted.as_ref() {
        return failed(entry, f.message.clone());
    }
    if let Err(e) = &observed.partner_center {
        return failed(entry, e.clone());
    }
    let plan = decide(&intent, &observed, now);
    let existing: HashSet<&str> = observed
        .seen
        .iter()
        .filter(|s| s.child.owner == Owner::ThisFleet)
        .map(|s| s.child.name.as_str())
        .collect();
    describe(entry, &plan, &existing, intent.plan.rollout.paused)
}

fn failed(mut entry: ObjectPlan, error: String) -> ObjectPlan {
    entry.result = Verdict::Error;
    entry.error = Some(error);
    entry
}

/// The plan in steps and notes.
fn describe(
    mut entry: ObjectPlan,
    plan: &FleetPlan,
    existing: &HashSet<&str>,
    paused: bool,
) -> ObjectPlan {
    for objects in &plan.write {
        entry.steps.extend(write_steps(objects, existing));
    }
    for name in &plan.members.prune {
        entry.steps.push(step(
            "prune",
            "-",
            format!("delete GdapRelationship {name} and the customer's AppConsent and TenantSync (spec.prune: the relationship is terminated)"),
        ));
    }
    for name in &plan.members.release {
        entry.steps.push(step(
            "letGo",
            "~",
            format!("let go of {name}: the fleet's label and owner reference are removed; the customer's objects keep running"),
        ));
    }
    let m = &plan.members;
    let notes = [
        (
            m.waiting.len(),
            "customers wait for rollout room (spec.rollout.maxAwaitingApproval)",
        ),
        (
            m.prune_later.len(),
            "customers are pruned later (spec.prunePerHour)",
        ),
        (
            m.elsewhere.len(),
            "customers have a GdapRelationship the fleet does not own: left alone",
        ),
        (
            m.undecided.len(),
            "objects are kept: Partner Center's list could not be read",
        ),
    ];
    for (n, what) in notes.iter().filter(|(n, _)| *n > 0) {
        entry.notes.push(format!("{n} {what}"));
    }
    if paused {
        entry
            .notes
            .push("spec.rollout.paused: the fleet writes nothing".into());
    }
    let c = m.counts;
    entry.then = Some(format!(
        "{} customers covered: {} active, {} awaiting approval, {} waiting, {} failed; {} excluded, {} filtered out",
        c.active + c.awaiting_approval + c.waiting + c.failed + c.managed_elsewhere,
        c.active,
        c.awaiting_approval,
        c.waiting,
        c.failed,
        c.excluded,
        c.filtered_out
    ));
    if let Some((tenant, bad)) = plan.invalid.first() {
        return failed(
            entry,
            format!(
                "spec.customers.list[tenantId={tenant}].overrides.{}: {}",
                bad.part, bad.message
            ),
        );
    }
    entry.result = match entry.steps.is_empty() {
        true => Verdict::NoChanges,
        false => Verdict::Changes,
    };
    entry
}

/// The steps of writing one customer's objects: created, or brought up to date.
fn write_steps(objects: &Objects, existing: &HashSet<&str>) -> Vec<Step> {
    let r = &objects.relationship;
    let name = r.name_any();
    let customer = &r.spec.customer.tenant_id.0;
    if existing.contains(name.as_str()) {
        return vec![step(
            "updateFleetObjects",
            "~",
            format!("bring the objects of customer {customer} ({name}) up to the fleet's template"),
        )];
    }
    let shown = r
        .spec
        .display_name
        .as_deref()
        .unwrap_or("named after the object");
    let mut steps = vec![step(
        "createFleetObject",
        "+",
        format!("create GdapRelationship {name} for customer {customer} (display name {shown})"),
    )];
    for (kind, present) in [
        ("AppConsent", objects.consent.is_some()),
        ("TenantSync", objects.sync.is_some()),
    ] {
        if present {
            steps.push(step(
                "createFleetObject",
                "+",
                format!("create {kind} {name} for customer {customer}"),
            ));
        }
    }
    steps
}

fn step(action: &'static str, symbol: &'static str, description: String) -> Step {
    Step {
        action,
        symbol,
        description,
        target: "kubernetes",
        relationship_id: None,
        security_group_id: None,
        roles: None,
    }
}

//! What one pass of a fleet does (pure): a function of the intent, what was observed and now.
//!
//! - Each covered customer gets the fleet's objects: created when new, brought up to date when
//!   they exist (server-side apply). A customer whose GdapRelationship is not the fleet's is
//!   reported as managed elsewhere and left alone.
//! - **Rollout**: new relationships are created only while fewer than `max_awaiting_approval` of
//!   the fleet's relationships await the customer's approval; the others wait, in tenant-id
//!   order. A paused fleet writes nothing at all.
//! - **Pruning**: a customer the fleet no longer covers (or every customer, while the fleet is
//!   deleted) has its objects deleted only with pruning enabled, at most `per_hour` in any hour
//!   (the rest later); without pruning they are let go and keep running. When Partner Center's
//!   list cannot be read, nothing is pruned or let go: an unreadable list is not an empty one.

use super::members::{Customer, Membership, Selection, select};
use chrono::{DateTime, Duration as Span, Utc};
use std::collections::BTreeSet;

/// How a customer's GdapRelationship stands, as the fleet reads its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Created and not active yet: awaiting the customer's approval (or being created).
    AwaitingApproval,
    /// Active.
    Active,
    /// Failed (its Ready condition says why).
    Failed,
    /// Ended (terminated or expired).
    Ended,
}

/// Who manages a GdapRelationship found for one of the fleet's customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// This fleet (its label and owner reference).
    ThisFleet,
    /// Someone else: a person's object or another fleet's.
    Elsewhere,
}

/// A GdapRelationship in the fleet's namespace for a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// The object's name.
    pub name: String,
    /// Its customer's tenant id (lower case).
    pub tenant_id: String,
    /// Who manages it.
    pub owner: Owner,
    /// How it stands.
    pub phase: Phase,
}

/// How new relationships are rolled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout {
    /// At most this many of the fleet's relationships await approval at a time.
    pub max_awaiting_approval: u32,
    /// Write nothing (status is still reported).
    pub paused: bool,
}

/// What becomes of the objects of a customer the fleet no longer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruning {
    /// Delete them (else they are let go and keep running).
    pub enabled: bool,
    /// At most this many customers' objects deleted in any hour.
    pub per_hour: u32,
}

/// What the fleet asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// Which customers it covers.
    pub selection: Selection,
    /// How new relationships are rolled out.
    pub rollout: Rollout,
    /// What becomes of customers no longer covered.
    pub pruning: Pruning,
    /// The fleet is being deleted: no customer is covered any more.
    pub deleting: bool,
}

/// What a pass of the fleet observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Partner Center's customers (when the selection uses them), or why they could not be read.
    pub partner_center: Result<Vec<Customer>, String>,
    /// The GdapRelationships found for customers (the fleet's and others').
    pub children: Vec<Child>,
    /// When the fleet's recent prunes happened (from its status).
    pub pruned: Vec<DateTime<Utc>>,
}

/// How many customers stand where, for the status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Covered customers whose relationship is active.
    pub active: u32,
    /// Covered customers whose relationship awaits approval.
    pub awaiting_approval: u32,
    /// Covered customers whose relationship failed or ended.
    pub failed: u32,
    /// Covered customers waiting for rollout room (or for the fleet to be resumed).
    pub waiting: u32,
    /// Customers named in `exclude`.
    pub excluded: u32,
    /// Partner Center customers the filter leaves out.
    pub filtered_out: u32,
    /// Covered customers whose relationship is managed elsewhere.
    pub managed_elsewhere: u32,
    /// Customers no longer covered whose objects are being pruned.
    pub pruning: u32,
}

/// What one pass does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Customers whose objects are created or brought up to date now.
    pub apply: Vec<Customer>,
    /// Tenant ids of new customers held back by the rollout limit or the pause.
    pub waiting: Vec<String>,
    /// Children (by name) whose customer's objects are deleted now.
    pub prune: Vec<String>,
    /// Children deleted later, when the hourly rate allows.
    pub prune_later: Vec<String>,
    /// Children let go: no longer the fleet's, left running.
    pub release: Vec<String>,
    /// Tenant ids of covered customers whose relationship is managed elsewhere.
    pub elsewhere: Vec<String>,
    /// Children kept as they are because Partner Center's list could not be read.
    pub undecided: Vec<String>,
    /// When the next prune is allowed, if some wait for it.
    pub next_prune_at: Option<DateTime<Utc>>,
    /// The counts for the status.
    pub counts: Counts,
}

/// The plan of one pass.
pub fn plan(intent: &Intent, observed: &Observed, now: DateTime<Utc>) -> Plan {
    let listed = observed.partner_center.as_deref().unwrap_or_default();
    let known = select(&intent.selection, listed);
    let members: Vec<&Customer> = match intent.deleting {
        true => Vec::new(),
        false => known
            .values()
            .filter(|(_, m)| *m == Membership::Member)
            .map(|(c, _)| c)
            .collect(),
    };
    let mut plan = Plan::default();
    count_standing(&mut plan.counts, known.values().map(|(_, m)| *m));
    cover(&mut plan, intent, &members, &observed.children);
    let covered: BTreeSet<&str> = members.iter().map(|c| c.tenant_id.as_str()).collect();
    let unreadable = intent.selection.partner_center && observed.partner_center.is_err();
    let leaving: Vec<&Child> = observed
        .children
        .iter()
        .filter(|c| c.owner == Owner::ThisFleet && !covered.contains(c.tenant_id.as_str()))
        .collect();
    for child in leaving {
        let unknown = !known.contains_key(&child.tenant_id);
        if unreadable && unknown && !intent.deleting {
            plan.undecided.push(child.name.clone());
        } else if intent.rollout.paused {
            // A paused fleet lets nothing go either.
        } else if intent.pruning.enabled {
            plan.prune.push(child.name.clone());
        } else {
            plan.release.push(child.name.clone());
        }
    }
    pace_prunes(&mut plan, intent.pruning.per_hour, &observed.pruned, now);
    plan.counts.pruning = (plan.prune.len() + plan.prune_later.len()) as u32;
    plan
}

/// Counts the customers excluded or filtered out.
fn count_standing(counts: &mut Counts, standings: impl Iterator<Item = Membership>) {
    for standing in standings {
        match standing {
            Membership::Excluded => counts.excluded += 1,
            Membership::FilteredOut => counts.filtered_out += 1,
            Membership::Member => {}
        }
    }
}

/// Decides for each covered customer: bring its objects up to date, create them (within the
/// rollout limit), wait, or leave a relationship managed elsewhere alone.
fn cover(plan: &mut Plan, intent: &Intent, members: &[&Customer], children: &[Child]) {
    let ours = |c: &Customer| {
        children
            .iter()
            .find(|k| k.tenant_id == c.tenant_id && k.owner == Owner::ThisFleet)
    };
    let awaiting = members
        .iter()
        .filter_map(|c| ours(c))
        .filter(|k| k.phase == Phase::AwaitingApproval)
        .count() as u32;
    let mut room = intent
        .rollout
        .max_awaiting_approval
        .saturating_sub(awaiting);
    for customer in members {
        let counts = &mut plan.counts;
        if let Some(child) = ours(customer) {
            match child.phase {
                Phase::Active => counts.active += 1,
                Phase::AwaitingApproval => counts.awaiting_approval += 1,
                Phase::Failed | Phase::Ended => counts.failed += 1,
            }
            if !intent.rollout.paused {
                plan.apply.push((*customer).clone());
            }
        } else if children.iter().any(|k| k.tenant_id == customer.tenant_id) {
            counts.managed_elsewhere += 1;
            plan.elsewhere.push(customer.tenant_id.clone());
        } else if room > 0 && !intent.rollout.paused {
            room -= 1;
            counts.awaiting_approval += 1;
            plan.apply.push((*customer).clone());
        } else {
            counts.waiting += 1;
            plan.waiting.push(customer.tenant_id.clone());
        }
    }
}

/// Keeps at most `per_hour` prunes in any hour (counting those already made); the rest wait for
/// the oldest prune of the hour to leave it.
fn pace_prunes(plan: &mut Plan, per_hour: u32, pruned: &[DateTime<Utc>], now: DateTime<Utc>) {
    let hour_ago = now - Span::hours(1);
    let mut recent: Vec<DateTime<Utc>> = pruned.iter().copied().filter(|t| *t > hour_ago).collect();
    recent.sort();
    let budget = (per_hour as usize).saturating_sub(recent.len());
    plan.prune.sort();
    if plan.prune.len() > budget {
        plan.prune_later = plan.prune.split_off(budget);
        let freed = recent.first().copied().unwrap_or(now);
        plan.next_prune_at = Some(freed + Span::hours(1));
    }
}

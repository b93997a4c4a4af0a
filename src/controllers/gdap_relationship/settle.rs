//! Ending one relationship (the current one on deletion, a successor no longer wanted, the
//! predecessor after a hand-over): delete a draft, record one awaiting approval, terminate an
//! active one, and wait for Microsoft to finish (pure).

use super::observed::{Linked, RemoteRelationship, RemoteRequest};
use super::step::{Action, Timing, Waiting};
use crate::controllers::withdrawals::Withdrawal;
use crate::microsoft::models::gdap::{RelationshipStatus as State, RequestStatus};
use chrono::{DateTime, Duration as Span, Utc};
use std::time::Duration;

/// What `settle` needs about one relationship.
#[derive(Debug, Clone, Copy)]
pub struct Settling<'a> {
    /// The relationship.
    pub relationship: &'a RemoteRelationship,
    /// Its newest terminate request.
    pub termination: Option<&'a RemoteRequest>,
    /// A withdrawal record exists for it.
    pub withdrawal_recorded: bool,
}

pub(super) fn successor_view(linked: &Linked) -> Settling<'_> {
    Settling {
        relationship: &linked.relationship,
        termination: linked.termination.as_ref(),
        withdrawal_recorded: linked.withdrawal_recorded,
    }
}

/// Where ending one relationship stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    /// The next step.
    Act(Action),
    /// Microsoft or the customer is working.
    Wait(Waiting, Duration),
    /// Terminated or expired (or never created).
    Ended,
    /// Awaiting approval, recorded to be terminated if approved.
    Withdrawn,
}

/// The next step to end `r`: delete a draft, record an unapprovable one, terminate an active one.
pub fn settle(r: Settling, customer: &str, timing: &Timing, now: DateTime<Utc>) -> Settle {
    let rel = r.relationship;
    let requested = r
        .termination
        .is_some_and(|t| t.status != Some(RequestStatus::Failed));
    match rel.status {
        State::Created => Settle::Act(Action::DeleteDraft {
            id: rel.id.clone(),
            etag: rel.etag.clone().unwrap_or_default(),
        }),
        State::ApprovalPending if r.withdrawal_recorded => Settle::Withdrawn,
        State::ApprovalPending => Settle::Act(Action::RecordWithdrawal {
            record: Withdrawal {
                relationship_id: rel.id.clone(),
                customer: customer.to_string(),
                display_name: rel.display_name.clone(),
            },
        }),
        State::Approved | State::Activating => Settle::Wait(Waiting::Activation, timing.poll),
        State::Active if !requested => Settle::Act(Action::Terminate { id: rel.id.clone() }),
        State::Active | State::TerminationRequested | State::Terminating => {
            let started = r
                .termination
                .and_then(|t| t.created_at)
                .or(rel.modified_at)
                .unwrap_or(now);
            let deadline =
                started + Span::from_std(timing.termination_timeout).unwrap_or(Span::MAX);
            if now >= deadline {
                Settle::Wait(Waiting::TerminationOverdue, timing.resync)
            } else {
                Settle::Wait(Waiting::Termination, timing.poll)
            }
        }
        State::Terminated | State::Expired => Settle::Ended,
        _ => Settle::Wait(Waiting::Termination, timing.poll),
    }
}

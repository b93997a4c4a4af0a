//! The report step's I/O half (the pipeline writes the status built by `status`, only when it
//! changed, so hundreds of idle objects cost no writes): publishes events and updates the
//! per-object metrics.
//!
//! Events: `Imported` (Normal) for a successful import, `ImportRecovered` (Normal) for the first
//! success after failures, `ImportFailed` (Warning, the action is the reason, so repeats of one
//! failure fold into one series) for a failed one; and on transitions: `Synced` turning False
//! without an attempt (a prerequisite: the AppConsent, the spec) and `Stale` turning True
//! (Warning, with their reasons) or back to False (Normal `Fresh`).

use super::plan::Attempt;
use super::status::{Inputs, summary};
use crate::api::conditions::{events, reasons, types};
use crate::api::{TenantSync, TenantSyncStatus};
use crate::controllers::conditions::status_of;
use crate::controllers::context::Context;
use crate::metrics::ObjectLabels;
use kube::ResourceExt;
use kube::runtime::events::EventType;

pub use crate::controllers::lifecycle::ReportError;

/// Tells of a pass whose status went from `inputs.previous` to `new`: events for its attempts
/// and on transitions, and the per-object metrics.
pub async fn tell(ctx: &Context, object: &TenantSync, inputs: &Inputs<'_>, new: &TenantSyncStatus) {
    for attempt in inputs.attempts {
        attempt_event(ctx, object, inputs.previous, attempt).await;
    }
    transition_events(
        ctx,
        object,
        inputs.previous,
        new,
        inputs.attempts.is_empty(),
    )
    .await;
    ctx.metrics
        .sync
        .object(&object_labels(object), Some(new), object.spec.suspend);
}

/// The per-object metric labels.
pub fn object_labels(object: &TenantSync) -> ObjectLabels {
    ObjectLabels {
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
        customer: object.spec.customer.tenant_id.0.to_ascii_lowercase(),
    }
}

async fn attempt_event(
    ctx: &Context,
    object: &TenantSync,
    previous: &TenantSyncStatus,
    attempt: &Attempt,
) {
    match &attempt.outcome {
        Ok(report) if previous.failed_attempts > 0 => {
            let note = format!(
                "{} after {} failed attempt(s)",
                summary(report),
                previous.failed_attempts
            );
            ctx.publish(
                object,
                EventType::Normal,
                events::IMPORT_RECOVERED,
                "Import",
                note,
            )
            .await;
        }
        Ok(report) => {
            ctx.publish(
                object,
                EventType::Normal,
                events::IMPORTED,
                "Import",
                summary(report),
            )
            .await;
        }
        Err(failure) => {
            ctx.publish(
                object,
                EventType::Warning,
                events::IMPORT_FAILED,
                failure.reason,
                failure.message.clone(),
            )
            .await;
        }
    }
}

async fn transition_events(
    ctx: &Context,
    object: &TenantSync,
    previous: &TenantSyncStatus,
    new: &TenantSyncStatus,
    no_attempt: bool,
) {
    let changed =
        |type_| status_of(&previous.conditions, type_) != status_of(&new.conditions, type_);
    let condition = |type_| new.conditions.iter().find(|c| c.type_ == type_);
    if no_attempt
        && changed(types::SYNCED)
        && let Some(c) = condition(types::SYNCED).filter(|c| c.status == "False")
    {
        ctx.publish(
            object,
            EventType::Warning,
            &c.reason,
            "SyncedFalse",
            format!("Synced: {}", c.message),
        )
        .await;
    }
    if changed(types::STALE)
        && let Some(c) = condition(types::STALE)
    {
        let (kind, reason) = if c.status == "True" {
            (EventType::Warning, reasons::STALE)
        } else {
            (EventType::Normal, reasons::FRESH)
        };
        if c.status == "True" || status_of(&previous.conditions, types::STALE) == Some("True") {
            ctx.publish(
                object,
                kind,
                reason,
                &format!("Stale{}", c.status),
                c.message.clone(),
            )
            .await;
        }
    }
}

//! The report step's I/O half: write the status built by `status` with server-side apply, publish
//! events for what was done and for condition transitions (a revoked consent is a Warning
//! `Revoked`), and set `gdap_consent_healthy`. One report per reconcile (every path but release).

use super::act::Applied;
use super::status::{self, Inputs, Outcome};
use crate::api::conditions::{events, reasons, types};
use crate::api::{AppConsent, AppConsentStatus};
use crate::controllers::conditions::status_of;
use crate::controllers::context::{Context, MANAGER};
use crate::metrics::ObjectLabels;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use serde_json::json;

/// Why the report could not be written: the report stage's errors (all transient).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kubernetes(#[from] kube::Error),
}

/// Writes the status for `inputs`, publishes events and the health metric; returns the status.
pub async fn report(
    ctx: &Context,
    object: &AppConsent,
    api: &Api<AppConsent>,
    inputs: &Inputs<'_>,
) -> Result<AppConsentStatus, ReportError> {
    let new = status::build(inputs);
    apply_status(api, object, &new).await?;
    done_events(ctx, object, inputs.outcome).await;
    for type_ in [
        types::CONSENTED,
        types::READY,
        types::PREREQUISITES_MET,
        types::SERVICE_PRINCIPALS_PRESENT,
    ] {
        condition_event(ctx, object, inputs.previous, &new, type_).await;
    }
    let healthy = status_of(&new.conditions, types::CONSENTED) == Some("True");
    ctx.metrics.consent(&object_labels(object), Some(healthy));
    Ok(new)
}

/// The per-object metric labels.
pub fn object_labels(object: &AppConsent) -> ObjectLabels {
    ObjectLabels {
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
        customer: object.spec.customer.tenant_id.0.clone(),
    }
}

async fn done_events(ctx: &Context, object: &AppConsent, outcome: &Outcome) {
    let (reason, note) = match outcome {
        Outcome::Applied(Applied::Done { reason, note }) => (*reason, note.clone()),
        Outcome::Applied(Applied::Consented(note)) => (events::CONSENTED, note.clone()),
        _ => return,
    };
    let action: String = note
        .split_whitespace()
        .take(8)
        .collect::<Vec<_>>()
        .join(" ");
    ctx.publish(object, EventType::Normal, reason, &action, note)
        .await;
}

/// A condition that changed status gets an event (reason = the condition's reason), except the
/// ordinary "still on the way" ones; a False one is a Warning.
async fn condition_event(
    ctx: &Context,
    object: &AppConsent,
    previous: &AppConsentStatus,
    new: &AppConsentStatus,
    type_: &str,
) {
    let (before, after) = (
        status_of(&previous.conditions, type_),
        status_of(&new.conditions, type_),
    );
    if before == after {
        return;
    }
    let Some(condition) = new.conditions.iter().find(|c| c.type_ == type_) else {
        return;
    };
    let ordinary = after != Some("True")
        && matches!(
            condition.reason.as_str(),
            reasons::NOT_CONSENTED
                | reasons::RELATIONSHIP_NOT_ACTIVE
                | reasons::SETTLING
                | reasons::RECONCILING
        );
    if ordinary {
        return;
    }
    let kind = if after == Some("True") {
        EventType::Normal
    } else {
        EventType::Warning
    };
    ctx.publish(
        object,
        kind,
        &condition.reason,
        &format!("{type_}{}", condition.status),
        format!("{type_}: {}", condition.message),
    )
    .await;
}

/// Writes the whole status with server-side apply as the operator's field manager.
async fn apply_status(
    api: &Api<AppConsent>,
    object: &AppConsent,
    status: &AppConsentStatus,
) -> Result<(), kube::Error> {
    let patch = json!({"apiVersion": "gdap.io/v1alpha1", "kind": "AppConsent", "status": status});
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(drop)
}

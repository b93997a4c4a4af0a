//! The report step's I/O half: write the status built by `status` with server-side apply, publish
//! events for what was done and for condition transitions (a revoked consent is a Warning
//! `Revoked`), and set `gdap_consent_healthy`. One report per reconcile (every path but release).

use super::act::Applied;
use super::status::{self, Inputs, Outcome};
use crate::api::conditions::{events, reasons, types};
use crate::api::{AppConsent, AppConsentStatus};
use crate::controllers::conditions::status_of;
use crate::controllers::context::Context;
use crate::controllers::lifecycle;
use crate::metrics::ObjectLabels;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;

pub use crate::controllers::lifecycle::ReportError;

/// Reasons of conditions on their way to True, which get no Warning event.
const ORDINARY: [&str; 5] = [
    reasons::NOT_CONSENTED,
    reasons::RELATIONSHIP_NOT_ACTIVE,
    reasons::SETTLING,
    reasons::PROPAGATING,
    reasons::RECONCILING,
];

/// Writes the status for `inputs`, publishes events and the health metric; returns the status.
pub async fn report(
    ctx: &Context,
    object: &AppConsent,
    api: &Api<AppConsent>,
    inputs: &Inputs<'_>,
) -> Result<AppConsentStatus, ReportError> {
    let new = status::build(inputs);
    lifecycle::apply_status(api, object, &new).await?;
    done_events(ctx, object, inputs.outcome).await;
    for type_ in [
        types::CONSENTED,
        types::READY,
        types::PREREQUISITES_MET,
        types::SERVICE_PRINCIPALS_PRESENT,
    ] {
        lifecycle::condition_event(
            ctx,
            object,
            &inputs.previous.conditions,
            &new.conditions,
            type_,
            &ORDINARY,
        )
        .await;
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

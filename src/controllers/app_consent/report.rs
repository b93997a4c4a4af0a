//! The report step's I/O half: write the status built by `status` with server-side apply, publish
//! events for what was done and for condition transitions (a revoked consent is a Warning
//! `Revoked`), and set `gdap_consent_healthy`. One report per reconcile (every path but release).

use super::act::Applied;
use super::status::{self, Inputs, Outcome};
use super::step::{Action, PlanError};
use crate::api::conditions::{events, reasons, types};
use crate::api::{AppConsent, AppConsentStatus};
use crate::controllers::conditions::status_of;
use crate::controllers::context::Context;
use crate::controllers::lifecycle;
use crate::metrics::{ConsentHealth, ObjectLabels};
use kube::ResourceExt;
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

/// Tells of a pass whose status went from `inputs.previous` to `new`: events for what was done
/// and on transitions, and the health metric.
pub async fn tell(ctx: &Context, object: &AppConsent, inputs: &Inputs<'_>, new: &AppConsentStatus) {
    done_events(ctx, object, inputs).await;
    for type_ in [
        types::CONSENTED,
        types::READY,
        types::PREREQUISITES_MET,
        types::SERVICE_PRINCIPALS_PRESENT,
    ] {
        lifecycle::condition_event(
            ctx,
            object,
            (&inputs.previous.conditions, &new.conditions),
            type_,
            &ORDINARY,
            lifecycle::Announce::EveryTrue,
        )
        .await;
    }
    leftover_event(ctx, object, inputs, new).await;
    ctx.metrics
        .consent(&object_labels(object), Some(health(inputs, new)));
}

/// A Warning when a deletion starts to be blocked by permissions the operator cannot remove
/// (Ready may have been False already, for the relationship that ended, so the condition's own
/// event would not fire).
async fn leftover_event(
    ctx: &Context,
    object: &AppConsent,
    inputs: &Inputs<'_>,
    new: &AppConsentStatus,
) {
    let reason_of = |conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
        conditions
            .iter()
            .find(|c| c.type_ == types::READY)
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let Some((reason, message)) = reason_of(&new.conditions) else {
        return;
    };
    let before = reason_of(&inputs.previous.conditions).map(|(r, _)| r);
    if reason == reasons::PERMISSIONS_REMAIN && before.as_deref() != Some(reason.as_str()) {
        ctx.publish(
            object,
            EventType::Warning,
            events::PERMISSIONS_REMAIN,
            "Delete",
            message,
        )
        .await;
    }
}

/// The consent's gauges: healthy while `Consented` is True, revoked only while its reason is
/// `Revoked` (a lapsed relationship, a lost role, propagation or an unexplained `403` are
/// not), and the permissions a deletion leaves behind.
fn health(inputs: &Inputs, new: &AppConsentStatus) -> ConsentHealth {
    let consented = new.conditions.iter().find(|c| c.type_ == types::CONSENTED);
    let permissions_left = match &inputs.plan.action {
        Action::Refuse(PlanError::PermissionsRemain(remains)) => remains.count(),
        _ => 0,
    };
    ConsentHealth {
        healthy: status_of(&new.conditions, types::CONSENTED) == Some("True"),
        revoked: consented.is_some_and(|c| c.status == "False" && c.reason == reasons::REVOKED),
        permissions_left,
    }
}

/// The per-object metric labels.
pub fn object_labels(object: &AppConsent) -> ObjectLabels {
    ObjectLabels {
        namespace: object.namespace().unwrap_or_default(),
        name: object.name_any(),
        customer: object.spec.customer.tenant_id.0.clone(),
    }
}

async fn done_events(ctx: &Context, object: &AppConsent, inputs: &Inputs<'_>) {
    let (reason, note) = match inputs.outcome {
        Outcome::Applied(Applied::Done { reason, note }) => (*reason, note.clone()),
        Outcome::Applied(Applied::Consented(note)) => {
            if let Some(removed) = status::scopes_removed(inputs) {
                let note = format!(
                    "removed through Partner Center the delegated permissions spec.grants no longer gives: {removed}"
                );
                ctx.publish(
                    object,
                    EventType::Normal,
                    events::SCOPES_REVOKED,
                    "Revoke",
                    note,
                )
                .await;
            }
            (events::CONSENTED, note.clone())
        }
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

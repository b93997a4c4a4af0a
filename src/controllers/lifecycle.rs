//! The reconcile lifecycle the controllers share: kube's finalizer helper around a controller's
//! pipeline, the reconcile metric labelled by the reason a reconcile ended with, failures the
//! status could not record, and the error policy's backoff.
//!
//! Contract: the finalizer helper adds a kind's finalizer with a JSON-patch test-and-add (other
//! controllers' finalizers are kept) and removes it only when cleanup returns `Ok`; a cleanup that
//! is still under way answers [`ReconcileError::Deleting`] with the delay it chose. Every other
//! error is a Kubernetes failure (the status could not be written): the error policy backs off
//! from the failures the status records plus those it could not record.

use super::conditions::status_of;
use super::context::{Context, MANAGER};
use super::failure;
use crate::api::conditions::reasons;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event, finalizer};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// A custom resource one of the controllers reconciles.
pub trait Reconciled:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The kind, as metrics and logs name it.
    const KIND: &'static str;
    /// The operator's finalizer on objects of this kind.
    const FINALIZER: &'static str;
    /// Consecutive failures the object's status records.
    fn failed_attempts(&self) -> u32;
    /// The customer tenant, for the reconcile's log span.
    fn customer(&self) -> &str;
    /// The credentials Secret the object names (`None`: the operator's default).
    fn credentials_ref(&self) -> Option<&crate::api::SecretRef>;
}

/// Implements [`Reconciled`] for a kind whose spec names `customer` and `credentialsRef` and
/// whose status counts `failedAttempts` (all of the operator's kinds).
macro_rules! reconciled {
    ($kind:ty, $name:expr, $finalizer:expr) => {
        impl $crate::controllers::lifecycle::Reconciled for $kind {
            const KIND: &'static str = $name;
            const FINALIZER: &'static str = $finalizer;
            fn failed_attempts(&self) -> u32 {
                self.status.as_ref().map_or(0, |s| s.failed_attempts)
            }
            fn customer(&self) -> &str {
                &self.spec.customer.tenant_id.0
            }
            fn credentials_ref(&self) -> Option<&$crate::api::SecretRef> {
                self.spec.credentials_ref.as_ref()
            }
        }
    };
}
pub(crate) use reconciled;

/// Why a status could not be written: every report stage's error (transient).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kubernetes(#[from] kube::Error),
}

/// What travels to a controller's error policy.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The status could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Deletion is under way; look again after `requeue` (the finalizer stays).
    #[error("deletion in progress: {reason}")]
    Deleting {
        /// When to look again.
        requeue: Duration,
        /// The reason shown in the reconcile metric.
        reason: &'static str,
    },
}

/// The reason a reconcile ends with, for `gdap_reconciles_total{result}`: `success` until the
/// pipeline records a failure's condition reason.
#[derive(Debug)]
pub struct Label(Mutex<&'static str>);

impl Default for Label {
    fn default() -> Self {
        Label(Mutex::new("success"))
    }
}

impl Label {
    /// Records the reason the reconcile failed with.
    pub fn set(&self, reason: &'static str) {
        *self.0.lock().expect("label lock") = reason;
    }

    fn get(&self) -> &'static str {
        *self.0.lock().expect("label lock")
    }
}

/// Runs `step` under the kind's finalizer, in `span`, and counts the reconcile by its reason.
/// `step` gets the finalizer's event, the object's API and the label to set on failure.
pub async fn reconcile<K, F, Fut>(
    object: Arc<K>,
    ctx: &Context,
    span: tracing::Span,
    step: F,
) -> Result<Requeue, finalizer::Error<ReconcileError>>
where
    K: Reconciled,
    F: FnOnce(Event<K>, Api<K>, Arc<Label>) -> Fut,
    Fut: Future<Output = Result<Requeue, ReconcileError>>,
{
    let started = Instant::now();
    let key = failure_key(object.as_ref());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let label = Arc::new(Label::default());
    let result = finalizer(&api, K::FINALIZER, object, |event| {
        step(event, api.clone(), label.clone())
    })
    .instrument(span)
    .await;
    let result_label = match &result {
        Ok(_) => label.get(),
        Err(e) => error_label(e),
    };
    if result_label != reasons::KUBERNETES_ERROR {
        ctx.unrecorded_failures.clear(&key);
    }
    ctx.metrics
        .reconciled(K::KIND, result_label, started.elapsed().as_secs_f64());
    result
}

fn error_label(error: &finalizer::Error<ReconcileError>) -> &'static str {
    match deleting(error) {
        Some((_, reason)) => reason,
        None => reasons::KUBERNETES_ERROR,
    }
}

fn deleting(error: &finalizer::Error<ReconcileError>) -> Option<(Duration, &'static str)> {
    match error {
        finalizer::Error::ApplyFailed(ReconcileError::Deleting { requeue, reason })
        | finalizer::Error::CleanupFailed(ReconcileError::Deleting { requeue, reason }) => {
            Some((*requeue, reason))
        }
        _ => None,
    }
}

fn failure_key<K: Reconciled>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::KIND,
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// After an error: the delay a deletion under way chose, else a backoff from the failures so far
/// (those the status records and those it could not).
pub fn error_policy<K: Reconciled>(
    object: &K,
    error: &finalizer::Error<ReconcileError>,
    ctx: &Context,
) -> Requeue {
    if let Some((requeue, _)) = deleting(error) {
        return Requeue::requeue(requeue);
    }
    tracing::warn!(kind = K::KIND, %error, "reconcile failed; retrying with backoff");
    let attempts = object.failed_attempts() + ctx.unrecorded_failures.record(&failure_key(object));
    let timing = &ctx.settings.timing;
    Requeue::requeue(failure::backoff(
        attempts,
        true,
        timing.poll,
        timing.resync,
        failure::jitter(),
    ))
}

/// Writes an object's whole status with server-side apply as the operator's field manager.
pub async fn apply_status<K: Reconciled, S: Serialize>(
    api: &Api<K>,
    object: &K,
    status: &S,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(drop)
}

/// How long a record of a write already made in Microsoft is retried through an outage of the
/// API server before the reconcile gives up on it.
pub const RECORD_PATIENCE: Duration = Duration::from_secs(90);

/// Merge-patches `patch` onto object `name`: the record of a write the operator has just made in
/// Microsoft (its pending-writes annotation). A failure the API server may recover from (it is
/// down, restarting, overloaded) is retried with a growing pause for up to [`RECORD_PATIENCE`]:
/// giving up at once would leave the next reconcile blind to the write, and, while Microsoft has
/// not shown it yet, it would send the write again.
pub async fn record_write<K: Reconciled>(
    api: &Api<K>,
    name: &str,
    patch: &serde_json::Value,
) -> Result<(), kube::Error> {
    let deadline = Instant::now() + RECORD_PATIENCE;
    let mut pause = Duration::from_millis(250);
    loop {
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if recoverable(&e) && Instant::now() + pause < deadline => {
                tracing::warn!(error = %e, "recording a write made in Microsoft failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The API server may answer later: it could not be reached, or answered 429 or 5xx.
fn recoverable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => true,
    }
}

/// Publishes an event when condition `type_` changed status: Normal when it became True, Warning
/// otherwise — except for the `ordinary` reasons of work on its way, which need no event.
pub async fn condition_event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    previous: &[Condition],
    new: &[Condition],
    type_: &str,
    ordinary: &[&str],
) {
    let (before, after) = (status_of(previous, type_), status_of(new, type_));
    if before == after {
        return;
    }
    let Some(condition) = new.iter().find(|c| c.type_ == type_) else {
        return;
    };
    let became_true = after == Some("True");
    if !became_true && ordinary.contains(&condition.reason.as_str()) {
        return;
    }
    let kind = if became_true {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_the_api_server_may_recover_from_are_retried() {
        let api = |code: u16| {
            kube::Error::Api(
                kube::core::Status::failure("x", "y")
                    .with_code(code)
                    .boxed(),
            )
        };
        assert!(recoverable(&api(503)));
        assert!(recoverable(&api(429)));
        assert!(recoverable(&api(500)));
        assert!(!recoverable(&api(409)));
        assert!(!recoverable(&api(404)));
        assert!(!recoverable(&api(403)));
        assert!(recoverable(&kube::Error::LinesCodecMaxLineLengthExceeded));
    }

    #[test]
    fn a_deletion_under_way_keeps_its_delay_and_names_its_reason() {
        let error = finalizer::Error::CleanupFailed(ReconcileError::Deleting {
            requeue: Duration::from_secs(7),
            reason: reasons::TERMINATING,
        });
        assert_eq!(error_label(&error), reasons::TERMINATING);
        assert_eq!(
            deleting(&error),
            Some((Duration::from_secs(7), reasons::TERMINATING))
        );
        let kube = finalizer::Error::<ReconcileError>::UnnamedObject;
        assert_eq!(error_label(&kube), reasons::KUBERNETES_ERROR);
        let label = Label::default();
        assert_eq!(label.get(), "success");
        label.set(reasons::TRANSIENT_ERROR);
        assert_eq!(label.get(), reasons::TRANSIENT_ERROR);
    }
}

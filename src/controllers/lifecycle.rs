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
use super::own_writes::Cached;
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
    let result = async {
        let Some(object) = current(ctx, &api, object).await? else {
            return Ok(Requeue::await_change());
        };
        finalizer(&api, K::FINALIZER, object, |event| {
            step(event, api.clone(), label.clone())
        })
        .await
    }
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

/// The object as the pass must see it: the cached copy, unless it does not show the operator's
/// last recording write yet (see [`super::own_writes`]); the object is then read from the API
/// server. `None`: it is gone.
async fn current<K: Reconciled>(
    ctx: &Context,
    api: &Api<K>,
    cached: Arc<K>,
) -> Result<Option<Arc<K>>, finalizer::Error<ReconcileError>> {
    if ctx.own_writes.check(cached.as_ref()) == Cached::Current {
        return Ok(Some(cached));
    }
    tracing::debug!(
        "the watch cache does not show the operator's last write yet; reading the object from the API server"
    );
    let fresh = api
        .get_opt(&cached.name_any())
        .await
        .map_err(|e| finalizer::Error::ApplyFailed(ReconcileError::Report(e.into())))?;
    ctx.own_writes.seen(&cached.uid().unwrap_or_default());
    Ok(fresh.map(Arc::new))
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

/// Writes an object's whole status with server-side apply as the operator's field manager;
/// answers the object as written.
pub async fn apply_status<K: Reconciled, S: Serialize>(
    api: &Api<K>,
    object: &K,
    status: &S,
) -> Result<K, kube::Error> {
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
}

/// How long a record of a write already made in Microsoft is retried through an outage of the
/// API server before the reconcile gives up on it.
pub const RECORD_PATIENCE: Duration = Duration::from_secs(90);

/// Merge-patches `patch` onto object `name`: the record of a write the operator has just made in
/// Microsoft (its pending-writes annotation), retried through an outage ([`through_outage`]);
/// the next pass reads the object as written ([`super::own_writes`]).
pub async fn record_write<K: Reconciled>(
    ctx: &Context,
    api: &Api<K>,
    name: &str,
    patch: &serde_json::Value,
) -> Result<(), kube::Error> {
    let written = through_outage(|| async {
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
    })
    .await?;
    ctx.own_writes.wrote(&written);
    Ok(())
}

/// Runs `write`, a Kubernetes write that records a write the operator has just made in
/// Microsoft, again after a failure the API server may recover from (it is down, restarting,
/// overloaded), with a growing pause for up to [`RECORD_PATIENCE`]: giving up at once would
/// leave the next reconcile blind to the write, and, while Microsoft has not shown it yet, it
/// would send the write again.
pub async fn through_outage<T, F, Fut>(mut write: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let deadline = tokio::time::Instant::now() + RECORD_PATIENCE;
    let mut pause = Duration::from_millis(250);
    loop {
        match write().await {
            Ok(done) => return Ok(done),
            Err(e) if recoverable(&e) && tokio::time::Instant::now() + pause < deadline => {
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

/// Which turns to True of a condition get a Normal event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// Every turn to True.
    EveryTrue,
    /// Only a recovery: a turn to True from a failure (a reason not `ordinary`). The first True
    /// on the way to Ready is no news beside Ready's own event, and each event is a write.
    RecoveryOnly,
}

/// Publishes an event when condition `type_` changed status: Normal when it became True (as
/// `announce` says), Warning otherwise — except for the `ordinary` reasons of work on its way,
/// which need no event.
pub async fn condition_event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    (previous, new): (&[Condition], &[Condition]),
    type_: &str,
    ordinary: &[&str],
    announce: Announce,
) {
    let Some((condition, became_true)) = condition_news(previous, new, type_, ordinary, announce)
    else {
        return;
    };
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

/// The condition `type_` worth an event after a pass, and whether it became True (pure).
fn condition_news<'a>(
    previous: &[Condition],
    new: &'a [Condition],
    type_: &str,
    ordinary: &[&str],
    announce: Announce,
) -> Option<(&'a Condition, bool)> {
    let (before, after) = (status_of(previous, type_), status_of(new, type_));
    if before == after {
        return None;
    }
    let condition = new.iter().find(|c| c.type_ == type_)?;
    let became_true = after == Some("True");
    if !became_true && ordinary.contains(&condition.reason.as_str()) {
        return None;
    }
    let recovered = previous
        .iter()
        .find(|c| c.type_ == type_)
        .is_some_and(|c| c.status != "True" && !ordinary.contains(&c.reason.as_str()));
    if became_true && announce == Announce::RecoveryOnly && !recovered {
        return None;
    }
    Some((condition, became_true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            observed_generation: None,
        }
    }

    #[test]
    fn a_first_true_is_news_only_when_every_true_is_announced_and_a_recovery_always() {
        let ordinary = ["Propagating"];
        let news = |before: &[Condition], after: &[Condition], announce| {
            condition_news(before, after, "Synced", &ordinary, announce)
                .map(|(c, t)| (c.reason.clone(), t))
        };
        let waiting = [condition("Synced", "False", "Propagating")];
        let failed = [condition("Synced", "False", "MicrosoftError")];
        let done = [condition("Synced", "True", "Reconciled")];
        use Announce::{EveryTrue, RecoveryOnly};
        assert_eq!(
            news(&waiting, &done, EveryTrue),
            Some(("Reconciled".into(), true))
        );
        assert_eq!(
            news(&waiting, &done, RecoveryOnly),
            None,
            "the first True is no news"
        );
        assert_eq!(news(&[], &done, RecoveryOnly), None);
        assert_eq!(
            news(&failed, &done, RecoveryOnly),
            Some(("Reconciled".into(), true)),
            "a recovery"
        );
        assert_eq!(
            news(&done, &failed, RecoveryOnly),
            Some(("MicrosoftError".into(), false)),
            "a failure"
        );
        assert_eq!(news(&done, &waiting, RecoveryOnly), None, "work on its way");
        assert_eq!(news(&done, &done, EveryTrue), None, "no change");
    }

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

    #[tokio::test(start_paused = true)]
    async fn a_record_is_written_again_through_an_outage_and_a_refusal_ends_it() {
        let api = |code: u16| {
            kube::Error::Api(
                kube::core::Status::failure("x", "y")
                    .with_code(code)
                    .boxed(),
            )
        };
        let tries = std::cell::Cell::new(0);
        let down_three_times = through_outage(|| {
            tries.set(tries.get() + 1);
            let answer = if tries.get() <= 3 {
                Err(api(503))
            } else {
                Ok(tries.get())
            };
            async move { answer }
        })
        .await;
        assert_eq!(down_three_times.unwrap(), 4, "written at the fourth try");

        tries.set(0);
        let refused = through_outage(|| {
            tries.set(tries.get() + 1);
            async { Err::<(), _>(api(422)) }
        })
        .await;
        assert!(refused.is_err());
        assert_eq!(tries.get(), 1, "a refusal is not retried");

        tries.set(0);
        let started = tokio::time::Instant::now();
        let never_back = through_outage(|| {
            tries.set(tries.get() + 1);
            async { Err::<(), _>(api(503)) }
        })
        .await;
        assert!(never_back.is_err());
        assert!(
            tries.get() > 3,
            "retried through the outage ({} tries)",
            tries.get()
        );
        assert!(
            started.elapsed() <= RECORD_PATIENCE,
            "gave up within the patience"
        );
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

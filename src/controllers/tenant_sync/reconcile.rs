//! One reconcile of a TenantSync: kube's finalizer helper around the pipeline
//! observe → plan → act → report.
//!
//! The finalizer `gdap.io/tenant-sync` exists for the one thing deletion must do on the operator's
//! side: stop the object's import if one runs (its future is dropped, which leaves the sink's last
//! good data untouched), drop the object's metrics, and let the credentials Secret go. Deletion
//! never touches the sink: the imported data is the user's, and stays (files, tables and views
//! alike); the `Released` event says where it is.

use super::act::{Applied, ConnectionError, Resources, Target, act};
use super::desired;
use super::observe::observe;
use super::plan::{Action, Attempt, History, Plan, plan, propagation};
use super::report::{object_labels, report};
use super::runner::Runner;
use super::status::Inputs;
use crate::api::conditions::{events, reasons};
use crate::api::tenant_sync::ConnectionSecretRef;
use crate::api::{AppConsent, TenantSync, TenantSyncStatus};
use crate::controllers::context::Context;
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::credentials_in_use;
use crate::controllers::lifecycle::{self, Label, ReconcileError, Reconciled};
use crate::microsoft::Secret;
use crate::sync::sink::postgres::{CaBundle, Connection};
use async_trait::async_trait;
use chrono::Utc;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as Lifecycle};
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;
use std::time::Duration;
use tracing::info_span;

/// The finalizer that lets deletion stop a running import and release the credentials.
pub const FINALIZER: &str = "gdap.io/tenant-sync";
/// The kind, as metrics name it.
pub const KIND: &str = "TenantSync";

/// What the TenantSync controller works with.
pub struct SyncContext {
    /// What every controller shares.
    pub ctx: Arc<Context>,
    /// The imports of this process.
    pub runner: Runner,
    /// The operator's watch cache of AppConsents.
    pub consents: Store<AppConsent>,
}

/// Reconciles one object (see `controllers::lifecycle`).
pub async fn reconcile(
    object: Arc<TenantSync>,
    sync: Arc<SyncContext>,
) -> Result<Requeue, finalizer::Error<ReconcileError>> {
    let span = info_span!("reconcile", kind = KIND, namespace = %object.namespace().unwrap_or_default(), name = %object.name_any(), customer = %object.spec.customer.tenant_id);
    let sync = sync.as_ref();
    lifecycle::reconcile(object, &sync.ctx, span, |event, api, label| async move {
        match event {
            Lifecycle::Apply(o) => step(&o, sync, &api, &label).await,
            Lifecycle::Cleanup(o) => Ok(cleanup(&o, sync).await),
        }
    })
    .await
}

/// After an error: the delay a deletion under way chose, else a backoff.
pub fn error_policy(
    object: Arc<TenantSync>,
    error: &finalizer::Error<ReconcileError>,
    sync: Arc<SyncContext>,
) -> Requeue {
    lifecycle::error_policy(object.as_ref(), error, &sync.ctx)
}

impl Reconciled for TenantSync {
    const KIND: &'static str = KIND;
    const FINALIZER: &'static str = FINALIZER;
    fn failed_attempts(&self) -> u32 {
        self.status.as_ref().map_or(0, |s| s.failed_attempts)
    }
}

/// The pipeline for a live object.
async fn step(
    object: &TenantSync,
    sync: &SyncContext,
    api: &Api<TenantSync>,
    label: &Label,
) -> Result<Requeue, ReconcileError> {
    let ctx = &sync.ctx;
    let timing = &ctx.settings.timing;
    let namespace = object.namespace().unwrap_or_default();
    let intent = desired::resolve(object);
    let observed = observe(&intent, &namespace, &sync.consents, &sync.runner);
    let previous = object.status.clone().unwrap_or_default();
    let recorded = History::from_status(&previous);
    let finished = observed
        .finished
        .clone()
        .map(|a| propagation(a, observed.consent_since, &recorded, timing));
    let (mut history, mut attempts) = unrecorded(&previous, finished.as_ref());
    let secret = ctx.secret_name(&namespace, object.spec.credentials_ref.as_ref());
    for attempt in &attempts {
        let failure = attempt.outcome.as_ref().err().map(|f| f.reason);
        ctx.credentials_used(&namespace, secret.as_deref(), failure);
    }
    let now = Utc::now();
    let mut decided = plan(&intent, &observed, &history, timing, now);
    tracing::debug!(action = ?decided.action, next = ?decided.next_sync, "planned");
    let resources = KubeResources {
        ctx,
        secret: ctx.secret_name(&namespace, object.spec.credentials_ref.as_ref()),
        namespace,
    };
    let target = Target {
        spec: &object.spec,
        key: &intent.key,
        object: ObjectRef::from_obj(object),
        resources: &resources,
        launcher: &sync.runner,
        now,
    };
    let applied = act(&decided.action, &target).await;
    if let Applied::StartFailed(attempt) = &applied {
        history = history.with(attempt);
        attempts.push(attempt.clone());
        decided = plan(&intent, &observed, &history, timing, now);
    }
    let inputs = Inputs {
        intent: &intent,
        observed: &observed,
        plan: &decided,
        started: applied == Applied::Started,
        history: &history,
        attempts: &attempts,
        previous: &previous,
        generation: object.metadata.generation,
        now,
    };
    let status = report(ctx, object, api, &inputs).await?;
    if let Some(finished) = &observed.finished {
        sync.runner.acknowledge(&intent.key, finished.id);
    }
    label.set(metric_label(&attempts, &decided, &status));
    let safety_net = timing.resync;
    Ok(Requeue::requeue(
        decided.requeue.map_or(safety_net, |r| r.min(safety_net)),
    ))
}

/// The history with the runner's ended attempt applied, unless the status records it already
/// (a status write whose answer was lost), and the attempts to record.
fn unrecorded(previous: &TenantSyncStatus, finished: Option<&Attempt>) -> (History, Vec<Attempt>) {
    let recorded = History::from_status(previous);
    let attempts: Vec<Attempt> = finished
        .filter(|a| !recorded.records(a))
        .cloned()
        .into_iter()
        .collect();
    let history = attempts.iter().fold(recorded, |h, a| h.with(a));
    (history, attempts)
}

/// The reconcile metric's label: the reason of an attempt that failed now, of a prerequisite
/// that does not hold, or `success`.
fn metric_label(attempts: &[Attempt], decided: &Plan, status: &TenantSyncStatus) -> &'static str {
    if let Some(failure) = attempts.last().and_then(|a| a.outcome.as_ref().err()) {
        return failure.reason;
    }
    if !matches!(decided.action, Action::Refuse(_) | Action::WaitForConsent) {
        return "success";
    }
    let invalid = status.conditions.iter().any(|c| {
        c.type_ == crate::api::conditions::types::SYNCED && c.reason == reasons::INVALID_SPEC
    });
    if invalid {
        reasons::INVALID_SPEC
    } else {
        reasons::APP_CONSENT_NOT_READY
    }
}

/// Deletion: stop the import, drop the metrics, release the credentials; the data stays.
async fn cleanup(object: &TenantSync, sync: &SyncContext) -> Requeue {
    let ctx = &sync.ctx;
    sync.runner.cancel(&desired::key(object));
    ctx.metrics.sync.object(&object_labels(object), None, false);
    let sink = &object.spec.sink;
    let place = match (&sink.file, &sink.postgres) {
        (Some(file), _) => format!(
            "under {}/{}",
            file.path,
            object.spec.customer.tenant_id.0.to_ascii_lowercase()
        ),
        (_, Some(pg)) => format!(
            "in PostgreSQL schema {} (connection Secret {})",
            pg.schema
                .as_deref()
                .unwrap_or(crate::sync::sink::postgres::DEFAULT_SCHEMA),
            pg.connection_secret_ref.name
        ),
        _ => "in the sink".to_string(),
    };
    let note =
        format!("the imported data stays {place}; delete it there if it is no longer needed");
    ctx.publish(object, EventType::Normal, events::RELEASED, "Release", note)
        .await;
    let namespace = object.namespace().unwrap_or_default();
    if let Some(secret) = ctx.secret_name(&namespace, object.spec.credentials_ref.as_ref()) {
        ctx.secret_released(&namespace, &secret);
    }
    Requeue::await_change()
}

/// The Kubernetes reads of an import start.
struct KubeResources<'a> {
    ctx: &'a Context,
    namespace: String,
    secret: Option<String>,
}

/// Conflicting finalizer patches (many objects holding one Secret at once) are retried.
const HOLD_ATTEMPTS: usize = 3;

#[async_trait]
impl Resources for KubeResources<'_> {
    async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let name = self
            .secret
            .as_deref()
            .ok_or(CredentialsError::NoReference)?;
        let secrets: Api<KubeSecret> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let credentials = self.ctx.credentials.acquire(&self.namespace, name).await?;
            match credentials_in_use::hold(&secrets, &credentials.secret).await {
                Ok(()) => {
                    self.ctx.secret_in_use(&self.namespace, name);
                    return Ok(credentials);
                }
                Err(kube::Error::Api(e)) if conflict(e.code) && attempt < HOLD_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
                }
                Err(source) => {
                    return Err(CredentialsError::Kube {
                        namespace: self.namespace.clone(),
                        name: name.into(),
                        source,
                    });
                }
            }
        }
    }

    async fn connection_url(
        &self,
        reference: &ConnectionSecretRef,
    ) -> Result<Connection, ConnectionError> {
        let key = reference.url_key().to_string();
        let (namespace, name) = (self.namespace.clone(), reference.name.clone());
        let secrets: Api<KubeSecret> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let secret = match secrets.get_opt(&name).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(ConnectionError::Missing {
                    namespace,
                    name,
                    key,
                });
            }
            Err(source) => {
                return Err(ConnectionError::Kube {
                    namespace,
                    name,
                    source,
                });
            }
        };
        let value = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(url) = value(&key) else {
            return Err(ConnectionError::MissingKey {
                namespace,
                name,
                key,
            });
        };
        let ca = match &reference.ca_key {
            Some(ca_key) => Some(CaBundle {
                pem: value(ca_key).ok_or_else(|| ConnectionError::MissingCa {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    key: ca_key.clone(),
                })?,
                origin: format!("Secret {namespace}/{name} key {ca_key}"),
            }),
            None => None,
        };
        Ok(Connection {
            url: Secret::new(url),
            ca,
        })
    }
}

/// A JSON-patch test that failed (409 or 422): someone changed the object in between.
fn conflict(code: u16) -> bool {
    code == 409 || code == 422
}

//! The TenantSync's part of the reconcile pipeline (`controllers::pipeline`): its intent,
//! observe, plan, act and report.
//!
//! The finalizer `gdap.io/tenant-sync` exists for the one thing deletion must do on the operator's
//! side: stop the object's import if one runs (its future is dropped, which leaves the sink's last
//! good data untouched), drop the object's metrics, and let the credentials Secret go. Deletion
//! never touches the sink: the imported data is the user's, and stays (files, tables and views
//! alike); the `Released` event says where it is.

use super::act::{Applied, ConnectionError, Resources, Target, act};
use super::desired;
use super::observe::observe;
use super::plan::{Action, Attempt, History, Observed, Plan, plan, propagation};
use super::report::{object_labels, tell};
use super::runner::Runner;
use super::status::{self, Inputs};
use crate::api::conditions::reasons;
use crate::api::tenant_sync::ConnectionSecretRef;
use crate::api::{AppConsent, TenantSync, TenantSyncStatus};
use crate::controllers::context::Context;
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::credentials_hold::acquire_and_hold;
use crate::controllers::lifecycle::{ReconcileError, reconciled};
use crate::controllers::pipeline::{Change, Next, Pass, Pipeline, Release};
use crate::microsoft::Secret;
use crate::sync::sink::postgres::{CaBundle, Connection};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;

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

impl AsRef<Context> for SyncContext {
    fn as_ref(&self) -> &Context {
        &self.ctx
    }
}

reconciled!(TenantSync, KIND, FINALIZER);

/// What a pass over a live object looks at: the caches and the runner, and the status's history
/// with the runner's ended attempt applied.
pub struct Looked {
    /// The observed state.
    pub observed: Observed,
    /// The status as it is.
    pub previous: TenantSyncStatus,
    /// The history the plan decides on.
    pub history: History,
    /// Ended attempts the status does not record yet.
    pub attempts: Vec<Attempt>,
}

/// The decision: release a deleted object (its data stays in the sink), or the sync's plan.
#[derive(Debug)]
pub enum Step {
    /// The object is deleted: stop its import and let it go.
    Release,
    /// The object is alive.
    Sync(Plan),
}

/// What acting gave: the start's result, and the history and plan after a failed start.
pub struct Synced {
    /// What the act step did.
    pub applied: Applied,
    /// The history, with a failed start applied.
    pub history: History,
    /// The attempts to record, with a failed start.
    pub attempts: Vec<Attempt>,
    /// The plan (made again after a failed start).
    pub decided: Plan,
}

impl TenantSync {
    /// What the status and the report of a pass are built from (a pass that reports is never a
    /// deletion's: a deleted TenantSync is released first).
    fn inputs<'a>(
        &self,
        pass: &'a Pass<'_, Self>,
        synced: &'a Synced,
        previous: &'a TenantSyncStatus,
    ) -> Inputs<'a> {
        let Some(looked) = pass.observed else {
            unreachable!("a deleted TenantSync is released before it reports");
        };
        Inputs {
            intent: pass.intent,
            observed: &looked.observed,
            plan: &synced.decided,
            started: synced.applied == Applied::Started,
            history: &synced.history,
            attempts: &synced.attempts,
            previous,
            generation: self.metadata.generation,
            now: pass.now,
        }
    }
}

#[async_trait]
impl Pipeline for TenantSync {
    type Shared = SyncContext;
    type Intent = desired::Intent;
    /// `None` while the object is being deleted: nothing is looked at then.
    type Observed = Option<Looked>;
    type Plan = Step;
    type Outcome = Synced;

    fn resolve(&self, _: &SyncContext) -> desired::Intent {
        desired::resolve(self)
    }

    /// Imports read the credentials when one starts (`act`), not on every pass.
    fn holds_credentials(_: &desired::Intent, _: bool) -> bool {
        false
    }

    async fn observe(
        &self,
        sync: &SyncContext,
        intent: &desired::Intent,
        _: Result<&Credentials, &CredentialsError>,
    ) -> Option<Looked> {
        if self.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let ctx = &sync.ctx;
        let timing = &ctx.settings.timing;
        let namespace = self.namespace().unwrap_or_default();
        let observed = observe(intent, &namespace, &sync.consents, &sync.runner);
        let previous = self.status.clone().unwrap_or_default();
        let recorded = History::from_status(&previous);
        let finished = observed
            .finished
            .clone()
            .map(|a| propagation(a, observed.consent_since, &recorded, timing));
        let (history, attempts) = unrecorded(&previous, finished.as_ref());
        let secret = ctx.secret_name(&namespace, self.spec.credentials_ref.as_ref());
        for attempt in &attempts {
            let failure = attempt.outcome.as_ref().err().map(|f| f.reason);
            ctx.credentials_used(&namespace, secret.as_deref(), failure);
        }
        Some(Looked {
            observed,
            previous,
            history,
            attempts,
        })
    }

    fn credentials_failure(_: &Option<Looked>) -> Option<&'static str> {
        None
    }

    fn plan(
        sync: &SyncContext,
        intent: &desired::Intent,
        looked: &Option<Looked>,
        now: DateTime<Utc>,
    ) -> Step {
        match looked {
            None => Step::Release,
            Some(l) => Step::Sync(plan(
                intent,
                &l.observed,
                &l.history,
                &sync.ctx.settings.timing,
                now,
            )),
        }
    }

    fn release(&self, step: &Step) -> Option<Release> {
        matches!(step, Step::Release).then(|| Release {
            warning: false,
            note: release_note(self),
        })
    }

    fn released(&self, sync: &SyncContext) {
        sync.runner.cancel(&desired::key(self));
        sync.ctx
            .metrics
            .sync
            .object(&object_labels(self), None, false);
    }

    async fn act(&self, sync: &SyncContext, pass: &Pass<'_, Self>) -> Synced {
        let (Step::Sync(decided), Some(looked)) = (pass.plan, pass.observed) else {
            unreachable!("a deleted TenantSync is released before it acts");
        };
        let ctx = &sync.ctx;
        let namespace = self.namespace().unwrap_or_default();
        let resources = KubeResources {
            ctx,
            secret: pass.secret.map(str::to_string),
            namespace,
        };
        let target = Target {
            spec: &self.spec,
            key: &pass.intent.key,
            object: ObjectRef::from_obj(self),
            resources: &resources,
            launcher: &sync.runner,
            now: pass.now,
        };
        let applied = act(&decided.action, &target).await;
        let mut synced = Synced {
            history: looked.history.clone(),
            attempts: looked.attempts.clone(),
            decided: decided.clone(),
            applied,
        };
        if let Applied::StartFailed(attempt) = &synced.applied {
            synced.history = synced.history.with(attempt);
            synced.attempts.push(attempt.clone());
            let timing = &ctx.settings.timing;
            synced.decided = plan(
                pass.intent,
                &looked.observed,
                &synced.history,
                timing,
                pass.now,
            );
        }
        synced
    }

    fn new_status(
        &self,
        _: &SyncContext,
        pass: &Pass<'_, Self>,
        synced: &Synced,
        previous: &TenantSyncStatus,
    ) -> TenantSyncStatus {
        status::build(&self.inputs(pass, synced, previous))
    }

    async fn tell(
        &self,
        sync: &SyncContext,
        _: &Api<Self>,
        pass: &Pass<'_, Self>,
        synced: &Synced,
        status: Change<'_, TenantSyncStatus>,
    ) -> Result<Next, ReconcileError> {
        let ctx = &sync.ctx;
        let inputs = self.inputs(pass, synced, status.previous);
        tell(ctx, self, &inputs, status.new).await;
        if let Some(finished) = pass
            .observed
            .as_ref()
            .and_then(|l| l.observed.finished.as_ref())
        {
            sync.runner.acknowledge(&pass.intent.key, finished.id);
        }
        let label = metric_label(&synced.attempts, &synced.decided, status.new);
        let safety_net = ctx.settings.timing.resync;
        Ok(Next {
            requeue: synced
                .decided
                .requeue
                .map_or(safety_net, |r| r.min(safety_net)),
            failure: (label != SUCCESS).then_some(label),
        })
    }
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

/// The reconcile metric's label of a pass that failed nothing.
const SUCCESS: &str = "success";

/// The reconcile metric's label: the reason of an attempt that failed now, of a prerequisite
/// that does not hold, or `success`.
fn metric_label(attempts: &[Attempt], decided: &Plan, status: &TenantSyncStatus) -> &'static str {
    if let Some(failure) = attempts.last().and_then(|a| a.outcome.as_ref().err()) {
        return failure.reason;
    }
    if !matches!(decided.action, Action::Refuse(_) | Action::WaitForConsent) {
        return SUCCESS;
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

/// What the `Released` event of a deleted TenantSync says: where its data stays.
fn release_note(object: &TenantSync) -> String {
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
    format!("the imported data stays {place}; delete it there if it is no longer needed")
}

/// The Kubernetes reads of an import start.
struct KubeResources<'a> {
    ctx: &'a Context,
    namespace: String,
    secret: Option<String>,
}

#[async_trait]
impl Resources for KubeResources<'_> {
    async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        acquire_and_hold(self.ctx, &self.namespace, self.secret.as_deref()).await
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

//! The controllers of one scope, each a `kube` `Controller` run through its reconcile limit and
//! stopped by the shutdown signal, with a future that resolves once its caches are listed.

use super::scope::Scope;
use super::unlisted_stop::or_unlisted_at_shutdown;
use super::watch::{list_in_pages, listed, trim_for_cache, watched_specs};
use super::webhook_triggers::{Requests, ScopeTriggers, Triggers};
use crate::api::{AppConsent, GdapFleet, GdapRelationship, TenantSync};
use crate::controllers::app_consent;
use crate::controllers::context::Context;
use crate::controllers::credentials_in_use;
use crate::controllers::gdap_fleet::reconcile::FleetContext;
use crate::controllers::gdap_relationship;
use crate::controllers::limit::{Limits, ReconcileLimit};
use crate::controllers::pipeline::{self, Pipeline};
use crate::controllers::secrets_by_name::{SecretCheck, secrets_by_name};
use crate::controllers::tenant_sync::{self, Runner, SyncContext};
use crate::shutdown::Shutdown;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

pub(super) type Run = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
pub(super) type Ready = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// The controller of a kind that runs the one reconcile pipeline (GdapRelationship, AppConsent,
/// GdapFleet),
/// in one scope: its objects (spec and lifecycle changes only), reconciled through its limit.
/// `requests` asks for reconciles beside the watch (Partner Center's webhook events); its cache
/// is returned with it.
pub(super) fn pipeline_controller<K>(
    client: &Client,
    scope: &Scope,
    shared: Arc<K::Shared>,
    limit: ReconcileLimit,
    shutdown: &Shutdown,
    requests: impl futures::Stream<Item = ObjectRef<K>> + Send + 'static,
) -> (Run, Ready, reflector::Store<K>)
where
    K: Pipeline + super::watch::Triggers,
{
    let (reader, stream) = watched_specs(scope.api::<K>(client));
    let resync = AsRef::<Context>::as_ref(shared.as_ref())
        .settings
        .timing
        .resync;
    let admitted = limit.admit(reader.clone(), resync, pipeline::reconcile::<K>);
    let controller = Controller::for_stream(stream, reader)
        .reconcile_on(requests)
        .reconcile_on(admitted.starts);
    let store = controller.store();
    let cache = store.clone();
    let run = controller
        .graceful_shutdown_on(shutdown.trigger())
        .run(admitted.reconcile, pipeline::error_policy::<K>, shared)
        .for_each(|result| async move {
            if let Err(e) = result {
                log_controller_error(K::KIND, &e);
            }
        });
    let run = or_unlisted_at_shutdown(K::KIND, run, store.clone(), shutdown);
    (run, Box::pin(listed(store)), cache)
}

/// Logs what a controller's stream reports. A failed reconcile was logged by its error policy
/// already (debug here); a failed watch is the only sign of an API server that is down or of a
/// permission the operator lacks — e.g. `cannot list resource "gdaprelationships"` when the RBAC
/// misses a verb — so it is a warning, repeated only as the watch's backoff retries.
fn log_controller_error<E1, E2>(kind: &str, error: &kube::runtime::controller::Error<E1, E2>)
where
    E2: std::fmt::Display,
    kube::runtime::controller::Error<E1, E2>: std::fmt::Display,
{
    use kube::runtime::controller::Error;
    match error {
        Error::QueueError(e) => {
            tracing::warn!(kind, error = %e, "watching failed; retrying with backoff")
        }
        other => tracing::debug!(kind, error = %other, "controller event"),
    }
}

/// The TenantSync controller of one scope: its objects (filtered like the relationships), the
/// AppConsents they name (a change of one reconciles the TenantSyncs naming it; their watch cache
/// is where the controller reads readiness) and the ends of imports, which the runner reports.
pub(super) fn sync_controller(
    client: &Client,
    scope: &Scope,
    ctx: Arc<Context>,
    runner: Runner,
    ended: mpsc::UnboundedReceiver<ObjectRef<TenantSync>>,
    limit: ReconcileLimit,
    shutdown: &Shutdown,
) -> (Run, Ready) {
    let (consents, consents_writer) = reflector::store::<AppConsent>();
    let consent_changes = watcher(scope.api::<AppConsent>(client), list_in_pages())
        .default_backoff()
        .modify(trim_for_cache)
        .reflect(consents_writer)
        .touched_objects();
    let (reader, stream) = watched_specs(scope.api::<TenantSync>(client));
    let syncs = reader.clone();
    let resync = ctx.settings.timing.resync;
    let admitted = limit.admit(reader.clone(), resync, pipeline::reconcile::<TenantSync>);
    let ended = futures::stream::unfold(
        ended,
        |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
    );
    let controller = Controller::for_stream(stream, reader)
        .watches_stream(consent_changes, move |consent: AppConsent| {
            naming_consent(&syncs, &consent)
        })
        .reconcile_on(ended)
        .reconcile_on(admitted.starts);
    let store = controller.store();
    let sync = Arc::new(SyncContext {
        ctx,
        runner,
        consents: consents.clone(),
    });
    let run = controller
        .graceful_shutdown_on(shutdown.trigger())
        .run(
            admitted.reconcile,
            pipeline::error_policy::<TenantSync>,
            sync,
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "TenantSync controller event");
            }
        });
    let run = or_unlisted_at_shutdown(tenant_sync::reconcile::KIND, run, store.clone(), shutdown);
    let ready = async move { listed(store).await && listed(consents).await };
    (run, Box::pin(ready))
}

/// The TenantSyncs that name `consent` (same namespace, `spec.appConsentRef.name`).
fn naming_consent(
    syncs: &reflector::Store<TenantSync>,
    consent: &AppConsent,
) -> Vec<ObjectRef<TenantSync>> {
    let namespace = consent.namespace();
    let name = consent.name_any();
    syncs
        .state()
        .iter()
        .filter(|s| s.namespace() == namespace && s.spec.app_consent_ref.name == name)
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// The credentials Secret controller of one scope. It neither lists nor watches Secrets: the
/// Secrets come from the checks the other controllers send, each read by name
/// (`secrets_by_name`), so the operator's RBAC can name the Secrets it may use.
pub(super) fn secret_controller(
    client: &Client,
    checks: mpsc::UnboundedReceiver<SecretCheck>,
    ctx: Arc<Context>,
    limit: ReconcileLimit,
    shutdown: &Shutdown,
) -> (Run, Ready) {
    let (store, writer) = reflector::store::<Secret>();
    let secrets = secrets_by_name(client.clone(), checks, writer);
    let resync = ctx.settings.timing.resync;
    let admitted = limit.admit(store.clone(), resync, credentials_in_use::reconcile);
    let controller = Controller::for_stream(secrets, store.clone()).reconcile_on(admitted.starts);
    let run = controller
        .graceful_shutdown_on(shutdown.trigger())
        .run(admitted.reconcile, secret_error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                log_controller_error("Secret", &e);
            }
        });
    let run = or_unlisted_at_shutdown("Secret", run, store.clone(), shutdown);
    (run, Box::pin(listed(store)))
}

fn secret_error_policy(
    _secret: Arc<Secret>,
    error: &credentials_in_use::SecretError,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(%error, "credentials Secret check failed; retrying");
    Action::requeue(ctx.settings.timing.poll)
}

/// `/readyz` turns ready once every controller's first list is complete.
pub(super) async fn mark_ready_when_listed(stores: Vec<Ready>, ready: Arc<AtomicBool>) {
    let listed = futures::future::join_all(stores).await;
    if listed.iter().all(|ok| *ok) {
        ready.store(true, Ordering::SeqCst);
        tracing::info!("caches synced; ready");
    }
}

/// What every controller of every scope shares.
pub(super) struct Shared<'a> {
    pub client: &'a Client,
    pub ctx: Arc<Context>,
    pub runner: Runner,
    pub limits: &'a Limits,
    pub shutdown: &'a Shutdown,
    /// Where Partner Center's webhook events find the objects to reconcile.
    pub triggers: &'a Triggers,
}

/// The five controllers of one scope (GdapRelationship, AppConsent, the credentials Secrets,
/// TenantSync, GdapFleet, in that order), each with the future that resolves once its caches are
/// listed.
pub(super) fn of_scope(
    shared: &Shared<'_>,
    scope: &Scope,
    checks: mpsc::UnboundedReceiver<SecretCheck>,
    ended: mpsc::UnboundedReceiver<ObjectRef<TenantSync>>,
) -> [(Run, Ready); 5] {
    let Shared {
        client,
        ctx,
        runner,
        limits,
        shutdown,
        triggers,
    } = shared;
    let (to_relationships, relationship_requests) = Requests::new().split();
    let (to_consents, consent_requests) = Requests::new().split();
    let (to_fleets, fleet_requests) = Requests::new().split();
    let (run, ready, relationship_cache) = pipeline_controller::<GdapRelationship>(
        client,
        scope,
        ctx.clone(),
        limits.next(gdap_relationship::reconcile::KIND),
        shutdown,
        relationship_requests,
    );
    let relationships = (run, ready);
    ctx.metrics
        .relationship_caches
        .add(relationship_cache.clone());
    let (run, ready, consent_cache) = pipeline_controller::<AppConsent>(
        client,
        scope,
        ctx.clone(),
        limits.next(app_consent::reconcile::KIND),
        shutdown,
        consent_requests,
    );
    let consents = (run, ready);
    triggers.add(ScopeTriggers {
        relationships: relationship_cache,
        consents: consent_cache,
        to_relationships,
        to_consents,
        to_fleets,
    });
    let secrets = secret_controller(client, checks, ctx.clone(), limits.next("Secret"), shutdown);
    let syncs = sync_controller(
        client,
        scope,
        ctx.clone(),
        runner.clone(),
        ended,
        limits.next(tenant_sync::reconcile::KIND),
        shutdown,
    );
    let fleet = Arc::new(FleetContext {
        ctx: ctx.clone(),
        lists: Default::default(),
    });
    let (run, ready, _) = pipeline_controller::<GdapFleet>(
        client,
        scope,
        fleet,
        limits.next(crate::controllers::gdap_fleet::reconcile::KIND),
        shutdown,
        fleet_requests,
    );
    let fleets = (run, ready);
    [relationships, consents, secrets, syncs, fleets]
}

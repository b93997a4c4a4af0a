//! A shutdown asked for before a controller's cache had its first list ends that controller at
//! once.
//!
//! kube-runtime's graceful shutdown (`Controller::graceful_shutdown_on`) stops the controller's
//! watch and then waits for its runner to finish the reconciles in flight. But the runner holds
//! every reconcile until the cache has its first list, and while it is held it does not end: once
//! the watch is stopped that list can no longer come, so the controller never ends, and neither
//! does the process. That is the case of a SIGTERM while a watch is refused (the RBAC lacks
//! `list`, the API server is down) or before a slow first list — a rollout right after a start,
//! a pod stopped during an API server outage: Kubernetes would wait out the grace period and kill
//! the operator.
//!
//! Before the first list no reconcile can have started (kube's runner waits for it; the list,
//! once complete, stays complete), so nothing is cut short by dropping the controller then. Once
//! the cache was listed, kube's graceful shutdown goes on as it is.

use crate::shutdown::Shutdown;
use futures::FutureExt;
use kube::runtime::reflector::Store;
use std::future::Future;
use std::pin::Pin;

/// `run` (a kube controller stopped gracefully by `shutdown`), which also ends when the shutdown
/// is asked for before `cache` — the store kube's runner waits on — had its first list.
pub(super) fn or_unlisted_at_shutdown<K>(
    kind: &'static str,
    run: impl Future<Output = ()> + Send + 'static,
    cache: Store<K>,
    shutdown: &Shutdown,
) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let shutdown = shutdown.clone();
    Box::pin(async move {
        tokio::select! {
            biased;
            _ = run => {}
            _ = unlisted_at_shutdown(cache, shutdown) => {
                tracing::info!(kind, "stopped before the first list of its objects; nothing was reconciled");
            }
        }
    })
}

/// Resolves when a shutdown is asked for and `cache` has not had its first list; never
/// otherwise.
async fn unlisted_at_shutdown<K>(cache: Store<K>, shutdown: Shutdown)
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    shutdown.requested().await;
    // One look, not a wait: a wait would take the wake-up kube's runner waits for (the
    // readiness signal keeps one); when the cache is not listed the runner is dropped anyway.
    let listed = matches!(cache.wait_until_ready().now_or_never(), Some(Ok(())));
    if listed {
        futures::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::controller::Action;
    use kube::runtime::{Controller, reflector, watcher};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::{Notify, Semaphore};

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;

    fn config_map() -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("cm".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// A controller of `watch` over `cache` whose reconcile announces its start on `started` and
    /// ends when `finish` has a permit; gracefully stopped by `shutdown`.
    fn controller(
        watch: impl futures::Stream<Item = Result<ConfigMap, watcher::Error>> + Send + 'static,
        cache: Store<ConfigMap>,
        shutdown: &Shutdown,
        started: Arc<Notify>,
        finish: Arc<Semaphore>,
    ) -> impl Future<Output = ()> + Send + 'static {
        Controller::for_stream(watch, cache)
            .graceful_shutdown_on(shutdown.trigger())
            .run(
                move |_object, _ctx: Arc<()>| {
                    let started = started.clone();
                    let finish = finish.clone();
                    async move {
                        started.notify_one();
                        let _ = finish.acquire().await;
                        Ok::<_, Never>(Action::await_change())
                    }
                },
                |_, _, _| Action::await_change(),
                Arc::new(()),
            )
            .for_each(|_| async {})
    }

    #[tokio::test]
    async fn a_shutdown_before_the_first_list_ends_the_controller_which_kube_alone_would_not() {
        let (shutdown, ask) = Shutdown::asked_by_hand();
        // A controller whose watch never lists: its store is never ready (the writer is kept,
        // as a stopped watch keeps it; a dropped one would end kube's wait).
        let never_listed = || {
            let (cache, writer) = reflector::store::<ConfigMap>();
            let watch = futures::stream::pending();
            let run = controller(
                watch,
                cache.clone(),
                &shutdown,
                Default::default(),
                Arc::new(Semaphore::new(0)),
            );
            (run, cache, writer)
        };
        let (alone, _, _kept) = never_listed();
        let (run, cache, _kept_too) = never_listed();
        let wrapped = or_unlisted_at_shutdown("ConfigMap", run, cache, &shutdown);
        let alone = tokio::spawn(alone);
        let wrapped = tokio::spawn(wrapped);
        ask();
        tokio::time::timeout(Duration::from_secs(10), wrapped)
            .await
            .expect("the controller ends at once")
            .unwrap();
        // kube's own graceful shutdown waits for a list that cannot come (the reason for this
        // module): if this fails, kube-runtime fixed it and the module can go.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !alone.is_finished(),
            "kube alone ends an unlisted controller"
        );
        alone.abort();
    }

    #[tokio::test]
    async fn a_shutdown_after_the_first_list_waits_for_the_reconcile_in_flight() {
        let (shutdown, ask) = Shutdown::asked_by_hand();
        let (cache, mut writer) = reflector::store::<ConfigMap>();
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitApply(config_map()));
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let watch = futures::stream::iter([Ok(config_map())]).chain(futures::stream::pending());
        let started = Arc::new(Notify::new());
        let finish = Arc::new(Semaphore::new(0));
        let run = controller(
            watch,
            cache.clone(),
            &shutdown,
            started.clone(),
            finish.clone(),
        );
        let run = tokio::spawn(or_unlisted_at_shutdown("ConfigMap", run, cache, &shutdown));
        tokio::time::timeout(Duration::from_secs(10), started.notified())
            .await
            .expect("the reconcile starts");
        ask();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!run.is_finished(), "the reconcile in flight was cut short");
        finish.add_permits(1);
        tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the controller ends once the reconcile finished")
            .unwrap();
    }
}

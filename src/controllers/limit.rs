//! A fair limit on how many objects of one kind are reconciled at once (`--reconcile-concurrency`).
//!
//! kube-runtime's own limit (`controller::Config::concurrency`) keeps the objects it holds back
//! in a set and starts whichever it finds first, so under a saturated limit one object can wait
//! for minutes while others go round again. Here kube starts every reconcile at once, and each
//! one waits for a permit of a Tokio semaphore, which hands permits out first come, first
//! served. A waiting reconcile holds only its object's `Arc` and a small future: the reconcile
//! itself is built once the permit is granted, so the Kubernetes and Microsoft requests — and
//! the memory they take — are bounded by the limit.
//!
//! On shutdown ([`ReconcileLimit::close`]) the reconciles still waiting end at once without
//! running (the next process reconciles them anyway); those holding a permit finish.

use crate::metrics::{Held, KindLabels};
use futures::future::BoxFuture;
use kube::runtime::controller::Action;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The default of `--reconcile-concurrency`: enough to keep the API server busy (a reconcile is
/// mostly waiting on it), small enough to bound the burst after a start. A reconcile that waits
/// out Microsoft's `Retry-After` keeps its permit meanwhile.
pub const DEFAULT_RECONCILE_CONCURRENCY: u16 = 32;

/// The limits of a process's controllers, one per kind and scope, closed together on shutdown.
#[derive(Debug)]
pub struct Limits {
    limit: u16,
    waiting: Family<KindLabels, Gauge>,
    made: std::sync::Mutex<Vec<ReconcileLimit>>,
}

impl Limits {
    /// Each controller's limit will be `limit` (0: none); `waiting` counts the reconciles
    /// waiting for a slot, by kind (`gdap_reconciles_waiting`).
    pub fn new(limit: u16, waiting: Family<KindLabels, Gauge>) -> Self {
        Limits {
            limit,
            waiting,
            made: Default::default(),
        }
    }

    /// The limit of one more controller, of `kind`.
    pub fn next(&self, kind: &str) -> ReconcileLimit {
        let waiting = self
            .waiting
            .get_or_create(&KindLabels { kind: kind.into() })
            .clone();
        let limit = ReconcileLimit::new(self.limit).counting_waits_in(waiting);
        self.made.lock().expect("limits lock").push(limit.clone());
        limit
    }

    /// Closes every limit once a shutdown is asked for, when kube's controllers stop starting
    /// reconciles.
    pub async fn close_on_shutdown(self, shutdown: crate::shutdown::Shutdown) {
        shutdown.requested().await;
        for limit in self.made.lock().expect("limits lock").iter() {
            limit.close();
        }
    }
}

/// The limit of one controller (one kind in one scope); cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ReconcileLimit {
    /// `None`: no limit.
    permits: Option<Arc<Semaphore>>,
    /// How many reconciles wait for a permit now.
    waiting: Gauge,
}

impl ReconcileLimit {
    /// At most `limit` reconciles at once; 0 is no limit.
    pub fn new(limit: u16) -> Self {
        ReconcileLimit {
            permits: (limit > 0).then(|| Arc::new(Semaphore::new(usize::from(limit)))),
            waiting: Gauge::default(),
        }
    }

    /// The same limit, counting the reconciles waiting for a permit in `waiting`.
    pub fn counting_waits_in(self, waiting: Gauge) -> Self {
        ReconcileLimit { waiting, ..self }
    }

    /// Ends the waits: reconciles not yet started return without running; no new ones start.
    pub fn close(&self) {
        if let Some(permits) = &self.permits {
            permits.close();
        }
    }

    /// `reconcile`, started only once a permit is free, in the order the reconciles arrived.
    pub fn wrap<K, C, E, Fut>(
        self,
        reconcile: impl Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    ) -> impl FnMut(Arc<K>, Arc<C>) -> BoxFuture<'static, Result<Action, E>>
    where
        K: Send + Sync + 'static,
        C: Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let reconcile = Arc::new(reconcile);
        let (permits, waiting) = (self.permits, self.waiting);
        move |object, ctx| {
            let reconcile = reconcile.clone();
            let (permits, waiting) = (permits.clone(), waiting.clone());
            Box::pin(async move {
                let _permit = match permits {
                    None => None,
                    Some(permits) => {
                        // Counted until the wait ends: granted, closed or cancelled.
                        let _waiting = Held::new(&waiting);
                        match permits.acquire_owned().await {
                            Ok(permit) => Some(permit),
                            // Shutting down: leave the object for the next start.
                            Err(_closed) => return Ok(Action::await_change()),
                        }
                    }
                };
                // Boxed so that a waiting reconcile does not carry the reconcile's own state.
                Box::pin(reconcile(object, ctx)).await
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Records which objects ran, in order, and the most that ran at once.
    #[derive(Default)]
    struct Probe {
        order: Mutex<Vec<u32>>,
        running: AtomicUsize,
        most: AtomicUsize,
    }

    async fn probe_reconcile(object: Arc<u32>, probe: Arc<Probe>) -> Result<Action, String> {
        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        probe.most.fetch_max(now, Ordering::SeqCst);
        probe.order.lock().unwrap().push(*object);
        tokio::time::sleep(Duration::from_millis(10)).await;
        probe.running.fetch_sub(1, Ordering::SeqCst);
        Ok(Action::requeue(Duration::from_secs(*object as u64)))
    }

    async fn run_all(limit: &ReconcileLimit, objects: u32) -> (Arc<Probe>, Vec<Action>) {
        let probe = Arc::new(Probe::default());
        let mut reconcile = limit.clone().wrap(probe_reconcile);
        let mut started = Vec::new();
        for object in 0..objects {
            started.push(tokio::spawn(reconcile(Arc::new(object), probe.clone())));
            // Each reconcile reaches the semaphore before the next one is started.
            tokio::task::yield_now().await;
        }
        let mut actions = Vec::new();
        for task in started {
            actions.push(task.await.unwrap().unwrap());
        }
        (probe, actions)
    }

    #[tokio::test(start_paused = true)]
    async fn reconciles_run_at_most_limit_at_once_in_arrival_order() {
        let (probe, actions) = run_all(&ReconcileLimit::new(3), 20).await;
        assert_eq!(probe.most.load(Ordering::SeqCst), 3);
        assert_eq!(*probe.order.lock().unwrap(), (0..20).collect::<Vec<_>>());
        let expected: Vec<_> = (0..20)
            .map(|o| Action::requeue(Duration::from_secs(o)))
            .collect();
        assert_eq!(actions, expected, "each reconcile's own result is returned");
    }

    #[tokio::test(start_paused = true)]
    async fn zero_is_no_limit() {
        let (probe, _) = run_all(&ReconcileLimit::new(0), 20).await;
        assert_eq!(probe.most.load(Ordering::SeqCst), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_ends_the_waiting_reconciles_without_running_them() {
        let waits = Gauge::default();
        let limit = ReconcileLimit::new(1).counting_waits_in(waits.clone());
        let probe = Arc::new(Probe::default());
        let mut reconcile = limit.clone().wrap(probe_reconcile);
        let first = tokio::spawn(reconcile(Arc::new(1), probe.clone()));
        tokio::task::yield_now().await;
        let waiting = tokio::spawn(reconcile(Arc::new(2), probe.clone()));
        tokio::task::yield_now().await;
        assert_eq!(waits.get(), 1, "the second reconcile waits");
        limit.close();
        assert_eq!(waiting.await.unwrap(), Ok(Action::await_change()));
        assert_eq!(
            first.await.unwrap(),
            Ok(Action::requeue(Duration::from_secs(1))),
            "the reconcile holding a permit finishes"
        );
        assert_eq!(*probe.order.lock().unwrap(), vec![1]);
        assert_eq!(waits.get(), 0, "nothing waits any more");
    }
}

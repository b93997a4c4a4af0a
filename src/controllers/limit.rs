//! A fair limit on how many objects of one kind are reconciled at once (`--reconcile-concurrency`).
//!
//! kube-runtime's own limit (`controller::Config::concurrency`) keeps the objects it holds back
//! in a set and starts whichever it finds first, so under a saturated limit one object can wait
//! for minutes while others go round again. Here the objects without a slot wait in a queue of
//! our own, served first come, first served ([`admission`]): kube is told such a reconcile is done
//! and is handed the object back, through the controller's `reconcile_on` stream, once a slot is
//! reserved for it. So kube holds only the running reconciles (it polls every one it holds
//! whenever one makes progress), and the Kubernetes and Microsoft requests — and the memory they
//! take — are bounded by the limit.
//!
//! On shutdown ([`ReconcileLimit::close`]) nothing more is admitted: the waiting objects are left
//! to the next process, which reconciles them anyway; those holding a slot finish.

mod admission;

use crate::metrics::KindLabels;
use admission::{Admission, Entry};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

pub use admission::UNCLAIMED_AFTER;

/// The default of `--reconcile-concurrency`: enough to keep the API server busy (a reconcile is
/// mostly waiting on it), small enough to bound the burst after a start. A reconcile that waits
/// out Microsoft's `Retry-After` keeps its slot meanwhile.
pub const DEFAULT_RECONCILE_CONCURRENCY: u16 = 32;

/// The limits of a process's controllers, one per kind and scope, closed together on shutdown.
#[derive(Debug)]
pub struct Limits {
    limit: u16,
    waiting: Family<KindLabels, Gauge>,
    made: std::sync::Mutex<Vec<ReconcileLimit>>,
}

impl Limits {
    /// Each controller's limit will be `limit` (0: none); `waiting` counts the objects waiting
    /// for a slot, by kind (`gdap_reconciles_waiting`).
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
#[derive(Debug, Clone)]
pub struct ReconcileLimit {
    /// The slots (as many as tokio allows for no limit).
    permits: Arc<Semaphore>,
    /// Wakes the admission on shutdown.
    closed: Arc<Notify>,
    /// How many objects wait for a slot now.
    waiting: Gauge,
}

impl Default for ReconcileLimit {
    fn default() -> Self {
        ReconcileLimit::new(0)
    }
}

/// A reconcile as kube runs it.
pub type Reconciling<E> = BoxFuture<'static, Result<Action, E>>;

/// A controller's reconcile under its limit: what kube calls, and the stream of objects kube must
/// reconcile again — a slot was reserved for them, or their resync is due — (give it to
/// `Controller::reconcile_on`).
pub struct Admitted<F, K: Resource> {
    pub reconcile: F,
    pub starts: BoxStream<'static, ObjectRef<K>>,
}

impl ReconcileLimit {
    /// At most `limit` reconciles at once; 0 is no limit.
    pub fn new(limit: u16) -> Self {
        let slots = match limit {
            0 => Semaphore::MAX_PERMITS,
            limit => usize::from(limit),
        };
        ReconcileLimit {
            permits: Arc::new(Semaphore::new(slots)),
            closed: Default::default(),
            waiting: Gauge::default(),
        }
    }

    /// The same limit, counting the objects waiting for a slot in `waiting`.
    pub fn counting_waits_in(self, waiting: Gauge) -> Self {
        ReconcileLimit { waiting, ..self }
    }

    /// Ends the waits: no object is admitted any more; no new reconcile starts.
    pub fn close(&self) {
        self.permits.close();
        self.closed.notify_waiters();
    }

    /// `reconcile`, run only with a slot, objects served in the order they arrived; `cache` is
    /// the controller's watch cache (an object deleted while it waited is not handed back). A
    /// reconcile that asks to look again after `resync` (a steady object) waits for it here,
    /// not in kube-runtime's scheduler.
    pub fn admit<K, C, E, Fut>(
        self,
        cache: Store<K>,
        resync: Duration,
        reconcile: impl Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    ) -> Admitted<impl FnMut(Arc<K>, Arc<C>) -> Reconciling<E>, K>
    where
        K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
        C: Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let reconcile = Arc::new(reconcile);
        let admission = Arc::new(Admission::new(
            self.permits,
            self.closed,
            cache,
            self.waiting,
            resync,
        ));
        let starts =
            futures::stream::select(admitted(admission.clone()), resyncs(admission.clone()));
        let reconcile = move |object: Arc<K>, ctx: Arc<C>| {
            let reconcile = reconcile.clone();
            let admission = admission.clone();
            Box::pin(async move {
                let _slot = match admission.enter(&object) {
                    Entry::Run(slot) => slot,
                    // Handed back to kube in its turn, or left to the next start.
                    Entry::Queued | Entry::Closed => return Ok(Action::await_change()),
                };
                // Boxed so that kube's slot does not carry the reconcile's own state inline.
                match Box::pin(reconcile(object.clone(), ctx)).await {
                    Ok(next) => Ok(admission.after(&object, next)),
                    // The error policy decides when to look again; a resync kept before goes.
                    Err(error) => {
                        admission.after(&object, Action::await_change());
                        Err(error)
                    }
                }
            }) as Reconciling<E>
        };
        Admitted {
            reconcile,
            starts: starts.boxed(),
        }
    }
}

/// The objects a slot was reserved for, in their turn.
fn admitted<K>(admission: Arc<Admission<K>>) -> impl futures::Stream<Item = ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    futures::stream::unfold(admission, |admission| async move {
        let next = admission.next_start().await?;
        Some((next, admission))
    })
}

/// The steady objects whose resync is due.
fn resyncs<K>(admission: Arc<Admission<K>>) -> impl futures::Stream<Item = ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let mut tick = tokio::time::interval(admission.resync_tick());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold(
        (admission, tick, Vec::new()),
        |(admission, mut tick, mut due)| async move {
            let next = admission.next_resync(&mut tick, &mut due).await?;
            Some((next, (admission, tick, due)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::ResourceExt;
    use kube::runtime::reflector::{self, store::Writer};
    use kube::runtime::watcher;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::task::JoinHandle;

    /// Records which objects ran, in order, and the most that ran at once.
    #[derive(Default)]
    struct Probe {
        order: Mutex<Vec<u64>>,
        running: AtomicUsize,
        most: AtomicUsize,
    }

    impl Probe {
        fn order(&self) -> Vec<u64> {
            self.order.lock().unwrap().clone()
        }
    }

    /// Runs 10 ms (paused clock) and asks to be requeued after as many seconds as its name says.
    async fn probe_reconcile(object: Arc<ConfigMap>, probe: Arc<Probe>) -> Result<Action, String> {
        let n: u64 = object.name_any().parse().unwrap();
        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        probe.most.fetch_max(now, Ordering::SeqCst);
        probe.order.lock().unwrap().push(n);
        tokio::time::sleep(Duration::from_millis(10)).await;
        probe.running.fetch_sub(1, Ordering::SeqCst);
        Ok(Action::requeue(Duration::from_secs(n)))
    }

    fn config_map(n: u64) -> ConfigMap {
        admission::tests::config_map(&n.to_string())
    }

    type Results = Arc<Mutex<Vec<(u64, Action)>>>;

    /// Plays kube's part: starts reconciles, and starts again each object the limit hands back.
    struct Kube {
        cache_writer: Writer<ConfigMap>,
        probe: Arc<Probe>,
        start: Arc<dyn Fn(u64) -> JoinHandle<()> + Send + Sync>,
        results: Results,
        /// Objects handed back that kube does not start (as if deleted meanwhile).
        lost: Arc<Mutex<Vec<u64>>>,
        /// Every object handed back, in order.
        handed_back: Arc<Mutex<Vec<u64>>>,
        handing_back: JoinHandle<()>,
    }

    impl Kube {
        fn new(limit: &ReconcileLimit, objects: u64) -> Kube {
            Kube::resyncing_after(limit, objects, Duration::from_secs(3600))
        }

        /// Reconciles asking to look again after `resync` are steady.
        fn resyncing_after(limit: &ReconcileLimit, objects: u64, resync: Duration) -> Kube {
            let (cache, mut cache_writer) = reflector::store::<ConfigMap>();
            for n in 0..objects {
                cache_writer.apply_watcher_event(&watcher::Event::Apply(config_map(n)));
            }
            let probe = Arc::new(Probe::default());
            let Admitted { reconcile, starts } =
                limit.clone().admit(cache.clone(), resync, probe_reconcile);
            let reconcile = Mutex::new(reconcile);
            let results = Results::default();
            let start: Arc<dyn Fn(u64) -> JoinHandle<()> + Send + Sync> = {
                let (cache, probe, results) = (cache.clone(), probe.clone(), results.clone());
                Arc::new(move |n| {
                    let object = cache.get(&ObjectRef::new(&n.to_string()).within("ns"));
                    let run = object.map(|o| (reconcile.lock().unwrap())(o, probe.clone()));
                    let results = results.clone();
                    tokio::spawn(async move {
                        if let Some(run) = run {
                            let action = run.await.unwrap();
                            results.lock().unwrap().push((n, action));
                        }
                    })
                })
            };
            let lost = Arc::new(Mutex::new(Vec::new()));
            let handed_back = Arc::new(Mutex::new(Vec::new()));
            let handing_back = tokio::spawn({
                let (start, lost, handed_back) = (start.clone(), lost.clone(), handed_back.clone());
                async move {
                    let mut starts = starts;
                    while let Some(object) = starts.next().await {
                        let n = object.name.parse().unwrap();
                        handed_back.lock().unwrap().push(n);
                        if !lost.lock().unwrap().contains(&n) {
                            start(n);
                        }
                    }
                }
            });
            Kube {
                cache_writer,
                probe,
                start,
                results,
                lost,
                handed_back,
                handing_back,
            }
        }

        /// Starts the reconciles of `objects`, each reaching the limit before the next starts.
        async fn start_all(&self, objects: impl IntoIterator<Item = u64>) {
            for n in objects {
                (self.start)(n);
                tokio::task::yield_now().await;
            }
        }

        /// Waits (paused clock) until `count` reconciles have run.
        async fn until_run(&self, count: usize) {
            tokio::time::timeout(Duration::from_secs(600), async {
                while self.probe.order().len() < count {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .expect("the reconciles ran");
        }

        /// The results kube got for `n`, in order.
        fn results_of(&self, n: u64) -> Vec<Action> {
            let results = self.results.lock().unwrap();
            results
                .iter()
                .filter(|r| r.0 == n)
                .map(|r| r.1.clone())
                .collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reconciles_run_at_most_limit_at_once_in_arrival_order() {
        let kube = Kube::new(&ReconcileLimit::new(3), 20);
        kube.start_all((0..20).rev()).await;
        kube.until_run(20).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(kube.probe.most.load(Ordering::SeqCst), 3);
        assert_eq!(kube.probe.order(), (0..20).rev().collect::<Vec<_>>());
        for n in 0..20 {
            let ran = Action::requeue(Duration::from_secs(n));
            let expected = if n >= 17 {
                vec![ran]
            } else {
                // Told done at once, then handed back and run in its turn.
                vec![Action::await_change(), ran]
            };
            assert_eq!(kube.results_of(n), expected, "object {n}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn kube_holds_only_the_running_reconciles() {
        let waits = Gauge::default();
        let kube = Kube::new(&ReconcileLimit::new(2).counting_waits_in(waits.clone()), 10);
        kube.start_all(0..10).await;
        assert_eq!(waits.get(), 8, "eight objects wait in the queue");
        let told_done = kube.results.lock().unwrap().len();
        assert_eq!(
            told_done, 8,
            "kube was told at once that the waiting ones are done"
        );
        kube.until_run(10).await;
        assert_eq!(waits.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_triggered_again_while_waiting_waits_once_in_its_place() {
        let kube = Kube::new(&ReconcileLimit::new(1), 4);
        kube.start_all([0, 1, 2, 1, 3, 1]).await;
        kube.until_run(4).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(kube.probe.order(), vec![0, 1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_object_waits_for_its_resync_here_not_in_kube() {
        // Object 5 asks to look again after 5 s, the resync interval: steady.
        let kube = Kube::resyncing_after(&ReconcileLimit::new(2), 8, Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        kube.start_all(0..8).await;
        kube.until_run(8).await;
        assert_eq!(
            kube.results_of(5)[0],
            Action::await_change(),
            "kube schedules nothing for the steady object"
        );
        assert_eq!(
            kube.results_of(4),
            vec![
                Action::await_change(),
                Action::requeue(Duration::from_secs(4))
            ],
            "any other answer goes to kube as it is"
        );
        kube.until_run(9).await;
        let waited = started.elapsed();
        assert_eq!(kube.probe.order()[8], 5, "handed back for its resync");
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
            "after the resync interval: {waited:?}"
        );
        kube.until_run(10).await;
        assert_eq!(kube.probe.order()[9], 5, "and again, resync after resync");
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_object_deleted_is_not_resynced() {
        let mut kube = Kube::resyncing_after(&ReconcileLimit::new(2), 6, Duration::from_secs(5));
        kube.start_all(0..6).await;
        kube.until_run(6).await;
        kube.cache_writer
            .apply_watcher_event(&watcher::Event::Delete(config_map(5)));
        let handed_before = kube.handed_back.lock().unwrap().len();
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(kube.probe.order().len(), 6, "nothing ran again");
        assert_eq!(
            kube.handed_back.lock().unwrap().len(),
            handed_before,
            "nothing was handed back to kube"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_is_no_limit() {
        let kube = Kube::new(&ReconcileLimit::new(0), 20);
        kube.start_all(0..20).await;
        kube.until_run(20).await;
        assert_eq!(kube.probe.most.load(Ordering::SeqCst), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn an_object_deleted_while_waiting_is_skipped_and_its_turn_passes_on() {
        let mut kube = Kube::new(&ReconcileLimit::new(1), 3);
        kube.start_all(0..3).await;
        kube.cache_writer
            .apply_watcher_event(&watcher::Event::Delete(config_map(1)));
        kube.until_run(2).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(kube.probe.order(), vec![0, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_kube_does_not_claim_is_given_back() {
        let kube = Kube::new(&ReconcileLimit::new(1), 3);
        // Object 1's slot is reserved, but kube never starts it (deleted in between).
        kube.lost.lock().unwrap().push(1);
        let started = tokio::time::Instant::now();
        kube.start_all(0..3).await;
        kube.until_run(2).await;
        assert_eq!(kube.probe.order(), vec![0, 2]);
        let waited = started.elapsed();
        assert!(
            waited >= UNCLAIMED_AFTER && waited < UNCLAIMED_AFTER * 3 / 2,
            "object 2 ran once the unclaimed slot was given back: after {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn closing_ends_the_waits_without_running_them() {
        let waits = Gauge::default();
        let limit = ReconcileLimit::new(1).counting_waits_in(waits.clone());
        let mut kube = Kube::new(&limit, 3);
        kube.start_all(0..3).await;
        assert_eq!(waits.get(), 2, "two objects wait");
        limit.close();
        tokio::time::timeout(Duration::from_secs(60), &mut kube.handing_back)
            .await
            .expect("nothing more is handed back")
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            kube.probe.order(),
            vec![0],
            "the reconcile holding a slot finished"
        );
        assert_eq!(waits.get(), 0, "nothing waits any more");
        (kube.start)(1).await.unwrap();
        assert_eq!(
            kube.results_of(1),
            vec![Action::await_change(), Action::await_change()],
            "a reconcile started after the close does not run"
        );
    }
}

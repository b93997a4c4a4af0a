//! First come, first served admission of one controller's reconciles, outside kube-runtime.
//!
//! kube-runtime polls every reconcile it holds whenever one of them makes progress, so it must
//! not hold the objects that only wait for a slot: with a backlog of N objects each step of each
//! running reconcile would cost N polls. A reconcile that finds no free slot is therefore not
//! started: its object goes to the back of a queue and kube is told it is done
//! ([`Action::await_change`]). When a slot frees, the object at the front of the queue gets it
//! (reserved in its name) and is handed back to kube through the controller's `reconcile_on`
//! stream ([`Admission::next_start`]); kube then calls the reconcile again, which finds its
//! reservation and runs. kube holds only the running reconciles; the queue holds an
//! [`ObjectRef`] per waiting object, each once however often it is triggered meanwhile.
//!
//! A reservation that kube does not claim — its object was deleted between the queue and the
//! start — is given back after [`UNCLAIMED_AFTER`].
//!
//! Steady objects wait here for their resync too: a reconcile that asks to look again after the
//! resync interval is recorded as a due time under the object's `namespace/name` (about 100 bytes)
//! instead of in kube-runtime's scheduler (two copies of a full object reference with its
//! resource version and uid, about 650 bytes), and handed back to kube when it is due
//! ([`Admission::next_resync`]).

use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use prometheus_client::metrics::gauge::Gauge;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How long a slot reserved for an object waits for kube to start its reconcile before it is
/// given back (kube starts it at once unless the object was deleted meanwhile).
pub const UNCLAIMED_AFTER: Duration = Duration::from_secs(30);

/// What a reconcile kube starts may do.
pub(super) enum Entry {
    /// Run, holding this slot until it ends.
    Run(OwnedSemaphorePermit),
    /// Wait in the queue: return to kube at once; the object is handed back in its turn.
    Queued,
    /// The process is shutting down: leave the object to the next start.
    Closed,
}

/// The queue and the reservations of one controller.
pub(super) struct Admission<K: Resource<DynamicType = ()> + 'static> {
    permits: Arc<Semaphore>,
    /// The controller's watch cache: an object deleted while it waited is skipped.
    cache: Store<K>,
    state: Mutex<Waiting<K>>,
    /// Wakes [`Admission::next_start`] when the queue is no longer empty.
    arrived: Notify,
    /// Wakes it on shutdown.
    closed: Arc<Notify>,
    /// How many objects wait in the queue (`gdap_reconciles_waiting`).
    waiting: Gauge,
    /// The steady objects' next resync, by `namespace/name`.
    resyncs: Mutex<HashMap<Box<str>, Instant>>,
    /// The resync interval: a reconcile asking for exactly this is steady.
    resync: Duration,
}

struct Waiting<K: Resource<DynamicType = ()>> {
    queue: VecDeque<ObjectRef<K>>,
    queued: HashSet<ObjectRef<K>>,
    reserved: HashMap<ObjectRef<K>, Reservation>,
}

impl<K: Resource<DynamicType = ()>> Waiting<K> {
    /// An empty queue gives back what a backlog grew it to (after a start, one entry per object
    /// of the kind), which it would otherwise keep.
    fn give_back_if_empty(&mut self) {
        const KEPT: usize = 64;
        if self.queue.is_empty() && self.queue.capacity() > KEPT {
            self.queue = VecDeque::new();
        }
        if self.queued.is_empty() && self.queued.capacity() > KEPT {
            self.queued = HashSet::new();
        }
    }
}

struct Reservation {
    slot: OwnedSemaphorePermit,
    since: Instant,
}

impl<K> Admission<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    pub(super) fn new(
        permits: Arc<Semaphore>,
        closed: Arc<Notify>,
        cache: Store<K>,
        waiting: Gauge,
        resync: Duration,
    ) -> Self {
        Admission {
            permits,
            cache,
            state: Mutex::new(Waiting {
                queue: VecDeque::new(),
                queued: HashSet::new(),
                reserved: HashMap::new(),
            }),
            arrived: Notify::new(),
            closed,
            waiting,
            resyncs: Default::default(),
            resync,
        }
    }

    /// Whether the reconcile of `object` that kube starts now may run.
    pub(super) fn enter(&self, object: &K) -> Entry {
        let key = key_of(object);
        let mut state = self.state.lock().expect("admission lock");
        if let Some(reservation) = state.reserved.remove(&key) {
            return Entry::Run(reservation.slot);
        }
        if state.queued.contains(&key) {
            return Entry::Queued;
        }
        if self.permits.is_closed() {
            return Entry::Closed;
        }
        // Nobody waits: a free slot is this object's.
        if state.queue.is_empty()
            && let Ok(slot) = self.permits.clone().try_acquire_owned()
        {
            return Entry::Run(slot);
        }
        state.queued.insert(key.clone());
        state.queue.push_back(key);
        self.waiting.set(state.queue.len() as i64);
        drop(state);
        self.arrived.notify_one();
        Entry::Queued
    }

    /// The next object to hand back to kube, with a slot reserved for it; `None` once the limit
    /// is closed.
    pub(super) async fn next_start(&self) -> Option<ObjectRef<K>> {
        loop {
            if !self.wait_for_queue().await {
                self.forget_waiting();
                return None;
            }
            let slot = match tokio::time::timeout(
                UNCLAIMED_AFTER / 3,
                self.permits.clone().acquire_owned(),
            )
            .await
            {
                Err(_every_slot_busy) => {
                    self.release_unclaimed();
                    continue;
                }
                Ok(Err(_closed)) => {
                    self.forget_waiting();
                    return None;
                }
                Ok(Ok(slot)) => slot,
            };
            if let Some(key) = self.reserve_front(slot) {
                return Some(key);
            }
        }
    }

    /// Waits until an object is queued (true) or the limit is closed (false).
    async fn wait_for_queue(&self) -> bool {
        loop {
            let closing = self.closed.notified();
            tokio::pin!(closing);
            closing.as_mut().enable();
            if self.permits.is_closed() {
                return false;
            }
            if !self.state.lock().expect("admission lock").queue.is_empty() {
                return true;
            }
            tokio::select! {
                _ = self.arrived.notified() => {}
                _ = closing => {}
            }
        }
    }

    /// Reserves `slot` for the first queued object still in the cache and returns it; `None`
    /// (the slot given back) when every queued object was deleted meanwhile.
    fn reserve_front(&self, slot: OwnedSemaphorePermit) -> Option<ObjectRef<K>> {
        let mut state = self.state.lock().expect("admission lock");
        let mut next = None;
        while let Some(key) = state.queue.pop_front() {
            state.queued.remove(&key);
            if self.cache.get(&key).is_some() {
                next = Some(key);
                break;
            }
        }
        self.waiting.set(state.queue.len() as i64);
        state.give_back_if_empty();
        let key = next?;
        let since = Instant::now();
        state
            .reserved
            .insert(key.clone(), Reservation { slot, since });
        Some(key)
    }

    /// On shutdown: the waiting objects are left to the next process.
    fn forget_waiting(&self) {
        let mut state = self.state.lock().expect("admission lock");
        state.queue.clear();
        state.queued.clear();
        state.reserved.clear();
        self.waiting.set(0);
    }

    /// Gives back the slots kube did not claim within [`UNCLAIMED_AFTER`].
    fn release_unclaimed(&self) {
        let mut state = self.state.lock().expect("admission lock");
        state
            .reserved
            .retain(|_, reservation| reservation.since.elapsed() < UNCLAIMED_AFTER);
    }
}

impl<K> Admission<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    /// After a reconcile of `object` that asked for `next`: what kube is to schedule. A steady
    /// object's resync is kept here (kube is told to await a change); any other answer goes to
    /// kube as it is, and drops a resync kept before.
    pub(super) fn after(&self, object: &K, next: Action) -> Action {
        let key = resync_key(object);
        let mut resyncs = self.resyncs.lock().expect("resyncs lock");
        if next == Action::requeue(self.resync) {
            resyncs.insert(key, Instant::now() + self.resync);
            Action::await_change()
        } else {
            resyncs.remove(&key);
            next
        }
    }

    /// The next steady object whose resync is due (looked for every [`Admission::resync_tick`]);
    /// `None` once the limit is closed.
    pub(super) async fn next_resync(
        &self,
        tick: &mut tokio::time::Interval,
        due: &mut Vec<ObjectRef<K>>,
    ) -> Option<ObjectRef<K>> {
        loop {
            if self.permits.is_closed() {
                return None;
            }
            if let Some(next) = due.pop() {
                return Some(next);
            }
            tick.tick().await;
            *due = self.take_due();
        }
    }

    /// How often due resyncs are looked for: a tenth of the interval, at most a second.
    pub(super) fn resync_tick(&self) -> Duration {
        (self.resync / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// The resyncs due now, removed; objects no longer in the cache are dropped.
    fn take_due(&self) -> Vec<ObjectRef<K>> {
        let now = Instant::now();
        let mut due = Vec::new();
        self.resyncs
            .lock()
            .expect("resyncs lock")
            .retain(|key, at| {
                if *at > now {
                    return true;
                }
                let object = match key.split_once('/') {
                    Some((namespace, name)) => ObjectRef::new(name).within(namespace),
                    None => ObjectRef::new(key),
                };
                if self.cache.get(&object).is_some() {
                    due.push(object);
                }
                false
            });
        due
    }
}

/// `namespace/name`, or `name` for a cluster-scoped object.
fn resync_key<K: Resource<DynamicType = ()>>(object: &K) -> Box<str> {
    let name = object.meta().name.as_deref().unwrap_or_default();
    match object.meta().namespace.as_deref() {
        Some(namespace) => format!("{namespace}/{name}").into_boxed_str(),
        None => name.into(),
    }
}

/// The object's reference as kube's scheduler keys it (name and namespace; no resource version).
fn key_of<K: Resource<DynamicType = ()>>(object: &K) -> ObjectRef<K> {
    let mut key = ObjectRef::from_obj(object);
    key.extra = Default::default();
    key
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::{reflector, watcher};

    /// A ConfigMap named `name` in namespace `ns`: an object for the limit's tests.
    pub(in crate::controllers::limit) fn config_map(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_drained_backlog_gives_its_memory_back() {
        let (cache, mut writer) = reflector::store::<ConfigMap>();
        let objects: Vec<_> = (0..500).map(|n| config_map(&n.to_string())).collect();
        for object in &objects {
            writer.apply_watcher_event(&watcher::Event::Apply(object.clone()));
        }
        let slots = Arc::new(Semaphore::new(1));
        let admission = Admission::new(
            slots,
            Default::default(),
            cache,
            Gauge::default(),
            Duration::from_secs(600),
        );
        let Entry::Run(first) = admission.enter(&objects[0]) else {
            panic!("the first object runs at once")
        };
        for object in &objects[1..] {
            assert!(matches!(admission.enter(object), Entry::Queued));
        }
        let grown = admission.state.lock().unwrap().queue.capacity();
        assert!(grown >= 499, "the queue holds the backlog: {grown}");
        drop(first);
        for _ in 1..500 {
            let next = admission.next_start().await.expect("handed back");
            let Entry::Run(slot) = admission.enter(&config_map(&next.name)) else {
                panic!("{} finds its slot", next.name)
            };
            drop(slot);
        }
        let state = admission.state.lock().unwrap();
        assert!(
            state.queue.capacity() <= 64 && state.queued.capacity() <= 64,
            "kept {} and {}",
            state.queue.capacity(),
            state.queued.capacity()
        );
    }
}

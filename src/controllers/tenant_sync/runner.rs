//! Imports run in tasks of their own, never inside a reconcile: a reconcile that decides to start
//! one hands a [`Job`] to the [`Runner`] and returns at once, so a long import never holds up the
//! reconciles of other objects (or of its own object, e.g. its deletion).
//!
//! Contract:
//! - **One global limit.** At most `--sync-concurrency` imports run at once in the process (a
//!   semaphore); the others wait for a slot in the order they were started. The import's start
//!   time is taken when it gets its slot.
//! - **One import per object.** While an object's import runs (or waits), [`Runner::observe`]
//!   reports it and the plan starts no other.
//! - **Hand-back.** When an import ends, its [`Attempt`] is kept for the object and a reconcile
//!   of the object is requested (the receiver returned by [`Runner::new`] feeds the controller's
//!   `reconcile_on`). The reconcile records it in status and then calls
//!   [`Runner::acknowledge`]; until then every reconcile sees it, so a failed status write loses
//!   nothing.
//! - **Cancellation.** [`Runner::cancel`] (the object is being deleted) aborts the task: the
//!   import's future is dropped, which leaves the sink's last good data untouched (see
//!   `crate::sync`).
//! - Metrics: runs by result, duration and rows (`SyncMetrics::record_run`), imports running and
//!   waiting for a slot.

use super::import::{ImportJob, import};
use super::plan::Attempt;
use crate::api::TenantSync;
use crate::metrics::{Held, Metrics};
use chrono::{DateTime, Utc};
use kube::runtime::reflector::ObjectRef;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::AbortHandle;
use tracing::Instrument;

/// One import to run.
pub struct Job {
    /// The object's key (`namespace/name/uid`).
    pub key: String,
    /// The object, to request its reconcile when the import ends.
    pub object: ObjectRef<TenantSync>,
    /// The `gdap.io/sync-now` value the run honours.
    pub request: Option<String>,
    /// What to import, and where.
    pub import: ImportJob,
}

#[derive(Default)]
struct Slot {
    running: Option<(u64, DateTime<Utc>, AbortHandle)>,
    finished: Option<Attempt>,
}

struct Inner {
    permits: Arc<Semaphore>,
    slots: Mutex<HashMap<String, Slot>>,
    ended: mpsc::UnboundedSender<ObjectRef<TenantSync>>,
    metrics: Arc<Metrics>,
    sequence: AtomicU64,
}

/// The imports of the operator process (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Runner(Arc<Inner>);

impl Runner {
    /// A runner of at most `concurrency` imports at once, and the stream of objects whose import
    /// ended (to reconcile them).
    pub fn new(
        concurrency: usize,
        metrics: Arc<Metrics>,
    ) -> (Runner, mpsc::UnboundedReceiver<ObjectRef<TenantSync>>) {
        let (ended, receiver) = mpsc::unbounded_channel();
        let inner = Inner {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            slots: Mutex::new(HashMap::new()),
            ended,
            metrics,
            sequence: AtomicU64::new(1),
        };
        (Runner(Arc::new(inner)), receiver)
    }

    /// Since when the object's import runs (or waits for a slot), and the attempt that ended and
    /// was not acknowledged yet.
    pub fn observe(&self, key: &str) -> (Option<DateTime<Utc>>, Option<Attempt>) {
        let slots = self.0.slots.lock().expect("runner lock");
        match slots.get(key) {
            Some(slot) => (
                slot.running.as_ref().map(|(_, since, _)| *since),
                slot.finished.clone(),
            ),
            None => (None, None),
        }
    }

    /// Starts `job` in a task of its own (it waits there for a slot).
    pub fn launch(&self, job: Job) {
        let id = self.0.sequence.fetch_add(1, Ordering::Relaxed);
        let key = job.key.clone();
        let mut slots = self.0.slots.lock().expect("runner lock");
        let inner = self.0.clone();
        let span = tracing::info_span!("import", key = %key, customer = %job.import.tenant_id);
        let task = tokio::spawn(run(inner, id, job).instrument(span));
        let slot = slots.entry(key).or_default();
        if let Some((_, _, previous)) = slot.running.replace((id, Utc::now(), task.abort_handle()))
        {
            previous.abort();
        }
    }

    /// The attempt `id` of the object is recorded in status: forget it.
    pub fn acknowledge(&self, key: &str, id: u64) {
        let mut slots = self.0.slots.lock().expect("runner lock");
        if let Some(slot) = slots.get_mut(key) {
            if slot.finished.as_ref().is_some_and(|a| a.id == id) {
                slot.finished = None;
            }
            if slot.running.is_none() && slot.finished.is_none() {
                slots.remove(key);
            }
        }
    }

    /// Aborts the object's import, if any, and forgets the object.
    pub fn cancel(&self, key: &str) {
        let slot = self.0.slots.lock().expect("runner lock").remove(key);
        if let Some((_, _, task)) = slot.and_then(|s| s.running) {
            task.abort();
        }
    }
}

/// The task of one import: wait for a slot, import, hand the attempt back.
async fn run(inner: Arc<Inner>, id: u64, job: Job) {
    let sync = &inner.metrics.sync;
    let waiting = Held::new(&sync.runs_waiting);
    let Ok(permit) = inner.permits.clone().acquire_owned().await else {
        return; // the semaphore is never closed
    };
    drop(waiting);
    let running = Held::new(&sync.runs_running);
    let started_at = Utc::now();
    tracing::info!("import started");
    let outcome = import(&job.import).await;
    let finished_at = Utc::now();
    // The gauge first: once the slot is free another import raises it, and the gauge must never
    // show more imports running than --sync-concurrency allows.
    drop(running);
    drop(permit);
    sync.record_run(
        &outcome,
        (finished_at - started_at).to_std().unwrap_or_default(),
    );
    match &outcome {
        Ok(report) => tracing::info!(
            users = report.users.total,
            kind = report.kind.as_str(),
            seconds = report.duration.as_secs_f64(),
            "import succeeded"
        ),
        Err(failure) => {
            tracing::warn!(reason = failure.reason, error = %failure.message, "import failed")
        }
    }
    let attempt = Attempt {
        id,
        request: job.request,
        started_at,
        finished_at,
        outcome: outcome.map(Box::new),
    };
    let mut slots = inner.slots.lock().expect("runner lock");
    let Some(slot) = slots.get_mut(&job.key) else {
        return; // cancelled
    };
    if slot
        .running
        .as_ref()
        .is_none_or(|(running, _, _)| *running != id)
    {
        return; // replaced
    }
    slot.running = None;
    slot.finished = Some(attempt);
    drop(slots);
    let _ = inner.ended.send(job.object);
}

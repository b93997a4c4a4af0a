//! The TenantSync controller: scheduled imports of a customer tenant into a sink, observe → plan →
//! act → report, with the imports themselves in tasks of a runner.
//!
//! - `desired`: the object's intent (schedule parsed, key, AppConsent, `gdap.io/sync-now`).
//! - `observe`: the AppConsent (from the watch cache) and the object's import in this process.
//! - `plan`: pure; whether an import starts now, when the next is due, when the data turns
//!   stale, when to look again (table-tested in `plan_tests`).
//! - `act`: starts the import — dereferences the credentials and the connection Secret, hands the
//!   job to the runner; `import` is the job itself (tested against the sandbox).
//! - `runner`: the global `--sync-concurrency` limit, one import per object, hand-back of the
//!   result by a reconcile request, cancellation on delete.
//! - `status` (pure, table-tested) and `report` (writes it, events, metrics); `metrics` the
//!   TenantSync series.
//! - `reconcile`: kube's finalizer helper around the pipeline; deletion stops the import and
//!   keeps the sink's data.
//!
//! **Why imports run in tasks.** An import can take minutes; kube's controller runs reconciles of
//! different objects concurrently, but a reconcile that imports would hold its object (its
//! deletion, its `sync-now` requests) for that long and could not report that it is running.
//! So a reconcile only decides and starts; the runner's task waits for a slot of the global
//! limit, imports, and asks for a reconcile of the object when done, which records the result.
//!
//! **Time.** Schedules use the operator's wall clock (UTC): every reconcile computes the next
//! due time from `status.lastSyncTime` (or the creation time) and requeues itself for it. Tests
//! and people drive imports without waiting for the schedule through the annotation
//! `gdap.io/sync-now` (a new value runs one import at once); the end-to-end tests that need the
//! schedule itself (the spread of two hundred objects, staleness) use `* * * * *`, the shortest
//! interval cron has.

pub mod act;
#[cfg(all(test, feature = "sandbox"))]
mod act_tests;
pub mod desired;
pub mod import;
pub mod metrics;
pub mod observe;
pub mod plan;
#[cfg(test)]
mod plan_tests;
pub mod reconcile;
pub mod report;
pub mod runner;
pub mod status;
#[cfg(test)]
mod status_tests;

pub use desired::SYNC_NOW_ANNOTATION;
pub use reconcile::{FINALIZER, KIND, SyncContext};
pub use runner::Runner;

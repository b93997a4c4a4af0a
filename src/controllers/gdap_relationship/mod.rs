//! The GdapRelationship controller: dereference → observe → plan → act → report.
//!
//! - `desired`: the object's intent, resolved through the role catalog (pure).
//! - `observe`: the object's records and Microsoft's side (reads only; typed errors); while
//!   deleting, `consents` adds the AppConsents relying on the relationship, whose consents are
//!   removed before it is terminated.
//! - `observed`: the observed model (plain data): the object's records and Microsoft's side.
//! - `plan`: the one next step, carrying the data its request needs, and when to look again
//!   (pure, table-tested in `plan_tests`); its vocabulary (`Action`, `Waiting`, `PlanError`,
//!   `Timing`) is `step`, and it leans on `settle` (ending one relationship) and `assignments`
//!   (the next access-assignment change).
//! - `pending` (with the record's data in `writes`): the operator's own writes that Microsoft does not show yet (its reads lag), kept in
//!   the annotation `gdap.io/pending-writes` until a read shows them; the plan decides on the read
//!   with them applied, so a lagging read never causes a second write (pure).
//! - `act`: a small interpreter of the step (delegated token only; tested against the sandbox).
//! - `status` (pure, table-tested) and `report` (writes it, events, warnings, metrics).
//! - `reconcile`: kube's finalizer helper around the pipeline, the backoff and the error policy.

pub mod act;
#[cfg(all(test, feature = "sandbox"))]
mod act_tests;
pub mod assignments;
pub mod consents;
pub mod desired;
pub mod observe;
pub mod observed;
pub mod pending;
pub mod plan;
#[cfg(test)]
mod plan_tests;
pub mod reconcile;
pub mod report;
pub mod settle;
pub mod status;
#[cfg(test)]
mod status_tests;
pub mod step;
pub mod writes;

pub use reconcile::{FINALIZER, KIND};

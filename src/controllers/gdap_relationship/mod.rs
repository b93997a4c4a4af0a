//! The GdapRelationship controller: observe → plan → act → report.
//!
//! - `desired`: the spec resolved through the role catalog (pure).
//! - `observe`: Microsoft's side, found by id or display name (always before any create).
//! - `plan`: the one next step and when to look again (pure, table-tested).
//! - `act`: the step, with the partner user's delegated token only.
//! - `status`: conditions and status fields from what was observed (pure).
//! - `reconcile`: the loop around them, with the finalizer, events and metrics.

pub mod act;
pub mod desired;
pub mod naming;
pub mod observe;
pub mod plan;
#[cfg(test)]
mod plan_tests;
pub mod reconcile;
pub mod status;
#[cfg(test)]
mod status_tests;

pub use reconcile::{error_policy, reconcile};

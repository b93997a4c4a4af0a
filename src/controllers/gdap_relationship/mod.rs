//! The GdapRelationship controller: observe → plan → act → report.
//!
//! - `desired`: the spec resolved through the role catalog (pure).
//! - `plan`: the one next step and when to look again (pure, table-tested).
//! - `status`: conditions and status fields from what was observed (pure).

pub mod desired;
pub mod naming;
pub mod plan;
#[cfg(test)]
mod plan_tests;

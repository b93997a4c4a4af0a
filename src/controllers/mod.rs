//! Controllers, one folder per kind. Each reconcile is observe → plan → act → report, where plan
//! is a pure function tested from tables (see ARCHITECTURE.md §3).

pub mod conditions;
pub mod context;
pub mod credentials;
pub mod gdap_relationship;

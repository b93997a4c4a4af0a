//! The GdapFleet controller's pure core (issue 25, not wired to a custom resource yet): which
//! customers a fleet covers (`members`) and what one pass does about them (`plan`) — what to
//! create or bring up to date, what waits for rollout room, what is pruned now or later, what
//! is let go, and the counts the status reports.

pub mod children;
pub mod members;
pub mod plan;

#[cfg(test)]
mod plan_tests;

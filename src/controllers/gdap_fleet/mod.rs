//! The GdapFleet controller: one manifest for many customers. Which customers a fleet covers
//! (`members`), what one pass does about them (`plan`, `decide`), the objects made for each
//! (`children`), and its part of the one reconcile pipeline (`reconcile`: observe, act, status).

pub mod act;
pub mod children;
pub mod decide;
pub mod desired;
pub mod members;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod status;

#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod status_tests;

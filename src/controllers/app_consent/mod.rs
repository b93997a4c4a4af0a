//! The AppConsent controller: dereference → observe → plan → act → report, in the shape of the
//! GdapRelationship controller.
//!
//! - `desired`: the object's intent, resolved once up front (pure): its grants resolved by
//!   `api::consent_rules`, and from them everything the consent must hold (`Wanted`: the delegated
//!   scopes per resource, the consent bodies, the service principals needed), so `plan` and
//!   `status` derive nothing from the spec themselves.
//! - `observe`: the partner side (the relationships that give the partner user a role in the
//!   customer, the referenced GdapRelationship) and the customer tenant (the app's service
//!   principal, its delegated grants and application permissions, the resources' service
//!   principals), read with the partner user's delegated tokens; reads only, typed errors.
//! - `observed` (with the customer tenant's side in `tenant`): the observed model (plain data).
//! - `plan`: the one next step with the data its request needs, and when to look again (pure,
//!   table-tested in `plan_tests`); its vocabulary (`Action`, `Waiting`, `PlanError`, `Timing`)
//!   is `step`, and it leans on `prerequisites` (the relationship a consent relies on) and `gaps`
//!   (how the tenant differs from the intent, both ways).
//! - `pending`: the operator's writes that Microsoft does not show yet, remembered in the
//!   annotation `gdap.io/pending-writes` so a lagging read is waited for, never answered with a
//!   second write (pure).
//! - `act`: a small interpreter of the step (delegated tokens only; tested against the sandbox).
//! - `status` (pure, table-tested) and `report` (writes it, events, `gdap_consent_healthy`).
//! - `reconcile`: kube's finalizer helper around the pipeline, the backoff and the error policy.
//!
//! The order of the steps follows what Microsoft allows (see docs/appconsent.md "What the
//! AppConsent controller does"): Entra issues the partner user a delegated token in the customer
//! only after the app is consented there (AADSTS90099/65001), so the first consent goes through
//! Partner Center, which needs no customer token, and covers Microsoft Graph (whose service
//! principal every tenant has). With that token the operator then checks (and, if asked, creates)
//! the other resources' service principals, completes the delegated grants through Partner Center,
//! and grants the application permissions through Graph.

pub mod act;
#[cfg(all(test, feature = "sandbox"))]
mod act_tests;
pub mod desired;
pub mod gaps;
pub mod observe;
pub mod observed;
pub mod pending;
pub mod plan;
#[cfg(test)]
mod plan_tests;
pub mod prerequisites;
pub mod reconcile;
pub mod report;
pub mod status;
#[cfg(test)]
mod status_tests;
pub mod step;
pub mod tenant;

pub use reconcile::{FINALIZER, KIND};

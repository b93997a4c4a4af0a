//! gdap-operator: a Kubernetes operator for Microsoft GDAP relationships, application consents
//! and tenant imports. See README.md for the picture and the module docs for each part's contract.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod controllers;
pub mod crdgen;
pub mod doctor;
pub mod leader;
pub mod login;
pub mod metrics;
pub mod microsoft;
pub mod onboard;
pub mod readiness;
pub mod run;
/// The Microsoft emulator; a default-on feature that production builds
/// (`--no-default-features`) leave out, with its checked-in test signing key.
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod server;
pub mod shutdown;
pub mod sync;
pub mod telemetry;
pub mod validate;
pub mod validate_fleet;
pub mod webhook;
pub mod webhook_admin;

//! Onboarding an existing partner: `gdap-operator export` turns the relationships that already
//! exist into manifests that adopt them, and `gdap-operator plan` shows, read-only, what the
//! operator would do for a set of manifests — through the GdapRelationship controller's own
//! observe and plan, so the two cannot disagree.
//!
//! - `credentials`: the partner credentials of a CLI run (a Secret manifest and/or flags), and
//!   what happens to the rotated refresh token.
//! - `names` and `manifest`: stable Kubernetes names and the manifest of one relationship (pure).
//! - `export`: the reads (every page) and the output (a stream, or one folder per customer).
//! - `simulate`: the controller's steps run forward on paper (pure).
//! - `describe` and `render`: steps in words and as JSON, the text output (pure).
//! - `plan`: loading manifests, observing, the verdict per object and the exit code;
//!   `fleet_plan`: a GdapFleet's plan, from the fleet controller's own observe and decide.
//! - `approvals`: a fleet's pending approval links as CSV, for the onboarding team.

pub mod approvals;
pub mod credentials;
pub mod describe;
pub mod export;
pub mod fleet_plan;
pub mod manifest;
pub mod names;
pub mod plan;
pub mod render;
pub mod report;
pub mod simulate;

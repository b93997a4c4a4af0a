//! The tenant import engine: a customer tenant's users, subscribed SKUs and subscriptions, read
//! with the partner app's application permissions, streamed into a sink, summarised in a report.
//!
//! # Contract of [`run_import`]
//!
//! ```text
//! run_import(directory, &app_token, tenant_id, &ImportOptions, &mut sink)
//!     -> Result<ImportReport, ImportError>
//! ```
//!
//! - **Inputs.** `directory` is the Graph directory client; `app_token` an [`AppToken`] for
//!   *that* customer tenant (never a delegated token: the types prevent it, and a token of
//!   another tenant is refused); [`ImportOptions`] carry `mode`, `userFields`, `fullSyncEvery`
//!   and the partner's tenant id (from [`ImportOptions::from_spec`]); the sink comes from
//!   [`sink::open`] (a [`FileSink`] or a [`PostgresSink`]).
//! - **What it reads.** `GET /subscribedSkus` and `GET /directory/subscriptions` first, then
//!   the users: in `Full` mode `GET /users` (999 a page); in `Delta` mode the changes since the
//!   deltaLink the sink kept, or a whole `/users/delta` round when a full pass is due (first
//!   run, changed `userFields`, `fullSyncEvery` elapsed, or a deltaLink Microsoft no longer
//!   accepts) — see [`plan`]. `$select` is `id`, `accountEnabled`, `userType`,
//!   `assignedLicenses`, `licenseAssignmentStates` and the chosen fields. Every call is an
//!   app-only background read: `x-ms-throttle-priority: low`, paced when Graph's
//!   `x-ms-throttle-limit-percentage` says the budget is nearly spent, and retried after 429s as
//!   `Retry-After` asks (see [`crate::microsoft::pacing`]).
//! - **Memory.** Users stream from Graph's pages to the sink in batches of 1,000 with at most two
//!   batches waiting, so memory does not grow with the tenant's users' data (the file sink keeps
//!   about 40 bytes per user id; see [`sink::file`]).
//! - **Atomicity.** The sink switches to a run only when it was read completely; deleted users
//!   (`@removed`, or no longer listed by a full pass) are marked deleted, never dropped. A run
//!   that fails — Microsoft errors, an empty full listing (never taken to mean "no users"), a
//!   sink error — or that is cancelled (its future dropped) leaves the last good data and state
//!   untouched; the next run of the tenant clears what it left behind.
//! - **Output.** An [`ImportReport`]: user counts after the import ({total, enabled, licensed,
//!   disabledLicensed, guests}), per SKU {purchased, assigned, available, nextExpiry, partner
//!   licences}, rows received per table, full or delta (and why full), start, end and duration.
//!   [`ImportReport::user_summary`] and [`ImportReport::sku_summaries`] give the `TenantSync`
//!   status types.
//! - **Errors.** [`ImportError`]: `Directory` (with the client's named reason — `AccessDenied`
//!   when the consent was revoked, `Throttled`, `ServiceUnavailable`, …), `EmptyListing`,
//!   `Sink` ([`SinkError`]: `Busy` when another run of the tenant holds the sink, I/O,
//!   PostgreSQL, corrupt data, configuration) and `Options`. [`ImportError::is_transient`]
//!   says whether to retry with backoff (throttling, outages, a busy sink) or to stop and report
//!   (permissions, configuration); [`ImportError::reason`] is a condition reason and the
//!   message says what to do.
//! - **Scheduling** is the caller's: [`schedule`] gives the next run time with a stable
//!   per-object jitter and the "stale" rule.

pub mod engine;
pub mod error;
pub mod plan;
pub mod report;
pub mod rows;
pub mod schedule;
pub mod sink;

pub use engine::run_import;
pub use error::{ImportError, SinkError};
pub use plan::{FullReason, ImportOptions, RunKind};
pub use report::{ImportReport, RowCounts, SkuReport, UserCounts};
pub use sink::{FileSink, PostgresSink, Sink, SyncState};

#[cfg(doc)]
use crate::microsoft::AppToken;

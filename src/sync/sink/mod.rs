//! Where imports go: the sink contract, and the `file` and `postgres` sinks.
//!
//! Contract (every sink):
//! - [`Sink::state`] returns what the tenant's last *successful* run left ([`SyncState`]: the
//!   deltaLink, the field list, the last full pass), so Delta mode survives restarts.
//! - [`Sink::begin`] starts a run and returns its [`RunWriter`]; only one run per tenant and sink
//!   target at a time (a second gets [`SinkError::Busy`]). It first clears what an interrupted
//!   earlier run left behind.
//! - [`RunWriter::users`] receives the run's users in batches, in Graph's order: every user of a
//!   full pass, or the changed and removed users of a delta round. Duplicates are allowed; the
//!   last record of a user wins. Nothing is visible to readers yet.
//! - [`RunWriter::commit`] switches to the run atomically: the users (a full pass marks users it
//!   did not list as deleted, `deletedReason: notListed`; a delta round marks `@removed` users
//!   deleted and keeps everyone else), the complete SKU and subscription lists and the new
//!   [`SyncState`]; it returns the tenant's [`UserCounts`] after the switch. Deleted users are
//!   marked, never dropped.
//! - [`RunWriter::abort`], a failed `commit`, or dropping the writer (a cancelled import) leaves
//!   the last good run exactly as it was.

pub mod file;
pub mod postgres;

use super::error::SinkError;
use super::plan::RunKind;
use super::report::{RowCounts, SkuReport, UserCounts};
use super::rows::{SubscriptionRow, UserRecord};
use crate::api::tenant_sync::SinkSpec;
use crate::microsoft::models::directory::SubscribedSku;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use file::FileSink;
pub use postgres::PostgresSink;

/// What a sink keeps from a tenant's last successful run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncState {
    /// The run that left it.
    pub run_id: String,
    /// Graph's deltaLink for the next delta round (`None` after a `Full`-mode run).
    pub delta_link: Option<String>,
    /// The sorted `$select` the data was read with.
    pub fields: String,
    /// When the last full pass started.
    pub last_full_sync: DateTime<Utc>,
}

/// The run being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// Unique, sortable by start time.
    pub run_id: String,
    /// The customer tenant.
    pub tenant_id: String,
    /// Full pass or delta round.
    pub kind: RunKind,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// Everything a run switches to besides its users.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    /// Every subscribed SKU, as Graph listed them.
    pub skus: &'a [SubscribedSku],
    /// Every subscription.
    pub subscriptions: &'a [SubscriptionRow],
    /// The licence figures per SKU (for summaries).
    pub sku_reports: &'a [SkuReport],
    /// The state the next run starts from.
    pub state: &'a SyncState,
    /// Rows the run received.
    pub rows: RowCounts,
    /// When the run finished reading.
    pub finished_at: DateTime<Utc>,
}

/// A destination of imports (see the module docs).
#[async_trait]
pub trait Sink: Send {
    /// A short description for logs and errors (never a password).
    fn describe(&self) -> String;
    /// The state of the tenant's last successful run.
    async fn state(&mut self, tenant_id: &str) -> Result<Option<SyncState>, SinkError>;
    /// Starts writing a run.
    async fn begin<'s>(&'s mut self, run: &RunInfo) -> Result<Box<dyn RunWriter + 's>, SinkError>;
}

/// One run being written (see the module docs).
#[async_trait]
pub trait RunWriter: Send {
    /// Adds a batch of users.
    async fn users(&mut self, batch: &[UserRecord]) -> Result<(), SinkError>;
    /// Switches to the run.
    async fn commit(self: Box<Self>, commit: Commit<'_>) -> Result<UserCounts, SinkError>;
    /// Gives the run up; `error` says why (sinks that keep a run history record it).
    async fn abort(self: Box<Self>, error: &str);
}

/// Opens the sink a TenantSync names: `file` as it is, `postgres` with the connection the
/// caller read from the Secret `connectionSecretRef.name`: the URL under key
/// [`ConnectionSecretRef::url_key`](crate::api::tenant_sync::ConnectionSecretRef::url_key)
/// (`url` unless `key` says otherwise) and the CA bundle under `caKey`, when set.
pub async fn open(
    spec: &SinkSpec,
    postgres: Option<&postgres::Connection>,
) -> Result<Box<dyn Sink>, SinkError> {
    match (&spec.file, &spec.postgres) {
        (Some(file), None) => Ok(Box::new(FileSink::new(
            &file.path,
            file.keep_runs.unwrap_or(file::DEFAULT_KEEP_RUNS),
        ))),
        (None, Some(pg)) => {
            let connection = postgres.ok_or_else(|| {
                SinkError::Config(
                    "the postgres sink needs the connection URL from its Secret".into(),
                )
            })?;
            let schema = pg.schema.as_deref().unwrap_or(postgres::DEFAULT_SCHEMA);
            Ok(Box::new(
                PostgresSink::connect_to(connection, schema).await?,
            ))
        }
        _ => Err(SinkError::Config(
            "set exactly one of sink.file or sink.postgres".into(),
        )),
    }
}

/// A new run id: the start time (UTC, to the millisecond) and 8 random hex digits, e.g.
/// `20250602T120000123Z-1a2b3c4d`; ids sort by start time.
pub fn new_run_id(started_at: DateTime<Utc>) -> String {
    format!(
        "{}-{:08x}",
        started_at.format("%Y%m%dT%H%M%S%3fZ"),
        rand::random::<u32>()
    )
}

/// Whether a tenant id is safe as a directory or key name (a GUID, or letters, digits, `-`, `.`).
pub fn valid_tenant_id(tenant_id: &str) -> bool {
    !tenant_id.is_empty()
        && tenant_id.len() <= 64
        && !tenant_id.starts_with('.')
        && tenant_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time_and_are_unique() {
        let t1 = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        let t2 = DateTime::from_timestamp(1_750_000_000, 1_000_000).unwrap();
        let (a, b) = (new_run_id(t1), new_run_id(t2));
        assert!(a < b, "{a} {b}");
        assert!(a.starts_with("20250615T"), "{a}");
        assert_eq!(b.len(), "20250615T150640001Z-12345678".len(), "{b}");
        assert_ne!(new_run_id(t1), new_run_id(t1));
    }

    #[test]
    fn tenant_ids_that_could_escape_a_directory_are_refused() {
        assert!(valid_tenant_id("11111111-2222-3333-4444-555555555555"));
        assert!(valid_tenant_id("contoso.example"));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b"] {
            assert!(!valid_tenant_id(bad), "{bad}");
        }
    }
}

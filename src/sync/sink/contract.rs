//! The sink contract (see the parent module's docs): the [`Sink`] and [`RunWriter`] traits, the
//! run they write ([`RunInfo`], [`Commit`]) and the ids they use. The sinks implement it and the
//! engine calls it; it imports no sink, so each sink can import it while the parent module,
//! which chooses a sink, imports the sinks.

use super::state::SyncState;
use crate::microsoft::models::directory::SubscribedSku;
use crate::sync::error::SinkError;
use crate::sync::plan::RunKind;
use crate::sync::report::{RowCounts, SkuReport, UserCounts};
use crate::sync::rows::{SubscriptionRow, UserRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

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

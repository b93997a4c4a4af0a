//! The `file` sink: JSON Lines per run under a directory, switched atomically.
//!
//! Layout, per tenant (`<root>/<tenantId>/`):
//!
//! ```text
//! current -> runs/<runId>          symlink to the last good run, replaced atomically (rename)
//! runs/<runId>/users.jsonl         one user per line (Graph's property names; deleted users
//!                                  keep their last data with deleted, deletedAt, deletedReason)
//! runs/<runId>/skus.jsonl          one subscribedSku per line, as Graph sent it
//! runs/<runId>/subscriptions.jsonl one companySubscription per line, plus soldByPartner
//! runs/<runId>/summary.json        run id, kind, times, user counts, licences per SKU, rows
//! runs/<runId>/state.json          what the next run starts from (deltaLink, fields, last full)
//! runs/.partial-<runId>/           a run being written (never read; removed when it fails)
//! .lock                            held (flock) by the run in progress
//! ```
//!
//! Every run directory is a complete snapshot: a delta round copies the previous run's users and
//! applies its changes. A run is written under `.partial-<runId>`, flushed to disk, renamed to
//! `runs/<runId>` and only then does `current` move; after that, runs beyond `keepRuns` (oldest
//! first, never the current one) are deleted. Memory: users stream through; the run keeps a
//! 128-bit key and a slot per distinct user id it received (about 40 bytes in a hash table, to
//! let the last record of a user win and to find users a full pass no longer lists) — about
//! 4 MB for 100,000 users.

mod layout;
mod run;

use super::contract::{RunInfo, RunWriter, Sink, valid_tenant_id};
use super::state::SyncState;
use crate::sync::error::SinkError;
use async_trait::async_trait;
use std::path::{Path, PathBuf};

pub use layout::{CURRENT, PARTIAL_PREFIX, RUNS};

/// Completed runs kept per tenant when `keepRuns` is not set.
pub const DEFAULT_KEEP_RUNS: u32 = 7;

/// Writes imports as JSON Lines under a directory (see the module docs).
#[derive(Debug, Clone)]
pub struct FileSink {
    root: PathBuf,
    keep_runs: u32,
}

impl FileSink {
    /// A sink under `root`, keeping `keep_runs` (at least 1) completed runs per tenant.
    pub fn new(root: impl Into<PathBuf>, keep_runs: u32) -> Self {
        FileSink {
            root: root.into(),
            keep_runs: keep_runs.max(1),
        }
    }

    /// The directory of one tenant.
    pub fn tenant_dir(&self, tenant_id: &str) -> Result<PathBuf, SinkError> {
        if !valid_tenant_id(tenant_id) {
            return Err(SinkError::Config(format!(
                "{tenant_id:?} is not a tenant id that can name a directory"
            )));
        }
        Ok(self.root.join(tenant_id.to_ascii_lowercase()))
    }

    /// The directory `current` points at, if there is one.
    pub fn current_run(&self, tenant_id: &str) -> Result<Option<PathBuf>, SinkError> {
        let link = self.tenant_dir(tenant_id)?.join(CURRENT);
        match std::fs::canonicalize(&link) {
            Ok(dir) => Ok(Some(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SinkError::io("resolve", link, e)),
        }
    }
}

#[async_trait]
impl Sink for FileSink {
    fn describe(&self) -> String {
        format!("file sink {}", self.root.display())
    }

    async fn state(&mut self, tenant_id: &str) -> Result<Option<SyncState>, SinkError> {
        let Some(run) = self.current_run(tenant_id)? else {
            return Ok(None);
        };
        let path = run.join("state.json");
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| SinkError::io("read", &path, e))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SinkError::Corrupt {
                path,
                detail: format!("not a sync state: {e}"),
            })
    }

    async fn begin<'s>(&'s mut self, run: &RunInfo) -> Result<Box<dyn RunWriter + 's>, SinkError> {
        let tenant_dir = self.tenant_dir(&run.tenant_id)?;
        let runs = tenant_dir.join(RUNS);
        tokio::fs::create_dir_all(&runs)
            .await
            .map_err(|e| SinkError::io("create", &runs, e))?;
        let lock = lock(&tenant_dir, &run.tenant_id)?;
        remove_partial_runs(&runs).await?;
        let previous = self.current_run(&run.tenant_id)?;
        let writer = run::FileRun::start(run::Start {
            lock,
            tenant_dir,
            previous,
            run: run.clone(),
            keep_runs: self.keep_runs,
        })
        .await?;
        Ok(Box::new(writer))
    }
}

/// Takes the tenant's lock file (an exclusive `flock`, released when the file closes).
fn lock(tenant_dir: &Path, tenant_id: &str) -> Result<std::fs::File, SinkError> {
    let path = tenant_dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SinkError::io("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(SinkError::Busy {
            tenant: tenant_id.to_string(),
            target: tenant_dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(SinkError::io("lock", &path, e)),
    }
}

/// Removes what interrupted runs left (only called while holding the lock).
async fn remove_partial_runs(runs: &Path) -> Result<(), SinkError> {
    let mut entries = tokio::fs::read_dir(runs)
        .await
        .map_err(|e| SinkError::io("list", runs, e))?;
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| SinkError::io("list", runs, e))?
    {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(PARTIAL_PREFIX)
        {
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing the files of an interrupted import");
            tokio::fs::remove_dir_all(&path)
                .await
                .map_err(|e| SinkError::io("remove", &path, e))?;
        }
    }
    Ok(())
}

//! One run of the file sink: records spill to `incoming.jsonl`, and the commit merges them with
//! the previous run's users into the new `users.jsonl` (see the parent module for the layout).
//!
//! Merge rules: the last record of a user wins. Previous rows whose user got a new record are
//! replaced by it, or — when that last record is a removal — kept and marked deleted. In a full
//! pass, previous rows of users it did not list are kept and marked deleted (`notListed`). A
//! removal of a user the previous run never had becomes a row with only the id, marked deleted.

use super::layout::{CURRENT, PARTIAL_PREFIX, RUNS};
use crate::sync::error::SinkError;
use crate::sync::plan::RunKind;
use crate::sync::report::{RowCounts, SkuReport, UserCounts};
use crate::sync::rows::{DeletedReason, UserRecord, UserRow};
use crate::sync::sink::contract::{Commit, RunInfo, RunWriter};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};

const INCOMING: &str = "incoming.jsonl";
const BUFFER: usize = 256 * 1024;

/// Where a user's last record is, and what it is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Index of the user's last record in `incoming.jsonl`.
    last: u32,
    /// That record removes the user (with this reason).
    removed: Option<DeletedReason>,
    /// The previous run had the user.
    in_previous: bool,
}

/// What starting a run needs.
pub(super) struct Start {
    pub lock: std::fs::File,
    pub tenant_dir: PathBuf,
    pub previous: Option<PathBuf>,
    pub run: RunInfo,
    pub keep_runs: u32,
}

/// A run being written.
pub(super) struct FileRun {
    _lock: std::fs::File,
    tenant_dir: PathBuf,
    partial: PathBuf,
    previous: Option<PathBuf>,
    run: RunInfo,
    keep_runs: u32,
    incoming: BufWriter<tokio::fs::File>,
    index: HashMap<u128, Slot>,
    records: u32,
    line: Vec<u8>,
    done: bool,
}

impl FileRun {
    pub(super) async fn start(start: Start) -> Result<FileRun, SinkError> {
        let partial = start
            .tenant_dir
            .join(RUNS)
            .join(format!("{PARTIAL_PREFIX}{}", start.run.run_id));
        tokio::fs::create_dir(&partial)
            .await
            .map_err(|e| SinkError::io("create", &partial, e))?;
        let incoming = create(&partial.join(INCOMING)).await?;
        Ok(FileRun {
            _lock: start.lock,
            tenant_dir: start.tenant_dir,
            partial,
            previous: start.previous,
            run: start.run,
            keep_runs: start.keep_runs,
            incoming,
            index: HashMap::new(),
            records: 0,
            line: Vec::with_capacity(4096),
            done: false,
        })
    }

    async fn merge(&mut self, now: DateTime<Utc>) -> Result<(UserCounts, u64), SinkError> {
        let path = self.partial.join("users.jsonl");
        let mut out = Output::create(&path).await?;
        let mut counts = UserCounts::default();
        if let Some(previous) = self.previous.clone() {
            self.carry_previous(&previous.join("users.jsonl"), &mut out, &mut counts, now)
                .await?;
        }
        self.apply_incoming(&mut out, &mut counts, now).await?;
        let lines = out.finish().await?;
        Ok((counts, lines))
    }

    /// Copies the previous run's users, applying this run's removals and (full pass) marking
    /// the users it did not list.
    async fn carry_previous(
        &mut self,
        path: &Path,
        out: &mut Output,
        counts: &mut UserCounts,
        now: DateTime<Utc>,
    ) -> Result<(), SinkError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| SinkError::io("open", path, e))?;
        let mut lines = BufReader::with_capacity(BUFFER, file).lines();
        let full = self.run.kind == RunKind::Full;
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| SinkError::io("read", path, e))?
        {
            if line.trim().is_empty() {
                continue;
            }
            let row: UserRow = serde_json::from_str(&line).map_err(|e| SinkError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("a line is not a user: {e}"),
            })?;
            let row = match self.index.get_mut(&id_key(&row.id)) {
                Some(slot) => {
                    slot.in_previous = true;
                    match slot.removed {
                        Some(reason) => row.mark_deleted(reason, now),
                        None => continue,
                    }
                }
                None if full && !row.deleted => row.mark_deleted(DeletedReason::NotListed, now),
                None => {
                    counts.add(&row);
                    out.raw(line.as_bytes()).await?;
                    continue;
                }
            };
            counts.add(&row);
            out.row(&row).await?;
        }
        Ok(())
    }

    /// Writes the last record of every user this run received.
    async fn apply_incoming(
        &mut self,
        out: &mut Output,
        counts: &mut UserCounts,
        now: DateTime<Utc>,
    ) -> Result<(), SinkError> {
        let path = self.partial.join(INCOMING);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| SinkError::io("open", &path, e))?;
        let mut lines = BufReader::with_capacity(BUFFER, file).lines();
        let mut i = 0u32;
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| SinkError::io("read", &path, e))?
        {
            let record: UserRecord =
                serde_json::from_str(&line).map_err(|e| SinkError::Corrupt {
                    path: path.clone(),
                    detail: format!("a record is unreadable: {e}"),
                })?;
            let slot = self.index.get(&id_key(record.id())).copied();
            i += 1;
            let Some(slot) = slot.filter(|s| s.last == i - 1) else {
                continue;
            };
            let row = match record {
                UserRecord::User(row) => *row,
                UserRecord::Removed { .. } if slot.in_previous => continue,
                UserRecord::Removed { id, reason } => UserRow::tombstone(&id, reason, now),
            };
            counts.add(&row);
            out.row(&row).await?;
        }
        drop(lines);
        tokio::fs::remove_file(&path)
            .await
            .map_err(|e| SinkError::io("remove", &path, e))
    }

    async fn write_tables(
        &self,
        commit: &Commit<'_>,
        users: UserCounts,
        user_lines: u64,
    ) -> Result<(), SinkError> {
        let skus = write_lines(&self.partial.join("skus.jsonl"), commit.skus).await?;
        let subscriptions = write_lines(
            &self.partial.join("subscriptions.jsonl"),
            commit.subscriptions,
        )
        .await?;
        write_json(&self.partial.join("state.json"), commit.state).await?;
        let summary = Summary {
            run_id: &self.run.run_id,
            tenant_id: &self.run.tenant_id,
            kind: self.run.kind,
            started_at: self.run.started_at,
            finished_at: commit.finished_at,
            users,
            skus: commit.sku_reports,
            rows: commit.rows,
            lines: Lines {
                users: user_lines,
                skus,
                subscriptions,
            },
        };
        write_json(&self.partial.join("summary.json"), &summary).await
    }

    /// Renames the partial directory into place and points `current` at it.
    async fn switch(&self) -> Result<(), SinkError> {
        let runs = self.tenant_dir.join(RUNS);
        let done = runs.join(&self.run.run_id);
        tokio::fs::rename(&self.partial, &done)
            .await
            .map_err(|e| SinkError::io("rename", &self.partial, e))?;
        sync_dir(&runs).await;
        let temp = self
            .tenant_dir
            .join(format!(".{CURRENT}-{}", self.run.run_id));
        let target = Path::new(RUNS).join(&self.run.run_id);
        let _ = tokio::fs::remove_file(&temp).await;
        tokio::fs::symlink(&target, &temp)
            .await
            .map_err(|e| SinkError::io("link", &temp, e))?;
        let current = self.tenant_dir.join(CURRENT);
        tokio::fs::rename(&temp, &current)
            .await
            .map_err(|e| SinkError::io("switch", &current, e))?;
        sync_dir(&self.tenant_dir).await;
        Ok(())
    }

    /// Deletes completed runs beyond `keep_runs`, oldest first, never the current one.
    async fn prune(&self) -> Result<(), SinkError> {
        let runs = self.tenant_dir.join(RUNS);
        let mut names = Vec::new();
        let mut entries = tokio::fs::read_dir(&runs)
            .await
            .map_err(|e| SinkError::io("list", &runs, e))?;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| SinkError::io("list", &runs, e))?
        {
            let name = entry.file_name().to_string_lossy().to_string();
            if !name.starts_with('.') && name != self.run.run_id {
                names.push(name);
            }
        }
        names.sort();
        let excess = (names.len() + 1).saturating_sub(self.keep_runs as usize);
        for name in names.into_iter().take(excess) {
            let path = runs.join(name);
            tokio::fs::remove_dir_all(&path)
                .await
                .map_err(|e| SinkError::io("remove", &path, e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl RunWriter for FileRun {
    async fn users(&mut self, batch: &[UserRecord]) -> Result<(), SinkError> {
        for record in batch {
            self.line.clear();
            serde_json::to_writer(&mut self.line, record).map_err(|e| SinkError::Corrupt {
                path: self.partial.join(INCOMING),
                detail: format!("a record cannot be written: {e}"),
            })?;
            self.line.push(b'\n');
            self.incoming
                .write_all(&self.line)
                .await
                .map_err(|e| SinkError::io("write", self.partial.join(INCOMING), e))?;
            let removed = match record {
                UserRecord::Removed { reason, .. } => Some(*reason),
                UserRecord::User(_) => None,
            };
            let slot = Slot {
                last: self.records,
                removed,
                in_previous: false,
            };
            self.index.insert(id_key(record.id()), slot);
            self.records += 1;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, commit: Commit<'_>) -> Result<UserCounts, SinkError> {
        self.incoming
            .flush()
            .await
            .map_err(|e| SinkError::io("write", self.partial.join(INCOMING), e))?;
        let (counts, lines) = self.merge(commit.finished_at).await?;
        self.write_tables(&commit, counts, lines).await?;
        self.switch().await?;
        self.done = true;
        if let Err(e) = self.prune().await {
            tracing::warn!(error = %e, "could not delete old runs");
        }
        Ok(counts)
    }

    async fn abort(self: Box<Self>, error: &str) {
        tracing::info!(run = %self.run.run_id, error, "import failed; its files are removed and the last good run stays current");
        // Drop removes the partial directory.
    }
}

impl Drop for FileRun {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.partial);
        }
    }
}

/// A user id as a compact key: the GUID's 128 bits, or the first 128 bits of its SHA-256.
fn id_key(id: &str) -> u128 {
    if let Ok(uuid) = uuid::Uuid::parse_str(id) {
        return uuid.as_u128();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest.as_ref()[..16]);
    u128::from_be_bytes(first)
}

async fn create(path: &Path) -> Result<BufWriter<tokio::fs::File>, SinkError> {
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|e| SinkError::io("create", path, e))?;
    Ok(BufWriter::with_capacity(BUFFER, file))
}

/// A JSON Lines file being written.
struct Output {
    path: PathBuf,
    file: BufWriter<tokio::fs::File>,
    lines: u64,
    buffer: Vec<u8>,
}

impl Output {
    async fn create(path: &Path) -> Result<Output, SinkError> {
        Ok(Output {
            path: path.to_path_buf(),
            file: create(path).await?,
            lines: 0,
            buffer: Vec::with_capacity(4096),
        })
    }

    async fn raw(&mut self, line: &[u8]) -> Result<(), SinkError> {
        let write = async {
            self.file.write_all(line).await?;
            self.file.write_all(b"\n").await
        };
        write
            .await
            .map_err(|e| SinkError::io("write", &self.path, e))?;
        self.lines += 1;
        Ok(())
    }

    async fn row<T: Serialize>(&mut self, value: &T) -> Result<(), SinkError> {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        serde_json::to_writer(&mut buffer, value).map_err(|e| SinkError::Corrupt {
            path: self.path.clone(),
            detail: format!("a row cannot be written: {e}"),
        })?;
        let result = self.raw(&buffer).await;
        self.buffer = buffer;
        result
    }

    /// Flushes and syncs the file; returns its line count.
    async fn finish(mut self) -> Result<u64, SinkError> {
        self.file
            .flush()
            .await
            .map_err(|e| SinkError::io("write", &self.path, e))?;
        self.file
            .get_ref()
            .sync_all()
            .await
            .map_err(|e| SinkError::io("sync", &self.path, e))?;
        Ok(self.lines)
    }
}

async fn write_lines<T: Serialize>(path: &Path, items: &[T]) -> Result<u64, SinkError> {
    let mut out = Output::create(path).await?;
    for item in items {
        out.row(item).await?;
    }
    out.finish().await
}

async fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), SinkError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| SinkError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("cannot be written: {e}"),
    })?;
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| SinkError::io("create", path, e))?;
    file.write_all(&bytes)
        .await
        .map_err(|e| SinkError::io("write", path, e))?;
    file.sync_all()
        .await
        .map_err(|e| SinkError::io("sync", path, e))
}

/// Makes a directory's entries (renames, new links) durable; best effort.
async fn sync_dir(dir: &Path) {
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
}

/// `summary.json`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    run_id: &'a str,
    tenant_id: &'a str,
    kind: RunKind,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    users: UserCounts,
    skus: &'a [SkuReport],
    rows: RowCounts,
    lines: Lines,
}

/// Lines per file of a run.
#[derive(Serialize)]
struct Lines {
    users: u64,
    skus: u64,
    subscriptions: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_compact_keys() {
        let guid = "0f4b2e6a-1111-4c2d-9e8f-000000000001";
        assert_eq!(id_key(guid), uuid::Uuid::parse_str(guid).unwrap().as_u128());
        assert_eq!(id_key(&guid.to_uppercase()), id_key(guid));
        assert_ne!(id_key("not-a-guid"), id_key("not-a-guid-2"));
        assert_eq!(id_key("not-a-guid"), id_key("not-a-guid"));
    }
}

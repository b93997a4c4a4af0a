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
//!   [`SyncState`]; it returns the tenant's [`UserCounts`](crate::sync::UserCounts) after the switch. Deleted users are
//!   marked, never dropped.
//! - [`RunWriter::abort`], a failed `commit`, or dropping the writer (a cancelled import) leaves
//!   the last good run exactly as it was.
//!
//! The modules import downwards only: [`state`] and [`contract`] import no sink, the sinks
//! implement the contract, and this module, above them, chooses one ([`open`]).

pub mod contract;
pub mod file;
pub mod postgres;
pub mod state;

use super::error::SinkError;
use crate::api::tenant_sync::SinkSpec;

pub use contract::{Commit, RunInfo, RunWriter, Sink, new_run_id, valid_tenant_id};
pub use file::FileSink;
pub use postgres::PostgresSink;
pub use state::SyncState;

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

//! What a sink keeps from a tenant's last successful run: the plan reads it, the sinks store it.
//! A leaf (it imports no other part of the import), so the plan can name it without depending
//! on the sinks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

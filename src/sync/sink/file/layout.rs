//! The names in a tenant's directory of the file sink (the layout is in the parent module's
//! docs): shared by the sink, which finds the current run, and by a run, which writes and
//! switches to it.

/// Name of the link to the last good run.
pub const CURRENT: &str = "current";
/// Directory of the runs.
pub const RUNS: &str = "runs";
/// Prefix of a run being written.
pub const PARTIAL_PREFIX: &str = ".partial-";

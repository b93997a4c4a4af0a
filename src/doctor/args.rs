//! The command line of `gdap-operator doctor`.

use crate::onboard::credentials::CredentialArgs;
pub use crate::onboard::plan::OutputFormat;
use clap::Args;
use std::path::PathBuf;

/// Options of `gdap-operator doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Manifest files or directories (searched recursively for .yaml/.yml): also check that the
    /// security groups and customer tenants they name exist.
    pub paths: Vec<PathBuf>,
    /// `text` (one line per check) or `json` (`{"checks": [...], "passed": bool}`).
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Partner credentials and Microsoft endpoints (the same as `export` and `plan`).
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

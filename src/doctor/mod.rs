//! `gdap-operator doctor`: checks a partner set-up against Microsoft before anything is applied,
//! one line per check, each failure with what to do.

use clap::Args;

/// Options of `gdap-operator doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {}

/// Runs `doctor`; the exit code is 0 when every check passed, 1 otherwise.
pub async fn run(_args: DoctorArgs) -> anyhow::Result<u8> {
    anyhow::bail!("doctor is not implemented yet")
}

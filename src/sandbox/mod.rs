//! The sandbox: a stateful emulator of Microsoft's login, Graph and Partner Center endpoints
//! (`gdap-operator sandbox`). Under construction (issue 3).

use clap::Args;

/// Command-line options of `gdap-operator sandbox`.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
}

/// Runs the sandbox until interrupted.
pub async fn run(_args: SandboxArgs) -> anyhow::Result<()> {
    anyhow::bail!("the sandbox is not built yet")
}

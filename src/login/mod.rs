//! `gdap-operator login`: obtains the partner GDAP user's refresh token by an interactive sign-in
//! (device code by default, authorization code with PKCE on a loopback redirect with
//! `--browser`), checks it (user, MFA, Partner Center) and stores it in the credentials Secret
//! or a file. Never prints a token.

use clap::Args;

/// Options of `gdap-operator login`.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {}

/// Runs `login`.
pub async fn run(_args: LoginArgs) -> anyhow::Result<()> {
    anyhow::bail!("login is not implemented yet")
}

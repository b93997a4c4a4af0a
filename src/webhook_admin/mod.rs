//! `gdap-operator webhook status|register|test`: the partner's Partner Center webhook
//! registration, as the GDAP receiver needs it.
//!
//! Contract. Credentials are read exactly as `export` and `doctor` read them
//! ([`crate::onboard::credentials::CredentialArgs`]; the rotated refresh token is thrown away
//! unless `--write-back`); every call uses the partner user's delegated Partner Center token
//! ([`crate::microsoft::WebhookClient`]). `status` only reads. `register` reads, then writes at
//! most once: a POST when there is no registration, a PUT when the one at the same URL has other
//! events or `--force` replaces one at another URL; nothing when it is already as asked, or
//! when it points elsewhere without `--force` (exit 1, naming what is there). `test` sends the
//! validation event and reads its status every 2 s until it is no longer `pending` or the
//! timeout passes, printing each attempt; exit 0 only when it completed.
//!
//! Layout: `args` (command line), `decide` (what to do and say, pure), `commands` (the I/O).

pub mod args;
pub mod commands;
pub mod decide;

pub use args::{WebhookArgs, WebhookCommand};

/// Runs a `webhook` subcommand; the exit code (see each command).
pub async fn run(args: WebhookArgs) -> anyhow::Result<u8> {
    match args.command {
        WebhookCommand::Status(a) => commands::status(a).await,
        WebhookCommand::Register(a) => commands::register(a).await,
        WebhookCommand::Test(a) => commands::test(a).await,
    }
}

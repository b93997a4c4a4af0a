//! The command line of `gdap-operator webhook`.

use crate::onboard::credentials::CredentialArgs;
pub use crate::onboard::plan::OutputFormat;
use clap::{Args, Subcommand};
use std::time::Duration;

/// Options of `gdap-operator webhook`.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// What to do with the registration.
    #[command(subcommand)]
    pub command: WebhookCommand,
}

/// The `webhook` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum WebhookCommand {
    /// Print the partner's webhook registration (URL and events), or that there is none.
    ///
    /// With --url: whether it points at that URL, and which GDAP events it lacks. Exit status
    /// 0, or 1 on an error.
    Status(StatusArgs),
    /// Register URL for the GDAP events (and test-created), or bring the registration there.
    ///
    /// No registration: it is created. One at the same URL: updated only when its events
    /// differ. One at another URL: refused (exit 1) unless --force, which replaces it.
    Register(RegisterArgs),
    /// Send Partner Center's validation event and print each delivery attempt.
    ///
    /// Exit status 0 when the receiver accepted it, 1 when every attempt failed or the
    /// timeout passed first.
    Test(TestArgs),
}

/// Options of `webhook status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Also say whether the registration points at this URL and which GDAP events it lacks.
    #[arg(long)]
    pub url: Option<String>,
    /// `text` or `json`.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Partner credentials and Microsoft endpoints (the same as `export` and `doctor`).
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// Options of `webhook register`.
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// The receiver's URL (https; http only to a loopback address).
    #[arg(long)]
    pub url: String,
    /// Events, comma-separated (default: the eight GDAP events and test-created).
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
    /// Replace a registration that points at another URL.
    #[arg(long)]
    pub force: bool,
    /// Partner credentials and Microsoft endpoints (the same as `export` and `doctor`).
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// Options of `webhook test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// How long to wait for the delivery's outcome (e.g. 2m, 90s).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Partner credentials and Microsoft endpoints (the same as `export` and `doctor`).
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

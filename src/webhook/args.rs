//! The receiver's flags (part of `gdap-operator run`).

use super::certificates::{MICROSOFT_CERTIFICATE_PREFIX, MICROSOFT_ORGANIZATION};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The default path Partner Center POSTs to.
pub const DEFAULT_PATH: &str = "/webhooks/partner-center";

/// Partner Center webhooks (off unless `--webhook-listen` is given).
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Receive Partner Center's webhook events on this address (e.g. 0.0.0.0:8443; its own
    /// port, apart from /metrics). Off by default: polling alone then follows Microsoft.
    /// Events only make the operator look sooner; polling stays as it is.
    #[arg(long, env = "GDAP_WEBHOOK_LISTEN")]
    pub webhook_listen: Option<SocketAddr>,
    /// The path Partner Center POSTs to (the registered URL's path).
    #[arg(long, default_value = DEFAULT_PATH, env = "GDAP_WEBHOOK_PATH")]
    pub webhook_path: String,
    /// PEM bundle of the certificates the event-signing certificate must chain to (Microsoft's
    /// root and issuing CAs). Required with --webhook-listen.
    #[arg(long, value_name = "FILE", env = "GDAP_WEBHOOK_TRUST_ANCHORS")]
    pub webhook_trust_anchors: Option<PathBuf>,
    /// Where the signing certificate (X-MS-Certificate-Url) may be fetched from: URL prefixes,
    /// comma-separated; nothing else is fetched.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = MICROSOFT_CERTIFICATE_PREFIX,
        env = "GDAP_WEBHOOK_CERTIFICATE_URL_PREFIX"
    )]
    pub webhook_certificate_url_prefix: Vec<String>,
    /// The organization (O=) that must have issued the signing certificate.
    #[arg(long, default_value = MICROSOFT_ORGANIZATION, env = "GDAP_WEBHOOK_CERTIFICATE_ORGANIZATION")]
    pub webhook_certificate_organization: String,
    /// The largest event body accepted, in bytes (Partner Center's events are a few hundred).
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u32).range(256..=1_048_576))]
    pub webhook_max_body_bytes: u32,
    /// The oldest change an event may report; older ones are refused as stale, and events are
    /// remembered this long so a redelivery or replay triggers nothing.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_max_event_age: Duration,
}

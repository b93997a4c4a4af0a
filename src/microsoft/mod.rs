//! Clients for Microsoft's login (Entra), Graph and Partner Center endpoints. No Kubernetes
//! imports.
//!
//! Contract, by part:
//! - [`endpoints`]: hosts per cloud, `--login-url`/`--graph-url`/`--partner-center-url`/
//!   `--ca-file` overrides ([`EndpointArgs`]), `http://` only for loopback.
//! - [`token`]: two token sources, two types — [`AppToken`] (client credentials, reads) and
//!   [`DelegatedToken`] (the partner's GDAP user, writes) — cached, refreshed before expiry,
//!   with refresh-token rotation handed to a [`RotationCallback`]. The app authenticates with a
//!   client secret or a certificate ([`ClientCredential`], [`certificate`]).
//! - [`transport`] + [`retry`] + [`limits`] + [`pacing`]: one HTTP layer with `Retry-After`,
//!   backoff with jitter, attempt and time caps, no blind repeat of non-idempotent writes,
//!   per-tenant and global concurrency limits, and low-priority, paced background reads.
//! - [`error`]: one [`Error`] with a named [`Reason`], transient or permanent, never a secret.
//! - The APIs controllers use are the object-safe traits [`GdapApi`], [`PartnerCenterApi`] and
//!   [`DirectoryApi`] (use them as `Arc<dyn …>`), implemented by [`GraphGdapClient`],
//!   [`PartnerCenterClient`] and [`GraphDirectoryClient`]; tests run them against the sandbox (the
//!   one emulator). Writes take `&DelegatedToken`; reads take any `&dyn TokenSource`.
//! - [`webhooks`]: Partner Center's webhook registration ([`WebhookClient`], delegated only).

pub mod api;
pub mod certificate;
pub mod credential;
pub mod directory;
pub mod endpoints;
pub mod error;
pub mod graph_gdap;
pub mod limits;
pub mod models;
pub mod pacing;
mod paging;
pub mod partner_center;
pub mod retry;
pub mod secret;
pub mod token;
pub mod token_source;
pub mod transport;
pub mod webhooks;

pub use api::{DirectoryApi, GdapApi, PartnerCenterApi, RelationshipFilter, UserQuery};
pub use certificate::{CertificateError, ClientCertificate};
pub use credential::{ClientCredential, PartnerCredentials};
pub use directory::GraphDirectoryClient;
pub use endpoints::{Audience, Cloud, EndpointArgs, Endpoints};
pub use error::{Error, Reason, Result};
pub use graph_gdap::{GraphGdapClient, approval_url};
pub use partner_center::PartnerCenterClient;
pub use retry::{RetryEvent, RetryObserver, RetryPolicy};
pub use secret::Secret;
pub use token::{
    AppToken, DelegatedToken, RotatedRefreshToken, RotationCallback, TokenKind, TokenMetrics,
    TokenOptions, TokenProvider, TokenSource, rotation_fn,
};
pub use transport::{Transport, TransportConfig};
pub use webhooks::WebhookClient;

use std::sync::Arc;

/// Everything a controller needs, built from one configuration.
#[derive(Clone)]
pub struct MicrosoftClients {
    /// Token sources.
    pub tokens: TokenProvider,
    /// The GDAP API.
    pub gdap: Arc<dyn GdapApi>,
    /// The Partner Center API.
    pub partner_center: Arc<dyn PartnerCenterApi>,
    /// Directory reads.
    pub directory: Arc<dyn DirectoryApi>,
    /// Partner Center's webhook registration (the `webhook` command).
    pub webhooks: WebhookClient,
}

impl MicrosoftClients {
    /// Builds the transport, the token provider and the three real clients.
    pub fn new(
        config: TransportConfig,
        credentials: PartnerCredentials,
        rotation: Arc<dyn RotationCallback>,
        token_options: TokenOptions,
    ) -> Result<Self> {
        let transport = Transport::new(config)?;
        Ok(Self::on_transport(
            transport,
            credentials,
            rotation,
            token_options,
        ))
    }

    /// The token provider and the three real clients on `transport` (its HTTP client,
    /// concurrency limits and throttle pacing), which other clients may share: the tokens stay
    /// these credentials' own.
    pub fn on_transport(
        transport: Arc<Transport>,
        credentials: PartnerCredentials,
        rotation: Arc<dyn RotationCallback>,
        token_options: TokenOptions,
    ) -> Self {
        MicrosoftClients {
            tokens: TokenProvider::new(transport.clone(), credentials, rotation, token_options),
            gdap: Arc::new(GraphGdapClient::new(transport.clone())),
            partner_center: Arc::new(PartnerCenterClient::new(transport.clone())),
            directory: Arc::new(GraphDirectoryClient::new(transport.clone())),
            webhooks: WebhookClient::new(transport),
        }
    }
}

impl std::fmt::Debug for MicrosoftClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicrosoftClients")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

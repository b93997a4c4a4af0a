//! Access tokens from Entra: two token sources, two types, one cache, refresh-token rotation.
//!
//! Contract:
//! - [`AppToken`] is a client-credentials source for one (tenant, audience): app-only, for reads
//!   in customer tenants. [`DelegatedToken`] is a refresh-token-grant source acting as the
//!   partner's GDAP user: the only kind the write methods of the GDAP and Partner Center clients
//!   accept. Both are cheap handles onto one [`TokenProvider`].
//! - The app authenticates every grant with its [`ClientCredential`]: `client_secret`, or a
//!   client assertion signed with its certificate (`client_assertion_type` jwt-bearer, `aud` =
//!   the token URL of the grant's tenant, see [`crate::microsoft::certificate`]).
//! - Access tokens are cached per (kind, tenant, audience) and fetched again `refresh_margin`
//!   before they expire. Concurrent callers of one key share one fetch; refresh-token grants are
//!   serialised so each uses the newest refresh token. [`TokenProvider::invalidate_app_tokens`]
//!   drops the cached app-only tokens of one tenant (their `roles` claim is fixed at issue, so
//!   after a consent change only a new token shows the new permissions).
//! - Rotation: every refresh-token grant that returns a new refresh token hands it to the
//!   [`RotationCallback`] and awaits it *before* the new access token is used. If the callback
//!   fails, the provider still keeps the (valid) new refresh token in memory and the call fails
//!   with the transient `RotationNotPersisted`, so the next attempt persists a newer one. The
//!   grant runs in its own task: a caller that is cancelled mid-grant cannot lose the new token.
//! - The stored refresh token's age is exported (`gdap_refresh_token_age_seconds`) and a warning
//!   is logged when it is older than 60 days (Entra drops it after 90 days of inactivity).
//! - Nothing here prints a secret: `Debug` shows tenants and audiences only.

use crate::microsoft::certificate::CLIENT_ASSERTION_TYPE;
use crate::microsoft::credential::{ClientCredential, PartnerCredentials};
use crate::microsoft::endpoints::Audience;
use crate::microsoft::error::{Error, Reason, Result};
use crate::microsoft::secret::Secret;
use crate::microsoft::token_source::sealed;
pub use crate::microsoft::token_source::{TokenKind, TokenSource};
use crate::microsoft::transport::Transport;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Age above which the stored refresh token triggers a warning.
pub const REFRESH_TOKEN_WARN_AGE: chrono::TimeDelta = chrono::TimeDelta::days(60);

/// Error type a rotation callback may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The new refresh token handed to the rotation callback.
#[derive(Debug, Clone)]
pub struct RotatedRefreshToken {
    /// The new refresh token: store it, replacing the old one.
    pub refresh_token: Secret,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
}

/// Persists rotated refresh tokens (the operator writes them back to the credentials Secret).
#[async_trait]
pub trait RotationCallback: Send + Sync {
    /// Stores the new refresh token. Awaited before the new access token is used.
    async fn on_rotated(&self, rotated: &RotatedRefreshToken) -> std::result::Result<(), BoxError>;
}

struct FnRotation<F>(F);

#[async_trait]
impl<F, Fut> RotationCallback for FnRotation<F>
where
    F: Fn(RotatedRefreshToken) -> Fut + Send + Sync,
    Fut: Future<Output = std::result::Result<(), BoxError>> + Send,
{
    async fn on_rotated(&self, rotated: &RotatedRefreshToken) -> std::result::Result<(), BoxError> {
        (self.0)(rotated.clone()).await
    }
}

/// Wraps an async closure as a [`RotationCallback`].
pub fn rotation_fn<F, Fut>(f: F) -> Arc<dyn RotationCallback>
where
    F: Fn(RotatedRefreshToken) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), BoxError>> + Send + 'static,
{
    Arc::new(FnRotation(f))
}

/// Prometheus metrics of the token provider.
#[derive(Debug, Clone, Default)]
pub struct TokenMetrics {
    /// Age of the stored refresh token in seconds.
    pub refresh_token_age_seconds: Gauge,
    /// 1 while the stored refresh token is older than 60 days.
    pub refresh_token_stale: Gauge,
}

impl TokenMetrics {
    /// Registers the metrics.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "gdap_refresh_token_age_seconds",
            "Age of the partner's stored refresh token",
            self.refresh_token_age_seconds.clone(),
        );
        registry.register(
            "gdap_refresh_token_stale",
            "1 while the stored refresh token is older than 60 days (it dies after 90 days of inactivity)",
            self.refresh_token_stale.clone(),
        );
    }
}

#[derive(Clone)]
struct Cached {
    access: Secret,
    fresh_until: Instant,
}

struct RefreshState {
    token: Secret,
    issued_at: Option<DateTime<Utc>>,
}

type CacheKey = (TokenKind, String, Audience);
type CacheSlot = Arc<tokio::sync::Mutex<Option<Cached>>>;

struct Inner {
    transport: Arc<Transport>,
    partner_tenant_id: String,
    client_id: String,
    credential: ClientCredential,
    refresh: tokio::sync::Mutex<RefreshState>,
    cache: std::sync::Mutex<HashMap<CacheKey, CacheSlot>>,
    rotation: Arc<dyn RotationCallback>,
    refresh_margin: Duration,
    metrics: TokenMetrics,
    grants: AtomicU64,
}

/// Fetches, caches and refreshes access tokens for the partner's app and GDAP user.
#[derive(Clone)]
pub struct TokenProvider {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("partner_tenant_id", &self.inner.partner_tenant_id)
            .field("client_id", &self.inner.client_id)
            .field("client_credential", &self.inner.credential.kind())
            .finish_non_exhaustive()
    }
}

/// Options of a [`TokenProvider`].
#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// Fetch a new access token this long before the cached one expires (default 5 minutes).
    pub refresh_margin: Duration,
    /// Metrics to update (register them yourself).
    pub metrics: TokenMetrics,
}

impl Default for TokenOptions {
    fn default() -> Self {
        TokenOptions {
            refresh_margin: Duration::from_secs(300),
            metrics: TokenMetrics::default(),
        }
    }
}

impl TokenProvider {
    /// A provider for the partner's credentials; `rotation` persists rotated refresh tokens.
    pub fn new(
        transport: Arc<Transport>,
        credentials: PartnerCredentials,
        rotation: Arc<dyn RotationCallback>,
        options: TokenOptions,
    ) -> Self {
        let inner = Inner {
            transport,
            partner_tenant_id: credentials.partner_tenant_id,
            client_id: credentials.client_id,
            credential: credentials.client_credential,
            refresh: tokio::sync::Mutex::new(RefreshState {
                token: credentials.refresh_token,
                issued_at: credentials.refresh_token_issued_at,
            }),
            cache: std::sync::Mutex::new(HashMap::new()),
            rotation,
            refresh_margin: options.refresh_margin,
            metrics: options.metrics,
            grants: AtomicU64::new(0),
        };
        inner.report_age(credentials.refresh_token_issued_at, Utc::now());
        TokenProvider {
            inner: Arc::new(inner),
        }
    }

    /// The partner's tenant id.
    pub fn partner_tenant_id(&self) -> &str {
        &self.inner.partner_tenant_id
    }

    /// An app-only Graph token source for a (customer) tenant: for directory reads.
    pub fn app_token(&self, tenant_id: &str) -> AppToken {
        AppToken(Handle::new(
            self,
            tenant_id,
            Audience::Graph,
            TokenKind::App,
        ))
    }

    /// A delegated token source (the partner's GDAP user) for a tenant and audience.
    pub fn delegated_token(&self, tenant_id: &str, audience: Audience) -> DelegatedToken {
        DelegatedToken(Handle::new(self, tenant_id, audience, TokenKind::Delegated))
    }

    /// Delegated Graph token in the partner tenant: what the GDAP API needs.
    pub fn partner_graph(&self) -> DelegatedToken {
        self.delegated_token(&self.inner.partner_tenant_id.clone(), Audience::Graph)
    }

    /// Delegated Partner Center token in the partner tenant: what the consent API needs.
    pub fn partner_center(&self) -> DelegatedToken {
        self.delegated_token(
            &self.inner.partner_tenant_id.clone(),
            Audience::PartnerCenter,
        )
    }

    /// Age of the refresh token held now, if its issue time is known.
    pub async fn refresh_token_age(&self) -> Option<chrono::TimeDelta> {
        let issued = self.inner.refresh.lock().await.issued_at?;
        Some(Utc::now() - issued)
    }

    /// Replaces the stored refresh token (e.g. after someone signed in again and updated the
    /// credentials Secret). Cached access tokens stay valid until they expire.
    pub async fn replace_refresh_token(
        &self,
        refresh_token: Secret,
        issued_at: Option<DateTime<Utc>>,
    ) {
        let mut state = self.inner.refresh.lock().await;
        state.token = refresh_token;
        state.issued_at = issued_at;
        self.inner.report_age(issued_at, Utc::now());
    }

    /// How many token grants this provider has made (for tests and diagnostics).
    pub fn grants_made(&self) -> u64 {
        self.inner.grants.load(Ordering::Relaxed)
    }

    /// Drops the cached app-only tokens of `tenant_id` (every audience), so the next call fetches
    /// a new one. Call it after a change to the app's consent or app role assignments in that
    /// tenant: an app-only token's `roles` are fixed when it is issued. A fetch already under way
    /// finishes, but its token is not served from the cache afterwards. Returns how many cached
    /// tokens were dropped.
    pub fn invalidate_app_tokens(&self, tenant_id: &str) -> usize {
        self.invalidate(TokenKind::App, tenant_id)
    }

    /// Drops the cached delegated tokens of `tenant_id` (every audience). Call it after the
    /// app's delegated grants there changed: a delegated token's `scp` is fixed when it is
    /// issued, so one issued before a consent was replaced keeps reading although Entra would
    /// not issue it now (the new grant is not effective yet). Returns how many were dropped.
    pub fn invalidate_delegated_tokens(&self, tenant_id: &str) -> usize {
        self.invalidate(TokenKind::Delegated, tenant_id)
    }

    fn invalidate(&self, which: TokenKind, tenant_id: &str) -> usize {
        let tenant = tenant_id.to_ascii_lowercase();
        let mut map = self.inner.cache.lock().expect("token cache lock");
        let before = map.len();
        map.retain(|(kind, t, _), _| !(*kind == which && *t == tenant));
        before - map.len()
    }
}

impl Inner {
    fn slot(&self, key: CacheKey) -> CacheSlot {
        let mut map = self.cache.lock().expect("token cache lock");
        map.entry(key).or_default().clone()
    }

    async fn bearer(self: &Arc<Self>, key: CacheKey, stale: Option<&Secret>) -> Result<Secret> {
        let slot = self.slot(key.clone());
        let mut cached = slot.lock().await;
        if let Some(c) = cached
            .as_ref()
            .filter(|c| Instant::now() < c.fresh_until && stale != Some(&c.access))
        {
            return Ok(c.access.clone());
        }
        let (kind, tenant, audience) = key;
        let fetched = match kind {
            TokenKind::App => self.client_credentials(&tenant, audience).await?,
            TokenKind::Delegated => self.detached_refresh_grant(tenant, audience).await?,
        };
        *cached = Some(fetched.clone());
        Ok(fetched.access)
    }

    async fn client_credentials(&self, tenant: &str, audience: Audience) -> Result<Cached> {
        let scope = self.transport.endpoints.app_scope(audience);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("scope", scope.as_str()),
        ];
        let body = self.post_token(tenant, &form, &[]).await?;
        Ok(self.cached(&body))
    }

    /// The form fields that authenticate the app for a grant against `tenant`'s token URL.
    fn client_auth(&self, tenant: &str) -> Vec<(&'static str, Secret)> {
        match &self.credential {
            ClientCredential::Secret(secret) => vec![("client_secret", secret.clone())],
            ClientCredential::Certificate(cert) => {
                let audience = self.transport.endpoints.token_url(tenant);
                vec![
                    ("client_assertion_type", Secret::new(CLIENT_ASSERTION_TYPE)),
                    (
                        "client_assertion",
                        cert.assertion(&self.client_id, audience.as_str(), Utc::now()),
                    ),
                ]
            }
        }
    }

    fn client_secret_text(&self) -> &str {
        match &self.credential {
            ClientCredential::Secret(secret) => secret.expose(),
            ClientCredential::Certificate(_) => "",
        }
    }

    /// Runs the refresh-token grant in its own task, so a caller that gives up (a cancelled
    /// reconcile, a shutdown) cannot interrupt it between receiving a rotated refresh token and
    /// handing it to the rotation callback.
    async fn detached_refresh_grant(
        self: &Arc<Self>,
        tenant: String,
        audience: Audience,
    ) -> Result<Cached> {
        let inner = self.clone();
        tokio::spawn(async move { inner.refresh_grant(&tenant, audience).await })
            .await
            .map_err(|e| {
                Error::new(
                    Reason::ServiceUnavailable,
                    format!("token task failed: {e}"),
                )
            })?
    }

    async fn refresh_grant(&self, tenant: &str, audience: Audience) -> Result<Cached> {
        let mut state = self.refresh.lock().await;
        self.report_age(state.issued_at, Utc::now());
        let scope = self.transport.endpoints.delegated_scope(audience);
        let old = state.token.clone();
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("refresh_token", old.expose()),
            ("scope", scope.as_str()),
        ];
        let body = self.post_token(tenant, &form, &[old.expose()]).await?;
        let cached = self.cached(&body);
        let Some(new_token) = body.refresh_token.filter(|t| !t.is_empty()) else {
            return Ok(cached);
        };
        let rotated = RotatedRefreshToken {
            refresh_token: Secret::new(new_token),
            issued_at: Utc::now(),
        };
        let persisted = self.rotation.on_rotated(&rotated).await;
        state.token = rotated.refresh_token.clone();
        state.issued_at = Some(rotated.issued_at);
        self.report_age(state.issued_at, rotated.issued_at);
        match persisted {
            Ok(()) => Ok(cached),
            Err(e) => {
                tracing::warn!(
                    "the rotated refresh token could not be persisted; will retry with it"
                );
                Err(
                    Error::new(Reason::RotationNotPersisted, e.to_string()).scrub(&[
                        rotated.refresh_token.expose(),
                        old.expose(),
                        self.client_secret_text(),
                    ]),
                )
            }
        }
    }

    async fn post_token(
        &self,
        tenant: &str,
        form: &[(&str, &str)],
        extra_secrets: &[&str],
    ) -> Result<TokenBody> {
        self.grants.fetch_add(1, Ordering::Relaxed);
        let url = self.transport.endpoints.token_url(tenant);
        let auth = self.client_auth(tenant);
        let mut form = form.to_vec();
        form.extend(auth.iter().map(|(name, value)| (*name, value.expose())));
        let mut secrets: Vec<&str> = auth
            .iter()
            .filter(|(name, _)| *name != "client_assertion_type")
            .map(|(_, value)| value.expose())
            .collect();
        secrets.extend_from_slice(extra_secrets);
        let resp = self
            .transport
            .client
            .post(url)
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| Error::from_transport(&e, true).scrub(&secrets))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::from_transport(&e, true).scrub(&secrets))?;
        if !status.is_success() {
            let err = Error::from_token(status, &bytes).scrub(&secrets);
            tracing::warn!(tenant, reason = %err.reason(), aadsts = ?err.aadsts(), "token request failed");
            return Err(err);
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            // A body cut short on the way is worth another try: Entra keeps a redeemed refresh
            // token valid (it does not revoke it when it rotates).
            let reason = match e.classify() {
                serde_json::error::Category::Eof => Reason::ResponseCutShort,
                _ => Reason::InvalidResponse,
            };
            Error::new(reason, "token endpoint answered with an unexpected body")
        })
    }

    fn cached(&self, body: &TokenBody) -> Cached {
        Cached {
            access: body.access_token.clone(),
            fresh_until: fresh_until(Instant::now(), &body.expires_in, self.refresh_margin),
        }
    }

    fn report_age(&self, issued_at: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        let Some(issued) = issued_at else { return };
        let age = now - issued;
        self.metrics
            .refresh_token_age_seconds
            .set(age.num_seconds());
        let stale = age > REFRESH_TOKEN_WARN_AGE;
        self.metrics.refresh_token_stale.set(i64::from(stale));
        if stale {
            tracing::warn!(
                age_days = age.num_days(),
                "the stored refresh token is {} days old; Entra drops it after 90 days without use — let the operator use it, or sign in again and store a new one",
                age.num_days()
            );
        }
    }
}

/// The longest an access token is trusted, whatever `expires_in` says: Entra's live at most a day.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Until when a token issued at `now` is used: its lifetime (at most a day) less the margin.
fn fresh_until(now: Instant, expires_in: &ExpiresIn, margin: Duration) -> Instant {
    let lifetime = Duration::from_secs(expires_in.seconds()).min(MAX_TOKEN_LIFETIME);
    now + lifetime.saturating_sub(margin)
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: Secret,
    #[serde(default)]
    expires_in: ExpiresIn,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ExpiresIn {
    Number(u64),
    Text(String),
}

impl Default for ExpiresIn {
    fn default() -> Self {
        ExpiresIn::Number(3599)
    }
}

impl ExpiresIn {
    fn seconds(&self) -> u64 {
        match self {
            ExpiresIn::Number(n) => *n,
            ExpiresIn::Text(t) => t.parse().unwrap_or(3599),
        }
    }
}

#[derive(Clone)]
enum Backing {
    Provider(Arc<Inner>),
    Fixed(Secret),
}

#[derive(Clone)]
struct Handle {
    backing: Backing,
    tenant_id: String,
    audience: Audience,
    kind: TokenKind,
}

impl Handle {
    fn new(p: &TokenProvider, tenant_id: &str, audience: Audience, kind: TokenKind) -> Self {
        Handle {
            backing: Backing::Provider(p.inner.clone()),
            tenant_id: tenant_id.to_ascii_lowercase(),
            audience,
            kind,
        }
    }

    async fn bearer(&self, stale: Option<&Secret>) -> Result<Secret> {
        match &self.backing {
            Backing::Provider(inner) => {
                inner
                    .bearer((self.kind, self.tenant_id.clone(), self.audience), stale)
                    .await
            }
            Backing::Fixed(s) => Ok(s.clone()),
        }
    }
}

macro_rules! token_type {
    ($name:ident, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone)]
        pub struct $name(Handle);

        impl $name {
            /// A source that always yields `access_token` (for tests and fakes; the caller vouches
            /// for the token's kind).
            pub fn from_access_token(
                tenant_id: &str,
                audience: Audience,
                access_token: Secret,
            ) -> Self {
                $name(Handle {
                    backing: Backing::Fixed(access_token),
                    tenant_id: tenant_id.to_ascii_lowercase(),
                    audience,
                    kind: $kind,
                })
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("tenant_id", &self.0.tenant_id)
                    .field("audience", &self.0.audience)
                    .finish()
            }
        }

        impl sealed::Sealed for $name {}

        #[async_trait]
        impl TokenSource for $name {
            fn tenant_id(&self) -> &str {
                &self.0.tenant_id
            }
            fn audience(&self) -> Audience {
                self.0.audience
            }
            fn kind(&self) -> TokenKind {
                self.0.kind
            }
            async fn bearer(&self, stale: Option<&Secret>) -> Result<Secret> {
                self.0.bearer(stale).await
            }
            fn to_shared(&self) -> Arc<dyn TokenSource> {
                Arc::new(self.clone())
            }
        }
    };
}

token_type!(
    AppToken,
    TokenKind::App,
    "App-only (client-credentials) token source for one tenant: reads only."
);
token_type!(
    DelegatedToken,
    TokenKind::Delegated,
    "Delegated (refresh-token grant, the partner's GDAP user) token source for one tenant and audience: the only kind write methods accept."
);

/// Refuses a token whose audience does not fit the call, before anything is sent.
pub(crate) fn require_audience(token: &dyn TokenSource, audience: Audience) -> Result<()> {
    if token.audience() == audience {
        return Ok(());
    }
    Err(Error::new(
        Reason::WrongToken,
        format!(
            "this call needs a {audience:?} token, got a {:?} token",
            token.audience()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Found by this test: `expires_in` of u64::MAX seconds made `Instant + Duration`
        /// overflow and panic the token task.
        #[test]
        fn any_token_answer_is_decoded_or_refused_and_its_lifetime_is_bounded(
            expires in prop_oneof![
                any::<u64>().prop_map(|n| n.to_string()),
                "\\PC{0,12}".prop_map(|t| format!("{t:?}")),
                Just("null".to_string()),
                Just("-1".to_string()),
                Just("1e400".to_string()),
            ],
            refresh in prop::option::of("\\PC{0,20}"),
            junk in "\\PC{0,40}",
        ) {
            let body = format!(
                r#"{{"access_token": "a.b.c", "expires_in": {expires}, "refresh_token": {}, "x": {junk:?}}}"#,
                refresh.as_ref().map_or("null".to_string(), |r| format!("{r:?}"))
            );
            let _ = serde_json::from_str::<TokenBody>(&junk);
            if let Ok(token) = serde_json::from_str::<TokenBody>(&body) {
                let now = Instant::now();
                let until = fresh_until(now, &token.expires_in, Duration::from_secs(300));
                prop_assert!(until <= now + MAX_TOKEN_LIFETIME);
            }
        }
    }
}

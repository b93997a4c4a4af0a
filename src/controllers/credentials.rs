//! The partner credentials Secret: read from the object's own namespace (never another), turned
//! into Microsoft clients, and updated in place when Microsoft rotates the refresh token.
//!
//! One set of clients is kept per Secret, so concurrent reconciles share one token cache and one
//! refresh (a second refresh with the same token would fail once the first rotated it). The cache
//! entry is rebuilt when someone else changes the Secret (a new refresh token pasted in).
//!
//! Secrets of the same partner tenant and app (client id) share one transport: one HTTP client,
//! one set of concurrency limits and one throttle pacing, as Microsoft counts its budgets per app
//! and tenant, not per Secret. Tokens are never shared: each Secret's delegated tokens are those
//! of the user whose refresh token it holds (and its rotated token is written back to it alone),
//! and its app-only tokens are obtained with its own client credential, so a Secret whose
//! credential is refused fails on its own instead of borrowing another Secret's tokens.
//!
//! The Secret is read from a watch of that Secret alone (`secret_watch`), which Kubernetes keeps
//! current: a reconcile asks the API server only until the watch has delivered the Secret, or
//! while the watch fails (refused by the role, say), and then reads it with a GET as before.
//!
//! Rotation write-back uses optimistic concurrency: replace with the read `resourceVersion`; on a
//! conflict, read again and write the new token again — the token just received is always the
//! newest, so it must win. The watch shows the written version a moment later; until then a
//! reconcile sees the version before, which the clients know (`KnownVersions`) and keep.

use super::secret_watch::{Cached, SecretWatches, WatchStatus};
use crate::microsoft::{
    ClientCredential, MicrosoftClients, PartnerCredentials, RotatedRefreshToken, Secret,
    TokenOptions, Transport, TransportConfig, rotation_fn,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::{Api, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Annotation on the Secret recording when the stored refresh token was issued.
pub const ISSUED_AT_ANNOTATION: &str = "gdap.io/refresh-token-issued-at";
/// The keys the Secret must hold, besides one client credential ([`CLIENT_CREDENTIAL_KEYS`]).
pub const REQUIRED_KEYS: [&str; 3] = ["partnerTenantId", "clientId", "refreshToken"];
/// The two forms of client credential: `clientSecret`, or `clientCertificate` + `clientKey` (PEM).
pub const CLIENT_CREDENTIAL_KEYS: [&str; 3] = ["clientSecret", "clientCertificate", "clientKey"];

/// Why credentials could not be used. Never contains a secret value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The Secret does not exist in the object's namespace.
    #[error(
        "Secret {namespace}/{name} not found: create it with the keys partnerTenantId, clientId, refreshToken and either clientSecret or clientCertificate + clientKey (the credentials Secret must be in the object's own namespace)"
    )]
    Missing { namespace: String, name: String },
    /// A key is missing or empty.
    #[error(
        "Secret {namespace}/{name} lacks key {key:?} (needed: partnerTenantId, clientId, refreshToken, and clientSecret or clientCertificate + clientKey)"
    )]
    MissingKey {
        namespace: String,
        name: String,
        key: String,
    },
    /// The client credential keys are absent, mixed, incomplete or unreadable.
    #[error("Secret {namespace}/{name}: {message}")]
    InvalidClientCredential {
        namespace: String,
        name: String,
        message: String,
    },
    /// No credentialsRef and no operator default.
    #[error(
        "spec.credentialsRef.name is not set and the operator has no --credentials-secret default"
    )]
    NoReference,
    /// The Kubernetes API failed, or refused the operator access (then the message says which
    /// permission to grant: get, list, watch, patch and update on this Secret, by name).
    #[error(
        "reading Secret {namespace}/{name}: {source}{}",
        forbidden_advice(source, namespace, name)
    )]
    Kube {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    /// The clients could not be built (bad endpoint or CA).
    #[error("{0}")]
    Clients(String),
}

/// For a refused Secret: what to grant, and the chart value that grants it.
pub fn forbidden_advice(source: &kube::Error, namespace: &str, name: &str) -> String {
    match source {
        kube::Error::Api(e) if e.code == 403 => format!(
            "; {}",
            super::secrets_by_name::forbidden_hint(
                namespace,
                name,
                super::secrets_by_name::CREDENTIAL_VERBS,
                super::secrets_by_name::CREDENTIALS_VALUE
            )
        ),
        _ => String::new(),
    }
}

impl CredentialsError {
    /// Retrying later can help without anybody acting: the Kubernetes API failed, other than by
    /// refusing the operator the permission.
    pub fn is_transient(&self) -> bool {
        matches!(self, CredentialsError::Kube { .. }) && !self.is_forbidden()
    }

    /// The API server refused the operator access to the Secret (RBAC).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, CredentialsError::Kube { source: kube::Error::Api(e), .. } if e.code == 401 || e.code == 403)
    }

    /// The condition reason: a Kubernetes failure is transient, not invalid credentials; a
    /// refused permission names the RBAC.
    pub fn reason(&self) -> &'static str {
        use crate::api::conditions::reasons;
        if self.is_forbidden() {
            reasons::KUBERNETES_FORBIDDEN
        } else if self.is_transient() {
            reasons::KUBERNETES_ERROR
        } else {
            reasons::CREDENTIALS_INVALID
        }
    }

    /// As a failure for the report.
    pub fn failure(&self) -> crate::controllers::failure::Failure {
        let reason = self.reason();
        crate::controllers::failure::Failure::new(reason, self.to_string(), self.is_transient())
    }
}

/// Usable credentials: the clients, and the Secret they were built from (for the in-use
/// finalizer and the withdrawal records it carries).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The Microsoft clients.
    pub clients: MicrosoftClients,
    /// The Secret as read now.
    pub secret: KubeSecret,
}

struct Entry {
    /// Fingerprints of the Secret's data this entry was built from or wrote since (a change of
    /// annotations or finalizers alone keeps the clients and their token cache).
    known_versions: Arc<Mutex<KnownVersions>>,
    clients: MicrosoftClients,
    /// The transport the clients use (shared per partner tenant and app; kept for the tests).
    #[cfg(test)]
    transport: Arc<Transport>,
}

/// How many of an entry's own versions of the Secret are remembered.
const KNOWN_VERSIONS: usize = 16;

/// The last [`KNOWN_VERSIONS`] fingerprints of one Secret that its clients built from or wrote.
/// A reconcile that read the Secret just before a rotation was written sees an older one of
/// them; it must reuse the clients (which hold the rotated token), not rebuild them from the
/// stale read, whose refresh token is already spent. Only a fingerprint never seen — someone
/// else changed the Secret — builds new clients.
#[derive(Debug)]
struct KnownVersions(std::collections::VecDeque<u64>);

impl KnownVersions {
    fn new(version: u64) -> Self {
        KnownVersions(std::collections::VecDeque::from([version]))
    }

    fn contains(&self, version: u64) -> bool {
        self.0.contains(&version)
    }

    fn remember(&mut self, version: u64) {
        if self.0.contains(&version) {
            return;
        }
        if self.0.len() == KNOWN_VERSIONS {
            self.0.pop_front();
        }
        self.0.push_back(version);
    }
}

/// Clients per credentials Secret, and the watches that keep the Secrets current.
pub struct CredentialsCache {
    client: kube::Client,
    transport: TransportConfig,
    token_options: TokenOptions,
    entries: Mutex<HashMap<(String, String), Arc<Entry>>>,
    /// Per partner tenant and client id (lower case), see the module docs.
    transports: Mutex<HashMap<(String, String), Arc<Transport>>>,
    watches: SecretWatches,
}

impl CredentialsCache {
    /// A cache that builds clients with `transport` settings. The watch of a Secret stops once
    /// it was not used for `watch_idle` (give more than the longest pause between two
    /// reconciles of an object in steady state, the resync interval).
    pub fn new(
        client: kube::Client,
        transport: TransportConfig,
        token_options: TokenOptions,
        watch_idle: std::time::Duration,
    ) -> Self {
        CredentialsCache {
            watches: SecretWatches::new(client.clone(), watch_idle),
            client,
            transport,
            token_options,
            entries: Mutex::new(HashMap::new()),
            transports: Mutex::new(HashMap::new()),
        }
    }

    /// How the watch of Secret `namespace/name` stands (diagnostics and tests).
    pub fn watch_status(&self, namespace: &str, name: &str) -> WatchStatus {
        self.watches.status(namespace, name)
    }

    /// The Microsoft endpoints the clients use (e.g. for the admin-consent link).
    pub fn endpoints(&self) -> &crate::microsoft::Endpoints {
        &self.transport.endpoints
    }

    /// The clients for Secret `namespace/name`, reusing the cached ones while the Secret is
    /// unchanged, with the Secret itself (as its watch shows it, else read with a GET).
    pub async fn acquire(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Credentials, CredentialsError> {
        let api: Api<KubeSecret> = Api::namespaced(self.client.clone(), namespace);
        let secret = match self.watches.cached(namespace, name) {
            Cached::Known(secret) => secret.map(Arc::unwrap_or_clone),
            Cached::Unknown => read(&api, namespace, name).await?,
        }
        .ok_or_else(|| CredentialsError::Missing {
            namespace: namespace.into(),
            name: name.into(),
        })?;
        let clients = self.clients_for(api, &secret, namespace, name)?;
        Ok(Credentials { clients, secret })
    }

    fn clients_for(
        &self,
        api: Api<KubeSecret>,
        secret: &KubeSecret,
        namespace: &str,
        name: &str,
    ) -> Result<MicrosoftClients, CredentialsError> {
        let version = fingerprint(secret);
        let key = (namespace.to_string(), name.to_string());
        // Held from the look-up to the insert: two reconciles that find no clients must not
        // build two sets from one refresh token (the second refresh would spend it again).
        let mut entries = self.entries.lock().expect("cache lock");
        if let Some(entry) = entries.get(&key)
            && entry
                .known_versions
                .lock()
                .expect("version lock")
                .contains(version)
        {
            return Ok(entry.clients.clone());
        }
        let credentials = parse(secret, namespace, name)?;
        let known_versions = Arc::new(Mutex::new(KnownVersions::new(version)));
        let rotation = rotation_writer(api, name.to_string(), known_versions.clone());
        let transport = self.transport_for(&credentials)?;
        let clients = MicrosoftClients::on_transport(
            Arc::clone(&transport),
            credentials,
            rotation,
            self.token_options.clone(),
        );
        let entry = Arc::new(Entry {
            known_versions,
            clients: clients.clone(),
            #[cfg(test)]
            transport,
        });
        entries.insert(key, entry);
        Ok(clients)
    }

    /// The transport of the partner tenant and app `credentials` name, built on first use.
    fn transport_for(
        &self,
        credentials: &PartnerCredentials,
    ) -> Result<Arc<Transport>, CredentialsError> {
        let key = (
            credentials.partner_tenant_id.to_ascii_lowercase(),
            credentials.client_id.to_ascii_lowercase(),
        );
        let mut transports = self.transports.lock().expect("transport lock");
        if let Some(transport) = transports.get(&key) {
            return Ok(transport.clone());
        }
        let transport = Transport::new(self.transport.clone())
            .map_err(|e| CredentialsError::Clients(e.to_string()))?;
        transports.insert(key, transport.clone());
        Ok(transport)
    }
}

/// Reads Secret `namespace/name` with a GET (`None`: it does not exist).
async fn read(
    api: &Api<KubeSecret>,
    namespace: &str,
    name: &str,
) -> Result<Option<KubeSecret>, CredentialsError> {
    api.get_opt(name)
        .await
        .map_err(|source| CredentialsError::Kube {
            namespace: namespace.into(),
            name: name.into(),
            source,
        })
}

/// Reads the keys; a missing one is an error that names it. The client credential is
/// `clientSecret` or `clientCertificate` + `clientKey` (PEM), exactly one of the two forms.
pub fn parse(
    secret: &KubeSecret,
    namespace: &str,
    name: &str,
) -> Result<PartnerCredentials, CredentialsError> {
    let value = |key: &str| -> Option<String> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| String::from_utf8_lossy(&b.0).trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let get = |key: &str| -> Result<String, CredentialsError> {
        value(key).ok_or_else(|| CredentialsError::MissingKey {
            namespace: namespace.into(),
            name: name.into(),
            key: key.into(),
        })
    };
    let client_credential = client_credential(
        value("clientSecret"),
        value("clientCertificate"),
        value("clientKey"),
    )
    .map_err(|message| CredentialsError::InvalidClientCredential {
        namespace: namespace.into(),
        name: name.into(),
        message,
    })?;
    let issued_at = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ISSUED_AT_ANNOTATION))
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    Ok(PartnerCredentials {
        partner_tenant_id: get("partnerTenantId")?,
        client_id: get("clientId")?,
        client_credential,
        refresh_token: Secret::new(get("refreshToken")?),
        refresh_token_issued_at: issued_at,
    })
}

/// Exactly one client credential form; the error names the keys and the rule.
fn client_credential(
    secret: Option<String>,
    certificate: Option<String>,
    key: Option<String>,
) -> Result<ClientCredential, String> {
    match (secret, certificate, key) {
        (Some(s), None, None) => Ok(ClientCredential::Secret(Secret::new(s))),
        (None, Some(cert), Some(key)) => ClientCredential::certificate(&cert, &key)
            .map_err(|e| format!("clientCertificate/clientKey: {e}")),
        (None, None, None) => Err("no client credential: set clientSecret, or clientCertificate and clientKey (PEM)".into()),
        (Some(_), _, _) => Err("both clientSecret and clientCertificate/clientKey are set: keep exactly one client credential form".into()),
        (None, Some(_), None) => Err("clientCertificate is set but clientKey is missing: a certificate credential needs both (PEM)".into()),
        (None, None, Some(_)) => Err("clientKey is set but clientCertificate is missing: a certificate credential needs both (PEM)".into()),
    }
}

/// The rotation callback: writes the new refresh token into the Secret, retrying on conflicts.
fn rotation_writer(
    api: Api<KubeSecret>,
    name: String,
    known_versions: Arc<Mutex<KnownVersions>>,
) -> Arc<dyn crate::microsoft::RotationCallback> {
    rotation_fn(move |rotated: RotatedRefreshToken| {
        let api = api.clone();
        let name = name.clone();
        let known_versions = known_versions.clone();
        async move {
            // Known before the write lands: a reconcile that reads the Secret the moment it is
            // written must find its version known, or it would build clients from a token that
            // these clients are about to spend.
            let known = |about_to_write: &KubeSecret| {
                known_versions
                    .lock()
                    .expect("version lock")
                    .remember(fingerprint(about_to_write))
            };
            write_refresh_token(&api, &name, &rotated, known).await?;
            Ok(())
        }
    })
}

/// How often a conflicting write of a rotated token is tried before the error is returned (the
/// token provider then keeps the token and reports `RotationNotPersisted`).
const MAX_WRITE_ATTEMPTS: u32 = 40;

/// A short, growing, jittered pause between conflicting writes, so a busy writer lets us through.
fn conflict_backoff(attempt: u32) -> std::time::Duration {
    let base = 5u64 << attempt.min(6);
    let jitter = rand::random_range(0..base);
    std::time::Duration::from_millis(base + jitter)
}

/// A fingerprint of a Secret's data (keys and values), never the values themselves.
fn fingerprint(secret: &KubeSecret) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if let Some(data) = &secret.data {
        for (key, value) in data {
            key.hash(&mut hasher);
            value.0.hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Replaces `refreshToken` with optimistic concurrency; returns the Secret as written.
pub async fn store_refresh_token(
    api: &Api<KubeSecret>,
    name: &str,
    rotated: &RotatedRefreshToken,
) -> Result<KubeSecret, kube::Error> {
    write_refresh_token(api, name, rotated, |_| ()).await
}

/// [`store_refresh_token`], showing `before_write` each Secret it is about to write.
async fn write_refresh_token(
    api: &Api<KubeSecret>,
    name: &str,
    rotated: &RotatedRefreshToken,
    before_write: impl Fn(&KubeSecret),
) -> Result<KubeSecret, kube::Error> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut secret = api.get(name).await?;
        secret.data.get_or_insert_with(Default::default).insert(
            "refreshToken".into(),
            ByteString(rotated.refresh_token.expose().as_bytes().to_vec()),
        );
        secret
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(ISSUED_AT_ANNOTATION.into(), rotated.issued_at.to_rfc3339());
        before_write(&secret);
        match api.replace(name, &PostParams::default(), &secret).await {
            Ok(written) => return Ok(written),
            Err(kube::Error::Api(e)) if e.code == 409 && attempts < MAX_WRITE_ATTEMPTS => {
                tracing::debug!(
                    secret = name,
                    attempts,
                    "credentials Secret changed meanwhile; writing the rotated token again"
                );
                tokio::time::sleep(conflict_backoff(attempts)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn secret(keys: &[(&str, &str)]) -> KubeSecret {
        KubeSecret {
            data: Some(
                keys.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn known_versions_keep_the_last_sixteen() {
        let mut known = KnownVersions::new(0);
        for v in 1..=20 {
            known.remember(v);
        }
        known.remember(20);
        assert!(!known.contains(0) && !known.contains(4));
        assert!((5..=20).all(|v| known.contains(v)));
        assert_eq!(known.0.len(), KNOWN_VERSIONS);
    }

    /// A cache whose Kubernetes and Microsoft endpoints answer nothing, and a Secrets API on it.
    fn offline_cache() -> (CredentialsCache, Api<KubeSecret>) {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let endpoints = crate::microsoft::Endpoints::local("http://127.0.0.1:9", None).unwrap();
        let cache = CredentialsCache::new(
            client.clone(),
            TransportConfig::new(endpoints),
            TokenOptions::default(),
            std::time::Duration::from_secs(60),
        );
        let api: Api<KubeSecret> = Api::namespaced(client, "ns");
        (cache, api)
    }

    fn entry(cache: &CredentialsCache) -> Arc<Entry> {
        cache.entries.lock().unwrap()[&("ns".to_string(), "creds".to_string())].clone()
    }

    #[tokio::test]
    async fn a_stale_read_after_a_rotation_keeps_the_clients_with_the_rotated_token() {
        let (cache, api) = offline_cache();
        let keys = |token| {
            secret(&[
                ("partnerTenantId", "p"),
                ("clientId", "c"),
                ("clientSecret", "s"),
                ("refreshToken", token),
            ])
        };
        let (first, rotated) = (keys("rt-1"), keys("rt-2"));
        cache
            .clients_for(api.clone(), &first, "ns", "creds")
            .unwrap();
        let built = entry(&cache);
        // The clients wrote the rotated token (what the rotation callback records).
        built
            .known_versions
            .lock()
            .unwrap()
            .remember(fingerprint(&rotated));
        for read in [&rotated, &first] {
            cache.clients_for(api.clone(), read, "ns", "creds").unwrap();
            assert!(Arc::ptr_eq(&built, &entry(&cache)), "clients rebuilt");
        }
        // A token pasted in by someone else is new: the clients are built from it.
        cache
            .clients_for(api, &keys("rt-pasted"), "ns", "creds")
            .unwrap();
        assert!(!Arc::ptr_eq(&built, &entry(&cache)));
    }

    /// A Kubernetes API that serves `stored` and, when the rotated Secret is written, records
    /// whether the clients already knew its version at that moment.
    fn api_recording_writes(
        stored: KubeSecret,
        known: Arc<Mutex<KnownVersions>>,
        known_when_written: Arc<Mutex<Vec<bool>>>,
    ) -> Api<KubeSecret> {
        use axum::http::{Method, Response};
        let service = tower::service_fn(move |request: axum::http::Request<kube::client::Body>| {
            let (stored, known, known_when_written) =
                (stored.clone(), known.clone(), known_when_written.clone());
            async move {
                let method = request.method().clone();
                let body = request.into_body().collect_bytes().await?;
                let reply = if method == Method::PUT {
                    let written: KubeSecret = serde_json::from_slice(&body).unwrap();
                    let was_known = known.lock().unwrap().contains(fingerprint(&written));
                    known_when_written.lock().unwrap().push(was_known);
                    body.to_vec()
                } else {
                    serde_json::to_vec(&stored).unwrap()
                };
                Ok::<_, kube::Error>(Response::new(kube::client::Body::from(reply)))
            }
        });
        Api::namespaced(kube::Client::new(service, "ns"), "ns")
    }

    #[tokio::test]
    async fn secrets_of_one_partner_tenant_and_app_share_a_transport_and_keep_their_clients() {
        let (cache, api) = offline_cache();
        let keys = |tenant: &str, app: &str, token: &str| {
            secret(&[
                ("partnerTenantId", tenant),
                ("clientId", app),
                ("clientSecret", "s"),
                ("refreshToken", token),
            ])
        };
        let table = [
            ("team-a", keys("p", "c", "rt-a")),
            ("team-b", keys("P", "C", "rt-b")),
            ("other-app", keys("p", "c2", "rt-c")),
            ("other-partner", keys("p2", "c", "rt-d")),
        ];
        for (name, secret) in &table {
            cache.clients_for(api.clone(), secret, "ns", name).unwrap();
        }
        let entries = cache.entries.lock().unwrap();
        let entry = |name: &str| entries[&("ns".to_string(), name.to_string())].clone();
        let shared = |a: &str, b: &str| Arc::ptr_eq(&entry(a).transport, &entry(b).transport);
        assert!(shared("team-a", "team-b"), "one partner tenant and app");
        assert!(!shared("team-a", "other-app") && !shared("team-a", "other-partner"));
        assert!(!shared("other-app", "other-partner"));
        assert!(
            !Arc::ptr_eq(&entry("team-a").clients.gdap, &entry("team-b").clients.gdap),
            "each Secret keeps its own clients and tokens"
        );
        assert_eq!(cache.transports.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_rotated_token_is_known_before_its_write_lands() {
        let mut stored = secret(&[
            ("partnerTenantId", "p"),
            ("clientId", "c"),
            ("clientSecret", "s"),
            ("refreshToken", "rt-1"),
        ]);
        stored.metadata.name = Some("creds".into());
        let known = Arc::new(Mutex::new(KnownVersions::new(fingerprint(&stored))));
        let known_when_written = Arc::new(Mutex::new(Vec::new()));
        let api = api_recording_writes(stored, known.clone(), known_when_written.clone());
        let rotated = RotatedRefreshToken {
            refresh_token: Secret::new("rt-2"),
            issued_at: chrono::Utc::now(),
        };
        rotation_writer(api, "creds".into(), known)
            .on_rotated(&rotated)
            .await
            .unwrap();
        // A reconcile reading the Secret as soon as the write lands must reuse these clients.
        assert_eq!(*known_when_written.lock().unwrap(), vec![true]);
    }

    #[test]
    fn all_keys_parse_and_secrets_stay_hidden() {
        let s = secret(&[
            ("partnerTenantId", "p"),
            ("clientId", "c"),
            ("clientSecret", "shh"),
            ("refreshToken", "rt-value\n"),
        ]);
        let creds = parse(&s, "ns", "creds").unwrap();
        assert_eq!(creds.refresh_token.expose(), "rt-value");
        let debug = format!("{creds:?}");
        assert!(
            !debug.contains("shh") && !debug.contains("rt-value"),
            "{debug}"
        );
    }

    #[test]
    fn a_missing_key_is_named() {
        let s = secret(&[
            ("partnerTenantId", "p"),
            ("clientId", "c"),
            ("clientSecret", "shh"),
        ]);
        let err = parse(&s, "ns", "creds").unwrap_err().to_string();
        assert!(err.contains("lacks key \"refreshToken\""), "{err}");
        assert!(!err.contains("shh"));
    }

    const CERT: &str = include_str!("../sandbox/client-cert.pem");
    const KEY: &str = include_str!("../sandbox/client-key.pem");

    fn with_credential(keys: &[(&str, &str)]) -> Result<PartnerCredentials, String> {
        let mut all = vec![
            ("partnerTenantId", "p"),
            ("clientId", "c"),
            ("refreshToken", "rt"),
        ];
        all.extend_from_slice(keys);
        parse(&secret(&all), "ns", "creds").map_err(|e| e.to_string())
    }

    #[test]
    fn a_certificate_credential_parses() {
        let creds = with_credential(&[("clientCertificate", CERT), ("clientKey", KEY)]).unwrap();
        assert!(matches!(
            creds.client_credential,
            ClientCredential::Certificate(_)
        ));
        assert!(!format!("{creds:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn exactly_one_client_credential_form_is_accepted() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (
                &[],
                "no client credential: set clientSecret, or clientCertificate and clientKey",
            ),
            (
                &[
                    ("clientSecret", "s"),
                    ("clientCertificate", CERT),
                    ("clientKey", KEY),
                ],
                "keep exactly one",
            ),
            (&[("clientCertificate", CERT)], "clientKey is missing"),
            (&[("clientKey", KEY)], "clientCertificate is missing"),
            (
                &[("clientCertificate", CERT), ("clientKey", "garbage")],
                "clientCertificate/clientKey: the private key is not",
            ),
        ];
        for (keys, expected) in cases {
            let err = with_credential(keys).unwrap_err();
            assert!(err.starts_with("Secret ns/creds: "), "{err}");
            assert!(err.contains(expected), "{expected:?} in {err}");
            assert!(!err.contains("MII"), "no key material in {err}");
        }
    }
}

//! The credentials Secret is read from a watch that Kubernetes keeps current, not with a GET per
//! reconcile (issue 27), on the real API server:
//! - `CredentialsCache::acquire`, which every reconcile of every kind calls, reads the Secret
//!   with one GET, then only from the watch of that Secret alone (a field selector on its name,
//!   under a role that names the Secret, as the chart's does): a new client secret, a deletion
//!   and a Secret created again are seen by the next acquire without a GET. Every request the
//!   cache's client makes is counted.
//! - A watch unused for its idle time stops; the next acquire reads and watches again.
//! - A role without `list` and `watch` on the Secret (an older chart) reads it with a GET each
//!   time, as before the watch; a role without any right on it gets `KubernetesForbidden`
//!   naming the Secret and the chart value, as before.
//! - A refresh token rotated and written back while the watch still shows the version before
//!   keeps the clients (with the new token) instead of rebuilding them from the spent one.
//! - End to end, the operator binary under the chart's role: while a relationship waits for
//!   approval and is reconciled every second, the API server's audit log shows no GET of its
//!   Secret by the operator, and a client secret changed in the Secret is used by the next
//!   reconcile without a restart.

mod support;

use gdap_operator::controllers::credentials::{CredentialsCache, CredentialsError};
use gdap_operator::controllers::secret_watch::WatchStatus;
use gdap_operator::microsoft::{Endpoints, TokenOptions, TransportConfig};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::controlplane::{self, ControlPlane};

const WAIT: Duration = Duration::from_secs(60);
const SECRET: &str = "creds";

/// Every request a client made, as `METHOD path?query`.
#[derive(Clone, Default)]
struct Requests(Arc<Mutex<Vec<String>>>);

impl Requests {
    /// GETs of Secret `namespace/name` itself (not lists or watches).
    fn gets(&self, namespace: &str, name: &str) -> usize {
        self.of_secret("GET", namespace, name)
    }

    /// Writes (PUT) of Secret `namespace/name`.
    fn puts(&self, namespace: &str, name: &str) -> usize {
        self.of_secret("PUT", namespace, name)
    }

    /// Requests `method` of Secret `namespace/name` itself, whatever their query.
    fn of_secret(&self, method: &str, namespace: &str, name: &str) -> usize {
        let path = format!("{method} /api/v1/namespaces/{namespace}/secrets/{name}");
        self.all()
            .iter()
            .filter(|r| r.split('?').next() == Some(path.as_str()))
            .count()
    }

    /// Lists and watches of Secrets (whatever the selector).
    fn lists(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|r| r.starts_with("GET ") && r.contains("/secrets?"))
            .collect()
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A client of the test API server authenticating with `token`, recording its requests.
async fn client_with_token(cp: &ControlPlane, token: &str, requests: &Requests) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&cp.kubeconfig).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.to_string().into()),
        ..Default::default()
    };
    let recorded = requests.0.clone();
    let record = tower::util::MapRequestLayer::new(
        move |request: axum::http::Request<kube::client::Body>| {
            let target = request
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            recorded
                .lock()
                .unwrap()
                .push(format!("{} {target}", request.method()));
            request
        },
    );
    kube::client::ClientBuilder::try_from(config)
        .unwrap()
        .with_layer(&record)
        .build()
}

/// A ServiceAccount of `namespace` allowed `verbs` on Secret [`SECRET`] only (by
/// `resourceNames`, as the chart grants); returns its token.
fn account_with(cp: &ControlPlane, namespace: &str, account: &str, verbs: &[&str]) -> String {
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": account, "namespace": namespace},
        "rules": if verbs.is_empty() { json!([]) } else {
            json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET], "verbs": verbs}])
        },
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": account, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rbac.json");
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [role, binding]});
    std::fs::write(&file, list.to_string()).unwrap();
    cp.kubectl_ok(&["create", "serviceaccount", account, "-n", namespace]);
    cp.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    cp.kubectl_ok(&[
        "create",
        "token",
        account,
        "-n",
        namespace,
        "--duration",
        "1h",
    ])
    .trim()
    .to_string()
}

/// A credentials Secret with client secret `client_secret` and refresh token `refresh_token`.
fn credentials(client_secret: &str, refresh_token: &str) -> Secret {
    serde_json::from_value(json!({
        "metadata": {"name": SECRET},
        "stringData": {
            "partnerTenantId": gdap_operator::sandbox::defaults::PARTNER_TENANT_ID,
            "clientId": gdap_operator::sandbox::defaults::PARTNER_CLIENT_ID,
            "clientSecret": client_secret,
            "refreshToken": refresh_token,
        }
    }))
    .unwrap()
}

/// A cache whose Microsoft clients talk to `base` (nothing there for the tests that never ask
/// Microsoft).
fn cache(client: kube::Client, base: &str) -> CredentialsCache {
    cache_with_idle(client, base, Duration::from_secs(600))
}

/// [`cache`], whose watches stop after `idle` unused.
fn cache_with_idle(client: kube::Client, base: &str, idle: Duration) -> CredentialsCache {
    let endpoints = Endpoints::local(base, None).unwrap();
    CredentialsCache::new(
        client,
        TransportConfig::new(endpoints),
        TokenOptions::default(),
        idle,
    )
}

/// The value of `key` in the Secret.
fn value(secret: &Secret, key: &str) -> String {
    let data = secret.data.as_ref().expect("data");
    String::from_utf8(data[key].0.clone()).unwrap()
}

/// Polls `check` until it answers, for at most [`WAIT`].
async fn poll<T, Fut>(what: &str, check: impl Fn() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    support::operator::poll_until(what, WAIT, check).await
}

/// Waits until the watch of the Secret has delivered it.
async fn watch_current(cache: &CredentialsCache, namespace: &str) {
    poll(
        "the watch of the credentials Secret to deliver it",
        || async { (cache.watch_status(namespace, SECRET) == WatchStatus::Current).then_some(()) },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_reads_the_secret_once_then_from_its_watch_which_shows_every_change() {
    let cp = controlplane::get();
    let ns = cp.namespace("credentials-watch");
    let admin: Api<Secret> = Api::namespaced(cp.client().await, &ns);
    admin
        .create(&PostParams::default(), &credentials("s-1", "rt-1"))
        .await
        .unwrap();
    let token = account_with(
        cp,
        &ns,
        "operator",
        &["get", "list", "watch", "patch", "update"],
    );
    let requests = Requests::default();
    let cache = cache(
        client_with_token(cp, &token, &requests).await,
        "http://127.0.0.1:9",
    );

    let first = cache.acquire(&ns, SECRET).await.unwrap();
    assert_eq!(
        requests.gets(&ns, SECRET),
        1,
        "the first acquire reads the Secret"
    );
    watch_current(&cache, &ns).await;
    for _ in 0..20 {
        let again = cache.acquire(&ns, SECRET).await.unwrap();
        assert!(
            Arc::ptr_eq(&first.clients.gdap, &again.clients.gdap),
            "the unchanged Secret keeps its clients"
        );
    }
    assert_eq!(
        requests.gets(&ns, SECRET),
        1,
        "20 more acquires read no Secret from the API server: {:?}",
        requests.all()
    );

    // A new client secret is seen without a GET, and builds new clients.
    let patch = json!({"stringData": {"clientSecret": "s-2"}});
    admin
        .patch(SECRET, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let changed = poll("the new client secret", || async {
        let credentials = cache.acquire(&ns, SECRET).await.unwrap();
        (value(&credentials.secret, "clientSecret") == "s-2").then_some(credentials)
    })
    .await;
    assert!(!Arc::ptr_eq(&first.clients.gdap, &changed.clients.gdap));

    // Deleted: Missing, as when a GET finds nothing; created again: used again.
    admin.delete(SECRET, &Default::default()).await.unwrap();
    poll("the Secret missing", || async {
        match cache.acquire(&ns, SECRET).await {
            Err(CredentialsError::Missing { .. }) => Some(()),
            _ => None,
        }
    })
    .await;
    admin
        .create(&PostParams::default(), &credentials("s-3", "rt-3"))
        .await
        .unwrap();
    poll("the Secret created again", || async {
        let credentials = cache.acquire(&ns, SECRET).await.ok()?;
        (value(&credentials.secret, "clientSecret") == "s-3").then_some(())
    })
    .await;
    assert_eq!(requests.gets(&ns, SECRET), 1, "changes came from the watch");
    let lists = requests.lists();
    assert!(!lists.is_empty(), "the Secret was watched");
    for list in lists {
        assert!(
            list.contains(&format!("fieldSelector=metadata.name%3D{SECRET}")),
            "every list and watch names the Secret: {list}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_unused_for_its_idle_time_stops_and_the_next_acquire_starts_it_again() {
    let cp = controlplane::get();
    let ns = cp.namespace("credentials-idle");
    let admin: Api<Secret> = Api::namespaced(cp.client().await, &ns);
    admin
        .create(&PostParams::default(), &credentials("s-1", "rt-1"))
        .await
        .unwrap();
    let token = account_with(cp, &ns, "operator", &["get", "list", "watch"]);
    let requests = Requests::default();
    let cache = cache_with_idle(
        client_with_token(cp, &token, &requests).await,
        "http://127.0.0.1:9",
        Duration::from_secs(2),
    );
    cache.acquire(&ns, SECRET).await.unwrap();
    watch_current(&cache, &ns).await;
    poll("the unused watch to stop", || async {
        (cache.watch_status(&ns, SECRET) == WatchStatus::NotWatched).then_some(())
    })
    .await;
    let watches = |requests: &Requests| {
        let lists = requests.lists();
        lists.iter().filter(|l| l.contains("watch=true")).count()
    };
    assert_eq!(watches(&requests), 1);
    cache.acquire(&ns, SECRET).await.unwrap();
    assert_eq!(
        requests.gets(&ns, SECRET),
        2,
        "read again, as the first time"
    );
    watch_current(&cache, &ns).await;
    assert_eq!(watches(&requests), 2, "and watched again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_list_and_watch_the_secret_is_read_with_a_get_each_time_and_without_get_refused() {
    let cp = controlplane::get();
    let ns = cp.namespace("credentials-nowatch");
    let admin: Api<Secret> = Api::namespaced(cp.client().await, &ns);
    admin
        .create(&PostParams::default(), &credentials("s-1", "rt-1"))
        .await
        .unwrap();

    // An older chart's role: get, patch and update.
    let token = account_with(cp, &ns, "older-chart", &["get", "patch", "update"]);
    let requests = Requests::default();
    let cache = cache(
        client_with_token(cp, &token, &requests).await,
        "http://127.0.0.1:9",
    );
    cache.acquire(&ns, SECRET).await.unwrap();
    poll("the watch to be refused", || async {
        requests
            .lists()
            .iter()
            .any(|l| l.contains("fieldSelector"))
            .then_some(())
    })
    .await;
    for _ in 0..5 {
        cache.acquire(&ns, SECRET).await.unwrap();
    }
    assert_eq!(requests.gets(&ns, SECRET), 6, "one GET per acquire");
    assert_eq!(cache.watch_status(&ns, SECRET), WatchStatus::Pending);

    // No right on the Secret at all: refused, naming the Secret and the chart value.
    let token = account_with(cp, &ns, "no-rights", &[]);
    let cache = self::cache(
        client_with_token(cp, &token, &Requests::default()).await,
        "http://127.0.0.1:9",
    );
    let error = cache.acquire(&ns, SECRET).await.unwrap_err();
    assert!(error.is_forbidden(), "{error}");
    let message = error.to_string();
    let secret = format!("Secret {ns}/{SECRET}");
    for part in [
        secret.as_str(),
        "get, list, watch, patch and update",
        "rbac.credentialsSecrets",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
}

#[cfg(feature = "sandbox")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_rotated_before_the_watch_shows_it_keeps_the_clients_with_the_new_token() {
    use gdap_operator::microsoft::token_source::TokenSource;
    use gdap_operator::sandbox::{Sandbox, SandboxOptions, defaults};
    let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let cp = controlplane::get();
    let ns = cp.namespace("credentials-rotation");
    let admin: Api<Secret> = Api::namespaced(cp.client().await, &ns);
    let secret = credentials(
        defaults::PARTNER_CLIENT_SECRET,
        defaults::PARTNER_REFRESH_TOKEN,
    );
    admin.create(&PostParams::default(), &secret).await.unwrap();
    let token = account_with(
        cp,
        &ns,
        "operator",
        &["get", "list", "watch", "patch", "update"],
    );
    let requests = Requests::default();
    let cache = cache(
        client_with_token(cp, &token, &requests).await,
        &sandbox.base_url(),
    );
    let first = cache.acquire(&ns, SECRET).await.unwrap();
    watch_current(&cache, &ns).await;

    // The first token redeems the refresh token: Entra rotates it, the clients write the new
    // one back, and the watch shows it a moment later.
    first
        .clients
        .tokens
        .partner_graph()
        .bearer(None)
        .await
        .unwrap();
    let written = admin.get(SECRET).await.unwrap();
    let rotated = value(&written, "refreshToken");
    assert_ne!(rotated, defaults::PARTNER_REFRESH_TOKEN, "rotated");
    let stale = cache.acquire(&ns, SECRET).await.unwrap();
    assert!(
        Arc::ptr_eq(&first.clients.gdap, &stale.clients.gdap),
        "whatever the watch shows yet, the clients that wrote the token are kept"
    );
    poll("the watch to show the rotated token", || async {
        let now = cache.acquire(&ns, SECRET).await.unwrap();
        assert!(
            Arc::ptr_eq(&first.clients.gdap, &now.clients.gdap),
            "the written version is the clients' own"
        );
        (value(&now.secret, "refreshToken") == rotated).then_some(())
    })
    .await;
    // The clients hold the rotated token (a fresh one for another audience redeems it).
    first
        .clients
        .tokens
        .partner_center()
        .bearer(None)
        .await
        .unwrap();
    assert_eq!(
        requests.gets(&ns, SECRET),
        1 + requests.puts(&ns, SECRET),
        "one GET for the first acquire, one per write-back: {:?}",
        requests.all()
    );
}

/// End to end: the operator under the chart's role (World).
#[cfg(feature = "sandbox")]
mod operator {
    use super::*;
    use gdap_operator::api::GdapRelationship;
    use gdap_operator::sandbox::{SandboxOptions, defaults};
    use support::operator::{World, condition};

    const RELATIONSHIP: &str = "watched";

    fn manifest() -> String {
        format!(
            "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {RELATIONSHIP}\nspec:\n  customer:\n    tenantId: {}\n  roles: [Directory Readers]\n  duration: P30D\n",
            defaults::CONTOSO_TENANT_ID
        )
    }

    /// The reason of the relationship's `Ready` condition.
    async fn ready_reason(world: &World) -> Option<String> {
        let object: GdapRelationship = world.relationships().get(RELATIONSHIP).await.ok()?;
        condition(&object, "Ready").map(|c| c.1)
    }

    /// Sets the client secret in the world's credentials Secret.
    async fn set_client_secret(world: &World, value: &str) {
        let patch = json!({"stringData": {"clientSecret": value}});
        world
            .secrets()
            .patch(
                "partner-credentials",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconciles_read_no_secret_and_a_new_client_secret_is_used_without_a_restart() {
        let mut options = SandboxOptions::default();
        options.fixture.apps[0]
            .secrets
            .push("second-client-secret".into());
        let mut world = World::prepare("credentials-watch-e2e", options).await;
        if world.cp.audit_log().is_none() {
            eprintln!("skipped: the API server keeps no audit log (GDAP_TEST_KUBECONFIG)");
            return;
        }
        // Polls every second while the customer has not approved; no resync of the Secret
        // controller (which reads with a GET) during the test.
        world.timing_args = ["--poll-interval", "1s", "--resync-interval", "1h"]
            .map(String::from)
            .to_vec();
        world.start_operator();
        let identity = world.operator_identity();
        let requests = |world: &World| {
            world
                .secret_requests(&identity, &world.namespace, "partner-credentials")
                .unwrap()
        };
        let count = |verbs: &[String], verb: &str| verbs.iter().filter(|v| *v == verb).count();
        world.apply(&manifest());
        world
            .wait_for(RELATIONSHIP, "approval pending", WAIT, |o| {
                (o.status.as_ref()?.state.as_deref() == Some("approvalPending")).then_some(())
            })
            .await;
        let before = requests(&world);
        world.wait_for_reconciles(8.0).await;
        let after = requests(&world);
        assert_eq!(
            count(&after, "get"),
            count(&before, "get"),
            "8 reconciles read the Secret from the watch: {:?}",
            &after[before.len()..]
        );
        assert!(
            count(&after, "watch") >= 1,
            "the operator watches the Secret"
        );

        // A client secret Entra refuses, then a valid new one: each is used by the next
        // reconcile, without a restart; the only GETs are the rotated tokens' write-backs. (A
        // refused credential waits the resync interval before it is tried again — a change of
        // the Secret does not reconcile its objects — so a change of the object's annotations
        // asks for the next reconcile.)
        set_client_secret(&world, "not-the-apps-secret").await;
        world
            .wait_for(RELATIONSHIP, "CredentialsInvalid", WAIT, |o| {
                let ready = condition(o, "Ready")?;
                (ready.1 == "CredentialsInvalid").then_some(())
            })
            .await;
        set_client_secret(&world, "second-client-secret").await;
        let touched = world.kubectl(&["annotate", "gdap", RELATIONSHIP, "test/touched=1"]);
        assert!(touched.status.success(), "kubectl annotate failed");
        support::operator::poll_until("the new client secret to be accepted", WAIT, || async {
            ready_reason(&world)
                .await
                .filter(|r| r != "CredentialsInvalid")
        })
        .await;
        assert!(world.operator_running(), "the operator kept running");
        let last = requests(&world);
        let changed = &last[after.len()..];
        assert!(
            count(changed, "get") <= count(changed, "update"),
            "a GET only to write a rotated token back: {changed:?}"
        );
    }
}

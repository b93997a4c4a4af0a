//! `gdap-operator login` as a partner runs it: the real binary against an in-process sandbox (the
//! Entra sign-in flows, Graph and Partner Center) and, for `--secret`, the real kube-apiserver of
//! the test control plane. The "person" signs in through the sandbox's control API
//! (`/_sandbox/sign-ins`); with `--browser` the test also plays the browser (it opens the printed
//! authorize address and follows the sign-in's redirect to the loopback listener).
//!
//! Checked: both flows with MFA store a refresh token that works — it is redeemed for Partner
//! Center and Graph afterwards (device code into a new Secret, browser into an existing Secret
//! and into a file); an existing Secret changes only in `refreshToken` (and the issued-at
//! annotation); a sign-in without MFA, or by a user outside AdminAgents, or a declined one,
//! stores nothing and says why; a write Kubernetes would refuse fails before the sign-in; the
//! token never appears in the output. The stored token is the last one Entra issued: the device
//! test counts the sandbox's never-redeemed refresh tokens, which a stored older token of the
//! rotation chain would leave one too many.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::microsoft::{
    ClientCredential, Endpoints, MicrosoftClients, PartnerCredentials, RelationshipFilter,
    TokenOptions, TransportConfig, rotation_fn,
};
use gdap_operator::sandbox::{Consistency, Sandbox, SandboxOptions, defaults};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long any one step may take before the test fails.
const STEP: Duration = Duration::from_secs(60);
const SECRET_NAME: &str = "partner-credentials";

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions {
        device_code_interval: Duration::from_secs(1),
        consistency: Consistency {
            strict_refresh_tokens: true,
            ..Consistency::immediate()
        },
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A running `gdap-operator login`: its stderr lines as they come, stdout at the end.
struct Login {
    child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_done: tokio::task::JoinHandle<()>,
}

/// What a finished login left.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
    }

    /// The secret must appear in neither stream.
    fn assert_never_shows(&self, secret: &str) {
        assert!(secret.len() >= 8, "a real token: {secret:?}");
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "the token was printed:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
    }
}

fn start(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Login {
    let base = sandbox.base_url();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_gdap-operator"));
    command.arg("login").arg("--no-open").args(args);
    for name in [
        "GDAP_PARTNER_TENANT_ID",
        "GDAP_CLIENT_ID",
        "GDAP_CLIENT_SECRET",
        "GDAP_CLIENT_CERTIFICATE_FILE",
        "GDAP_CLIENT_KEY_FILE",
        "GDAP_KUBECONFIG",
        "GDAP_CLOUD",
        "GDAP_CA_FILE",
        "KUBECONFIG",
    ] {
        command.env_remove(name);
    }
    command
        .env("GDAP_LOGIN_URL", &base)
        .env("GDAP_GRAPH_URL", &base)
        .env("GDAP_PARTNER_CENTER_URL", &base)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let (send, lines) = mpsc::unbounded_channel();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut reader = BufReader::new(child.stderr.take().unwrap()).lines();
    let all = stderr.clone();
    let stderr_done = tokio::spawn(async move {
        while let Ok(Some(line)) = reader.next_line().await {
            all.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = send.send(line);
        }
    });
    Login {
        child,
        lines,
        stderr,
        stderr_done,
    }
}

impl Login {
    /// The first stderr line containing `needle` (failing after [`STEP`]).
    async fn line_with(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.contains(needle) => return line,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!(
                    "login printed no line with {needle:?}; stderr so far:\n{}",
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    async fn finish(mut self) -> Finished {
        let mut stdout = String::new();
        let mut out = self.child.stdout.take().unwrap();
        let status = tokio::time::timeout(STEP, async {
            out.read_to_string(&mut stdout).await.unwrap();
            self.child.wait().await.unwrap()
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "login did not finish; stderr:\n{}",
                self.stderr.lock().unwrap()
            )
        });
        tokio::time::timeout(STEP, self.stderr_done)
            .await
            .unwrap()
            .unwrap();
        let stderr = self.stderr.lock().unwrap().clone();
        Finished {
            code: status.code(),
            stdout,
            stderr,
        }
    }
}

/// The pending sign-in of `kind` (`deviceCode` or `authorize`), polled with a deadline.
async fn pending(sandbox: &Sandbox, kind: &str) -> Value {
    let deadline = Instant::now() + STEP;
    loop {
        let listed: Value = reqwest::get(format!("{}/_sandbox/sign-ins", sandbox.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(found) = listed["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == kind)
        {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no pending {kind} sign-in: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Completes a sign-in through the control API, as the person would on the page.
async fn complete(sandbox: &Sandbox, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/_sandbox/sign-ins", sandbox.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{body}: {response:?}");
    response.json().await.unwrap()
}

/// Device flow: waits for the code and signs in with `decision` (`mfa`, `user`, `decline`).
async fn device_sign_in(sandbox: &Sandbox, login: &mut Login, decision: Value) {
    login.line_with("enter the code").await;
    let pending = pending(sandbox, "deviceCode").await;
    let mut body = decision;
    body["userCode"] = pending["userCode"].clone();
    assert_eq!(complete(sandbox, body).await["completed"], true);
}

/// Browser flow: opens the printed address, signs in with `decision`, and follows the redirect
/// to the loopback listener as the browser would. Returns the page the listener answered.
async fn browser_sign_in(sandbox: &Sandbox, login: &mut Login, decision: Value) -> String {
    let url = login.line_with("/oauth2/v2.0/authorize?").await;
    let page = reqwest::get(url.trim()).await.unwrap();
    assert!(page.status().is_success(), "authorize page: {page:?}");
    let pending = pending(sandbox, "authorize").await;
    let mut body = decision;
    body["state"] = pending["state"].clone();
    let redirect = complete(sandbox, body).await["redirect"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(redirect.starts_with("http://localhost:"), "{redirect}");
    reqwest::get(&redirect).await.unwrap().text().await.unwrap()
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The client secret flags of the sandbox's partner app (the secret in the environment).
fn app_flags() -> Vec<&'static str> {
    vec![
        "--partner-tenant-id",
        defaults::PARTNER_TENANT_ID,
        "--client-id",
        defaults::PARTNER_CLIENT_ID,
    ]
}

const SECRET_ENV: (&str, &str) = ("GDAP_CLIENT_SECRET", defaults::PARTNER_CLIENT_SECRET);

/// Redeems `refresh_token` as the operator would and calls Partner Center and Graph GDAP.
async fn assert_token_works(sandbox: &Sandbox, refresh_token: &str, credential: ClientCredential) {
    let endpoints = Endpoints::local(&sandbox.base_url(), None).unwrap();
    let credentials = PartnerCredentials {
        partner_tenant_id: defaults::PARTNER_TENANT_ID.into(),
        client_id: defaults::PARTNER_CLIENT_ID.into(),
        client_credential: credential,
        refresh_token: refresh_token.into(),
        refresh_token_issued_at: None,
    };
    let clients = MicrosoftClients::new(
        TransportConfig::new(endpoints),
        credentials,
        rotation_fn(|_| async { Ok(()) }),
        TokenOptions::default(),
    )
    .unwrap();
    clients
        .partner_center
        .customers_first_page(&clients.tokens.partner_center(), 1)
        .await
        .expect("the stored refresh token gets a Partner Center token that Partner Center accepts");
    clients
        .gdap
        .list_relationships(
            &clients.tokens.partner_graph(),
            &RelationshipFilter::default(),
        )
        .await
        .expect("the stored refresh token reads GDAP relationships");
}

/// How many refresh tokens the sandbox holds that were never redeemed. After a login and one
/// use of the stored token (which rotates it and redeems the successor), the sign-in adds
/// exactly one: the newest of its chain. Had login stored an earlier token of the chain, the
/// later one it threw away would stay unredeemed too.
async fn unredeemed_tokens(sandbox: &Sandbox) -> usize {
    let state: Value = reqwest::get(format!("{}/_sandbox/state", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["refreshTokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["redeemedAt"].is_null())
        .count()
}

fn text(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

struct Cluster {
    kubeconfig: PathBuf,
    namespace: String,
    api: Api<Secret>,
}

async fn cluster() -> Cluster {
    let cp = tokio::task::spawn_blocking(support::controlplane::get)
        .await
        .unwrap();
    let namespace = cp.namespace("login");
    let api = Api::namespaced(cp.client().await, &namespace);
    Cluster {
        kubeconfig: cp.kubeconfig.clone(),
        namespace,
        api,
    }
}

impl Cluster {
    fn args(&self) -> Vec<String> {
        vec![
            "--secret".into(),
            SECRET_NAME.into(),
            "--namespace".into(),
            self.namespace.clone(),
            "--kubeconfig".into(),
            self.kubeconfig.to_str().unwrap().into(),
        ]
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn device_flow_with_mfa_creates_the_secret_with_every_key_and_a_working_token() {
    let sandbox = sandbox().await;
    let cluster = cluster().await;
    let mut args = app_flags();
    let kube_args = cluster.args();
    args.extend(strs(&kube_args));
    let unredeemed_before = unredeemed_tokens(&sandbox).await;
    let mut login = start(&sandbox, &args, &[SECRET_ENV]);
    device_sign_in(&sandbox, &mut login, json!({"mfa": true})).await;
    let done = login.finish().await;
    done.assert_code(0);

    let secret = cluster.api.get(SECRET_NAME).await.unwrap();
    let mut keys: Vec<_> = secret.data.as_ref().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "clientId",
            "clientSecret",
            "partnerTenantId",
            "refreshToken"
        ]
    );
    assert_eq!(
        text(&secret, "partnerTenantId"),
        defaults::PARTNER_TENANT_ID
    );
    assert_eq!(text(&secret, "clientId"), defaults::PARTNER_CLIENT_ID);
    assert_eq!(
        text(&secret, "clientSecret"),
        defaults::PARTNER_CLIENT_SECRET
    );
    assert!(
        secret
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("gdap.io/refresh-token-issued-at")),
        "{:?}",
        secret.metadata
    );
    let token = text(&secret, "refreshToken");
    done.assert_never_shows(&token);
    assert!(
        done.stdout.contains(defaults::PARTNER_ADMIN_UPN)
            && done.stdout.contains("MFA: yes")
            && done
                .stdout
                .contains(&format!("Secret {}/{SECRET_NAME}", cluster.namespace)),
        "{}",
        done.stdout
    );
    assert_token_works(&sandbox, &token, defaults::PARTNER_CLIENT_SECRET.into()).await;
    assert_eq!(
        unredeemed_tokens(&sandbox).await,
        unredeemed_before + 1,
        "the stored token is the last one Entra issued (no unused newer one was thrown away)"
    );
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_secret_changes_only_in_its_refresh_token() {
    let sandbox = sandbox().await;
    let cluster = cluster().await;
    let before: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": SECRET_NAME,
            "labels": {"team": "a", "gdap.io/credentials-in-use": "true"},
            "annotations": {"note": "kept"},
            "finalizers": ["example.com/keep"],
        },
        "stringData": {
            "partnerTenantId": defaults::PARTNER_TENANT_ID,
            "clientId": defaults::PARTNER_CLIENT_ID,
            "clientSecret": defaults::PARTNER_CLIENT_SECRET,
            "refreshToken": "an-old-refresh-token",
            "extra": "kept too",
        }
    }))
    .unwrap();
    let before = cluster
        .api
        .create(&PostParams::default(), &before)
        .await
        .unwrap();

    // Nothing but where the Secret is (and the browser flow): the app's keys come from it.
    let mut args = cluster.args();
    args.extend([
        "--browser".into(),
        "--redirect-port".into(),
        free_port().to_string(),
    ]);
    let mut login = start(&sandbox, &strs(&args), &[]);
    let page = browser_sign_in(&sandbox, &mut login, json!({"mfa": true})).await;
    assert!(page.contains("Signed in"), "{page}");
    let done = login.finish().await;
    done.assert_code(0);
    assert!(
        done.stdout.contains("every other key kept"),
        "{}",
        done.stdout
    );

    let after = cluster.api.get(SECRET_NAME).await.unwrap();
    let token = text(&after, "refreshToken");
    assert_ne!(token, "an-old-refresh-token");
    done.assert_never_shows(&token);
    let mut old_data = before.data.clone().unwrap();
    let mut new_data = after.data.clone().unwrap();
    old_data.remove("refreshToken");
    new_data.remove("refreshToken");
    assert_eq!(new_data, old_data, "every other key is kept");
    assert_eq!(after.metadata.labels, before.metadata.labels);
    assert_eq!(after.metadata.finalizers, before.metadata.finalizers);
    let mut annotations = after.metadata.annotations.clone().unwrap();
    assert!(
        annotations
            .remove("gdap.io/refresh-token-issued-at")
            .is_some()
    );
    assert_eq!(Some(annotations), before.metadata.annotations);
    assert_token_works(&sandbox, &token, defaults::PARTNER_CLIENT_SECRET.into()).await;

    cluster
        .api
        .patch(
            SECRET_NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    sandbox.shutdown().await;
}

fn certificate_files(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("client-cert.pem");
    let key = dir.join("client-key.pem");
    std::fs::write(&cert, defaults::PARTNER_CLIENT_CERTIFICATE_PEM).unwrap();
    std::fs::write(&key, defaults::PARTNER_CLIENT_KEY_PEM).unwrap();
    (cert, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_flow_with_mfa_writes_a_private_file_that_works() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refresh-token");
    let (cert, key) = certificate_files(dir.path());
    let port = free_port().to_string();
    let mut args = app_flags();
    args.extend([
        "--client-certificate",
        cert.to_str().unwrap(),
        "--client-key",
        key.to_str().unwrap(),
        "--browser",
        "--redirect-port",
        &port,
        "--refresh-token-file",
        file.to_str().unwrap(),
    ]);
    let mut login = start(&sandbox, &args, &[]);
    let page = browser_sign_in(&sandbox, &mut login, json!({"mfa": true})).await;
    assert!(page.contains("Signed in"), "{page}");
    let done = login.finish().await;
    done.assert_code(0);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let token = std::fs::read_to_string(&file).unwrap();
    done.assert_never_shows(&token);
    assert!(
        done.stdout.contains(&format!("file {}", file.display())),
        "{}",
        done.stdout
    );
    let credential = ClientCredential::certificate(
        defaults::PARTNER_CLIENT_CERTIFICATE_PEM,
        defaults::PARTNER_CLIENT_KEY_PEM,
    )
    .unwrap();
    assert_token_works(&sandbox, token.trim(), credential).await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_mfa_or_outside_admin_agents_nothing_is_stored() {
    let sandbox = sandbox().await;
    let cluster = cluster().await;
    let existing: Secret = serde_json::from_value(json!({
        "metadata": {"name": SECRET_NAME},
        "stringData": {
            "partnerTenantId": defaults::PARTNER_TENANT_ID,
            "clientId": defaults::PARTNER_CLIENT_ID,
            "clientSecret": defaults::PARTNER_CLIENT_SECRET,
            "refreshToken": "an-old-refresh-token",
        }
    }))
    .unwrap();
    let existing = cluster
        .api
        .create(&PostParams::default(), &existing)
        .await
        .unwrap();

    // Device flow without MFA, into the existing Secret: unchanged.
    let kube_args = cluster.args();
    let mut login = start(&sandbox, &strs(&kube_args), &[]);
    device_sign_in(&sandbox, &mut login, json!({"mfa": false})).await;
    let done = login.finish().await;
    done.assert_code(1);
    assert!(
        done.stderr.contains("without MFA") && done.stderr.contains("Nothing was stored"),
        "{}",
        done.stderr
    );
    let after = cluster.api.get(SECRET_NAME).await.unwrap();
    assert_eq!(
        after.metadata.resource_version, existing.metadata.resource_version,
        "the Secret is unchanged"
    );

    // Browser flow without MFA, into a file: no file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refresh-token");
    let port = free_port().to_string();
    let mut args = app_flags();
    args.extend([
        "--browser",
        "--redirect-port",
        &port,
        "--refresh-token-file",
        file.to_str().unwrap(),
    ]);
    let mut login = start(&sandbox, &args, &[SECRET_ENV]);
    browser_sign_in(&sandbox, &mut login, json!({"mfa": false})).await;
    let done = login.finish().await;
    done.assert_code(1);
    assert!(done.stderr.contains("MFA"), "{}", done.stderr);
    assert!(!file.exists(), "nothing is written");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file either"
    );

    // With MFA but outside AdminAgents: Partner Center refuses the user; nothing is written.
    let mut login = start(&sandbox, &args, &[SECRET_ENV]);
    browser_sign_in(
        &sandbox,
        &mut login,
        json!({"mfa": true, "user": defaults::PARTNER_SUPPORT_UPN}),
    )
    .await;
    let done = login.finish().await;
    done.assert_code(1);
    assert!(
        done.stderr.contains("AdminAgents") && done.stderr.contains(defaults::PARTNER_SUPPORT_UPN),
        "{}",
        done.stderr
    );
    assert!(!file.exists());
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_sign_in_says_so_and_stores_nothing() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refresh-token");
    let mut args = app_flags();
    args.extend(["--refresh-token-file", file.to_str().unwrap()]);
    let mut login = start(&sandbox, &args, &[SECRET_ENV]);
    device_sign_in(&sandbox, &mut login, json!({"decline": true})).await;
    let done = login.finish().await;
    done.assert_code(1);
    assert!(done.stderr.contains("declined"), "{}", done.stderr);

    let port = free_port().to_string();
    args.extend(["--browser", "--redirect-port", &port]);
    let mut login = start(&sandbox, &args, &[SECRET_ENV]);
    let page = browser_sign_in(&sandbox, &mut login, json!({"decline": true})).await;
    assert!(!page.contains("Signed in"), "{page}");
    let done = login.finish().await;
    done.assert_code(1);
    assert!(done.stderr.contains("declined"), "{}", done.stderr);
    assert!(!file.exists());
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_flags_fail_before_anyone_signs_in() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rt");
    let file = file.to_str().unwrap();
    for (args, says) in [
        (vec![], "say where to store the refresh token"),
        (
            vec!["--secret", "s", "--refresh-token-file", file],
            "not both",
        ),
        (
            vec!["--refresh-token-file", file, "--partner-tenant-id", "t"],
            "--client-id",
        ),
    ] {
        let done = start(&sandbox, &args, &[]).finish().await;
        done.assert_code(1);
        assert!(done.stderr.contains(says), "{args:?}: {}", done.stderr);
    }
    let listed: Value = reqwest::get(format!("{}/_sandbox/sign-ins", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["value"], json!([]), "no sign-in was started");
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_kubernetes_would_refuse_fails_before_the_sign_in() {
    let sandbox = sandbox().await;
    let cluster = cluster().await;
    let mut args = app_flags();
    let kubeconfig = cluster.kubeconfig.to_str().unwrap().to_string();
    args.extend([
        "--secret",
        "Not_A_Valid_Name",
        "--namespace",
        &cluster.namespace,
        "--kubeconfig",
        &kubeconfig,
    ]);
    let done = start(&sandbox, &args, &[SECRET_ENV]).finish().await;
    done.assert_code(1);
    assert!(
        done.stderr.contains("create Secret") && done.stderr.contains("Not_A_Valid_Name"),
        "{}",
        done.stderr
    );
    let listed: Value = reqwest::get(format!("{}/_sandbox/sign-ins", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["value"], json!([]), "nobody was asked to sign in");
    sandbox.shutdown().await;
}

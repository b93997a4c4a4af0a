//! End-to-end harness: an in-process sandbox, a namespace with the credentials Secret, and the
//! operator binary as a real child process (so tests can kill it at any moment).

use super::chart;
use super::controlplane::{self, ControlPlane};
use gdap_operator::api::GdapRelationship;
use gdap_operator::sandbox::{Sandbox, SandboxOptions, defaults};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the chart installs the operator's RBAC.
#[derive(Debug, Clone, Copy)]
pub enum ChartRbac {
    /// The default install: a ClusterRole (the operator still watches only the test namespace).
    ClusterWide,
    /// `watchNamespaces: [<the test namespace>]`: a Role there and nothing cluster-wide.
    Namespaced,
}

/// One end-to-end world.
pub struct World {
    /// The control plane.
    pub cp: &'static ControlPlane,
    /// The test's namespace.
    pub namespace: String,
    /// The Microsoft emulator.
    pub sandbox: Sandbox,
    /// The operator process, when running.
    pub operator: Option<Child>,
    /// Where the operator serves /metrics.
    pub metrics_address: String,
    /// The kubeconfig the operator uses (admin, or the operator's ServiceAccount).
    pub operator_kubeconfig: std::path::PathBuf,
    /// Kubernetes client.
    pub client: kube::Client,
    /// Flags added to every start of the operator (e.g. the AppConsent intervals).
    pub extra_args: Vec<String>,
    http: reqwest::Client,
}

impl World {
    /// Starts a sandbox (with `options`), a namespace with credentials, and the operator.
    pub async fn start(prefix: &str, options: SandboxOptions) -> World {
        World::start_with_args(prefix, options, &[]).await
    }

    /// Like [`World::start`], with `args` added to the operator's command line.
    pub async fn start_with_args(prefix: &str, options: SandboxOptions, args: &[&str]) -> World {
        let cp = controlplane::get();
        let namespace = cp.namespace(prefix);
        let sandbox = Sandbox::start(options).await.expect("sandbox starts");
        let client = cp.client().await;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "partner-credentials"},
            "stringData": {
                "partnerTenantId": defaults::PARTNER_TENANT_ID,
                "clientId": defaults::PARTNER_CLIENT_ID,
                "clientSecret": defaults::PARTNER_CLIENT_SECRET,
                "refreshToken": defaults::PARTNER_REFRESH_TOKEN,
            }
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut world = World {
            cp,
            namespace,
            sandbox,
            operator: None,
            metrics_address: format!("127.0.0.1:{port}"),
            operator_kubeconfig: cp.kubeconfig.clone(),
            client,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
            http: reqwest::Client::new(),
        };
        world.start_operator();
        world
    }

    /// Starts the operator process (watching only this namespace, fast timings).
    pub fn start_operator(&mut self) {
        let base = self.sandbox.base_url();
        let child = Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
            .args([
                "run",
                "--namespaces",
                &self.namespace,
                "--credentials-secret",
                "partner-credentials",
            ])
            .arg("--kubeconfig")
            .arg(&self.operator_kubeconfig)
            .args([
                "--login-url",
                &base,
                "--graph-url",
                &base,
                "--partner-center-url",
                &base,
            ])
            .args([
                "--poll-interval",
                "1s",
                "--resync-interval",
                "3s",
                "--termination-timeout",
                "30s",
            ])
            .args(["--metrics-address", &self.metrics_address])
            .args(&self.extra_args)
            .args(["--log-level", "info,gdap_operator=debug"])
            .env_remove("RUST_LOG")
            .stdout(log_file(&self.namespace))
            .stderr(log_file(&self.namespace))
            .spawn()
            .expect("operator starts");
        self.operator = Some(child);
    }

    /// Restarts the operator under the chart's RBAC: renders charts/gdap-operator with
    /// `helm template` (release in a namespace of its own), applies it, and runs the operator
    /// with a token of the chart's ServiceAccount, so the API server enforces exactly the rules
    /// the chart grants.
    pub fn run_operator_under_the_charts_rbac(&mut self, mode: ChartRbac) {
        self.kill_operator();
        let release = self.cp.namespace("gdap-system");
        let watch = format!("watchNamespaces={{{}}}", self.namespace);
        let sets: Vec<&str> = match mode {
            ChartRbac::ClusterWide => vec![],
            ChartRbac::Namespaced => vec![watch.as_str()],
        };
        let manifests = chart::template(&release, &release, &sets)
            .unwrap_or_else(|e| panic!("helm template: {e}"));
        let docs = chart::documents(&manifests);
        let account = chart::one(&docs, "ServiceAccount")["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chart.yaml");
        std::fs::write(&file, &manifests).unwrap();
        self.cp
            .kubectl_ok(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
        let token = self.cp.kubectl_ok(&[
            "create",
            "token",
            &account,
            "-n",
            &release,
            "--duration",
            "1h",
        ]);
        self.operator_kubeconfig = self.token_kubeconfig(token.trim());
        self.start_operator();
    }

    /// A kubeconfig for the test API server that authenticates with `token`.
    fn token_kubeconfig(&self, token: &str) -> std::path::PathBuf {
        let admin: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&self.cp.kubeconfig).unwrap()).unwrap();
        let cluster = &admin["clusters"][0]["cluster"];
        let kubeconfig = json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": cluster["server"].as_str(), "certificate-authority-data": cluster["certificate-authority-data"].as_str()}}],
            "users": [{"name": "gdap-operator", "user": {"token": token}}],
            "contexts": [{"name": "operator", "context": {"cluster": "test", "user": "gdap-operator"}}],
            "current-context": "operator",
        });
        let path =
            std::env::temp_dir().join(format!("gdap-operator-{}.kubeconfig", self.namespace));
        std::fs::write(&path, serde_json::to_string(&kubeconfig).unwrap()).unwrap();
        path
    }

    /// The operator's log so far.
    pub fn operator_log(&self) -> String {
        std::fs::read_to_string(log_path(&self.namespace)).unwrap_or_default()
    }

    /// Kills the operator process at once (SIGKILL), as a crash would.
    pub fn kill_operator(&mut self) {
        if let Some(mut child) = self.operator.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The GdapRelationship API of the namespace.
    pub fn relationships(&self) -> Api<GdapRelationship> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Applies a manifest (YAML) in the namespace with kubectl.
    pub fn apply(&self, yaml: &str) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.yaml");
        std::fs::write(&file, yaml).unwrap();
        self.cp
            .kubectl_ok(&["apply", "-n", &self.namespace, "-f", file.to_str().unwrap()]);
    }

    /// Runs kubectl in the namespace.
    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        let mut full = vec!["-n", &self.namespace];
        full.extend_from_slice(args);
        self.cp.kubectl(&full)
    }

    /// The operator's /metrics text.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics_address);
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// PUTs to the sandbox control API.
    pub async fn put_control(&self, path: &str, body: Value) -> reqwest::StatusCode {
        self.send_control(reqwest::Method::PUT, path, body).await
    }

    async fn send_control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> reqwest::StatusCode {
        let url = format!("{}/_sandbox/{path}", self.sandbox.base_url());
        self.http
            .request(method, url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// The sandbox's whole state.
    pub async fn state(&self) -> Value {
        self.http_get("state").await
    }

    /// GETs a sandbox control API path as JSON.
    pub async fn http_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/_sandbox/{path}", self.sandbox.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The sandbox's relationships.
    pub async fn sandbox_relationships(&self) -> Vec<Value> {
        self.state().await["relationships"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// DELETEs a sandbox control API path (e.g. `faults`).
    pub async fn delete_control(&self, path: &str) -> reqwest::StatusCode {
        self.send_control(reqwest::Method::DELETE, path, json!({}))
            .await
    }

    /// POSTs to the sandbox control API.
    pub async fn control(&self, path: &str, body: Value) -> reqwest::StatusCode {
        self.send_control(reqwest::Method::POST, path, body).await
    }

    /// Waits until `check` returns `Some`, polling the object.
    pub async fn wait_for<T>(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&GdapRelationship) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let api = self.relationships();
        loop {
            if let Ok(object) = api.get(name).await
                && let Some(value) = check(&object)
            {
                return value;
            }
            if Instant::now() > deadline {
                let current = api
                    .get(name)
                    .await
                    .map(|o| serde_json::to_string_pretty(&o.status).unwrap())
                    .unwrap_or_default();
                panic!(
                    "timed out waiting for {what} on {name}; status now: {current}\noperator log: {}",
                    log_path(&self.namespace).display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The credentials Secrets of the namespace.
    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Moves the sandbox's clock forward (see docs/sandbox.md) instead of sleeping.
    pub async fn advance_clock(&self, seconds: f64) {
        let status = self
            .control("clock", json!({"advanceSeconds": seconds}))
            .await;
        assert!(status.is_success(), "advancing the clock: {status}");
    }

    /// The sandbox's request log as (method, path) pairs, oldest first.
    pub async fn requests(&self) -> Vec<(String, String)> {
        self.http_get("requests").await["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                (
                    r["method"].as_str().unwrap_or_default().to_string(),
                    r["path"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// How many logged requests have `method` and a path containing `part`.
    pub async fn count_requests(&self, method: &str, part: &str) -> usize {
        self.requests()
            .await
            .iter()
            .filter(|(m, p)| m == method && p.contains(part))
            .count()
    }

    /// Reconciles of GdapRelationships the operator has finished so far (all results).
    pub async fn reconciles(&self) -> f64 {
        self.reconciles_of("GdapRelationship").await
    }

    /// Reconciles of objects of `kind` the operator has finished so far (all results).
    pub async fn reconciles_of(&self, kind: &str) -> f64 {
        let prefix = format!("gdap_reconciles_total{{kind=\"{kind}\"");
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until the operator has finished `more` reconciles beyond the current count: a
    /// state-based wait for "the operator looked again" instead of a fixed sleep.
    pub async fn wait_for_reconciles(&self, more: f64) {
        let start = self.reconciles().await;
        poll_until(
            &format!("{more} more reconciles"),
            Duration::from_secs(60),
            || async { (self.reconciles().await >= start + more).then_some(()) },
        )
        .await
    }

    /// The Kubernetes events of an object, as "reason: note" lines.
    pub fn events(&self, name: &str) -> Vec<String> {
        let out = self.kubectl(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "-o",
            "json",
        ]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e["reason"].as_str().unwrap_or(""),
                            e["message"].as_str().or(e["note"].as_str()).unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill_operator();
    }
}

/// Polls `check` every 250 ms until it returns `Some`, failing the test after `timeout`.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Condition status of a type on an object.
pub fn condition(object: &GdapRelationship, type_: &str) -> Option<(String, String, String)> {
    let c = object
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn log_path(namespace: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gdap-operator-{namespace}.log"))
}

fn log_file(namespace: &str) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(namespace))
        .map(Stdio::from)
        .unwrap_or(Stdio::null())
}

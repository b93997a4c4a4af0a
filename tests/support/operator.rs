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

/// Secret names the chart is told about (`rbac.credentialsSecrets`, `rbac.connectionSecrets`).
#[derive(Debug, Clone, Default)]
pub struct ChartSecrets {
    /// Credentials Secrets besides the world's default one.
    pub credentials: Vec<String>,
    /// PostgreSQL connection Secrets.
    pub connections: Vec<String>,
}

impl ChartSecrets {
    /// The Secrets the suite's objects name besides the world's default credentials Secret, as
    /// a partner's values file lists its own: a test naming another Secret adds it here or to
    /// its world's `chart_secrets` before the operator starts.
    pub fn suite() -> Self {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect();
        ChartSecrets {
            credentials: names(&[
                "absent",
                "by-certificate",
                "certificate-form",
                "no-mfa",
                "secret-form",
                "unregistered-certificate",
                "wrong-secret",
            ]),
            connections: names(&["reporting-db", "warehouse", "nowhere", "untrusted"]),
        }
    }

    /// The `--set` values naming them.
    fn sets(&self) -> Vec<String> {
        let set = |value: &str, names: &[String]| {
            (!names.is_empty()).then(|| format!("{value}={{{}}}", names.join(",")))
        };
        [
            set("rbac.credentialsSecrets", &self.credentials),
            set("rbac.connectionSecrets", &self.connections),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
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
    /// More flags for every operator process started from now on (e.g. the chart's election
    /// flags).
    pub operator_args: Vec<String>,
    /// Environment of every operator process started from now on (e.g. the Deployment's
    /// `POD_NAMESPACE`).
    pub operator_env: Vec<(String, String)>,
    /// More Secret names the chart's role grants (beyond `credentials_secret`): credentials
    /// Secrets and connection Secrets. The chart grants Secrets by name only.
    pub chart_secrets: ChartSecrets,
    /// The namespace of the chart's release the operator runs under by default (its
    /// ServiceAccount, and the leader-election Lease Role).
    pub release_namespace: String,
    /// The `--set` values of the chart's default role last applied (`None`: the operator runs
    /// under a role of its own, see [`World::run_operator_under_the_charts_rbac`]).
    applied_chart: Option<Vec<String>>,
    /// `--log-level` of every operator process started from now on.
    pub log_level: String,
    /// `--credentials-secret` of every operator process started from now on.
    pub credentials_secret: String,
    /// The timing flags of every operator process started from now on (fast by default:
    /// `--poll-interval 1s --resync-interval 3s --termination-timeout 30s`).
    pub timing_args: Vec<String>,
    http: reqwest::Client,
}

/// One more operator process of a world (a replica), with its own log and metrics address.
pub struct Replica {
    /// Its name: `POD_NAME` of the process, so its Lease identity starts with `<tag>_` and its
    /// events name it as `reportingInstance`.
    pub tag: String,
    /// Where it serves /healthz, /readyz and /metrics.
    pub metrics_address: String,
    /// Its log file.
    pub log: std::path::PathBuf,
    child: Option<Child>,
    http: reqwest::Client,
}

impl World {
    /// Starts a sandbox (with `options`), a namespace with credentials, and the operator.
    pub async fn start(prefix: &str, options: SandboxOptions) -> World {
        World::start_with_args(prefix, options, &[]).await
    }

    /// Like [`World::start`], with `args` added to the operator's command line.
    pub async fn start_with_args(prefix: &str, options: SandboxOptions, args: &[&str]) -> World {
        let mut world = World::prepare(prefix, options).await;
        world.operator_args = args.iter().map(|a| a.to_string()).collect();
        world.start_operator();
        world
    }

    /// Like [`World::start`] without starting the operator (tests start replicas themselves).
    pub async fn prepare(prefix: &str, options: SandboxOptions) -> World {
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
        let port = free_port();
        let mut world = World {
            cp,
            namespace,
            sandbox,
            operator: None,
            metrics_address: format!("127.0.0.1:{port}"),
            operator_kubeconfig: cp.kubeconfig.clone(),
            client,
            operator_args: Vec::new(),
            operator_env: Vec::new(),
            log_level: "info,gdap_operator=debug".into(),
            credentials_secret: "partner-credentials".into(),
            timing_args: [
                "--poll-interval",
                "1s",
                "--resync-interval",
                "3s",
                "--termination-timeout",
                "30s",
            ]
            .map(String::from)
            .to_vec(),
            chart_secrets: ChartSecrets::suite(),
            release_namespace: cp.namespace("gdap-system"),
            applied_chart: Some(Vec::new()),
            http: reqwest::Client::new(),
        };
        world.run_under_the_charts_default_role();
        world
    }

    /// The operator runs under the chart's default role (the cluster-wide install, Secrets by
    /// name), with the identity of the chart's ServiceAccount in [`World::release_namespace`];
    /// applied again when the Secrets it must name changed since.
    fn run_under_the_charts_default_role(&mut self) {
        let Some(applied) = &self.applied_chart else {
            return;
        };
        let sets = self.secret_sets();
        if *applied == sets {
            return;
        }
        let release = self.release_namespace.clone();
        let docs = self.render_chart(&release, &sets);
        self.operator_kubeconfig = self.apply_chart(&docs, &release);
        self.applied_chart = Some(sets);
    }

    /// The `--set` values naming the Secrets the operator may use.
    fn secret_sets(&self) -> Vec<String> {
        let mut sets = vec![format!("credentialsSecret={}", self.credentials_secret)];
        sets.extend(self.chart_secrets.sets());
        sets
    }

    /// The chart's documents for release `release` (in the namespace of that name).
    fn render_chart(&self, release: &str, sets: &[String]) -> Vec<Value> {
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let manifests = chart::template(release, release, &sets)
            .unwrap_or_else(|e| panic!("helm template: {e}"));
        chart::documents(&manifests)
    }

    /// Applies the chart's documents and returns a kubeconfig with its ServiceAccount's token.
    fn apply_chart(&self, docs: &[Value], release: &str) -> std::path::PathBuf {
        let account = chart::one(docs, "ServiceAccount")["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("chart.yaml");
        let text: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
        std::fs::write(&file, text.join("\n---\n")).unwrap();
        self.cp
            .kubectl_ok(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
        let token = self.cp.kubectl_ok(&[
            "create",
            "token",
            &account,
            "-n",
            release,
            "--duration",
            "1h",
        ]);
        self.token_kubeconfig(token.trim())
    }

    /// Starts the operator process (watching only this namespace, fast timings).
    pub fn start_operator(&mut self) {
        self.run_under_the_charts_default_role();
        let log = log_path(&self.namespace);
        let child = self
            .operator_command(&self.metrics_address, &log)
            .spawn()
            .expect("operator starts");
        self.operator = Some(child);
    }

    /// Starts one more operator process, `POD_NAME=<tag>`, with `extra` flags after the
    /// world's own (`operator_args`), a metrics address and a log of its own.
    pub fn start_replica(&self, tag: &str, extra: &[String]) -> Replica {
        self.start_replica_with_env(tag, extra, &[])
    }

    /// [`World::start_replica`] with `env` added to its environment.
    pub fn start_replica_with_env(
        &self,
        tag: &str,
        extra: &[String],
        env: &[(&str, &str)],
    ) -> Replica {
        let metrics_address = format!("127.0.0.1:{}", free_port());
        let log = log_path(&format!("{}-{tag}", self.namespace));
        let child = self
            .operator_command(&metrics_address, &log)
            .args(extra)
            .env("POD_NAME", tag)
            .envs(env.iter().copied())
            .spawn()
            .expect("replica starts");
        Replica {
            tag: tag.to_string(),
            metrics_address,
            log,
            child: Some(child),
            http: self.http.clone(),
        }
    }

    /// The Lease `name` of the world's namespace, if it exists.
    pub async fn lease(&self, name: &str) -> Option<k8s_openapi::api::coordination::v1::Lease> {
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(self.client.clone(), &self.release_namespace);
        leases.get_opt(name).await.unwrap()
    }

    fn operator_command(&self, metrics_address: &str, log: &std::path::Path) -> Command {
        let base = self.sandbox.base_url();
        let mut command = Command::new(env!("CARGO_BIN_EXE_gdap-operator"));
        command
            .args([
                "run",
                "--namespaces",
                &self.namespace,
                "--credentials-secret",
                &self.credentials_secret,
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
            .args(&self.timing_args)
            .args(["--metrics-address", metrics_address])
            .args(["--log-level", &self.log_level])
            .args(&self.operator_args)
            .envs(self.operator_env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .stdout(log_file(log))
            .stderr(log_file(log));
        command
    }

    /// Restarts the operator under the chart's RBAC: renders charts/gdap-operator with
    /// `helm template` (release in a namespace of its own), applies it, and runs the operator
    /// with a token of the chart's ServiceAccount, so the API server enforces exactly the rules
    /// the chart grants.
    pub fn run_operator_under_the_charts_rbac(&mut self, mode: ChartRbac) {
        self.run_operator_under_the_charts_rbac_with(mode, |_| {});
    }

    /// Like [`World::run_operator_under_the_charts_rbac`], with `edit` applied to the rendered
    /// documents first (e.g. a test that removes one RBAC rule). Returns the release namespace.
    pub fn run_operator_under_the_charts_rbac_with(
        &mut self,
        mode: ChartRbac,
        edit: impl FnOnce(&mut Vec<Value>),
    ) -> String {
        self.kill_operator();
        let release = self.cp.namespace("gdap-system");
        let mut sets: Vec<String> = match mode {
            ChartRbac::ClusterWide => vec![],
            ChartRbac::Namespaced => vec![format!("watchNamespaces={{{}}}", self.namespace)],
        };
        sets.extend(self.secret_sets());
        let mut docs = self.render_chart(&release, &sets);
        edit(&mut docs);
        self.use_the_charts_election_flags(&docs, &release);
        self.operator_kubeconfig = self.apply_chart(&docs, &release);
        self.applied_chart = None;
        self.start_operator();
        release
    }

    /// Runs the operator with the leader-election flags the chart's Deployment passes, and the
    /// `POD_NAMESPACE` it would have, so the election runs under the chart's Lease rules.
    fn use_the_charts_election_flags(&mut self, docs: &[Value], release: &str) {
        let args: Vec<String> =
            chart::one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .filter(|a| a.starts_with("--leader-elect") || a.starts_with("--lease-"))
                .collect();
        // Added to the test's own flags (e.g. a short consent settle time), not instead of them.
        self.operator_args.extend(args);
        self.operator_env = vec![
            ("POD_NAMESPACE".into(), release.into()),
            ("POD_NAME".into(), "chart-rbac".into()),
        ];
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

    /// The user name the operator's token authenticates as (its ServiceAccount, when it runs
    /// under the chart's role).
    pub fn operator_identity(&self) -> String {
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.operator_kubeconfig).unwrap())
                .unwrap();
        let token = config["users"][0]["user"]["token"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine;
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.trim_end_matches('='))
                .unwrap(),
        )
        .unwrap();
        claims["sub"].as_str().unwrap().to_string()
    }

    /// The verbs of every request the operator (as `identity`, see
    /// [`World::operator_identity`]) made on Secret `namespace/name` so far, in order, from the
    /// API server's audit log; `None` when the control plane keeps none (another cluster). A
    /// list or watch by a field selector on the name counts as one on that Secret.
    pub fn secret_requests(
        &self,
        identity: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Vec<String>> {
        let log = self.cp.audit_log()?;
        let text = std::fs::read_to_string(&log)
            .unwrap_or_else(|e| panic!("{}: {e} (restart the control plane with tests/controlplane/down and up to get its audit log)", log.display()));
        let verbs = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| {
                e["user"]["username"] == identity
                    && e["objectRef"]["namespace"] == namespace
                    && e["objectRef"]["name"] == name
            })
            .map(|e| e["verb"].as_str().unwrap_or_default().to_string())
            .collect();
        Some(verbs)
    }

    /// Whether the operator process is still running (`false` once it exited).
    pub fn operator_running(&mut self) -> bool {
        self.operator
            .as_mut()
            .is_some_and(|child| child.try_wait().unwrap().is_none())
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

    /// Stops the operator as Kubernetes does (SIGTERM) and waits for it to exit; returns how.
    pub async fn stop_operator(&mut self) -> std::process::ExitStatus {
        let mut child = self.operator.take().expect("the operator runs");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the operator did not exit within 60 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
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

    /// The operator's /metrics text, or `None` while it does not answer.
    pub async fn metrics_text(&self) -> Option<String> {
        let url = format!("http://{}/metrics", self.metrics_address);
        self.http.get(url).send().await.ok()?.text().await.ok()
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

    /// Every write the sandbox received since its start (or the last clear), by `"METHOD /path"`:
    /// the request log's uncapped totals, so "exactly once" cannot pass by a full log.
    pub async fn writes_by_path(&self) -> std::collections::BTreeMap<String, u64> {
        serde_json::from_value(self.http_get("requests").await["totals"]["writesByPath"].clone())
            .expect("the request log's totals carry writesByPath")
    }

    /// How many writes with `method` went to exactly `path` (see [`World::writes_by_path`]).
    pub async fn writes_to(&self, method: &str, path: &str) -> u64 {
        self.writes_by_path()
            .await
            .get(&format!("{method} {path}"))
            .copied()
            .unwrap_or(0)
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

    /// Reconciles of every kind the operator has finished (0 while it does not answer, e.g.
    /// restarting).
    pub async fn reconciles_all(&self) -> f64 {
        let text = self.metrics_text().await.unwrap_or_default();
        super::metrics::sum(&text, "gdap_reconciles_total{")
    }

    /// Microsoft's status of the relationship `id`, as the sandbox holds it.
    pub async fn sandbox_status(&self, id: &str) -> Option<String> {
        self.sandbox_relationships()
            .await
            .iter()
            .find(|r| r["id"] == id)
            .and_then(|r| r["status"].as_str().map(str::to_string))
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

fn log_file(path: &std::path::Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(Stdio::from)
        .unwrap_or(Stdio::null())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Replica {
    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its /metrics text, or `None` while it does not answer.
    pub async fn metrics(&self) -> Option<String> {
        let url = format!("http://{}/metrics", self.metrics_address);
        let response = self.http.get(url).send().await.ok()?;
        response.text().await.ok()
    }

    /// Its /readyz answer (status, body), or `None` while it does not answer.
    pub async fn readyz(&self) -> Option<(u16, String)> {
        let url = format!("http://{}/readyz", self.metrics_address);
        let response = self.http.get(url).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// `gdap_leader` (true: leading), or `None` while it does not answer.
    pub async fn is_leader(&self) -> Option<bool> {
        let text = self.metrics().await?;
        super::metrics::value(&text, "gdap_leader").map(|v| v == 1.0)
    }

    /// Reconciles of GdapRelationships it has finished (all results; 0 before the first).
    pub async fn reconciles(&self) -> f64 {
        let text = self.metrics().await.unwrap_or_default();
        super::metrics::sum(&text, "gdap_reconciles_total{kind=\"GdapRelationship\"")
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it at once (SIGKILL), as a crash or a lost node would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks it to stop (SIGTERM), as Kubernetes does when it deletes the pod.
    pub fn terminate(&self) {
        let child = self.child.as_ref().expect("the replica runs");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for it to exit, failing the test after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("the replica runs");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}; log: {}",
                self.tag,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

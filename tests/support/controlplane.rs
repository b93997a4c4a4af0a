//! The real test control plane (etcd + kube-apiserver built from upstream, see tests/controlplane/).
//! The first test that asks for it runs `tests/controlplane/up`, which builds (cached) and starts it
//! if it is not running; set `GDAP_TEST_KUBECONFIG` to use another cluster instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running API server and the tools to talk to it.
pub struct ControlPlane {
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// kubectl of the same version as the server.
    pub kubectl: PathBuf,
}

/// The shared control plane, started on first use, with the CRDs installed.
pub fn get() -> &'static ControlPlane {
    static CP: OnceLock<ControlPlane> = OnceLock::new();
    CP.get_or_init(|| {
        let scripts = super::root().join("tests/controlplane");
        let kubectl = PathBuf::from(last_line(&run_script(&scripts.join("build")))).join("kubectl");
        let kubeconfig = match std::env::var_os("GDAP_TEST_KUBECONFIG") {
            Some(path) => PathBuf::from(path),
            None => PathBuf::from(last_line(&run_script(&scripts.join("up")))),
        };
        let cp = ControlPlane {
            kubeconfig,
            kubectl,
        };
        cp.install_crds();
        cp
    })
}

fn run_script(script: &Path) -> String {
    let output = Command::new(script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "{} failed", script.display());
    String::from_utf8(output.stdout).unwrap()
}

fn last_line(text: &str) -> String {
    text.lines()
        .last()
        .expect("script printed a path")
        .trim()
        .to_string()
}

impl ControlPlane {
    /// Runs kubectl against the control plane.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs kubectl and returns stdout, failing the test with stderr when kubectl fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn install_crds(&self) {
        let crds = super::root().join("crds");
        self.kubectl_ok(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crds.to_str().unwrap(),
        ]);
        self.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "-l",
            "!none",
        ]);
        self.wait_for_openapi();
    }

    /// `Established` says the API serves the kinds; their OpenAPI schema (what `kubectl explain`
    /// and server-side apply read) is published a moment later, asynchronously. Wait for it, with
    /// a deadline, so no test races the publisher.
    fn wait_for_openapi(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        for kind in ["gdaprelationship", "appconsent", "tenantsync"] {
            loop {
                let output = self.kubectl(&["explain", kind]);
                if output.status.success() {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the OpenAPI schema of {kind} was not published within 60 s: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        }
    }

    /// Whether this is the test control plane of tests/controlplane (not a cluster named by
    /// `GDAP_TEST_KUBECONFIG`), whose processes [`ControlPlane::restart`] can restart.
    pub fn is_local(&self) -> bool {
        std::env::var_os("GDAP_TEST_KUBECONFIG").is_none()
    }

    /// Restarts `processes` (`etcd`, `kube-apiserver`) in place, in order, with
    /// tests/controlplane/restart — etcd keeps its data — and returns once the API server answers
    /// again. `kill`: SIGKILL, a crash, instead of SIGTERM. Every request of every test fails
    /// meanwhile, so only a test binary with this one test may call it.
    pub fn restart(&self, processes: &[&str], kill: bool) {
        assert!(
            self.is_local(),
            "only the local test control plane can be restarted"
        );
        let script = super::root().join("tests/controlplane/restart");
        let mut command = Command::new(&script);
        if kill {
            command.arg("--kill");
        }
        let status = command
            .args(processes)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .status()
            .unwrap();
        assert!(status.success(), "restarting {processes:?} failed");
    }

    /// The API server's audit log of Secret access (tests/controlplane/procs.sh): one JSON event
    /// a line with the user, verb and Secret, never its data. `None` for another cluster.
    pub fn audit_log(&self) -> Option<PathBuf> {
        self.is_local()
            .then(|| self.kubeconfig.parent().unwrap().join("audit.log"))
    }

    /// Creates a fresh namespace for one test and returns its name.
    pub fn namespace(&self, prefix: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        self.kubectl_ok(&["create", "namespace", &name]);
        name
    }

    /// A kube client for the admin kubeconfig.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

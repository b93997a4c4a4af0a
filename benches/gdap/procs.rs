//! The processes a benchmark runs next to itself, from the release binary: the sandbox (so its
//! work never counts in the process measured) and the operator. Each is stopped when dropped.

use crate::machine;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The release `gdap-operator` binary cargo built for this benchmark.
pub fn operator_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gdap-operator"))
}

/// A child process, killed when dropped.
pub struct Proc {
    child: Child,
    /// Where its output goes.
    pub log: PathBuf,
}

impl Proc {
    /// Takes charge of a child process started elsewhere.
    pub fn adopt(child: Child, log: PathBuf) -> Proc {
        Proc { child, log }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident and peak resident memory in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        machine::rss_kib(self.pid()).unwrap_or((0, 0))
    }

    /// CPU seconds used so far.
    pub fn cpu_seconds(&self) -> f64 {
        machine::cpu_seconds(self.pid()).unwrap_or(f64::NAN)
    }

    /// SIGTERM, then waits up to 30 s (SIGKILL after that).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sandbox process.
pub struct SandboxProc {
    /// The process.
    pub proc: Proc,
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub base_url: String,
    /// The CA (PEM path) with `--tls-dir`.
    pub ca: Option<PathBuf>,
}

/// Starts `gdap-operator sandbox --listen 127.0.0.1:0 ARGS` and waits for its address.
pub fn sandbox(args: &[&str], work: &Path) -> anyhow::Result<SandboxProc> {
    let log = work.join("sandbox.log");
    let mut child = Command::new(operator_binary())
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut base_url = None;
    let mut ca = None;
    for line in lines.by_ref() {
        let line = line?;
        if let Some(url) = line.strip_prefix("sandbox listening on ") {
            base_url = Some(url.trim().to_string());
        }
        if let Some(path) = line.strip_prefix("CA certificate: ") {
            ca = Some(PathBuf::from(path.trim()));
        }
        let tls = args.contains(&"--tls-dir");
        if base_url.is_some() && (!tls || ca.is_some()) {
            break;
        }
    }
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let proc = Proc { child, log };
    let base_url = base_url.ok_or_else(|| {
        anyhow::anyhow!(
            "the sandbox did not start: {}",
            std::fs::read_to_string(&proc.log).unwrap_or_default()
        )
    })?;
    Ok(SandboxProc { proc, base_url, ca })
}

/// An operator process and where it serves metrics.
pub struct OperatorProc {
    /// The process.
    pub proc: Proc,
    /// `127.0.0.1:PORT` of /metrics and /readyz.
    pub metrics_address: String,
}

/// Starts `gdap-operator run` against `sandbox`, watching `namespace`, with `extra` flags.
pub fn operator(
    kubeconfig: &Path,
    namespace: &str,
    sandbox: &SandboxProc,
    extra: &[&str],
    log: &Path,
) -> anyhow::Result<OperatorProc> {
    let port = free_port();
    let metrics_address = format!("127.0.0.1:{port}");
    let base = &sandbox.base_url;
    let mut command = Command::new(operator_binary());
    command
        .args(["run", "--namespaces", namespace])
        .args(["--credentials-secret", "partner-credentials"])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--login-url",
            base,
            "--graph-url",
            base,
            "--partner-center-url",
            base,
        ])
        .args(["--metrics-address", &metrics_address])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(append(log)?)
        .stderr(append(log)?);
    if let Some(ca) = &sandbox.ca {
        command.arg("--ca-file").arg(ca);
    }
    let child = command.spawn()?;
    Ok(OperatorProc {
        proc: Proc {
            child,
            log: log.to_path_buf(),
        },
        metrics_address,
    })
}

fn append(path: &Path) -> anyhow::Result<Stdio> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    Ok(Stdio::from(file))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl OperatorProc {
    /// Waits until /readyz answers 200 (every controller listed its objects).
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let url = format!("http://{}/readyz", self.metrics_address);
        let deadline = Instant::now() + timeout;
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "the operator was not ready within {timeout:?}; log: {}",
                    self.proc.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its /metrics text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let url = format!("http://{}/metrics", self.metrics_address);
        Ok(reqwest::get(url).await?.text().await?)
    }

    /// The sum of the samples of a series whose line starts with `prefix`.
    pub async fn metric_sum(&self, prefix: &str) -> f64 {
        let text = self.metrics().await.unwrap_or_default();
        sum_series(&text, prefix)
    }
}

/// Every call the sandbox at `base` has logged since it started or was last cleared (its request
/// totals).
pub async fn sandbox_calls(base: &str) -> anyhow::Result<f64> {
    let log: serde_json::Value = reqwest::get(format!("{base}/_sandbox/requests"))
        .await?
        .json()
        .await?;
    log["totals"]["calls"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("the sandbox reported no request totals"))
}

/// The sum of the Prometheus samples whose line starts with `prefix`.
pub fn sum_series(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

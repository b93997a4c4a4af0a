//! Helpers for the onboarding tests: a sandbox holding a partner estate, a credentials Secret
//! manifest for it, and the `export` / `plan` / `validate` commands run as a user runs them.

use gdap_operator::sandbox::{Fixture, Sandbox, SandboxOptions, Scale, defaults};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Sandbox options with the builtin fixture plus the scale estate of `scale`.
pub fn scale_options(scale: Scale) -> SandboxOptions {
    SandboxOptions {
        fixture: Fixture::builtin().with_scale(scale),
        ..Default::default()
    }
}

/// A Secret manifest with the sandbox partner's credentials, written into `dir`.
pub fn credentials_file(dir: &Path) -> PathBuf {
    let path = dir.join("partner-credentials.yaml");
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: partner-credentials\nstringData:\n  partnerTenantId: {}\n  clientId: {}\n  clientSecret: {}\n  refreshToken: {}\n",
        defaults::PARTNER_TENANT_ID,
        defaults::PARTNER_CLIENT_ID,
        defaults::PARTNER_CLIENT_SECRET,
        defaults::PARTNER_REFRESH_TOKEN
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Runs the binary with the sandbox's endpoints in the environment.
pub fn run(sandbox: &Sandbox, args: &[&str]) -> Output {
    let base = sandbox.base_url();
    Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
        .args(args)
        .env("GDAP_LOGIN_URL", &base)
        .env("GDAP_GRAPH_URL", &base)
        .env("GDAP_PARTNER_CENTER_URL", &base)
        .env_remove("GDAP_CREDENTIALS_FILE")
        .output()
        .unwrap()
}

/// Like [`run`], failing the test unless the exit status is `code`.
pub fn run_expect(sandbox: &Sandbox, args: &[&str], code: i32) -> Output {
    let output = run(sandbox, args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "gdap-operator {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `export --credentials FILE --out-dir DIR [extra]`.
pub fn export_to(sandbox: &Sandbox, credentials: &Path, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "export",
        "--credentials",
        credentials.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_expect(sandbox, &args, 0)
}

/// Every `.yaml` file under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// A manifest file as JSON.
pub fn read_manifest(path: &Path) -> Value {
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::to_value(yaml).unwrap()
}

/// GETs a control-API path of the sandbox as JSON.
pub async fn control_get(sandbox: &Sandbox, path: &str) -> Value {
    reqwest::get(format!("{}/_sandbox/{path}", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Sends a control-API request with a JSON body.
pub async fn control(sandbox: &Sandbox, method: reqwest::Method, path: &str, body: Value) {
    let status = reqwest::Client::new()
        .request(method, format!("{}/_sandbox/{path}", sandbox.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{path}: {status}");
}

/// The sandbox's relationships (state dump).
pub async fn sandbox_relationships(sandbox: &Sandbox) -> Vec<Value> {
    control_get(sandbox, "state").await["relationships"]
        .as_array()
        .cloned()
        .unwrap()
}

/// Ids of the relationships that are neither terminated nor expired.
pub fn live_ids(relationships: &[Value]) -> BTreeSet<String> {
    relationships
        .iter()
        .filter(|r| !matches!(r["status"].as_str(), Some("terminated" | "expired")))
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// The request log's totals (`calls`, `writes`, `dropped`).
pub async fn totals(sandbox: &Sandbox) -> Value {
    control_get(sandbox, "requests").await["totals"].clone()
}

/// The request log as (method, path) pairs.
pub async fn requests(sandbox: &Sandbox) -> Vec<(String, String)> {
    control_get(sandbox, "requests").await["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

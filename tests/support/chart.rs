//! The Helm chart (charts/gdap-operator) and Helm itself, built from its Go module by
//! tests/helm/build (cached under ~/.cache/gdap-operator, like the control plane).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The chart's directory.
pub fn dir() -> PathBuf {
    super::root().join("charts/gdap-operator")
}

/// The Helm binary (built on first use).
pub fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let script = super::root().join("tests/helm/build");
        let output = Command::new(&script)
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        assert!(output.status.success(), "{} failed", script.display());
        let path = String::from_utf8(output.stdout).unwrap();
        PathBuf::from(path.lines().last().expect("a path").trim())
    })
}

/// Runs helm with `args`, isolated from the user's Helm configuration.
pub fn run_helm(args: &[&str]) -> Output {
    let home = std::env::temp_dir().join(format!("gdap-helm-home-{}", std::process::id()));
    Command::new(helm())
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

/// `helm template RELEASE charts/gdap-operator -n NAMESPACE --set …`: the manifests, or helm's
/// error text.
pub fn template(release: &str, namespace: &str, sets: &[&str]) -> Result<String, String> {
    let chart = dir();
    let mut args = vec![
        "template",
        release,
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    let output = run_helm(&args);
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The documents of a multi-document YAML stream, as JSON (empty documents dropped).
pub fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(d).unwrap();
            serde_json::to_value(value).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The documents of `kind`.
pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The one document of `kind` (fails when there are none or several).
pub fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

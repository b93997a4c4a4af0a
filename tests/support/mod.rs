//! Shared helpers for integration tests: the example manifests and the expectations they declare.
#![allow(dead_code)]

pub mod argocd;
pub mod chart;
pub mod controlplane;
#[cfg(feature = "sandbox")]
pub mod fleet;
#[cfg(feature = "sandbox")]
pub mod import;
pub mod metrics;
#[cfg(feature = "sandbox")]
pub mod onboard;
#[cfg(feature = "sandbox")]
pub mod operator;
pub mod postgres;
#[cfg(feature = "sandbox")]
pub mod sync;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `.yaml` files directly in `dir` (relative to the root), sorted.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {dir}");
    files
}

/// The field an invalid example declares it must be refused on (`# expect-field: …`).
pub fn expected_field(file: &Path) -> String {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# expect-field: "))
        .unwrap_or_else(|| panic!("{} lacks an `# expect-field:` line", file.display()))
        .trim()
        .to_string()
}

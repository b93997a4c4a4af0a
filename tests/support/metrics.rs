//! Reading the operator's Prometheus exposition, and the series docs/operations.md documents (its
//! table between `<!-- metrics:start -->` and `<!-- metrics:end -->`).

use std::collections::BTreeSet;

/// Suffixes a histogram's samples add to its name.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

/// The value of the sample named exactly `series` (no labels), if exposed.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The sum of every sample whose line starts with `prefix` (e.g. a name and some labels).
pub fn sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The metric families of an exposition (its `# TYPE` lines).
pub fn families(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// The names of the samples of an exposition (e.g. `gdap_reconciles_total`,
/// `gdap_reconcile_duration_seconds_bucket`).
pub fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// The series docs/operations.md's metrics table documents, as PromQL names them (a counter with its
/// `_total`, a histogram by its base name).
pub fn documented() -> Vec<String> {
    let doc = std::fs::read_to_string(super::root().join("docs/operations.md")).unwrap();
    let table = doc
        .split("<!-- metrics:start -->")
        .nth(1)
        .and_then(|s| s.split("<!-- metrics:end -->").next())
        .expect("docs/operations.md marks its metrics table with <!-- metrics:start/end -->");
    let names = regex::Regex::new(r"(?m)^\| `(gdap_[a-z0-9_]+)").unwrap();
    names
        .captures_iter(table)
        .map(|c| c[1].to_string())
        .collect()
}

/// The documented series a sample belongs to (a histogram's samples belong to its base name).
pub fn documented_series<'a>(sample: &str, documented: &'a [String]) -> Option<&'a String> {
    documented.iter().find(|d| {
        *d == sample
            || HISTOGRAM_SUFFIXES
                .iter()
                .any(|suffix| sample.strip_suffix(suffix) == Some(d.as_str()))
    })
}

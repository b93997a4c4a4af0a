//! The checked-in `crds/` and the chart's copy in `charts/gdap-operator/crds/` must equal what the
//! code generates (`make crds` regenerates both).

use gdap_operator::crdgen;
use std::collections::BTreeSet;
use std::path::Path;

/// Fails unless `dir` (relative to the repository) holds exactly the generated CRDs.
fn assert_generated_crds_in(dir: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut expected = BTreeSet::new();
    for crd in crdgen::crds() {
        let name = crdgen::file_name(&crd);
        let on_disk = std::fs::read_to_string(path.join(&name)).unwrap_or_default();
        assert!(
            on_disk == crdgen::render(&crd),
            "{dir}/{name} is out of date with src/api: run `make crds` and commit"
        );
        expected.insert(name);
    }
    let present: BTreeSet<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        present, expected,
        "{dir}/ holds files the code does not generate"
    );
}

#[test]
fn checked_in_crds_match_the_code() {
    assert_generated_crds_in("crds");
}

/// The chart ships its own copy (Helm installs CRDs only from the chart's crds/).
#[test]
fn the_charts_crds_are_the_generated_ones() {
    assert_generated_crds_in("charts/gdap-operator/crds");
}

#[test]
fn crds_subcommand_prints_every_crd() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text, crdgen::render_all());
    for name in [
        "gdaprelationships.gdap.io",
        "appconsents.gdap.io",
        "tenantsyncs.gdap.io",
        "gdapfleets.gdap.io",
    ] {
        assert!(text.contains(&format!("name: {name}")), "{name} missing");
    }
}

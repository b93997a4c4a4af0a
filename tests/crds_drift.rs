//! The checked-in `crds/` must equal what the code generates (`make crds` regenerates them).

use gdap_operator::crdgen;
use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn checked_in_crds_match_the_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut expected = BTreeSet::new();
    for crd in crdgen::crds() {
        let name = crdgen::file_name(&crd);
        let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            on_disk == crdgen::render(&crd),
            "crds/{name} is out of date with src/api: run `make crds` and commit"
        );
        expected.insert(name);
    }
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        present, expected,
        "crds/ holds files the code does not generate"
    );
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
    ] {
        assert!(text.contains(&format!("name: {name}")), "{name} missing");
    }
}

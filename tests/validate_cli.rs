//! `gdap-operator validate` on the examples: valid ones pass, each invalid one yields exactly one
//! line naming the file, the object and the field, and the exit code says which happened.

mod support;

use std::process::{Command, Output};

fn validate(args: &[&std::path::Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
        .arg("validate")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_example_is_valid() {
    let files = support::yaml_files("examples");
    let refs: Vec<_> = files.iter().map(|p| p.as_path()).collect();
    let output = validate(&refs);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(output.stdout.is_empty());
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(
        summary.contains(
            "5 object(s) checked, 0 problem(s), 1 document(s) of other API groups skipped"
        ),
        "{summary}"
    );
}

#[test]
fn each_invalid_example_gives_one_precise_line() {
    let mut files = support::yaml_files("examples/invalid");
    files.extend(support::yaml_files("examples/invalid-offline"));
    for file in files {
        let output = validate(&[&file]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{} should fail validation",
            file.display()
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<_> = stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{}: expected one line, got {lines:#?}",
            file.display()
        );
        let field = support::expected_field(&file);
        let prefix = format!("{}: ", file.display());
        assert!(
            lines[0].starts_with(&prefix),
            "{} does not start with the file",
            lines[0]
        );
        assert!(
            lines[0].contains(&format!(": {field}: ")),
            "{} does not name {field}",
            lines[0]
        );
    }
}

#[test]
fn all_invalid_examples_at_once_give_one_line_per_file() {
    let files = support::yaml_files("examples/invalid");
    let refs: Vec<_> = files.iter().map(|p| p.as_path()).collect();
    let output = validate(&refs);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().lines().count(),
        files.len()
    );
}

#[test]
fn directories_are_walked_and_other_groups_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    std::fs::write(dir.path().join("readme.txt"), "not yaml").unwrap();
    std::fs::write(
        dir.path().join("nested/app.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n\
         apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata: {name: ok}\n\
         spec: {customer: {tenantId: 11111111-2222-3333-4444-555555555555}, roles: [Global Reader], duration: P30D}\n---\n\
         apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata: {name: bad}\n\
         spec: {customer: {tenantId: 11111111-2222-3333-4444-555555555555}, roles: [Global Reader], duration: P30D, displayName: ''}\n",
    )
    .unwrap();
    let output = validate(&[dir.path()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("GdapRelationship/bad: spec.displayName:"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("2 object(s) checked, 1 problem(s), 1 document(s)")
    );
}

#[test]
fn unknown_kinds_versions_and_missing_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.yaml");
    std::fs::write(&file, "apiVersion: gdap.io/v1\nkind: GdapRelationship\nmetadata: {name: a}\n---\napiVersion: gdap.io/v1alpha1\nkind: Relationship\nmetadata: {name: b}\n").unwrap();
    let stdout = String::from_utf8(validate(&[&file]).stdout).unwrap();
    assert!(
        stdout.contains(
            "GdapRelationship/a: apiVersion: \"gdap.io/v1\" is not served; use gdap.io/v1alpha1"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("Relationship/b: kind: unknown kind \"Relationship\""),
        "{stdout}"
    );
    let missing = validate(&[&dir.path().join("nope.yaml")]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("nope.yaml: no such file or directory")
    );
}

#[test]
fn roles_subcommand_lists_the_catalog() {
    let output = Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
        .args(["roles", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let roles: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(roles.len(), 136);
    let ga = roles
        .iter()
        .find(|r| r["name"] == "Global Administrator")
        .unwrap();
    assert_eq!(ga["id"], "62e90394-69f5-4237-9190-012177145e10");
    let table = Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
        .arg("roles")
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("Directory Synchronization Accounts") && l.contains("refused"))
    );
}

//! `gdap-operator export` against the sandbox's 1,000-customer / 1,500-relationship partner:
//! exactly the live relationships are written (count and ids checked against the sandbox), each
//! states what exists (roles, duration, auto-extend, live access assignments), every manifest
//! passes the real `validate`, the listing went past 300 (every page), nothing was written to
//! Microsoft, and a second run writes the same files.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::api::RoleCatalog;
use gdap_operator::sandbox::{Sandbox, Scale};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use support::onboard::*;

fn role_ids(names: &Value) -> BTreeSet<String> {
    names
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let n = n.as_str().unwrap();
            RoleCatalog::builtin()
                .find(n)
                .map(|r| r.id.clone())
                .unwrap_or_else(|| n.to_string())
        })
        .collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Each manifest says what the sandbox holds: roles, duration, auto-extend, live assignments.
fn assert_states_what_exists(manifest: &Value, rel: &Value) {
    let spec = &manifest["spec"];
    let id = rel["id"].as_str().unwrap();
    assert_eq!(spec["displayName"], rel["displayName"], "{id}");
    assert_eq!(
        spec["customer"]["tenantId"], rel["customer"]["tenantId"],
        "{id}"
    );
    assert_eq!(role_ids(&spec["roles"]), strings(&rel["roles"]), "{id}");
    assert_eq!(spec["duration"], rel["duration"], "{id}");
    assert_eq!(
        spec["autoExtend"],
        Value::Bool(rel["autoExtendDuration"] == "P180D"),
        "{id}"
    );
    assert_eq!(spec["managementPolicy"], "Observe");
    assert_eq!(spec["deletionPolicy"], "Orphan");
    let exported: BTreeMap<String, BTreeSet<String>> = spec["accessAssignments"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| {
                    (
                        a["securityGroupId"].as_str().unwrap().to_string(),
                        role_ids(&a["roles"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let live: BTreeMap<String, BTreeSet<String>> = rel["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "active")
        .map(|a| {
            (
                a["groupId"].as_str().unwrap().to_string(),
                strings(&a["roles"]),
            )
        })
        .collect();
    assert_eq!(exported, live, "{id}");
}

fn tree(dir: &Path) -> BTreeMap<String, String> {
    files_under(dir)
        .into_iter()
        .map(|f| {
            (
                f.strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read_to_string(&f).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_exactly_the_live_relationships_and_they_validate() {
    let sandbox = Sandbox::start(scale_options(Scale::default()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let out = dir.path().join("partner");
    let relationships = sandbox_relationships(&sandbox).await;
    assert_eq!(relationships.len(), 1500);
    let live = live_ids(&relationships);
    assert_eq!(
        live.len(),
        1200,
        "the scale fixture has 300 ended relationships"
    );

    let output = export_to(&sandbox, &credentials, &out, &[]);
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(
        summary.contains("exported 1200 of 1500 relationship(s)"),
        "{summary}"
    );
    assert!(
        summary.contains("skipped 300 terminated, expired or ending"),
        "{summary}"
    );

    let files = files_under(&out);
    assert_eq!(files.len(), live.len(), "one file per live relationship");
    let by_id: BTreeMap<&str, &Value> = relationships
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    let mut exported_ids = BTreeSet::new();
    for file in &files {
        let manifest = read_manifest(file);
        let id = manifest["spec"]["relationshipId"]
            .as_str()
            .unwrap()
            .to_string();
        assert_states_what_exists(&manifest, by_id[id.as_str()]);
        let folder = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let tenant = manifest["spec"]["customer"]["tenantId"].as_str().unwrap();
        assert!(
            folder.ends_with(&tenant[..8]),
            "{} is in its customer's folder",
            file.display()
        );
        assert!(exported_ids.insert(id), "each relationship once");
    }
    assert_eq!(exported_ids, live, "exactly the live relationships");

    let totals = totals(&sandbox).await;
    assert_eq!(totals["writes"], 0, "export only reads: {totals}");
    let pages = requests(&sandbox)
        .await
        .iter()
        .filter(|(m, p)| m == "GET" && p == "/v1.0/tenantRelationships/delegatedAdminRelationships")
        .count();
    let active_customers: BTreeSet<&str> = relationships
        .iter()
        .filter(|r| r["status"] == "active")
        .map(|r| r["customer"]["tenantId"].as_str().unwrap())
        .collect();
    let customer_pages = requests(&sandbox)
        .await
        .iter()
        .filter(|(m, p)| m == "GET" && p == "/v1.0/tenantRelationships/delegatedAdminCustomers")
        .count();
    assert_eq!(
        customer_pages,
        active_customers.len().div_ceil(300),
        "delegatedAdminCustomers is read to its last page too"
    );
    assert_eq!(
        pages, 5,
        "1,500 relationships are 5 pages of 300, every one read"
    );

    let validated = run_expect(&sandbox, &["validate", out.to_str().unwrap()], 0);
    let report = String::from_utf8_lossy(&validated.stderr);
    assert!(
        report.contains("1200 object(s) checked, 0 problem(s)"),
        "{report}"
    );

    let again = dir.path().join("again");
    export_to(&sandbox, &credentials, &again, &[]);
    assert!(
        tree(&out) == tree(&again),
        "a second export writes the same names and contents"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_stdout_can_include_ended_relationships_and_take_over() {
    let sandbox = Sandbox::start(scale_options(Scale {
        customers: 40,
        relationships: 60,
    }))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let all = sandbox_relationships(&sandbox).await;
    let ended = all.len() - live_ids(&all).len();
    assert!(ended > 0);

    let output = run_expect(
        &sandbox,
        &[
            "export",
            "--credentials",
            credentials.to_str().unwrap(),
            "--include-ended",
            "--manage",
            "--namespace",
            "team-a",
        ],
        0,
    );
    let stream = String::from_utf8(output.stdout).unwrap();
    let documents: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&stream)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(
        documents.len(),
        all.len(),
        "--include-ended exports terminated and expired ones too"
    );
    for d in &documents {
        assert_eq!(d["metadata"]["namespace"].as_str(), Some("team-a"));
        assert_eq!(d["spec"]["managementPolicy"].as_str(), Some("Manage"));
    }
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(
        summary.contains("with --manage the operator locks them"),
        "{summary}"
    );
    let file = dir.path().join("all.yaml");
    std::fs::write(&file, &stream).unwrap();
    let validated = run_expect(&sandbox, &["validate", file.to_str().unwrap()], 0);
    assert!(
        String::from_utf8_lossy(&validated.stderr)
            .contains(&format!("{} object(s) checked, 0 problem(s)", all.len()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_writes_nothing() {
    let sandbox = Sandbox::start(scale_options(Scale {
        customers: 10,
        relationships: 15,
    }))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let rule = serde_json::json!({"rules": [{"pathPrefix": "/v1.0/tenantRelationships/delegatedAdminCustomers", "method": "GET", "rate": 1.0, "statuses": [403]}]});
    control(&sandbox, reqwest::Method::PUT, "faults", rule).await;
    let out = dir.path().join("out");
    let output = run(
        &sandbox,
        &[
            "export",
            "--credentials",
            credentials.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(!out.exists(), "no partial export");
}

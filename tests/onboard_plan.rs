//! `gdap-operator plan` on exported manifests against the sandbox: unchanged manifests plan
//! nothing (exit 0); each edit plans exactly the controller's steps (a table of cases, exit 2, or
//! 1 for what the operator refuses); the text output names them; a failed read is an error,
//! never "create"; and planning writes nothing to Microsoft.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::sandbox::{Sandbox, Scale, defaults};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use support::onboard::*;

const NEW_GROUP: &str = defaults::HELPDESK_GROUP_ID;

/// One row of the table: an edit of an exported manifest and what `plan` must say.
struct Case {
    name: &'static str,
    /// The exported manifest to start from: `active` (with two or more groups), `pending`, `created`.
    base: &'static str,
    edit: fn(&mut Value),
    exit: i32,
    steps: &'static [&'static str],
    drift: &'static [&'static str],
    /// A phrase the object's `then` or `error` must contain.
    says: &'static str,
}

fn spec(m: &mut Value) -> &mut Value {
    &mut m["spec"]
}

fn observe(m: &mut Value) {
    spec(m)["managementPolicy"] = json!("Observe");
}

const CASES: &[Case] = &[
    Case {
        name: "unchanged active",
        base: "active",
        edit: |_| {},
        exit: 0,
        steps: &[],
        drift: &[],
        says: "",
    },
    Case {
        name: "unchanged, awaiting approval",
        base: "pending",
        edit: |_| {},
        exit: 0,
        steps: &[],
        drift: &[],
        says: "waiting for the customer's approval",
    },
    Case {
        name: "a draft is locked",
        base: "created",
        edit: |_| {},
        exit: 2,
        steps: &["lock"],
        drift: &[],
        says: "waiting for the customer's approval",
    },
    Case {
        name: "auto-extend flipped",
        base: "active",
        edit: |m| {
            let on = m["spec"]["autoExtend"].as_bool().unwrap();
            spec(m)["autoExtend"] = json!(!on);
        },
        exit: 2,
        steps: &["setAutoExtend"],
        drift: &[],
        says: "",
    },
    Case {
        name: "a group added",
        base: "active",
        edit: |m| {
            let role = m["spec"]["roles"][0].clone();
            spec(m)["accessAssignments"]
                .as_array_mut()
                .unwrap()
                .push(json!({"securityGroupId": NEW_GROUP, "roles": [role]}));
        },
        exit: 2,
        steps: &["createAssignment"],
        drift: &[],
        says: "waiting for access assignments",
    },
    Case {
        name: "a group removed",
        base: "active",
        edit: |m| {
            spec(m)["accessAssignments"].as_array_mut().unwrap().pop();
        },
        exit: 2,
        steps: &["deleteAssignment"],
        drift: &[],
        says: "",
    },
    Case {
        name: "a group's roles changed",
        base: "active",
        edit: |m| {
            let all = m["spec"]["roles"].clone();
            spec(m)["accessAssignments"][0]["roles"] = all;
        },
        exit: 2,
        steps: &["updateAssignment"],
        drift: &[],
        says: "waiting for access assignments",
    },
    Case {
        name: "roles changed after the lock are refused",
        base: "active",
        edit: |m| {
            spec(m)["roles"]
                .as_array_mut()
                .unwrap()
                .push(json!("Global Reader"));
        },
        exit: 1,
        steps: &[],
        drift: &[],
        says: "spec.roles changed after the relationship was locked",
    },
    Case {
        name: "roles changed with renewal start a successor",
        base: "active",
        edit: |m| {
            spec(m)["roles"]
                .as_array_mut()
                .unwrap()
                .push(json!("Global Reader"));
            spec(m)["renewal"] = json!({"policy": "Successor"});
        },
        exit: 2,
        steps: &["createSuccessor", "lock"],
        drift: &[],
        says: "approval of the successor",
    },
    Case {
        name: "a new relationship",
        base: "active",
        edit: |m| {
            spec(m).as_object_mut().unwrap().remove("relationshipId");
            spec(m)["displayName"] = json!("planned-new-relationship");
            spec(m).as_object_mut().unwrap().remove("accessAssignments");
        },
        exit: 2,
        steps: &["create"],
        drift: &[],
        says: "waiting for the customer's approval",
    },
    Case {
        name: "observe: a group added is drift, not a change",
        base: "active",
        edit: |m| {
            observe(m);
            let role = m["spec"]["roles"][0].clone();
            spec(m)["accessAssignments"]
                .as_array_mut()
                .unwrap()
                .push(json!({"securityGroupId": NEW_GROUP, "roles": [role]}));
        },
        exit: 0,
        steps: &[],
        drift: &["createAssignment"],
        says: "",
    },
    Case {
        name: "an unknown relationship id",
        base: "active",
        edit: |m| {
            spec(m)["relationshipId"] = json!(format!(
                "00000000-0000-4000-8000-000000000000-{}",
                defaults::PARTNER_TENANT_ID
            ));
        },
        exit: 1,
        steps: &[],
        drift: &[],
        says: "does not exist in Microsoft Graph",
    },
    Case {
        name: "an invalid manifest",
        base: "active",
        edit: |m| {
            spec(m)["roles"][0] = json!("Helpdesk Administator");
            spec(m).as_object_mut().unwrap().remove("accessAssignments");
        },
        exit: 1,
        steps: &[],
        drift: &[],
        says: "spec.roles[0]",
    },
];

/// The exported manifests of the `--manage` export, one per kind of base.
fn bases(out: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut found: Vec<(&'static str, PathBuf)> = Vec::new();
    for file in files_under(out) {
        let text = std::fs::read_to_string(&file).unwrap();
        let m = read_manifest(&file);
        let groups = m["spec"]["accessAssignments"]
            .as_array()
            .map_or(0, Vec::len);
        let roles = m["spec"]["roles"].as_array().unwrap();
        let base = if text.contains("), active, ")
            && groups >= 2
            && !roles.iter().any(|r| r == "Global Administrator")
        {
            "active"
        } else if text.contains("), approvalPending, ") {
            "pending"
        } else if text.contains("), created, ") {
            "created"
        } else {
            continue;
        };
        if !found.iter().any(|(b, _)| *b == base) {
            found.push((base, file));
        }
    }
    assert_eq!(found.len(), 3, "the estate has every base: {found:?}");
    found
}

fn plan_json(sandbox: &Sandbox, credentials: &Path, path: &Path) -> (i32, Value) {
    let output = run(
        sandbox,
        &[
            "plan",
            "--credentials",
            credentials.to_str().unwrap(),
            "--output",
            "json",
            path.to_str().unwrap(),
        ],
    );
    let code = output.status.code().unwrap();
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (code, json)
}

fn actions(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|s| s["action"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_exactly_the_controllers_steps_for_each_edit() {
    let sandbox = Sandbox::start(scale_options(Scale {
        customers: 40,
        relationships: 60,
    }))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let out = dir.path().join("managed");
    export_to(&sandbox, &credentials, &out, &["--manage"]);
    let bases = bases(&out);
    control(&sandbox, reqwest::Method::DELETE, "requests", json!({})).await;

    for case in CASES {
        let base = &bases.iter().find(|(b, _)| *b == case.base).unwrap().1;
        let mut manifest = read_manifest(base);
        (case.edit)(&mut manifest);
        let file = dir.path().join(format!(
            "{}.yaml",
            case.name.replace([' ', ',', ':', '\''], "-")
        ));
        std::fs::write(&file, serde_yaml::to_string(&manifest).unwrap()).unwrap();
        let (code, plan) = plan_json(&sandbox, &credentials, &file);
        let object = &plan["objects"][0];
        assert_eq!(
            code, case.exit,
            "{}: exit status; plan: {plan:#}",
            case.name
        );
        assert_eq!(
            actions(&object["steps"]),
            case.steps,
            "{}: steps; plan: {plan:#}",
            case.name
        );
        assert_eq!(
            actions(&object["drift"]),
            case.drift,
            "{}: drift; plan: {plan:#}",
            case.name
        );
        let said = format!(
            "{} {}",
            object["then"].as_str().unwrap_or(""),
            object["error"].as_str().unwrap_or("")
        );
        assert!(
            said.contains(case.says),
            "{}: {said:?} should contain {:?}",
            case.name,
            case.says
        );
        let expected_result = match case.exit {
            0 => "noChanges",
            2 => "changes",
            _ => "error",
        };
        assert_eq!(object["result"], expected_result, "{}", case.name);
    }
    assert_eq!(
        totals(&sandbox).await["writes"],
        0,
        "plan never writes to Microsoft"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_exports_plan_nothing_and_text_names_each_step() {
    let sandbox = Sandbox::start(scale_options(Scale {
        customers: 40,
        relationships: 60,
    }))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let out = dir.path().join("observed");
    export_to(&sandbox, &credentials, &out, &[]);
    let count = files_under(&out).len();

    let output = run_expect(
        &sandbox,
        &[
            "plan",
            "--credentials",
            credentials.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        0,
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.ends_with(&format!("Plan: {count} object(s): 0 to change (0 step(s)), {count} without changes, 0 error(s), 0 skipped.\n")),
        "{text}"
    );

    let active = files_under(&out)
        .into_iter()
        .find(|f| {
            std::fs::read_to_string(f).unwrap().contains("), active, ")
                && read_manifest(f)["spec"]["accessAssignments"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
        })
        .unwrap();
    let mut manifest = read_manifest(&active);
    manifest["spec"]["managementPolicy"] = json!("Manage");
    let removed = manifest["spec"]["accessAssignments"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let group = removed["securityGroupId"].as_str().unwrap().to_string();
    let first_role = manifest["spec"]["roles"][0].clone();
    manifest["spec"]["accessAssignments"]
        .as_array_mut()
        .unwrap()
        .push(json!({"securityGroupId": NEW_GROUP, "roles": [first_role]}));
    let file = dir.path().join("edited.yaml");
    std::fs::write(&file, serde_yaml::to_string(&manifest).unwrap()).unwrap();
    let output = run_expect(
        &sandbox,
        &[
            "plan",
            "--credentials",
            credentials.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        2,
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let steps: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .collect();
    let role = manifest["spec"]["roles"][0].as_str().unwrap();
    assert_eq!(steps.len(), 2, "{text}");
    assert_eq!(
        steps[0],
        format!("  + assign security group {NEW_GROUP}: {role}"),
        "{text}"
    );
    assert!(
        steps[1].starts_with(&format!(
            "  - unassign security group {group} (access assignment "
        )),
        "{text}"
    );
    assert!(
        text.contains("    then: waiting for access assignments and role changes to finish"),
        "{text}"
    );
    assert!(text.ends_with("Plan: 1 object(s): 1 to change (2 step(s)), 0 without changes, 0 error(s), 0 skipped.\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_is_an_error_never_a_create() {
    let sandbox = Sandbox::start(scale_options(Scale {
        customers: 10,
        relationships: 15,
    }))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let out = dir.path().join("out");
    export_to(&sandbox, &credentials, &out, &["--manage"]);
    let file = files_under(&out)
        .into_iter()
        .find(|f| std::fs::read_to_string(f).unwrap().contains("), active, "))
        .unwrap();
    let mut manifest = read_manifest(&file);
    manifest["spec"]
        .as_object_mut()
        .unwrap()
        .remove("relationshipId");
    let edited = dir.path().join("by-name.yaml");
    std::fs::write(&edited, serde_yaml::to_string(&manifest).unwrap()).unwrap();
    // A relationship that merely carries the object's display name is never adopted (issue 21:
    // adoption is never a guess): the plan refuses, names it, and plans no create.
    let (code, plan) = plan_json(&sandbox, &credentials, &edited);
    assert_eq!(code, 1, "{plan:#}");
    let error = plan["objects"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("never adopts a relationship by its name")
            && error.contains("spec.relationshipId"),
        "{plan:#}"
    );
    assert!(actions(&plan["objects"][0]["steps"]).is_empty(), "{plan:#}");

    let rule = json!({"rules": [{"pathPrefix": "/v1.0/tenantRelationships/delegatedAdminRelationships", "method": "GET", "rate": 1.0, "statuses": [403]}]});
    control(&sandbox, reqwest::Method::PUT, "faults", rule).await;
    let (code, plan) = plan_json(&sandbox, &credentials, &edited);
    let object = &plan["objects"][0];
    assert_eq!(code, 1, "{plan:#}");
    assert_eq!(object["result"], "error");
    assert!(
        actions(&object["steps"]).is_empty(),
        "a failed listing never plans a create: {plan:#}"
    );
    assert!(
        object["error"]
            .as_str()
            .unwrap()
            .contains("reading Microsoft Graph failed"),
        "{plan:#}"
    );
    assert_eq!(totals(&sandbox).await["writes"], 0);
}

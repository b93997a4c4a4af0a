//! The chart's Argo CD health checks, tested the way Argo CD tests its own
//! (resource_customizations/<group>/<Kind>/health_test.yaml: objects in testdata/ and the health
//! each must get), with Debian's Lua 5.1 in Argo CD's restricted environment (tests/support/argocd.rs).
//! tests/e2e_gdap.rs runs the GdapRelationship check on live objects too.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::argocd::{KINDS, health, kind_dir};

/// One case of a health_test.yaml.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    input_path: String,
    health_status: Expected,
}

#[derive(serde::Deserialize)]
struct Expected {
    status: String,
    #[serde(default)]
    message: String,
}

#[derive(serde::Deserialize)]
struct Cases {
    tests: Vec<Case>,
}

fn cases(kind: &str) -> Vec<Case> {
    let file = kind_dir(kind).join("health_test.yaml");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_yaml::from_str::<Cases>(&text).unwrap().tests
}

fn object(kind: &str, input_path: &str) -> Value {
    let file = kind_dir(kind).join(input_path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap()).unwrap()
}

#[test]
fn each_kind_gets_the_health_its_test_cases_expect() {
    let mut failures = Vec::new();
    for kind in KINDS {
        for case in cases(kind) {
            let obj = object(kind, &case.input_path);
            assert_eq!(
                obj["kind"], kind,
                "{kind}/{} is another kind",
                case.input_path
            );
            let (status, message) = health(kind, &obj);
            let expected = &case.health_status;
            if (status.as_str(), message.as_str())
                != (expected.status.as_str(), expected.message.as_str())
            {
                failures.push(format!(
                    "{kind}/{}: got {status} {message:?}, expected {} {:?}",
                    case.input_path, expected.status, expected.message
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn each_kind_has_cases_for_every_health_it_can_report_and_every_testdata_file_is_used() {
    for kind in KINDS {
        let cases = cases(kind);
        let statuses: BTreeSet<&str> = cases
            .iter()
            .map(|c| c.health_status.status.as_str())
            .collect();
        let mut wanted = vec!["Healthy", "Progressing", "Degraded"];
        if kind == "TenantSync" {
            wanted.push("Suspended");
        }
        for status in wanted {
            assert!(
                statuses.contains(status),
                "{kind}: no test case is {status}"
            );
        }
        let used: BTreeSet<String> = cases.iter().map(|c| c.input_path.clone()).collect();
        for entry in std::fs::read_dir(kind_dir(kind).join("testdata")).unwrap() {
            let name = format!("testdata/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(used.contains(&name), "{kind}: {name} is in no test case");
        }
    }
}

/// The reasons the operator may write (src/api/conditions.rs, module `reasons`).
fn condition_reasons() -> Vec<String> {
    let source = std::fs::read_to_string(support::root().join("src/api/conditions.rs")).unwrap();
    let module = source
        .split("pub mod reasons {")
        .nth(1)
        .expect("a reasons module")
        .split("\n}")
        .next()
        .expect("the end of the reasons module");
    let constant = regex::Regex::new(r#"pub const [A-Z_]+: &str = "([A-Za-z]+)";"#).unwrap();
    let reasons: Vec<String> = constant
        .captures_iter(module)
        .map(|c| c[1].to_string())
        .collect();
    assert!(reasons.len() > 10, "{reasons:?}");
    reasons
}

/// Reasons that only ever accompany a True condition, or a condition other than Ready
/// (src/controllers/gdap_relationship/status.rs, src/controllers/tenant_sync/status.rs: `Fresh`
/// and `Suspended` are a TenantSync's Stale=False), so they never decide Ready=False.
const NEVER_A_READY_FALSE_REASON: [&str; 16] = [
    "Active",
    "Approved",
    "Reconciled",
    "AssignmentsActive",
    "NoAssignments",
    "NotExpiring",
    "ExpiresSoon",
    "NotRenewing",
    "SuccessorRequested",
    "SuccessorApprovalPending",
    "SuccessorActivating",
    "HandingOver",
    "Fresh",
    "Suspended",
    "AccessWorks",
    "AllActive",
];

#[test]
fn every_reason_the_operator_writes_is_classified_by_each_health_check() {
    for kind in KINDS {
        let script = std::fs::read_to_string(kind_dir(kind).join("health.lua")).unwrap();
        for reason in condition_reasons() {
            if NEVER_A_READY_FALSE_REASON.contains(&reason.as_str()) {
                continue;
            }
            assert!(
                script.contains(&format!("{reason} = true")),
                "{kind}/health.lua does not classify reason {reason}: add it to `waiting` (Progressing) or `failing` (Degraded)"
            );
            let obj = json!({
                "apiVersion": "gdap.io/v1alpha1", "kind": kind,
                "metadata": {"name": "x", "namespace": "ns", "generation": 1},
                "spec": {},
                "status": {"observedGeneration": 1, "conditions": [
                    {"type": "Ready", "status": "False", "reason": reason, "message": format!("because {reason}")}
                ]}
            });
            let (status, message) = health(kind, &obj);
            assert!(
                status == "Progressing" || status == "Degraded",
                "{kind}: Ready=False {reason} gave {status}"
            );
            assert_eq!(message, format!("because {reason}"), "{kind}: {reason}");
        }
    }
}

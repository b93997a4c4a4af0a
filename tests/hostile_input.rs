//! Bad input (issue 15): a table of hostile and malformed manifests — wrong types, huge lists,
//! very long strings, unicode in names, GUIDs with braces, durations like `P0D`/`P731D`/`PT24H`/
//! `P1Y`, conflicting fields, hostile annotations the operator reads. Each one is refused by the
//! API server and by `gdap-operator validate` with a message naming the field, or refused by
//! `validate` and reported by the operator in a condition naming the field, or accepted and
//! handled. A running operator watches the namespace throughout and must never panic.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::api::AppConsent;
use gdap_operator::sandbox::defaults;
use kube::Api;
use serde_json::{Value, json};
use std::time::Duration;
use support::operator::{World, condition};

const MINUTE: Duration = Duration::from_secs(60);
const CONTOSO: &str = defaults::CONTOSO_TENANT_ID;

/// What must happen to a case.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The API server refuses it naming the field, and so does `validate`.
    Refused,
    /// The API server refuses it naming the field (`validate` checks only `gdap.io` fields).
    RefusedByServer,
    /// The API server accepts it; `validate` refuses it naming the field, and the operator
    /// reports it with `Synced=False, InvalidSpec` naming the field.
    Offline,
    /// Accepted everywhere; the operator handles it (see the case's check).
    Accepted,
}

struct Case {
    what: &'static str,
    object: Value,
    field: &'static str,
    expect: Expect,
}

fn relationship(name: &str, spec: Value) -> Value {
    let mut base = json!({
        "customer": {"tenantId": CONTOSO},
        "roles": ["Directory Readers"],
        "duration": "P30D",
    });
    for (k, v) in spec.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    json!({"apiVersion": "gdap.io/v1alpha1", "kind": "GdapRelationship", "metadata": {"name": name}, "spec": base})
}

fn consent(name: &str, spec: Value) -> Value {
    let mut base = json!({
        "customer": {"tenantId": CONTOSO},
        "applicationId": defaults::PARTNER_CLIENT_ID,
        "grants": [{"resource": "Microsoft Graph", "scopes": ["User.Read"]}],
    });
    for (k, v) in spec.as_object().unwrap() {
        base[k] = v.clone();
    }
    json!({"apiVersion": "gdap.io/v1alpha1", "kind": "AppConsent", "metadata": {"name": name}, "spec": base})
}

fn sync(name: &str, sink: Value, schedule: &str) -> Value {
    json!({"apiVersion": "gdap.io/v1alpha1", "kind": "TenantSync", "metadata": {"name": name}, "spec": {
        "customer": {"tenantId": CONTOSO}, "appConsentRef": {"name": "x"}, "schedule": schedule, "sink": sink}})
}

fn guid(i: usize) -> String {
    format!("0badc0de-0000-4000-8000-{i:012x}")
}

fn cases() -> Vec<Case> {
    use Expect::*;
    let huge = "x".repeat(10_000);
    let mut cases = vec![
        Case {
            what: "roles as a string",
            object: relationship("wrong-type-roles", json!({"roles": "Directory Readers"})),
            field: "spec.roles",
            expect: Refused,
        },
        Case {
            what: "duration as a number",
            object: relationship("wrong-type-duration", json!({"duration": 30})),
            field: "spec.duration",
            expect: Refused,
        },
        Case {
            what: "autoExtend as a string",
            object: relationship("wrong-type-auto", json!({"autoExtend": "yes"})),
            field: "spec.autoExtend",
            expect: Refused,
        },
        Case {
            what: "51 roles",
            object: relationship(
                "huge-roles",
                json!({"roles": (0..51).map(guid).collect::<Vec<_>>()}),
            ),
            field: "spec.roles",
            expect: Refused,
        },
        Case {
            what: "1,000 access assignments",
            object: relationship(
                "huge-assignments",
                json!({"accessAssignments": (0..1000).map(|i| json!({"securityGroupId": guid(i), "roles": ["Directory Readers"]})).collect::<Vec<_>>()}),
            ),
            field: "spec.accessAssignments",
            expect: Refused,
        },
        Case {
            what: "a 10,000-character display name",
            object: relationship("long-display-name", json!({"displayName": huge})),
            field: "spec.displayName",
            expect: Refused,
        },
        Case {
            what: "a 10,000-character tenant id",
            object: relationship("long-tenant", json!({"customer": {"tenantId": huge}})),
            field: "spec.customer.tenantId",
            expect: Refused,
        },
        Case {
            what: "a 300-character object name",
            object: relationship(&"n".repeat(300), json!({})),
            field: "metadata.name",
            expect: RefusedByServer,
        },
        Case {
            what: "unicode in the object name",
            object: relationship("café-ü", json!({})),
            field: "metadata.name",
            expect: RefusedByServer,
        },
        Case {
            what: "a tenant id in braces",
            object: relationship(
                "braces",
                json!({"customer": {"tenantId": format!("{{{CONTOSO}}}")}}),
            ),
            field: "spec.customer.tenantId",
            expect: Refused,
        },
        Case {
            what: "a group id in braces",
            object: relationship(
                "group-braces",
                json!({"accessAssignments": [{"securityGroupId": format!("{{{}}}", defaults::HELPDESK_GROUP_ID), "roles": ["Directory Readers"]}]}),
            ),
            field: "spec.accessAssignments[0].securityGroupId",
            expect: Refused,
        },
        Case {
            what: "an unknown nested field",
            object: relationship(
                "typo",
                json!({"customer": {"tenantId": CONTOSO, "tenantID": CONTOSO}}),
            ),
            field: "spec.customer.tenantID",
            expect: Refused,
        },
        Case {
            what: "autoExtend with Global Administrator",
            object: relationship(
                "conflict-auto",
                json!({"roles": ["Global Administrator"], "autoExtend": true}),
            ),
            field: "spec.autoExtend",
            expect: Refused,
        },
        Case {
            what: "renewal.before longer than duration",
            object: relationship(
                "conflict-renewal",
                json!({"renewal": {"policy": "Successor", "before": "P60D"}}),
            ),
            field: "spec.renewal.before",
            expect: Refused,
        },
        Case {
            what: "an assignment role outside spec.roles",
            object: relationship(
                "conflict-assignment",
                json!({"accessAssignments": [{"securityGroupId": defaults::HELPDESK_GROUP_ID, "roles": ["Global Reader"]}]}),
            ),
            field: "spec.accessAssignments",
            expect: Refused,
        },
        Case {
            what: "an application id in braces",
            object: consent(
                "app-braces",
                json!({"applicationId": format!("{{{}}}", defaults::PARTNER_CLIENT_ID)}),
            ),
            field: "spec.applicationId",
            expect: Refused,
        },
        Case {
            what: "101 scopes in a grant",
            object: consent(
                "huge-scopes",
                json!({"grants": [{"resource": "Microsoft Graph", "scopes": (0..101).map(|i| format!("Scope{i}.Read")).collect::<Vec<_>>()}]}),
            ),
            field: "spec.grants[0].scopes",
            expect: Refused,
        },
        Case {
            what: "keepRuns beyond 64 bits",
            object: sync(
                "overflow",
                json!({"file": {"path": "/data", "keepRuns": 1e20}}),
                "@daily",
            ),
            field: "spec.sink.file.keepRuns",
            expect: Refused,
        },
        Case {
            what: "a six-field cron",
            object: sync(
                "six-fields",
                json!({"file": {"path": "/data"}}),
                "* * * * * *",
            ),
            field: "spec.schedule",
            expect: Refused,
        },
        Case {
            what: "an unknown role",
            object: relationship("unknown-role", json!({"roles": ["Galactic Administrator"]})),
            field: "spec.roles[0]",
            expect: Offline,
        },
        Case {
            what: "a role named twice, by name and GUID",
            object: relationship(
                "role-twice",
                json!({"roles": ["Directory Readers", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"]}),
            ),
            field: "spec.roles[1]",
            expect: Offline,
        },
        Case {
            what: "minute 61 in a cron",
            object: sync("cron-61", json!({"file": {"path": "/data"}}), "61 * * * *"),
            field: "spec.schedule",
            expect: Offline,
        },
        Case {
            what: "unicode in the display name",
            object: relationship(
                "unicode-display-name",
                json!({"displayName": "Contoso 支援 🚀 Ünïcode"}),
            ),
            field: "",
            expect: Accepted,
        },
        Case {
            what: "an upper-case tenant id",
            object: relationship(
                "upper-case-tenant",
                json!({"customer": {"tenantId": defaults::FABRIKAM_TENANT_ID.to_uppercase()}}),
            ),
            field: "",
            expect: Accepted,
        },
        Case {
            what: "an id of '..' to adopt",
            object: relationship("adopt-dots", json!({"relationshipId": ".."})),
            field: "",
            expect: Accepted,
        },
        Case {
            what: "a consent relying on another customer's relationship",
            object: consent(
                "wrong-customer",
                json!({"customer": {"tenantId": defaults::FABRIKAM_TENANT_ID}, "relationshipRef": {"name": "unicode-display-name"}}),
            ),
            field: "",
            expect: Accepted,
        },
    ];
    for duration in ["P0D", "P731D", "PT24H", "P1Y", "P-1D", "P99999D"] {
        cases.push(Case {
            what: "an unusable duration",
            object: relationship(
                &format!("duration-{}", duration.to_lowercase().replace('-', "m")),
                json!({"duration": duration}),
            ),
            field: "spec.duration",
            expect: Refused,
        });
    }
    cases
}

fn write(object: &Value) -> tempfile::NamedTempFile {
    // JSON, which is YAML too: no YAML 1.1/1.2 ambiguity (kubectl reads `yes` as true).
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), serde_json::to_string_pretty(object).unwrap()).unwrap();
    file
}

/// `gdap-operator validate FILE`: (refused, output).
fn validate(file: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
        .arg("validate")
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.code().is_some(), "validate was killed: {text}");
    (!out.status.success(), text)
}

fn names(message: &str, field: &str) -> bool {
    message.contains(&format!("{field}:"))
        || message.contains(&format!("unknown field \"{field}\""))
        || message.contains(&format!("{field} "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_manifests_are_refused_naming_the_field_or_reported_and_the_operator_never_panics()
{
    let world = World::start("hostile", Default::default()).await;
    let mut accepted = Vec::new();
    for case in cases() {
        let file = write(&case.object);
        let (refused_offline, offline) = validate(file.path());
        let applied = world.kubectl(&["apply", "-f", file.path().to_str().unwrap()]);
        let server = String::from_utf8_lossy(&applied.stderr).to_string();
        let what = case.what;
        match case.expect {
            Expect::Refused | Expect::RefusedByServer => {
                assert!(
                    !applied.status.success(),
                    "{what}: accepted by the API server"
                );
                assert!(
                    names(&server, case.field),
                    "{what}: the server's message does not name {}: {server}",
                    case.field
                );
                if case.expect == Expect::Refused {
                    assert!(refused_offline, "{what}: validate accepted it: {offline}");
                    assert!(
                        names(&offline, case.field),
                        "{what}: validate does not name {}: {offline}",
                        case.field
                    );
                }
            }
            Expect::Offline => {
                assert!(
                    applied.status.success(),
                    "{what}: refused by the API server: {server}"
                );
                assert!(
                    refused_offline && names(&offline, case.field),
                    "{what}: validate does not refuse it naming {}: {offline}",
                    case.field
                );
                accepted.push(case);
            }
            Expect::Accepted => {
                assert!(
                    applied.status.success(),
                    "{what}: refused by the API server: {server}"
                );
                assert!(!refused_offline, "{what}: refused by validate: {offline}");
                accepted.push(case);
            }
        }
    }
    // Hostile annotations on an object the operator already manages: ids and generations it
    // reads back after a crash or a lost status.
    world.apply(&serde_yaml::to_string(&relationship("hostile-annotations", json!({}))).unwrap());
    let annotate = world.kubectl(&[
        "annotate",
        "--overwrite",
        "gdap",
        "hostile-annotations",
        "gdap.io/relationship-id=../../../users",
        "gdap.io/generation=1",
        "gdap.io/create-intent={\"not\": \"what the operator wrote\"}",
    ]);
    assert!(
        annotate.status.success(),
        "{}",
        String::from_utf8_lossy(&annotate.stderr)
    );

    for case in accepted
        .iter()
        .filter(|c| c.expect == Expect::Offline && c.object["kind"] == "GdapRelationship")
    {
        let name = case.object["metadata"]["name"].as_str().unwrap();
        let message = world
            .wait_for(name, "Synced=False InvalidSpec", MINUTE, |o| {
                let (status, reason, message) = condition(o, "Synced")?;
                (status == "False" && reason == "InvalidSpec").then_some(message)
            })
            .await;
        assert!(
            names(&message, case.field) || message.contains(case.field),
            "{}: the condition does not name {}: {message}",
            case.what,
            case.field
        );
    }
    let display = world
        .wait_for("unicode-display-name", "approvalPending", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.state.as_deref() == Some("approvalPending")).then(|| s.display_name.clone())?
        })
        .await;
    assert_eq!(display, "Contoso 支援 🚀 Ünïcode");
    assert!(
        world
            .sandbox_relationships()
            .await
            .iter()
            .any(|r| r["displayName"] == display.as_str())
    );
    world
        .wait_for("upper-case-tenant", "approvalPending", MINUTE, |o| {
            (o.status.as_ref()?.state.as_deref() == Some("approvalPending")).then_some(())
        })
        .await;
    let message = world
        .wait_for(
            "adopt-dots",
            "the adoption refused in a condition",
            MINUTE,
            |o| {
                let (status, reason, message) = condition(o, "Synced")?;
                (status == "False" && reason != "TransientError")
                    .then_some(format!("{reason}: {message}"))
            },
        )
        .await;
    assert!(
        message.contains("spec.relationshipId") && message.contains("\"..\""),
        "the condition names the field and the id: {message}"
    );
    let consents: Api<AppConsent> = Api::namespaced(world.client.clone(), &world.namespace);
    let message = support::operator::poll_until("the wrong customer reported", MINUTE, || async {
        let o = consents.get("wrong-customer").await.ok()?;
        let c = o
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "PrerequisitesMet")?;
        (c.status == "False").then_some(format!("{}: {}", c.reason, c.message))
    })
    .await;
    assert!(message.contains("unicode-display-name"), "{message}");
    let outcome = world
        .wait_for(
            "hostile-annotations",
            "the hostile annotations handled (pending approval or a reported failure)",
            MINUTE,
            |o| {
                if let Some((status, reason, message)) = condition(o, "Synced")
                    && status == "False"
                    && reason != "TransientError"
                {
                    return Some(format!("Synced=False {reason}: {message}"));
                }
                let state = o.status.as_ref()?.state.clone()?;
                (state == "approvalPending").then_some(state)
            },
        )
        .await;
    eprintln!("hostile annotations: {outcome}");
    // The pinned id is refused where Microsoft refuses it, as a permanent error on the object
    // (the paths below show it never climbed out of the GDAP collection).
    assert!(
        outcome.starts_with("Synced=False MicrosoftError")
            && outcome.contains("delegatedAdminRelationshipId is invalid"),
        "the hostile relationship id is reported as refused: {outcome}"
    );

    // Nothing left the GDAP collection's own paths, and the operator never panicked.
    for (_, path) in world.requests().await {
        assert!(
            !path.split('/').any(|s| s == ".." || s == "."),
            "a request climbed the path: {path}"
        );
        assert!(
            !path.ends_with("/users"),
            "a request reached another resource: {path}"
        );
    }
    // Every accepted object was reconciled (the operator did not survive them by never looking).
    let unreconciled: Vec<&str> = accepted
        .iter()
        .filter(|c| c.object["kind"] == "GdapRelationship")
        .map(|c| c.object["metadata"]["name"].as_str().unwrap())
        .collect();
    let rels = world.relationships();
    for name in unreconciled {
        let o = rels.get(name).await.unwrap();
        assert!(
            condition(&o, "Synced").is_some(),
            "{name}: the operator reported on it"
        );
    }
    assert!(
        !world.operator_log().contains("panicked"),
        "the operator panicked:\n{}",
        world.operator_log()
    );
}

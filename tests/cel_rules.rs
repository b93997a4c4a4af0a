//! Every CEL rule in the generated CRDs, evaluated with kube's client-side CEL engine on a passing
//! and a failing value. A final test fails when a CRD gains a rule that this table does not cover.

use gdap_operator::crdgen;
use kube::core::cel::Validator;
use serde_json::{Value, json};

fn schema(kind: &str) -> Value {
    let crd = crdgen::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .expect("kind exists");
    crdgen::schema_of(&crd)
}

fn relationship(spec_patch: Value) -> Value {
    let mut spec = json!({
        "customer": {"tenantId": "11111111-2222-3333-4444-555555555555"},
        "roles": ["Directory Readers", "Helpdesk Administrator"],
        "duration": "P730D",
    });
    merge(&mut spec, spec_patch);
    json!({"apiVersion": "gdap.io/v1alpha1", "kind": "GdapRelationship", "metadata": {"name": "x"}, "spec": spec})
}

fn consent(spec_patch: Value) -> Value {
    let mut spec = json!({
        "customer": {"tenantId": "11111111-2222-3333-4444-555555555555"},
        "applicationId": "57667d41-992a-49b0-99d8-ddf68328373f",
        "relationshipRef": {"name": "r"},
        "grants": [{"resource": "Microsoft Graph", "scopes": [], "appRoles": ["User.Read.All"]}],
    });
    merge(&mut spec, spec_patch);
    json!({"apiVersion": "gdap.io/v1alpha1", "kind": "AppConsent", "metadata": {"name": "x"}, "spec": spec})
}

fn sync(spec_patch: Value) -> Value {
    let mut spec = json!({
        "customer": {"tenantId": "11111111-2222-3333-4444-555555555555"},
        "appConsentRef": {"name": "c"},
        "schedule": "30 2 * * *",
        "sink": {"file": {"path": "/exports"}},
    });
    merge(&mut spec, spec_patch);
    json!({"apiVersion": "gdap.io/v1alpha1", "kind": "TenantSync", "metadata": {"name": "x"}, "spec": spec})
}

fn fleet(spec_patch: Value) -> Value {
    let mut spec = json!({
        "customers": {"partnerCenter": true},
        "template": {"relationship": {"roles": ["Directory Readers"], "duration": "P730D"}},
    });
    merge(&mut spec, spec_patch);
    json!({"apiVersion": "gdap.io/v1alpha1", "kind": "GdapFleet", "metadata": {"name": "x"}, "spec": spec})
}

/// A case of one of the three kinds, carried into a fleet's template (its spec without the
/// customer and the reference the fleet fills in): the fleet's CRD holds the same rules there.
fn in_fleet(case: &Case) -> Option<Case> {
    let (part, dropped) = match case.kind {
        "GdapRelationship" => ("relationship", "relationshipId"),
        "AppConsent" => ("appConsent", "relationshipRef"),
        "TenantSync" => ("tenantSync", "appConsentRef"),
        _ => return None,
    };
    let field = case.field.strip_prefix("spec.")?;
    if field.starts_with("customer.") {
        return None;
    }
    let template = |object: &Value| {
        let mut terms = object["spec"].clone();
        let map = terms.as_object_mut().expect("a spec");
        map.remove("customer");
        map.remove(dropped);
        let mut template =
            json!({"relationship": {"roles": ["Directory Readers"], "duration": "P730D"}});
        if part == "tenantSync" {
            template["appConsent"] = consent(json!({}))["spec"].clone();
            let consent = template["appConsent"].as_object_mut().unwrap();
            consent.remove("customer");
            consent.remove("relationshipRef");
        }
        template[part] = terms;
        fleet(json!({"template": template}))
    };
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    Some(Case {
        rule: leak(format!("{} (in a fleet's template)", case.rule)),
        kind: "GdapFleet",
        good: template(&case.good),
        bad: template(&case.bad),
        field: leak(format!("spec.template.{part}.{field}")),
    })
}

fn merge(target: &mut Value, patch: Value) {
    if let (Value::Object(t), Value::Object(p)) = (target, patch) {
        t.extend(p);
    }
}

/// The messages of the rules that fail for `object`.
fn failures(kind: &str, object: &Value) -> Vec<String> {
    match Validator::new().validate(&schema(kind), object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| format!("{}: {}", e.field_path, e.message))
            .collect(),
    }
}

struct Case {
    rule: &'static str,
    kind: &'static str,
    good: Value,
    bad: Value,
    field: &'static str,
}

fn cases() -> Vec<Case> {
    let mut all = kind_cases();
    let carried: Vec<Case> = all.iter().filter_map(in_fleet).collect();
    all.extend(carried);
    all.extend(fleet_cases());
    all
}

fn fleet_cases() -> Vec<Case> {
    let tenant = "11111111-2222-3333-4444-555555555555";
    vec![
        Case {
            rule: "a fleet names where its customers come from",
            kind: "GdapFleet",
            good: fleet(json!({"customers": {"list": [{"tenantId": tenant}]}})),
            bad: fleet(json!({"customers": {"exclude": [tenant]}})),
            field: "spec.customers",
        },
        Case {
            rule: "GUID (customers.list[].tenantId)",
            kind: "GdapFleet",
            good: fleet(json!({"customers": {"list": [{"tenantId": tenant}]}})),
            bad: fleet(json!({"customers": {"list": [{"tenantId": "contoso.com"}]}})),
            field: "spec.customers.list[0].tenantId",
        },
        Case {
            rule: "a fleet's import needs its consent",
            kind: "GdapFleet",
            good: fleet(json!({})),
            bad: fleet(json!({"template": {
                "relationship": {"roles": ["Directory Readers"], "duration": "P730D"},
                "tenantSync": {"sink": {"file": {"path": "/exports"}}},
            }})),
            field: "spec.template.tenantSync",
        },
    ]
}

fn kind_cases() -> Vec<Case> {
    let group = "6f1c0e52-3c55-4d9a-9f3e-0a1b2c3d4e01";
    vec![
        Case {
            rule: "GUID (customer.tenantId)",
            kind: "GdapRelationship",
            good: relationship(json!({})),
            bad: relationship(json!({"customer": {"tenantId": "contoso.onmicrosoft.com"}})),
            field: "spec.customer.tenantId",
        },
        Case {
            rule: "GUID (securityGroupId)",
            kind: "GdapRelationship",
            good: relationship(
                json!({"accessAssignments": [{"securityGroupId": group, "roles": ["Directory Readers"]}]}),
            ),
            bad: relationship(
                json!({"accessAssignments": [{"securityGroupId": "helpdesk", "roles": ["Directory Readers"]}]}),
            ),
            field: "spec.accessAssignments[0].securityGroupId",
        },
        Case {
            rule: "day duration upper bound",
            kind: "GdapRelationship",
            good: relationship(json!({"duration": "P730D"})),
            bad: relationship(json!({"duration": "P731D"})),
            field: "spec.duration",
        },
        Case {
            rule: "day duration lower bound",
            kind: "GdapRelationship",
            good: relationship(json!({"duration": "P1D"})),
            bad: relationship(json!({"duration": "P0D"})),
            field: "spec.duration",
        },
        Case {
            rule: "day duration form",
            kind: "GdapRelationship",
            good: relationship(json!({"duration": "P90D"})),
            bad: relationship(json!({"duration": "P2Y"})),
            field: "spec.duration",
        },
        Case {
            rule: "no autoExtend with Global Administrator (name)",
            kind: "GdapRelationship",
            good: relationship(json!({"roles": ["Global Administrator"], "autoExtend": false})),
            bad: relationship(json!({"roles": ["global administrator"], "autoExtend": true})),
            field: "spec.autoExtend",
        },
        Case {
            rule: "no autoExtend with Global Administrator (GUID)",
            kind: "GdapRelationship",
            good: relationship(json!({"roles": ["Directory Readers"], "autoExtend": true})),
            bad: relationship(
                json!({"roles": ["62E90394-69F5-4237-9190-012177145E10"], "autoExtend": true}),
            ),
            field: "spec.autoExtend",
        },
        Case {
            rule: "assignment roles within spec.roles",
            kind: "GdapRelationship",
            good: relationship(
                json!({"accessAssignments": [{"securityGroupId": group, "roles": ["Helpdesk Administrator"]}]}),
            ),
            bad: relationship(
                json!({"accessAssignments": [{"securityGroupId": group, "roles": ["User Administrator"]}]}),
            ),
            field: "spec.accessAssignments",
        },
        Case {
            rule: "renewal.before shorter than duration",
            kind: "GdapRelationship",
            good: relationship(
                json!({"duration": "P180D", "renewal": {"policy": "Successor", "before": "P30D"}}),
            ),
            bad: relationship(
                json!({"duration": "P30D", "renewal": {"policy": "Successor", "before": "P45D"}}),
            ),
            field: "spec.renewal.before",
        },
        Case {
            rule: "renewal.before is a day duration",
            kind: "GdapRelationship",
            good: relationship(json!({"renewal": {"before": "P14D"}})),
            bad: relationship(json!({"renewal": {"before": "2 weeks"}})),
            field: "spec.renewal.before",
        },
        Case {
            rule: "GUID (applicationId)",
            kind: "AppConsent",
            good: consent(json!({})),
            bad: consent(json!({"applicationId": "reporting-app"})),
            field: "spec.applicationId",
        },
        Case {
            rule: "grant needs scopes or appRoles",
            kind: "AppConsent",
            good: consent(
                json!({"grants": [{"resource": "Microsoft Graph", "scopes": ["User.Read.All"], "appRoles": []}]}),
            ),
            bad: consent(
                json!({"grants": [{"resource": "Microsoft Graph", "scopes": [], "appRoles": []}]}),
            ),
            field: "spec.grants[0].scopes",
        },
        Case {
            rule: "GUID (TenantSync customer.tenantId)",
            kind: "TenantSync",
            good: sync(json!({})),
            bad: sync(json!({"customer": {"tenantId": "1111-2222"}})),
            field: "spec.customer.tenantId",
        },
        Case {
            rule: "cron shape",
            kind: "TenantSync",
            good: sync(json!({"schedule": "@daily"})),
            bad: sync(json!({"schedule": "every night"})),
            field: "spec.schedule",
        },
        Case {
            rule: "postgres schema is a lower-case SQL identifier",
            kind: "TenantSync",
            good: sync(
                json!({"sink": {"postgres": {"connectionSecretRef": {"name": "db"}, "schema": "reports_2"}}}),
            ),
            bad: sync(
                json!({"sink": {"postgres": {"connectionSecretRef": {"name": "db"}, "schema": "Reports; drop"}}}),
            ),
            field: "spec.sink.postgres.schema",
        },
        Case {
            rule: "exactly one sink",
            kind: "TenantSync",
            good: sync(json!({"sink": {"postgres": {"connectionSecretRef": {"name": "db"}}}})),
            bad: sync(
                json!({"sink": {"file": {"path": "/x"}, "postgres": {"connectionSecretRef": {"name": "db"}}}}),
            ),
            field: "spec.sink",
        },
        Case {
            rule: "file sink path absolute",
            kind: "TenantSync",
            good: sync(json!({"sink": {"file": {"path": "/var/lib/exports"}}})),
            bad: sync(json!({"sink": {"file": {"path": "/var/../etc"}}})),
            field: "spec.sink.file.path",
        },
        Case {
            rule: "full sync interval is a day duration",
            kind: "TenantSync",
            good: sync(json!({"fullSyncEvery": "P7D"})),
            bad: sync(json!({"fullSyncEvery": "weekly"})),
            field: "spec.fullSyncEvery",
        },
    ]
}

#[test]
fn every_rule_accepts_its_good_value_and_refuses_its_bad_value_naming_the_field() {
    for case in cases() {
        assert_eq!(
            failures(case.kind, &case.good),
            Vec::<String>::new(),
            "{}: good value refused",
            case.rule
        );
        let bad = failures(case.kind, &case.bad);
        assert_eq!(
            bad.len(),
            1,
            "{}: expected exactly one failure, got {bad:?}",
            case.rule
        );
        assert!(
            bad[0].starts_with(&format!("{}: ", case.field)),
            "{}: {bad:?} does not name {}",
            case.rule,
            case.field
        );
    }
}

/// Collects every `x-kubernetes-validations` rule text under a schema node.
fn rules_in(node: &Value, found: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                found.extend(
                    rules
                        .iter()
                        .filter_map(|r| r["rule"].as_str().map(str::to_string)),
                );
            }
            map.values().for_each(|v| rules_in(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| rules_in(v, found)),
        _ => {}
    }
}

#[test]
fn the_table_covers_every_rule_in_the_crds() {
    let mut uncovered = Vec::new();
    for kind in ["GdapRelationship", "AppConsent", "TenantSync", "GdapFleet"] {
        let mut rules = Vec::new();
        rules_in(&schema(kind), &mut rules);
        rules.sort();
        rules.dedup();
        for rule in rules {
            // A rule is covered when some bad case of this kind fails on it.
            let covered = cases().iter().filter(|c| c.kind == kind).any(|c| {
                Validator::new()
                    .validate(&schema(kind), &c.bad, None)
                    .err()
                    .is_some_and(|errors| errors.iter().any(|e| e.rule == rule))
            });
            if !covered {
                uncovered.push(format!("{kind}: {rule}"));
            }
        }
    }
    assert!(
        uncovered.is_empty(),
        "rules without a failing case: {uncovered:#?}"
    );
}

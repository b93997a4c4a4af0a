//! The CRDs on a real kube-apiserver (v1.34, built from upstream): they install, every example is
//! accepted, every invalid example is refused with a message naming its field, `kubectl get`
//! shows the printer columns, the category lists all four kinds, and `kubectl explain` shows the
//! doc comments.

mod support;

use gdap_operator::api::{
    CustomerRef, DayDuration, GdapRelationship, GdapRelationshipSpec, RelationshipTerms,
};
use kube::api::{Api, PostParams};
use support::controlplane;

#[test]
fn every_example_is_accepted_and_listed_by_the_category() {
    let cp = controlplane::get();
    let ns = cp.namespace("examples");
    for file in support::yaml_files("examples") {
        cp.kubectl_ok(&["apply", "-n", &ns, "-f", file.to_str().unwrap()]);
    }
    let listed = cp.kubectl_ok(&["get", "gdap-all", "-n", &ns, "-o", "name"]);
    let mut names: Vec<_> = listed.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "appconsent.gdap.io/contoso-reporting-app",
            "gdapfleet.gdap.io/estate",
            "gdaprelationship.gdap.io/contoso-break-glass",
            "gdaprelationship.gdap.io/contoso-support",
            "tenantsync.gdap.io/contoso-nightly",
        ]
    );
}

#[test]
fn every_invalid_example_is_refused_naming_its_field() {
    let cp = controlplane::get();
    let ns = cp.namespace("invalid");
    for file in support::yaml_files("examples/invalid") {
        let field = support::expected_field(&file);
        let output = cp.kubectl(&["apply", "-n", &ns, "-f", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{} was accepted", file.display());
        let names_field = stderr.contains(&format!("{field}:"))
            || stderr.contains(&format!("unknown field \"{field}\""));
        assert!(
            names_field,
            "{}: the server's message does not name {field}: {stderr}",
            file.display()
        );
    }
    let left = cp.kubectl_ok(&["get", "gdap-all", "-n", &ns, "-o", "name"]);
    assert_eq!(left.trim(), "", "refused objects must not exist");
}

/// `kubectl get`'s table as (header → cell) rows, cut at the headers' columns (a cell may hold
/// spaces, e.g. a customer's name).
fn table_rows(table: &str) -> Vec<Vec<(String, String)>> {
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let mut starts: Vec<usize> = Vec::new();
    let mut previous = ' ';
    for (i, c) in header.char_indices() {
        // A column starts after two spaces (a header like "CUSTOMER NAME" has one inside).
        if c != ' ' && (i == 0 || (previous == ' ' && header[..i].ends_with("  "))) {
            starts.push(i);
        }
        previous = c;
    }
    let cell = |line: &str, k: usize| -> String {
        let from = starts[k].min(line.len());
        let to = starts
            .get(k + 1)
            .copied()
            .unwrap_or(line.len())
            .min(line.len());
        line[from..to].trim().to_string()
    };
    lines
        .map(|line| {
            (0..starts.len())
                .map(|k| (cell(header, k), cell(line, k)))
                .collect()
        })
        .collect()
}

fn patch_status(cp: &controlplane::ControlPlane, ns: &str, kind: &str, name: &str, status: &str) {
    cp.kubectl_ok(&[
        "patch",
        kind,
        name,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
}

#[test]
fn kubectl_get_shows_customer_state_expiry_ready_reason_successor_and_age() {
    let cp = controlplane::get();
    let ns = cp.namespace("columns");
    for example in [
        "gdaprelationship.yaml",
        "appconsent.yaml",
        "tenantsync.yaml",
    ] {
        let file = support::root().join("examples").join(example);
        cp.kubectl_ok(&["apply", "-n", &ns, "-f", file.to_str().unwrap()]);
    }
    let ready = r#""conditions":[{"type":"Ready","status":"False","reason":"ApprovalPending","message":"m","lastTransitionTime":"2026-11-22T10:00:00Z"}]"#;
    let status = format!(
        r#"{{"status":{{"state":"active","customerDisplayName":"Contoso Ltd","endsAt":"2028-11-22T10:00:00Z","successor":{{"displayName":"contoso-support-r1","state":"approvalPending","reason":"Renewal"}},{ready}}}}}"#
    );
    patch_status(cp, &ns, "gdap", "contoso-support", &status);
    let rows = table_rows(&cp.kubectl_ok(&["get", "gdap", "-n", &ns]));
    let headers: Vec<&str> = rows[0].iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        headers,
        [
            "NAME",
            "CUSTOMER",
            "CUSTOMER NAME",
            "STATE",
            "EXPIRES",
            "READY",
            "REASON",
            "SUCCESSOR",
            "AGE"
        ]
    );
    let cells: Vec<&str> = rows[0].iter().map(|(_, c)| c.as_str()).collect();
    // A future date in a `date` column prints as <invalid>, so the expiry is a timestamp.
    assert_eq!(
        &cells[..8],
        [
            "contoso-support",
            "11111111-2222-3333-4444-555555555555",
            "Contoso Ltd",
            "active",
            "2028-11-22T10:00:00Z",
            "False",
            "ApprovalPending",
            "approvalPending"
        ]
    );

    let consent = r#"{"status":{"customerDisplayName":"Contoso Ltd","relationship":{"id":"r-1","displayName":"contoso-support-5d027261"},"conditions":[{"type":"Consented","status":"False","reason":"Revoked","message":"m","lastTransitionTime":"2026-11-22T10:00:00Z"},{"type":"Ready","status":"False","reason":"Revoked","message":"m","lastTransitionTime":"2026-11-22T10:00:00Z"}]}}"#;
    patch_status(cp, &ns, "appconsent", "contoso-reporting-app", consent);
    let rows = table_rows(&cp.kubectl_ok(&["get", "appconsent", "-n", &ns]));
    let row: std::collections::BTreeMap<&str, &str> = rows[0]
        .iter()
        .map(|(h, c)| (h.as_str(), c.as_str()))
        .collect();
    assert_eq!(row["CUSTOMER NAME"], "Contoso Ltd");
    assert_eq!(row["RELATIONSHIP"], "contoso-support-5d027261");
    assert_eq!((row["READY"], row["REASON"]), ("False", "Revoked"));

    let sync = r#"{"status":{"customerDisplayName":"Contoso Ltd","conditions":[{"type":"Ready","status":"False","reason":"AppConsentNotReady","message":"m","lastTransitionTime":"2026-11-22T10:00:00Z"}]}}"#;
    patch_status(cp, &ns, "tenantsync", "contoso-nightly", sync);
    let rows = table_rows(&cp.kubectl_ok(&["get", "tenantsync", "-n", &ns]));
    let row: std::collections::BTreeMap<&str, &str> = rows[0]
        .iter()
        .map(|(h, c)| (h.as_str(), c.as_str()))
        .collect();
    assert_eq!(row["CUSTOMER NAME"], "Contoso Ltd");
    assert_eq!(
        (row["READY"], row["REASON"]),
        ("False", "AppConsentNotReady")
    );
}

#[test]
fn kubectl_explain_shows_the_doc_comments() {
    let cp = controlplane::get();
    let text = cp.kubectl_ok(&["explain", "gdaprelationship.spec.duration"]);
    assert!(
        text.contains("How long the relationship lasts once approved"),
        "{text}"
    );
    assert!(text.contains("1 ≤ n ≤ 730"), "{text}");
    let consent = cp.kubectl_ok(&["explain", "appconsent.spec.relationshipRef"]);
    assert!(consent.contains("Application Administrator"), "{consent}");
    let sync = cp.kubectl_ok(&["explain", "tenantsync.status.skus"]);
    assert!(sync.contains("Licence counts per subscribed SKU"), "{sync}");
}

#[tokio::test]
async fn typed_objects_round_trip_through_the_server_with_defaults_applied() {
    let cp = controlplane::get();
    let ns = cp.namespace("typed");
    let api: Api<GdapRelationship> = Api::namespaced(cp.client().await, &ns);
    let spec = GdapRelationshipSpec {
        customer: CustomerRef {
            tenant_id: "11111111-2222-3333-4444-555555555555".into(),
        },
        relationship_id: None,
        terms: RelationshipTerms {
            credentials_ref: None,
            display_name: None,
            roles: vec!["Global Reader".into()],
            duration: DayDuration("P90D".into()),
            auto_extend: false,
            access_assignments: vec![],
            renewal: None,
            deletion_policy: Default::default(),
            management_policy: Default::default(),
        },
    };
    let created = api
        .create(
            &PostParams::default(),
            &GdapRelationship::new("typed", spec.clone()),
        )
        .await
        .unwrap();
    assert_eq!(created.spec, spec);
    let raw = cp.kubectl_ok(&[
        "get",
        "gdap",
        "typed",
        "-n",
        &ns,
        "-o",
        "jsonpath={.spec.deletionPolicy}/{.spec.managementPolicy}/{.spec.autoExtend}",
    ]);
    assert_eq!(
        raw, "Delete/Manage/false",
        "defaults are applied by the server"
    );

    let mut bad = GdapRelationship::new("typed-bad", spec);
    bad.spec.duration = DayDuration("P1000D".into());
    let err = api.create(&PostParams::default(), &bad).await.unwrap_err();
    assert!(err.to_string().contains("spec.duration"), "{err}");
}

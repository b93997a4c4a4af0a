//! The CRDs on a real kube-apiserver (v1.34, built from upstream): they install, every example is
//! accepted, every invalid example is refused with a message naming its field, `kubectl get`
//! shows the printer columns, the category lists all three kinds, and `kubectl explain` shows the
//! doc comments.

mod support;

use gdap_operator::api::{CustomerRef, DayDuration, GdapRelationship, GdapRelationshipSpec};
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

#[test]
fn kubectl_get_shows_customer_state_expiry_ready_successor_and_age() {
    let cp = controlplane::get();
    let ns = cp.namespace("columns");
    let file = support::root().join("examples/gdaprelationship.yaml");
    cp.kubectl_ok(&["apply", "-n", &ns, "-f", file.to_str().unwrap()]);
    let status = r#"{"status":{"state":"active","endsAt":"2028-11-22T10:00:00Z","successor":{"displayName":"contoso-support-r1","state":"approvalPending","reason":"Renewal"},"conditions":[{"type":"Ready","status":"True","reason":"Active","message":"active","lastTransitionTime":"2026-11-22T10:00:00Z"}]}}"#;
    cp.kubectl_ok(&[
        "patch",
        "gdap",
        "contoso-support",
        "-n",
        &ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
    let table = cp.kubectl_ok(&["get", "gdap", "-n", &ns]);
    let mut lines = table.lines();
    let header: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "CUSTOMER",
            "STATE",
            "EXPIRES",
            "READY",
            "SUCCESSOR",
            "AGE"
        ]
    );
    let row: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    // A future date in a `date` column prints as <invalid>, so the expiry is a timestamp.
    assert_eq!(
        &row[..6],
        [
            "contoso-support",
            "11111111-2222-3333-4444-555555555555",
            "active",
            "2028-11-22T10:00:00Z",
            "True",
            "approvalPending"
        ]
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
        credentials_ref: None,
        display_name: None,
        roles: vec!["Global Reader".into()],
        duration: DayDuration("P90D".into()),
        auto_extend: false,
        access_assignments: vec![],
        renewal: None,
        relationship_id: None,
        deletion_policy: Default::default(),
        management_policy: Default::default(),
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

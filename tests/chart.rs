//! The Helm chart (charts/gdap-operator), offline: `helm lint`, `helm template` in both install
//! modes, the values schema, the RBAC it grants (exactly the rules the operator needs, nothing
//! more), the Deployment's hardening and flags, and its documentation. tests/chart_apiserver.rs
//! applies it to the real API server; tests/e2e_gdap.rs runs the operator under its RBAC.

mod support;

use serde_json::{Value, json};
use support::chart::{self, documents, of_kind, one, run_helm, template};

const NS: &str = "gdap-system";

fn render(sets: &[&str]) -> Vec<Value> {
    documents(&template("ops", NS, sets).unwrap_or_else(|e| panic!("helm template: {e}")))
}

#[test]
fn helm_lint_passes_for_the_default_and_the_namespaced_values() {
    let dir = chart::dir();
    for sets in [
        vec![],
        vec!["watchNamespaces={team-a,team-b}"],
        vec![
            "metrics.serviceMonitor.enabled=true",
            "metrics.prometheusRule.enabled=true",
            "dashboard.enabled=true",
            "fileSink.enabled=true",
            "syncConcurrency=8",
        ],
    ] {
        let mut args = vec!["lint", "--strict", dir.to_str().unwrap()];
        for set in &sets {
            args.extend(["--set", set]);
        }
        let output = run_helm(&args);
        assert!(
            output.status.success(),
            "helm lint {sets:?}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The rules the operator needs where it watches, with `secrets` the rules for the Secrets
/// (none by default: the chart grants Secrets by name only); docs/operations.md explains each.
fn expected_watch_rules_with(secrets: &[Value]) -> Value {
    let mut rules = expected_watch_rules();
    let list = rules.as_array_mut().unwrap();
    for (i, rule) in secrets.iter().enumerate() {
        list.insert(4 + i, rule.clone());
    }
    rules
}

/// The rules the operator needs where it watches when no Secret is named; docs/operations.md
/// explains each.
fn expected_watch_rules() -> Value {
    json!([
        {"apiGroups": ["gdap.io"], "resources": ["gdaprelationships", "appconsents", "tenantsyncs", "gdapfleets"],
         "verbs": ["get", "list", "watch", "patch", "update"]},
        {"apiGroups": ["gdap.io"], "resources": ["gdaprelationships", "appconsents", "tenantsyncs"],
         "verbs": ["create", "delete"]},
        {"apiGroups": ["gdap.io"], "resources": ["gdaprelationships/status", "appconsents/status", "tenantsyncs/status", "gdapfleets/status"],
         "verbs": ["get", "patch", "update"]},
        {"apiGroups": ["gdap.io"], "resources": ["gdaprelationships/finalizers", "appconsents/finalizers", "tenantsyncs/finalizers", "gdapfleets/finalizers"],
         "verbs": ["update", "patch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    ])
}

fn subject() -> Value {
    json!([{"kind": "ServiceAccount", "name": "ops-gdap-operator", "namespace": NS}])
}

fn assert_lease_role(docs: &[Value]) {
    let roles = of_kind(docs, "Role");
    let lease = roles
        .iter()
        .find(|r| r["metadata"]["name"] == "ops-gdap-operator-leader-election")
        .expect("a leader-election Role");
    assert_eq!(
        lease["metadata"]["namespace"], NS,
        "the Lease lives in the release namespace"
    );
    assert_eq!(
        lease["rules"],
        json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch"]}])
    );
    let binding = of_kind(docs, "RoleBinding")
        .into_iter()
        .find(|b| b["metadata"]["name"] == "ops-gdap-operator-leader-election")
        .expect("its RoleBinding");
    assert_eq!(binding["subjects"], subject());
    assert_eq!(
        binding["roleRef"]["name"],
        "ops-gdap-operator-leader-election"
    );
}

#[test]
fn the_default_install_grants_a_cluster_role_with_exactly_the_operators_rules() {
    let docs = render(&[]);
    let role = one(&docs, "ClusterRole");
    assert_eq!(role["rules"], expected_watch_rules());
    let binding = one(&docs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"], subject());
    assert_eq!(
        one(&docs, "ServiceAccount")["metadata"]["name"],
        "ops-gdap-operator"
    );
    assert_lease_role(&docs);
    assert_eq!(
        of_kind(&docs, "Role").len(),
        1,
        "only the leader-election Role"
    );
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for absent in ["ServiceMonitor", "PrometheusRule", "ConfigMap"] {
        assert!(
            !kinds.contains(&absent),
            "{absent} is optional and off by default"
        );
    }
}

/// Secrets are granted by name only — the credentials Secrets (get, list, watch, patch, update:
/// the operator watches each alone, by a field selector on its name, which the API server checks
/// against `resourceNames`) and the connection Secrets (get) — so Secrets at large are never
/// listed or watched; with no name given there is no Secret rule at all (an empty
/// `resourceNames` would grant every Secret); `secretAccess=any` grants every Secret, list and
/// watch included. Both install modes render the same rules.
#[test]
fn secrets_are_granted_by_name_only_and_listed_or_watched_only_by_name() {
    let credentials = |names: &[&str]| json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": names, "verbs": ["get", "list", "watch", "patch", "update"]});
    let connections = |names: &[&str]| json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": names, "verbs": ["get"]});
    let cases: Vec<(Vec<&str>, Value)> = vec![
        (vec![], expected_watch_rules()),
        (
            vec!["credentialsSecret=partner-credentials"],
            expected_watch_rules_with(&[credentials(&["partner-credentials"])]),
        ),
        (
            vec![
                "credentialsSecret=team-a/partner-credentials",
                "rbac.credentialsSecrets={other,partner-credentials}",
                "rbac.connectionSecrets={reporting-db}",
            ],
            expected_watch_rules_with(&[
                credentials(&["other", "partner-credentials"]),
                connections(&["reporting-db"]),
            ]),
        ),
        (
            vec![
                "rbac.secretAccess=any",
                "rbac.connectionSecrets={reporting-db}",
            ],
            expected_watch_rules_with(&[
                json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "patch", "update"]}),
            ]),
        ),
    ];
    for (sets, expected) in cases {
        for watch in [None, Some("watchNamespaces={team-a}")] {
            let mut all = sets.clone();
            all.extend(watch);
            let docs = render(&all);
            let kind = if watch.is_some() {
                "Role"
            } else {
                "ClusterRole"
            };
            let role = of_kind(&docs, kind)
                .into_iter()
                .find(|r| {
                    !r["metadata"]["name"]
                        .as_str()
                        .unwrap()
                        .ends_with("-leader-election")
                })
                .unwrap_or_else(|| panic!("a {kind} for {all:?}"));
            assert_eq!(role["rules"], expected, "{all:?}");
            let any = all.contains(&"rbac.secretAccess=any");
            for rule in role["rules"].as_array().unwrap() {
                let verbs = rule["verbs"].to_string();
                let watches = verbs.contains("list") || verbs.contains("watch");
                assert!(
                    !(rule["resources"][0] == "secrets"
                        && watches
                        && rule["resourceNames"].is_null()
                        && !any),
                    "Secrets at large listed or watched: {all:?}: {rule}"
                );
            }
        }
    }
    let refused = template("ops", NS, &["rbac.secretAccess=all"]).unwrap_err();
    assert!(refused.contains("secretAccess"), "{refused}");
}

#[test]
fn the_namespaced_install_grants_a_role_per_watched_namespace_and_nothing_cluster_wide() {
    let docs = render(&["watchNamespaces={team-a,team-b}"]);
    assert!(of_kind(&docs, "ClusterRole").is_empty());
    assert!(of_kind(&docs, "ClusterRoleBinding").is_empty());
    for ns in ["team-a", "team-b"] {
        let role = of_kind(&docs, "Role")
            .into_iter()
            .find(|r| r["metadata"]["namespace"] == ns)
            .unwrap_or_else(|| panic!("a Role in {ns}"));
        assert_eq!(role["rules"], expected_watch_rules());
        let binding = of_kind(&docs, "RoleBinding")
            .into_iter()
            .find(|b| b["metadata"]["namespace"] == ns)
            .unwrap_or_else(|| panic!("a RoleBinding in {ns}"));
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
        assert_eq!(binding["subjects"], subject());
    }
    assert_lease_role(&docs);
    assert!(args(&docs).contains(&"--namespaces=team-a,team-b".to_string()));
}

fn args(docs: &[Value]) -> Vec<String> {
    one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_deployment_is_hardened_and_probes_healthz_and_readyz_on_the_metrics_port() {
    let docs = render(&[]);
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    let security = &pod["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    let container = &pod["containers"][0];
    let hardening = &container["securityContext"];
    assert_eq!(hardening["readOnlyRootFilesystem"], true);
    assert_eq!(hardening["allowPrivilegeEscalation"], false);
    assert_eq!(hardening["capabilities"]["drop"], json!(["ALL"]));
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], "metrics");
    }
    assert_eq!(container["ports"][0]["name"], "metrics");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    let env: Vec<(&str, &str)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["valueFrom"]["fieldRef"]["fieldPath"]
                    .as_str()
                    .unwrap_or(""),
            )
        })
        .collect();
    assert!(env.contains(&("POD_NAME", "metadata.name")), "{env:?}");
    assert!(
        env.contains(&("POD_NAMESPACE", "metadata.namespace")),
        "{env:?}"
    );
    let service = one(&docs, "Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(
        one(&docs, "Deployment")["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        "with leader election the new pod stands by until the old one releases the Lease"
    );
}

#[test]
fn leader_election_is_on_by_default_with_a_lease_named_after_the_release() {
    let defaults = args(&render(&[]));
    for flag in [
        "--leader-elect",
        "--lease-name=ops-gdap-operator",
        "--lease-duration=15s",
        "--lease-renew-before=10s",
        "--lease-retry-period=2s",
    ] {
        assert!(
            defaults.contains(&flag.to_string()),
            "{flag} missing from {defaults:?}"
        );
    }
    let tuned = args(&render(&[
        "leaderElection.leaseDuration=30s",
        "leaderElection.retryPeriod=500ms",
    ]));
    assert!(tuned.contains(&"--lease-duration=30s".to_string()));
    assert!(tuned.contains(&"--lease-retry-period=500ms".to_string()));
    let off = args(&render(&[
        "leaderElection.enabled=false",
        "updateStrategy.type=Recreate",
    ]));
    assert!(
        !off.iter()
            .any(|a| a.starts_with("--leader-elect") || a.starts_with("--lease-")),
        "{off:?}"
    );
}

#[test]
fn flags_come_from_values_and_sync_concurrency_only_when_set() {
    let defaults = args(&render(&[]));
    assert_eq!(
        defaults,
        [
            "run",
            "--metrics-address=0.0.0.0:8080",
            "--cloud=public",
            "--log-format=json",
            "--log-level=info",
            "--leader-elect",
            "--lease-name=ops-gdap-operator",
            "--lease-duration=15s",
            "--lease-renew-before=10s",
            "--lease-retry-period=2s",
        ]
    );
    let set = args(&render(&[
        "credentialsSecret=partner-credentials",
        "cloud=usgov-dod",
        "logFormat=text",
        "syncConcurrency=8",
        "reconcileConcurrency=32",
        "metrics.port=9090",
        "replicaCount=2",
        "extraArgs={--resync-interval,5m}",
    ]));
    for flag in [
        "--credentials-secret=partner-credentials",
        "--cloud=usgov-dod",
        "--log-format=text",
        "--sync-concurrency=8",
        "--reconcile-concurrency=32",
        "--metrics-address=0.0.0.0:9090",
        "--resync-interval",
        "5m",
    ] {
        assert!(
            set.contains(&flag.to_string()),
            "{flag} missing from {set:?}"
        );
    }
}

#[test]
fn every_flag_the_chart_renders_is_one_the_operator_accepts() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_gdap-operator"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let rendered = args(&render(&[
        "credentialsSecret=partner-credentials",
        "watchNamespaces={team-a}",
        "syncConcurrency=8",
        "reconcileConcurrency=32",
        "webhooks.enabled=true",
        ANCHORS,
        "webhooks.certificateUrlPrefixes={https://certs.example/cert/}",
    ]));
    assert!(
        rendered.contains(&"--sync-concurrency=8".to_string()),
        "{rendered:?}"
    );
    for arg in rendered.iter().filter(|a| a.starts_with("--")) {
        let flag = arg.split('=').next().unwrap();
        assert!(
            help.contains(&format!("{flag} "))
                || help.contains(&format!("{flag} <"))
                || help.contains(&format!("{flag}\n")),
            "the chart renders {flag}, which `gdap-operator run` does not know:\n{help}"
        );
    }
}

/// A `--set` of a trust-anchor bundle (the chart only checks it is PEM; the operator parses it).
const ANCHORS: &str =
    "webhooks.trustAnchors=-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

#[test]
fn webhooks_render_the_receiver_its_anchors_service_and_ingress_only_when_enabled() {
    let off = render(&[]);
    assert!(!args(&off).iter().any(|a| a.starts_with("--webhook")));
    assert!(chart::of_kind(&off, "Ingress").is_empty());
    let docs = render(&[
        "webhooks.enabled=true",
        ANCHORS,
        "webhooks.ingress.enabled=true",
        "webhooks.ingress.host=gdap.partner.example",
    ]);
    let flags = args(&docs);
    for flag in [
        "--webhook-listen=0.0.0.0:8443",
        "--webhook-path=/webhooks/partner-center",
        "--webhook-trust-anchors=/etc/gdap-operator/webhooks/trust-anchors.pem",
        "--webhook-max-event-age=24h",
    ] {
        assert!(
            flags.contains(&flag.to_string()),
            "{flag} missing from {flags:?}"
        );
    }
    let anchors = chart::of_kind(&docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"] == "ops-gdap-operator-webhook-trust-anchors")
        .expect("the trust anchors' ConfigMap");
    assert!(
        anchors["data"]["trust-anchors.pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    let ports = pod["containers"][0]["ports"].as_array().unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p["name"] == "webhooks" && p["containerPort"] == 8443)
    );
    let service = chart::of_kind(&docs, "Service")
        .into_iter()
        .find(|s| s["metadata"]["name"] == "ops-gdap-operator-webhooks")
        .expect("the receiver's Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "webhooks");
    let ingress = one(&docs, "Ingress");
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "gdap.partner.example");
    assert_eq!(rule["http"]["paths"][0]["path"], "/webhooks/partner-center");
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"]["name"],
        "ops-gdap-operator-webhooks"
    );
    let missing = template("ops", NS, &["webhooks.enabled=true"]).unwrap_err();
    assert!(missing.contains("webhooks.trustAnchors"), "{missing}");
    let no_host = template(
        "ops",
        NS,
        &[
            "webhooks.enabled=true",
            ANCHORS,
            "webhooks.ingress.enabled=true",
        ],
    )
    .unwrap_err();
    assert!(no_host.contains("webhooks.ingress.host"), "{no_host}");
}

#[test]
fn the_file_sink_volume_is_mounted_writable_when_enabled() {
    let pod_of =
        |sets: &[&str]| one(&render(sets), "Deployment")["spec"]["template"]["spec"].clone();
    let mount = |pod: &Value| {
        pod["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "file-sink")
            .cloned()
    };
    assert!(mount(&pod_of(&[])).is_none());
    let pod = pod_of(&["fileSink.enabled=true"]);
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "file-sink")
        .unwrap()
        .clone();
    assert_eq!(volume["emptyDir"], json!({}), "an emptyDir without a limit");
    let pod = pod_of(&["fileSink.enabled=true", "fileSink.sizeLimit=1Gi"]);
    assert_eq!(
        mount(&pod).unwrap()["mountPath"],
        "/var/lib/gdap-operator/exports"
    );
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "file-sink")
        .unwrap()
        .clone();
    assert_eq!(volume["emptyDir"]["sizeLimit"], "1Gi");
    let pod = pod_of(&["fileSink.enabled=true", "fileSink.existingClaim=exports"]);
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "file-sink")
        .unwrap()
        .clone();
    assert_eq!(volume["persistentVolumeClaim"]["claimName"], "exports");
}

#[test]
fn the_optional_monitoring_objects_render_when_enabled() {
    let docs = render(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.labels.release=prometheus",
        "metrics.prometheusRule.enabled=true",
        "dashboard.enabled=true",
    ]);
    let monitor = one(&docs, "ServiceMonitor");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    let service = one(&docs, "Service");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][key], value, "{key}");
    }
    let alerts: Vec<&str> = one(&docs, "PrometheusRule")["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    for alert in [
        "GdapRelationshipExpiring",
        "GdapConsentRevoked",
        "GdapConsentPermissionsLeft",
        "GdapTenantSyncStale",
        "GdapCredentialsInvalid",
        "GdapThrottled",
    ] {
        assert!(alerts.contains(&alert), "{alert} missing from {alerts:?}");
    }
    let dashboard = one(&docs, "ConfigMap");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json: Value =
        serde_json::from_str(dashboard["data"]["gdap-operator.json"].as_str().unwrap()).unwrap();
    assert_eq!(json["uid"], "gdap-operator");
}

#[test]
fn a_service_monitor_without_the_service_is_refused() {
    let error = template(
        "ops",
        NS,
        &[
            "metrics.serviceMonitor.enabled=true",
            "metrics.service.enabled=false",
        ],
    )
    .unwrap_err();
    assert!(error.contains("needs metrics.service.enabled"), "{error}");
}

/// Bad values and the words helm's schema check must answer with: the value's path and the rule.
const BAD_VALUES: &[(&str, &str, &str)] = &[
    ("cloud=azure", "/cloud", "must be one of"),
    ("logFormat=xml", "/logFormat", "must be one of"),
    ("replicaCount=-1", "/replicaCount", "minimum"),
    ("replicaCount=two", "/replicaCount", "want integer"),
    (
        "watchNamespaces={Team_A}",
        "/watchNamespaces/0",
        "does not match pattern",
    ),
    (
        "watchNamespaces={a,a}",
        "/watchNamespaces",
        "items at 0 and 1 are equal",
    ),
    ("metrics.port=80", "/metrics/port", "minimum"),
    ("syncConcurrency=0", "/syncConcurrency", "minimum"),
    (
        "reconcileConcurrency=1001",
        "/reconcileConcurrency",
        "maximum",
    ),
    (
        "reconcileConcurrency=-1",
        "/reconcileConcurrency",
        "minimum",
    ),
    (
        "credentialsSecret=a/b/c",
        "/credentialsSecret",
        "does not match pattern",
    ),
    ("watchNamespace=team-a", "watchNamespace", "not allowed"),
    ("image.repository=", "/image/repository", "minLength"),
    (
        "image.digest=sha256:xyz",
        "/image/digest",
        "does not match pattern",
    ),
    (
        "fileSink.mountPath=exports",
        "/fileSink/mountPath",
        "does not match pattern",
    ),
    (
        "metrics.prometheusRule.expiringWithinDays=1000",
        "/metrics/prometheusRule/expiringWithinDays",
        "maximum",
    ),
    (
        "metrics.serviceMonitor.interval=often",
        "/metrics/serviceMonitor/interval",
        "does not match pattern",
    ),
    (
        "updateStrategy.type=BlueGreen",
        "/updateStrategy/type",
        "must be one of",
    ),
    ("rbac.create=maybe", "/rbac/create", "want boolean"),
    (
        "leaderElection.leaseDuration=1500ms",
        "/leaderElection/leaseDuration",
        "does not match pattern",
    ),
    (
        "leaderElection.retryPeriod=soon",
        "/leaderElection/retryPeriod",
        "does not match pattern",
    ),
];

#[test]
fn more_than_one_replica_without_leader_election_is_refused() {
    let error = template(
        "ops",
        NS,
        &["replicaCount=2", "leaderElection.enabled=false"],
    )
    .expect_err("two reconciling replicas must not install");
    assert!(
        error.contains("/leaderElection/enabled") && error.contains("must be true"),
        "{error}"
    );
    template(
        "ops",
        NS,
        &["replicaCount=1", "leaderElection.enabled=false"],
    )
    .expect("one replica without election installs");
    template("ops", NS, &["replicaCount=3"]).expect("three replicas with election install");
}

#[test]
fn the_values_schema_refuses_bad_values_naming_the_value_and_the_rule() {
    for (set, path, rule) in BAD_VALUES {
        let error = match template("ops", NS, &[set]) {
            Ok(_) => panic!("--set {set} was accepted"),
            Err(e) => e,
        };
        assert!(
            error.contains("values don't meet the specifications of the schema"),
            "--set {set} failed, but not on the schema: {error}"
        );
        assert!(
            error.contains(path),
            "--set {set}: {path} not named in: {error}"
        );
        assert!(
            error.contains(rule),
            "--set {set}: {rule:?} not in: {error}"
        );
    }
}

/// Paths of the schema's leaves: properties without properties of their own.
fn schema_leaves(schema: &Value, prefix: &str, out: &mut Vec<String>) {
    let Some(properties) = schema["properties"].as_object() else {
        out.push(prefix.to_string());
        return;
    };
    for (key, sub) in properties {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        schema_leaves(sub, &path, out);
    }
}

#[test]
fn every_value_is_in_the_schema_and_documented_in_the_chart_readme() {
    let dir = chart::dir();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("values.schema.json")).unwrap())
            .unwrap();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut leaves = Vec::new();
    schema_leaves(&schema, "", &mut leaves);
    let undocumented: Vec<&String> = leaves
        .iter()
        .filter(|leaf| *leaf != "global" && !readme.contains(&format!("| `{leaf}` |")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "values without a row in charts/gdap-operator/README.md: {undocumented:?}"
    );
    let values: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap()).unwrap();
    let values = serde_json::to_value(values).unwrap();
    let mut missing = Vec::new();
    values_outside_schema(&values, &schema, "", &mut missing);
    assert!(
        missing.is_empty(),
        "values.yaml keys the schema does not describe: {missing:?}"
    );
}

fn values_outside_schema(values: &Value, schema: &Value, prefix: &str, out: &mut Vec<String>) {
    let (Some(map), Some(properties)) = (values.as_object(), schema["properties"].as_object())
    else {
        return;
    };
    for (key, value) in map {
        let path = format!("{prefix}{key}");
        match properties.get(key) {
            None => out.push(path),
            Some(sub) => values_outside_schema(value, sub, &format!("{path}."), out),
        }
    }
}

/// The metric families the operator registers today (`# TYPE` lines of its exposition). Empty
/// label families are not exposed, so one sample of each is recorded first.
fn registered_metrics() -> Vec<String> {
    use gdap_operator::metrics::{CallLabels, Metrics, ObjectLabels};
    let token = gdap_operator::microsoft::TokenMetrics::default();
    let metrics = Metrics::with_extra(|r| token.register(r));
    metrics.reconciled("GdapRelationship", "success", 0.1);
    let object = ObjectLabels {
        namespace: "ns".into(),
        name: "n".into(),
        customer: "c".into(),
    };
    let (relationships, mut cache) = kube::runtime::reflector::store();
    let relationship: gdap_operator::api::GdapRelationship = serde_json::from_value(json!({
        "apiVersion": "gdap.io/v1alpha1",
        "kind": "GdapRelationship",
        "metadata": {"name": "n", "namespace": "ns"},
        "spec": {"customer": {"tenantId": "c"}, "roles": ["Directory Readers"], "duration": "P30D"},
        "status": {"state": "active", "endsAt": "2027-01-12T02:13:00Z"}
    }))
    .unwrap();
    cache.apply_watcher_event(&kube::runtime::watcher::Event::Apply(relationship));
    metrics.relationship_caches.add(relationships);
    metrics.consent(
        &object,
        Some(gdap_operator::metrics::ConsentHealth {
            healthy: true,
            ..Default::default()
        }),
    );
    metrics.credentials_valid("ns", "creds", Some(true));
    let call = CallLabels {
        service: "graph".into(),
        method: "GET".into(),
        status: "200".into(),
    };
    metrics.microsoft_calls.get_or_create(&call).inc();
    let synced: gdap_operator::api::TenantSyncStatus = serde_json::from_value(json!({
        "lastSuccessfulSyncTime": "2026-01-12T02:13:00Z",
        "users": {"total": 2, "enabled": 1, "licensed": 2, "disabledLicensed": 1, "guests": 0},
        "skus": [{"skuPartNumber": "SPE_E3", "purchased": 5, "assigned": 2, "available": 3}]
    }))
    .unwrap();
    metrics.sync.object(&object, Some(&synced), false);
    let failed = gdap_operator::controllers::failure::Failure::new("AccessDenied", "no", false);
    metrics
        .sync
        .record_run(&Err(failed), std::time::Duration::from_secs(1));
    support::metrics::families(&metrics.encode())
}

/// The series the chart README lists as coming with controllers not shipped yet.
fn coming_metrics() -> Vec<String> {
    let readme = std::fs::read_to_string(chart::dir().join("README.md")).unwrap();
    let section = readme
        .split("<!-- coming-metrics:start -->")
        .nth(1)
        .and_then(|s| s.split("<!-- coming-metrics:end -->").next())
        .expect("the chart README marks its coming-metrics table");
    let names = regex::Regex::new(r"(?m)^\| `(gdap_[a-z0-9_]+)`").unwrap();
    names
        .captures_iter(section)
        .map(|c| c[1].to_string())
        .collect()
}

/// The family a series name belongs to (counters and histograms add suffixes).
fn family(series: &str, registered: &[String]) -> String {
    for suffix in ["_total", "_bucket", "_sum", "_count", "_created"] {
        if let Some(base) = series.strip_suffix(suffix)
            && registered.iter().any(|r| r == base)
        {
            return base.to_string();
        }
    }
    series.to_string()
}

/// Every PromQL expression of the rendered PrometheusRule and of the dashboard.
fn promql_expressions() -> Vec<String> {
    let docs = render(&["metrics.prometheusRule.enabled=true"]);
    let mut exprs: Vec<String> = one(&docs, "PrometheusRule")["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(chart::dir().join("dashboards/gdap-operator.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("a PromQL expr").to_string());
        }
    }
    exprs
}

#[test]
fn alerts_and_dashboard_query_only_documented_metrics() {
    let registered = registered_metrics();
    let coming = coming_metrics();
    let operations = std::fs::read_to_string(support::root().join("docs/operations.md")).unwrap();
    let names = regex::Regex::new(r"\bgdap_[a-z0-9_]+").unwrap();
    let exprs = promql_expressions();
    assert!(exprs.len() >= 15, "{exprs:?}");
    for expr in &exprs {
        let balanced = |open, close| expr.matches(open).count() == expr.matches(close).count();
        assert!(
            balanced("(", ")") && balanced("{", "}") && balanced("[", "]"),
            "unbalanced: {expr}"
        );
        let used: Vec<&str> = names.find_iter(expr).map(|m| m.as_str()).collect();
        assert!(!used.is_empty(), "no gdap_ metric in {expr}");
        for series in used {
            let family = family(series, &registered);
            if registered.contains(&family) {
                assert!(
                    operations.contains(&format!("`{family}")),
                    "{family} (in {expr}) is not documented in docs/operations.md's metrics"
                );
            } else {
                assert!(
                    coming.contains(&family),
                    "{series} (in {expr}) is neither registered by the operator ({registered:?}) nor listed as coming in the chart README"
                );
            }
        }
    }
    for name in &coming {
        assert!(
            !registered.contains(name),
            "{name} is registered now: move it from the chart README's coming metrics to docs/operations.md's metrics"
        );
    }
}

/// The Dockerfile cannot be built here (no container engine); this keeps it consistent with the
/// chart and the crate: the same non-root uid, the metrics port, the binary, the build's inputs.
#[test]
fn the_dockerfile_agrees_with_the_chart_and_the_crate() {
    let root = support::root();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    let docs = render(&[]);
    let pod = &one(&docs, "Deployment")["spec"]["template"]["spec"];
    let uid = &pod["securityContext"]["runAsUser"];
    assert!(
        dockerfile.contains(&format!("\nUSER {uid}:{uid}\n")),
        "the image's USER is not the chart's runAsUser {uid}"
    );
    let port = &pod["containers"][0]["ports"][0]["containerPort"];
    assert!(dockerfile.contains(&format!("\nEXPOSE {port}\n")));
    assert!(
        dockerfile
            .contains("cargo build --release --locked --no-default-features --bin gdap-operator"),
        "a locked release build of the binary without the default (sandbox) feature"
    );
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/gdap-operator\"]"));
    assert_eq!(
        args(&docs)[0],
        "run",
        "the chart's args start with the subcommand"
    );
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            assert!(
                root.join(source).exists(),
                "{line}: {source} does not exist"
            );
            assert!(
                ignore.contains(&format!("!{source}")) || ignore.contains(&format!("!{source}/")),
                "{line}: .dockerignore keeps {source} out of the build context"
            );
        }
    }
}

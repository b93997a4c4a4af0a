//! The Helm chart against the real API server: what `helm template` renders applies (with strict
//! field validation), in both install modes, and the ServiceAccount it creates may do what the
//! operator does and nothing more (`kubectl auth can-i` as that ServiceAccount); `helm install`,
//! `upgrade` and `uninstall` work. tests/e2e_gdap.rs runs the operator itself under these rules.

mod support;

use support::chart::{self, documents, one, run_helm, template};
use support::controlplane::{self, ControlPlane};

/// Applies what `helm template` renders for a release named after its namespace; returns the
/// ServiceAccount the operator would run as (`system:serviceaccount:…`).
fn apply(cp: &ControlPlane, release: &str, sets: &[&str]) -> String {
    let manifests = template(release, release, sets).unwrap_or_else(|e| panic!("{e}"));
    let docs = documents(&manifests);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chart.yaml");
    std::fs::write(&file, &manifests).unwrap();
    cp.kubectl_ok(&[
        "apply",
        "--server-side",
        "--validate=strict",
        "-f",
        file.to_str().unwrap(),
    ]);
    let account = one(&docs, "ServiceAccount")["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    format!("system:serviceaccount:{release}:{account}")
}

/// Whether `user` may `verb` `resource` (with `-n NS` or `--all-namespaces` in `scope`).
fn can(cp: &ControlPlane, user: &str, verb: &str, resource: &str, scope: &[&str]) -> bool {
    let mut args = vec!["auth", "can-i", verb, resource, "--as", user];
    args.extend_from_slice(scope);
    let output = cp.kubectl(&args);
    let answer = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(
        answer == "yes" || answer == "no",
        "kubectl {args:?}: {answer} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    answer == "yes"
}

/// Whether `user` may really list the Secrets of `ns` — all of them, or with the field selector
/// on one `name` the operator's watch of a credentials Secret uses (a request, not `can-i`: the
/// API server takes the name from the field selector and checks it against `resourceNames`).
fn lists_secrets(cp: &ControlPlane, user: &str, ns: &str, name: Option<&str>) -> bool {
    let selector = name.map(|n| format!("metadata.name={n}"));
    let mut args = vec!["get", "secrets", "-n", ns, "--as", user, "-o", "name"];
    if let Some(selector) = &selector {
        args.extend(["--field-selector", selector]);
    }
    let output = cp.kubectl(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() || stderr.contains("forbidden"),
        "kubectl {args:?}: {stderr}"
    );
    output.status.success()
}

/// What the operator does in a namespace it watches.
const OPERATOR_NEEDS: &[(&str, &str)] = &[
    ("watch", "gdaprelationships.gdap.io"),
    ("list", "appconsents.gdap.io"),
    ("patch", "tenantsyncs.gdap.io"),
    ("patch", "gdaprelationships.gdap.io/status"),
    ("update", "gdaprelationships.gdap.io/finalizers"),
    ("watch", "gdapfleets.gdap.io"),
    ("patch", "gdapfleets.gdap.io/status"),
    ("update", "gdapfleets.gdap.io/finalizers"),
    // A fleet's objects for each customer: created (server-side apply) and pruned.
    ("create", "gdaprelationships.gdap.io"),
    ("delete", "appconsents.gdap.io"),
    ("delete", "tenantsyncs.gdap.io"),
    ("get", "secrets/partner-credentials"),
    // The watch of one credentials Secret (a field selector on its name, which the API server
    // authorizes as a list or watch of that name).
    ("list", "secrets/partner-credentials"),
    ("watch", "secrets/partner-credentials"),
    ("update", "secrets/partner-credentials"),
    ("patch", "secrets/partner-credentials"),
    ("get", "secrets/reporting-db"),
    ("get", "namespaces"),
    ("create", "events.events.k8s.io"),
    ("create", "events"),
];

/// What it must not be able to do there.
const OPERATOR_MUST_NOT: &[(&str, &str)] = &[
    ("create", "gdapfleets.gdap.io"),
    ("delete", "gdapfleets.gdap.io"),
    ("delete", "secrets"),
    ("create", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("get", "secrets/someone-elses"),
    ("watch", "secrets/someone-elses"),
    ("patch", "secrets/reporting-db"),
    ("watch", "secrets/reporting-db"),
    ("create", "pods"),
    ("delete", "namespaces"),
    ("list", "namespaces"),
    ("get", "configmaps"),
    ("delete", "events"),
    ("create", "leases.coordination.k8s.io"),
];

fn assert_watch_rights(cp: &ControlPlane, user: &str, ns: &str, expected: bool) {
    for (verb, resource) in OPERATOR_NEEDS {
        assert_eq!(
            can(cp, user, verb, resource, &["-n", ns]),
            expected,
            "{user} {verb} {resource} in {ns}"
        );
    }
}

fn assert_nothing_more(cp: &ControlPlane, user: &str, ns: &str) {
    for (verb, resource) in OPERATOR_MUST_NOT {
        assert!(
            !can(cp, user, verb, resource, &["-n", ns]),
            "{user} may {verb} {resource} in {ns}"
        );
    }
}

fn assert_lease_rights(cp: &ControlPlane, user: &str, release: &str, elsewhere: &str) {
    for verb in ["get", "create", "patch"] {
        assert!(can(
            cp,
            user,
            verb,
            "leases.coordination.k8s.io",
            &["-n", release]
        ));
    }
    for verb in ["delete", "update", "list", "watch"] {
        assert!(
            !can(
                cp,
                user,
                verb,
                "leases.coordination.k8s.io",
                &["-n", release]
            ),
            "{user} may {verb} leases"
        );
    }
    assert!(!can(
        cp,
        user,
        "get",
        "leases.coordination.k8s.io",
        &["-n", elsewhere]
    ));
}

#[test]
fn the_default_install_applies_and_grants_the_operator_its_rules_in_every_namespace() {
    let cp = controlplane::get();
    let release = cp.namespace("chart-all");
    let other = cp.namespace("chart-other");
    let user = apply(
        cp,
        &release,
        &[
            "credentialsSecret=partner-credentials",
            "rbac.connectionSecrets={reporting-db}",
            "fileSink.enabled=true",
            "dashboard.enabled=true",
            "syncConcurrency=4",
        ],
    );
    assert_watch_rights(cp, &user, &other, true);
    assert!(can(
        cp,
        &user,
        "watch",
        "gdaprelationships.gdap.io",
        &["--all-namespaces"]
    ));
    // Secrets by name only: the chart's default role cannot read the cluster's other Secrets.
    assert!(!can(cp, &user, "list", "secrets", &["--all-namespaces"]));
    assert!(lists_secrets(
        cp,
        &user,
        &other,
        Some("partner-credentials")
    ));
    assert!(!lists_secrets(cp, &user, &other, Some("someone-elses")));
    assert!(!lists_secrets(cp, &user, &other, None));
    assert_nothing_more(cp, &user, &other);
    assert_lease_rights(cp, &user, &release, &other);
    let deployment = cp.kubectl_ok(&[
        "get",
        "deployment",
        "-n",
        &release,
        "-o",
        "jsonpath={.items[0].spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem}",
    ]);
    assert_eq!(deployment, "true", "the Deployment is stored as rendered");
}

#[test]
fn the_namespaced_install_applies_and_grants_rights_only_in_the_watched_namespaces() {
    let cp = controlplane::get();
    let release = cp.namespace("chart-ns");
    let watched = cp.namespace("chart-watched");
    let other = cp.namespace("chart-unwatched");
    let user = apply(
        cp,
        &release,
        &[
            &format!("watchNamespaces={{{watched}}}"),
            "credentialsSecret=partner-credentials",
            "rbac.connectionSecrets={reporting-db}",
        ],
    );
    assert_watch_rights(cp, &user, &watched, true);
    assert_nothing_more(cp, &user, &watched);
    assert_watch_rights(cp, &user, &other, false);
    assert!(!can(
        cp,
        &user,
        "watch",
        "gdaprelationships.gdap.io",
        &["--all-namespaces"]
    ));
    assert!(!can(
        cp,
        &user,
        "get",
        "secrets/partner-credentials",
        &["-n", &release]
    ));
    assert_lease_rights(cp, &user, &release, &watched);
}

#[test]
fn helm_installs_upgrades_and_uninstalls_the_chart() {
    let cp = controlplane::get();
    let release = cp.namespace("chart-helm");
    let kubeconfig = cp.kubeconfig.to_str().unwrap().to_string();
    let chart = chart::dir();
    let helm = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--kubeconfig", &kubeconfig, "--namespace", &release]);
        let output = run_helm(&full);
        assert!(
            output.status.success(),
            "helm {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let notes = helm(&["install", &release, chart.to_str().unwrap()]);
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    assert!(notes.contains("It watches every namespace"), "{notes}");
    helm(&[
        "upgrade",
        &release,
        chart.to_str().unwrap(),
        "--set",
        "logFormat=text",
    ]);
    let args = cp.kubectl_ok(&[
        "get",
        "deployment",
        "-n",
        &release,
        "-o",
        "jsonpath={.items[0].spec.template.spec.containers[0].args}",
    ]);
    assert!(args.contains("--log-format=text"), "{args}");
    helm(&["uninstall", &release, "--wait", "--timeout", "60s"]);
    let left = cp.kubectl_ok(&[
        "get",
        "deployment,serviceaccount,role,rolebinding",
        "-n",
        &release,
        "-l",
        &format!("app.kubernetes.io/instance={release}"),
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "left behind: {left}");
    let crd = cp.kubectl(&["get", "crd", "gdaprelationships.gdap.io"]);
    assert!(crd.status.success(), "uninstall keeps the CRDs");
}

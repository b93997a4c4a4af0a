//! `gdap-operator doctor` against the sandbox, as a user runs it: a good set-up passes every
//! check (exit 0); each broken prerequisite fails its own check with what to do (exit 1), and
//! the checks that need it are skipped; the output never holds the secret or the refresh token.
#![cfg(feature = "sandbox")]

mod support;

use gdap_operator::sandbox::{Consistency, Fixture, Sandbox, SandboxOptions, defaults};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use support::onboard::{control, credentials_file, run};

const BASE: [&str; 7] = [
    "client-credentials",
    "credential-expiry",
    "refresh-token",
    "user-mfa",
    "delegated-permissions",
    "graph-gdap",
    "partner-center",
];
const WITH_MANIFESTS: [&str; 3] = ["manifests", "security-groups", "customers"];

async fn sandbox_with(fixture: Fixture) -> Sandbox {
    Sandbox::start(SandboxOptions {
        fixture,
        consistency: Consistency::immediate(),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn sandbox() -> Sandbox {
    sandbox_with(Fixture::builtin()).await
}

/// What one run said.
struct Outcome {
    code: i32,
    json: Value,
    stdout: String,
}

impl Outcome {
    /// The lines of check `id`.
    fn lines(&self, id: &str) -> Vec<&Value> {
        self.json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["id"] == id)
            .collect()
    }

    /// The one line of check `id`.
    fn line(&self, id: &str) -> &Value {
        let lines = self.lines(id);
        assert_eq!(lines.len(), 1, "one line of {id}:\n{}", self.stdout);
        lines[0]
    }

    fn status(&self, id: &str) -> &str {
        self.line(id)["status"].as_str().unwrap()
    }

    /// Asserts that a line of `id` failed with a detail and a fix containing these words, and
    /// the run too.
    fn assert_fails(&self, id: &str, detail: &str, fix: &str) {
        let failed: Vec<&Value> = self
            .lines(id)
            .into_iter()
            .filter(|l| l["status"] == "fail")
            .collect();
        assert!(!failed.is_empty(), "{id} did not fail:\n{}", self.stdout);
        let found = failed.iter().any(|l| {
            l["detail"].as_str().unwrap().contains(detail)
                && l["fix"].as_str().unwrap().contains(fix)
        });
        assert!(
            found,
            "no {id} failure says {detail:?} with fix {fix:?}:\n{}",
            self.stdout
        );
        assert_eq!(self.code, 1, "{}", self.stdout);
        assert_eq!(self.json["passed"], false);
    }

    fn assert_skipped(&self, ids: &[&str], needs: &str) {
        for id in ids {
            let line = self.line(id);
            assert_eq!(line["status"], "skip", "{id}:\n{}", self.stdout);
            assert_eq!(line["detail"], format!("needs: {needs}"));
        }
    }
}

/// `doctor --credentials FILE --output json [extra…]`.
fn doctor(sandbox: &Sandbox, credentials: &Path, extra: &[&str]) -> Outcome {
    let mut args = vec![
        "doctor",
        "--credentials",
        credentials.to_str().unwrap(),
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let output = run(sandbox, &args);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    for secret in [
        defaults::PARTNER_CLIENT_SECRET,
        defaults::PARTNER_REFRESH_TOKEN,
        defaults::PARTNER_NO_MFA_REFRESH_TOKEN,
        defaults::PARTNER_SUPPORT_REFRESH_TOKEN,
        "sandbox-refresh-token",
        "eyJ",
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "the output holds a secret or a token ({secret}):\n{stdout}\n{stderr}"
        );
    }
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n{stderr}"));
    Outcome {
        code: output.status.code().unwrap(),
        json,
        stdout,
    }
}

/// The three examples (GdapRelationship, AppConsent, TenantSync for Contoso), copied to `dir`.
fn good_manifests(dir: &Path) -> PathBuf {
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    for name in [
        "gdaprelationship.yaml",
        "appconsent.yaml",
        "tenantsync.yaml",
    ] {
        std::fs::copy(
            support::root().join("examples").join(name),
            manifests.join(name),
        )
        .unwrap();
    }
    manifests
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_set_up_passes_every_check() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let manifests = good_manifests(dir.path());
    let out = doctor(&sandbox, &credentials, &[manifests.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.json["passed"], true);
    let ids: Vec<&str> = out.json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = BASE.iter().chain(WITH_MANIFESTS.iter()).copied().collect();
    assert_eq!(ids, expected, "every check, once, in order");
    for id in &expected {
        assert_eq!(out.status(id), "pass", "{id}:\n{}", out.stdout);
        assert!(out.line(id)["fix"].is_null());
    }
    assert!(
        out.line("credential-expiry")["detail"]
            .as_str()
            .unwrap()
            .contains("secret in use expires on")
    );
    assert!(
        out.line("graph-gdap")["detail"]
            .as_str()
            .unwrap()
            .contains("admin@partner.example")
    );

    // The text output: one line per check, then the summary; same credentials, same verdicts.
    let output = run(
        &sandbox,
        &["doctor", "--credentials", credentials.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), BASE.len() + 1, "{text}");
    for (line, id) in lines.iter().zip(BASE) {
        assert!(line.starts_with("PASS  ") && line.contains(id), "{text}");
    }
    assert!(lines[BASE.len()].starts_with("ok: 7 passed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_fails_client_credentials_and_skips_the_rest() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let out = doctor(
        &sandbox,
        &credentials,
        &["--client-secret", "not-the-secret-value"],
    );
    out.assert_fails(
        "client-credentials",
        "AADSTS7000215",
        "Value (not its Secret ID)",
    );
    out.assert_skipped(&BASE[1..], "client-credentials");
    assert!(!out.stdout.contains("not-the-secret-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_credential_passes_and_its_expiry_is_read_from_graph() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let credentials = write(
        dir.path(),
        "by-certificate.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: p}}\nstringData:\n  partnerTenantId: {}\n  clientId: {}\n  refreshToken: {}\n  clientCertificate: |\n{}  clientKey: |\n{}",
            defaults::PARTNER_TENANT_ID,
            defaults::PARTNER_CLIENT_ID,
            defaults::PARTNER_REFRESH_TOKEN,
            indent(defaults::PARTNER_CLIENT_CERTIFICATE_PEM),
            indent(defaults::PARTNER_CLIENT_KEY_PEM),
        ),
    );
    let out = doctor(&sandbox, &credentials, &[]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    for id in BASE {
        assert_eq!(out.status(id), "pass", "{id}:\n{}", out.stdout);
    }
    let client = out.line("client-credentials")["detail"].as_str().unwrap();
    assert!(
        client.contains("certificate accepted") && client.contains("2125-01-01"),
        "{client}"
    );
    let expiry = out.line("credential-expiry")["detail"].as_str().unwrap();
    assert!(
        expiry.contains("certificate in use expires on 2125-01-01"),
        "{expiry}"
    );
}

fn with_secret_ending_in(days: i64) -> Fixture {
    let mut fixture = Fixture::builtin();
    fixture.apps[0]
        .secret_ends_in_days
        .insert(defaults::PARTNER_CLIENT_SECRET.into(), days);
    fixture
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_near_its_end_warns_and_one_past_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());

    let sandbox = sandbox_with(with_secret_ending_in(10)).await;
    let out = doctor(&sandbox, &credentials, &[]);
    let line = out.line("credential-expiry");
    assert_eq!(line["status"], "warn", "{}", out.stdout);
    assert!(
        line["detail"].as_str().unwrap().contains("in 9 days")
            || line["detail"].as_str().unwrap().contains("in 10 days"),
        "{line}"
    );
    assert!(line["fix"].as_str().unwrap().contains("add a new secret"));
    assert_eq!(
        out.code, 0,
        "a warning does not fail the run:\n{}",
        out.stdout
    );
    assert_eq!(out.json["passed"], true);

    // Past its end Entra refuses the secret itself (AADSTS7000222), and so does the sandbox:
    // the first check fails, naming the cure.
    let sandbox = sandbox_with(with_secret_ending_in(-3)).await;
    let out = doctor(&sandbox, &credentials, &[]);
    out.assert_fails(
        "client-credentials",
        "7000222",
        "create a new client secret",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_that_does_not_redeem_fails_and_says_sign_in_again() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let out = doctor(
        &sandbox,
        &credentials,
        &["--refresh-token", "a-token-entra-never-issued"],
    );
    out.assert_fails("refresh-token", "does not redeem", "gdap-operator login");
    out.assert_skipped(
        &[
            "credential-expiry",
            "user-mfa",
            "delegated-permissions",
            "graph-gdap",
            "partner-center",
        ],
        "refresh-token",
    );
    assert_eq!(out.status("client-credentials"), "pass");

    // Expired from inactivity (AADSTS700082).
    control(
        &sandbox,
        reqwest::Method::POST,
        "refresh-tokens/age",
        json!({"days": 91}),
    )
    .await;
    let out = doctor(&sandbox, &credentials, &[]);
    out.assert_fails(
        "refresh-token",
        "expired from inactivity",
        "gdap-operator login",
    );
    assert!(
        out.line("refresh-token")["detail"]
            .as_str()
            .unwrap()
            .contains("AADSTS700082")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_without_mfa_fails_user_mfa_and_partner_center() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let out = doctor(
        &sandbox,
        &credentials,
        &["--refresh-token", defaults::PARTNER_NO_MFA_REFRESH_TOKEN],
    );
    out.assert_fails("user-mfa", "used no second factor", "gdap-operator login");
    out.assert_fails("partner-center", "MfaRequired", "complete MFA");
    assert_eq!(out.status("graph-gdap"), "pass", "Graph accepts it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_outside_admin_agents_fails_graph_gdap_and_partner_center() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let out = doctor(
        &sandbox,
        &credentials,
        &["--refresh-token", defaults::PARTNER_SUPPORT_REFRESH_TOKEN],
    );
    out.assert_fails("graph-gdap", "not in AdminAgents", "Admin agent role");
    out.assert_fails("partner-center", "not in AdminAgents", "Admin agent role");
    assert!(
        out.line("graph-gdap")["detail"]
            .as_str()
            .unwrap()
            .contains(defaults::PARTNER_SUPPORT_UPN)
    );
    assert_eq!(out.status("user-mfa"), "pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_delegated_permissions_are_named_with_where_to_add_them() {
    let mut fixture = Fixture::builtin();
    for p in &mut fixture.apps[0].delegated_permissions {
        p.permissions
            .retain(|s| s != "AppRoleAssignment.ReadWrite.All");
    }
    let sandbox = sandbox_with(fixture).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let out = doctor(&sandbox, &credentials, &[]);
    out.assert_fails(
        "delegated-permissions",
        "Microsoft Graph AppRoleAssignment.ReadWrite.All",
        "API permissions",
    );
    let detail = out.line("delegated-permissions")["detail"]
        .as_str()
        .unwrap();
    assert!(
        !detail.contains("DelegatedAdminRelationship"),
        "only the missing one: {detail}"
    );

    // Manifests without an AppConsent do not need it: a warning.
    let only_gdap = dir.path().join("gdap");
    std::fs::create_dir_all(&only_gdap).unwrap();
    std::fs::copy(
        support::root().join("examples/gdaprelationship.yaml"),
        only_gdap.join("r.yaml"),
    )
    .unwrap();
    let out = doctor(&sandbox, &credentials, &[only_gdap.to_str().unwrap()]);
    assert_eq!(
        out.status("delegated-permissions"),
        "warn",
        "{}",
        out.stdout
    );
    assert_eq!(out.code, 0, "{}", out.stdout);
}

fn example_with(name: &str, edit: impl FnOnce(&mut Value)) -> String {
    let text = std::fs::read_to_string(support::root().join("examples").join(name)).unwrap();
    let mut value: Value = serde_yaml::from_str(&text).unwrap();
    edit(&mut value);
    serde_yaml::to_string(&value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_naming_an_unknown_group_fails_security_groups() {
    const UNKNOWN: &str = "0b7e4c44-5d7f-4a43-9a5e-6f1d3f3f0c11";
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let manifest = write(
        dir.path(),
        "relationship.yaml",
        &example_with("gdaprelationship.yaml", |v| {
            v["spec"]["accessAssignments"][1]["securityGroupId"] = json!(UNKNOWN);
        }),
    );
    let out = doctor(&sandbox, &credentials, &[manifest.to_str().unwrap()]);
    out.assert_fails(
        "security-groups",
        &format!("security group {UNKNOWN} named by GdapRelationship contoso-support"),
        "create the group in the partner tenant",
    );
    assert_eq!(
        out.lines("security-groups").len(),
        1,
        "only the missing group"
    );
    assert_eq!(out.status("customers"), "pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_that_is_not_the_partners_fails_for_a_consent_and_warns_for_gdap() {
    const STRANGER: &str = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
    const OTHER: &str = "1f0e9d8c-7b6a-4958-8a7b-6c5d4e3f2a1b";
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let manifests = dir.path().join("m");
    std::fs::create_dir_all(&manifests).unwrap();
    write(
        &manifests,
        "consent.yaml",
        &example_with("appconsent.yaml", |v| {
            v["spec"]["customer"]["tenantId"] = json!(STRANGER);
        }),
    );
    let gdap_only = example_with("gdaprelationship.yaml", |v| {
        v["spec"]["customer"]["tenantId"] = json!(OTHER);
    });
    write(&manifests, "relationship.yaml", &gdap_only);
    let out = doctor(&sandbox, &credentials, &[manifests.to_str().unwrap()]);
    out.assert_fails(
        "customers",
        &format!("{STRANGER} named by AppConsent contoso-reporting-app"),
        "reseller relationship",
    );
    let lines = out.lines("customers");
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let warn = lines
        .iter()
        .find(|l| l["status"] == "warn")
        .expect("a warning");
    let detail = warn["detail"].as_str().unwrap();
    assert!(
        detail.contains(OTHER)
            && detail.contains("not a customer of this partner in Partner Center"),
        "{detail}"
    );

    // The GDAP-only one alone is a warning: the run passes.
    let alone = write(dir.path(), "alone.yaml", &gdap_only);
    let out = doctor(&sandbox, &credentials, &[alone.to_str().unwrap()]);
    assert_eq!(out.status("customers"), "warn", "{}", out.stdout);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_manifest_fails_with_validates_message() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let manifest = write(
        dir.path(),
        "bad.yaml",
        &example_with("gdaprelationship.yaml", |v| {
            v["spec"]["duration"] = json!("P900D");
        }),
    );
    let out = doctor(&sandbox, &credentials, &[manifest.to_str().unwrap()]);
    out.assert_fails("manifests", "spec.duration", "gdap-operator validate");
    out.assert_skipped(&["security-groups", "customers"], "manifests");
    let validate = run(&sandbox, &["validate", manifest.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&validate.stdout).to_string()
        + &String::from_utf8_lossy(&validate.stderr);
    let detail = out.line("manifests")["detail"].as_str().unwrap();
    assert!(
        said.contains(detail),
        "validate says {said:?}, doctor {detail:?}"
    );
}

/// A delegated Graph token of the partner tenant, from the sandbox's token endpoint.
async fn graph_token(sandbox: &Sandbox, refresh_token: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            sandbox.base_url(),
            defaults::PARTNER_TENANT_ID
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", defaults::PARTNER_CLIENT_ID),
            ("client_secret", defaults::PARTNER_CLIENT_SECRET),
            ("refresh_token", refresh_token),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn graph_get(sandbox: &Sandbox, token: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/v1.0/{path}", sandbox.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_serves_partner_groups_and_the_apps_credentials_as_graph_does() {
    let mut fixture = Fixture::builtin();
    fixture.apps[0]
        .secret_ends_in_days
        .insert(defaults::PARTNER_CLIENT_SECRET.into(), 12);
    let sandbox = sandbox_with(fixture).await;
    let token = graph_token(&sandbox, defaults::PARTNER_REFRESH_TOKEN).await;

    let (status, group) = graph_get(
        &sandbox,
        &token,
        &format!("groups/{}", defaults::HELPDESK_GROUP_ID),
    )
    .await;
    assert_eq!(status, 200, "{group}");
    assert_eq!(group["displayName"], "Helpdesk");
    assert_eq!(group["securityEnabled"], true);
    let (status, missing) = graph_get(
        &sandbox,
        &token,
        "groups/0b7e4c44-5d7f-4a43-9a5e-6f1d3f3f0c11",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "Request_ResourceNotFound");
    let (status, listed) = graph_get(
        &sandbox,
        &token,
        "groups?$filter=displayName eq 'App Admins'",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["value"].as_array().unwrap().len(), 1);
    assert_eq!(listed["value"][0]["id"], defaults::APP_ADMINS_GROUP_ID);

    let (status, app) = graph_get(
        &sandbox,
        &token,
        &format!(
            "applications(appId='{}')?$select=passwordCredentials,keyCredentials",
            defaults::PARTNER_CLIENT_ID
        ),
    )
    .await;
    assert_eq!(status, 200, "{app}");
    let secret = &app["passwordCredentials"][0];
    assert_eq!(secret["hint"], "san");
    assert!(secret["secretText"].is_null());
    let end: chrono::DateTime<chrono::Utc> =
        secret["endDateTime"].as_str().unwrap().parse().unwrap();
    let days = (end - chrono::Utc::now()).num_days();
    assert!((11..=12).contains(&days), "ends in {days} days");
    let certificate = &app["keyCredentials"][0];
    assert_eq!(certificate["type"], "AsymmetricX509Cert");
    assert!(
        certificate["endDateTime"]
            .as_str()
            .unwrap()
            .starts_with("2125-01-01")
    );
    assert!(!app.to_string().contains(defaults::PARTNER_CLIENT_SECRET));
    let (status, filtered) = graph_get(
        &sandbox,
        &token,
        &format!(
            "applications?$filter=appId eq '{}'",
            defaults::PARTNER_CLIENT_ID
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(filtered["value"][0]["appId"], defaults::PARTNER_CLIENT_ID);
    let (status, unknown) = graph_get(
        &sandbox,
        &token,
        "applications(appId='0b7e4c44-5d7f-4a43-9a5e-6f1d3f3f0c11')",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(unknown["error"]["code"], "Request_ResourceNotFound");

    // A token without a scope that reads groups is refused as Graph refuses it.
    let mut fixture = Fixture::builtin();
    fixture.apps[0].delegated_permissions[0].permissions =
        vec!["DelegatedAdminRelationship.ReadWrite.All".into()];
    let narrow = sandbox_with(fixture).await;
    let token = graph_token(&narrow, defaults::PARTNER_REFRESH_TOKEN).await;
    let (status, denied) = graph_get(
        &narrow,
        &token,
        &format!("groups/{}", defaults::HELPDESK_GROUP_ID),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(denied["error"]["code"], "Authorization_RequestDenied");
}

#[test]
fn secret_end_dates_must_name_a_secret_of_the_app() {
    let mut fixture = Fixture::builtin();
    fixture.apps[0]
        .secret_ends_in_days
        .insert("not-a-secret-of-the-app".into(), 3);
    let err = fixture.check().unwrap_err().to_string();
    assert!(err.contains("secretEndsInDays"), "{err}");
    assert!(
        !err.contains("not-a-secret-of-the-app"),
        "the value is not echoed: {err}"
    );
}

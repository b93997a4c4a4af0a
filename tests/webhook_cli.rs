//! `gdap-operator webhook status|register|test` against the sandbox, as a user runs them: status
//! with no registration, a register that writes once and then nothing, a foreign registration
//! refused without a write and replaced with --force, and the validation event against a
//! receiver that accepts it and against one that is not there.
#![cfg(feature = "sandbox")]

mod support;
#[path = "webhook_support/mod.rs"]
mod webhook;

use gdap_operator::sandbox::{Consistency, Sandbox, SandboxOptions, defaults};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use support::onboard::{control, credentials_file, requests, run};
use webhook::Receiver;

const OURS: &str = "https://hooks.contoso.com/gdap";
const FOREIGN: &str = "https://other.example.com/hook";

async fn sandbox(retry_base: Duration) -> Sandbox {
    Sandbox::start(SandboxOptions {
        consistency: Consistency::immediate(),
        webhook_retry_base: retry_base,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Runs `webhook ARGS… --credentials FILE`; fails unless it exits `code`. Returns stdout and
/// stderr together, checked to hold no secret.
fn webhook(sandbox: &Sandbox, credentials: &Path, args: &[&str], code: i32) -> String {
    let mut all = vec!["webhook"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--credentials", credentials.to_str().unwrap()]);
    let Output {
        status,
        stdout,
        stderr,
    } = run(sandbox, &all);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    assert_eq!(status.code(), Some(code), "gdap-operator {all:?}:\n{text}");
    for secret in [
        defaults::PARTNER_CLIENT_SECRET,
        defaults::PARTNER_REFRESH_TOKEN,
        "eyJ",
    ] {
        assert!(!text.contains(secret), "a secret was printed:\n{text}");
    }
    text
}

/// The registration writes that reached the sandbox: (POSTs, PUTs).
async fn writes(sandbox: &Sandbox) -> (usize, usize) {
    let log = requests(sandbox).await;
    let count = |method: &str| {
        log.iter()
            .filter(|(m, p)| m == method && p == "/webhooks/v1/registration")
            .count()
    };
    (count("POST"), count("PUT"))
}

fn status_json(sandbox: &Sandbox, credentials: &Path) -> Value {
    let text = webhook(sandbox, credentials, &["status", "-o", "json"], 0);
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_writes_once_and_refuses_a_foreign_registration_without_force() {
    let sandbox = sandbox(Duration::from_secs(10)).await;
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials_file(dir.path());
    let text = webhook(&sandbox, &creds, &["status"], 0);
    assert!(text.contains("No webhook registration"), "{text}");
    assert_eq!(status_json(&sandbox, &creds)["registration"], Value::Null);

    webhook(&sandbox, &creds, &["register", "--url", OURS], 0);
    assert_eq!(writes(&sandbox).await, (1, 0), "exactly one POST");
    let registered = status_json(&sandbox, &creds)["registration"].clone();
    assert_eq!(registered["webhookUrl"], OURS);
    assert_eq!(registered["webhookEvents"].as_array().unwrap().len(), 9);

    let text = webhook(&sandbox, &creds, &["register", "--url", OURS], 0);
    assert!(text.contains("nothing written"), "{text}");
    assert_eq!(writes(&sandbox).await, (1, 0), "no write the second time");
    let text = webhook(&sandbox, &creds, &["status", "--url", OURS], 0);
    assert!(text.contains(&format!("It points at {OURS}")), "{text}");
    assert!(text.contains("Every GDAP event is registered"), "{text}");

    let events = "test-created,granular-admin-relationship-approved";
    webhook(
        &sandbox,
        &creds,
        &["register", "--url", OURS, "--events", events],
        0,
    );
    assert_eq!(writes(&sandbox).await, (1, 1), "other events: one PUT");
    let text = webhook(&sandbox, &creds, &["status", "--url", OURS], 0);
    assert!(
        text.contains("granular-admin-access-assignment-created"),
        "{text}"
    );

    control(
        &sandbox,
        reqwest::Method::PUT,
        "webhooks/registration",
        json!({"webhookUrl": FOREIGN, "webhookEvents": ["test-created"]}),
    )
    .await;
    let text = webhook(&sandbox, &creds, &["register", "--url", OURS], 1);
    assert!(
        text.contains(FOREIGN) && text.contains("test-created"),
        "{text}"
    );
    assert!(text.contains("--force"), "{text}");
    assert_eq!(writes(&sandbox).await, (1, 1), "refused: nothing written");

    let text = webhook(&sandbox, &creds, &["register", "--url", OURS, "--force"], 0);
    assert!(text.contains(FOREIGN) && text.contains(OURS), "{text}");
    assert_eq!(writes(&sandbox).await, (1, 2), "--force: one PUT");
    let registered = status_json(&sandbox, &creds)["registration"].clone();
    assert_eq!(registered["webhookUrl"], OURS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_prints_the_accepted_attempt() {
    let sandbox = sandbox(Duration::from_secs(10)).await;
    let receiver = Receiver::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials_file(dir.path());
    webhook(&sandbox, &creds, &["register", "--url", &receiver.url], 0);
    let text = webhook(&sandbox, &creds, &["test", "--timeout", "60s"], 0);
    assert!(
        text.contains("attempt 1 at ") && text.contains(": OK "),
        "{text}"
    );
    assert!(text.contains("Status: completed"), "{text}");
    assert_eq!(receiver.events("test-created", "").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_against_a_dead_port_fails_listing_every_attempt() {
    let sandbox = sandbox(Duration::from_millis(5)).await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dead = format!("http://127.0.0.1:{port}/hook");
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials_file(dir.path());
    webhook(&sandbox, &creds, &["register", "--url", &dead], 0);
    let text = webhook(&sandbox, &creds, &["test", "--timeout", "60s"], 1);
    assert!(text.contains("Status: failed"), "{text}");
    let attempts: Vec<&str> = text.lines().filter(|l| l.starts_with("attempt ")).collect();
    assert_eq!(attempts.len(), 10, "{text}");
    assert!(
        attempts
            .iter()
            .all(|l| l.contains("no answer") && l.contains("(system error)")),
        "{text}"
    );
}

//! Partner Center webhooks end to end: the real kube-apiserver, the sandbox emitting signed
//! events like Partner Center, and the operator binary receiving them.
//!
//! Between the sandbox and the operator sits a recording relay (in this test): it forwards each
//! delivery unchanged and keeps its headers and body, so the test can replay, tamper with and
//! forge deliveries exactly as an attacker on the network could.
#![cfg(feature = "sandbox")]

mod support;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use gdap_operator::microsoft::models::webhooks::{GDAP_EVENTS, TEST_CREATED};
use gdap_operator::sandbox::{SandboxOptions, defaults};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::operator::{World, condition, free_port};

const MINUTE: Duration = Duration::from_secs(60);
const PATH: &str = "/webhooks/partner-center";

fn standard(name: &str) -> String {
    format!(
        "apiVersion: gdap.io/v1alpha1\nkind: GdapRelationship\nmetadata:\n  name: {name}\nspec:\n  customer:\n    tenantId: {}\n  roles: [Directory Readers, Helpdesk Administrator]\n  duration: P60D\n  autoExtend: false\n  accessAssignments:\n    - securityGroupId: {}\n      roles: [Directory Readers, Helpdesk Administrator]\n",
        defaults::CONTOSO_TENANT_ID,
        defaults::HELPDESK_GROUP_ID
    )
}

/// One delivery the relay passed on.
#[derive(Clone)]
struct Delivery {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Relay {
    to: String,
    seen: Arc<Mutex<Vec<Delivery>>>,
    http: reqwest::Client,
}

impl Relay {
    /// Starts a relay to the operator's receiver at `to`; returns it and its URL.
    async fn start(to: String) -> (Relay, String) {
        let relay = Relay {
            to,
            seen: Arc::default(),
            http: reqwest::Client::new(),
        };
        let app = axum::Router::new()
            .route(PATH, axum::routing::post(forward))
            .with_state(relay.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{PATH}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (relay, url)
    }

    /// Sends a delivery straight to the operator; its answer.
    async fn send(&self, headers: &HeaderMap, body: impl Into<reqwest::Body>) -> StatusCode {
        let mut request = self.http.post(&self.to).body(body);
        for (name, value) in headers {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        match request.send().await {
            Ok(r) => StatusCode::from_u16(r.status().as_u16()).unwrap(),
            Err(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.seen.lock().unwrap().clone()
    }
}

async fn forward(State(relay): State<Relay>, headers: HeaderMap, body: Bytes) -> StatusCode {
    relay.seen.lock().unwrap().push(Delivery {
        headers: headers.clone(),
        body: body.clone(),
    });
    relay.send(&headers, body).await
}

/// The sandbox's webhook CA, written where the operator reads its trust anchors.
async fn trust_anchors(world: &World) -> tempfile::TempPath {
    let url = format!(
        "{}/_sandbox/webhooks/certificate-authority",
        world.sandbox.base_url()
    );
    let pem = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), pem).unwrap();
    file.into_temp_path()
}

/// Registers `url` for the GDAP events, as another tool (or `webhook register`) would.
async fn register(world: &World, url: &str) {
    let events = [&GDAP_EVENTS[..], &[TEST_CREATED]].concat();
    let status = world
        .put_control(
            "webhooks/registration",
            json!({"webhookUrl": url, "webhookEvents": events}),
        )
        .await;
    assert!(status.is_success(), "registration: {status}");
}

/// The operator's flags for a receiver on `port` trusting `anchors`.
fn receiver_args(world: &World, port: u16, anchors: &std::path::Path) -> Vec<String> {
    vec![
        "--webhook-listen".into(),
        format!("127.0.0.1:{port}"),
        "--webhook-trust-anchors".into(),
        anchors.display().to_string(),
        "--webhook-certificate-url-prefix".into(),
        format!("{}/cert/", world.sandbox.base_url()),
    ]
}

fn slow_polling(world: &mut World, poll: &str) {
    world.timing_args = [
        "--poll-interval",
        poll,
        "--resync-interval",
        "10m",
        "--termination-timeout",
        "30s",
    ]
    .map(String::from)
    .to_vec();
}

/// The operator's reconcile count once it has stayed the same for two seconds (eight looks): the
/// reconciles under way have ended, and polling (minutes here) starts none.
async fn settled_reconciles(world: &World) -> f64 {
    let seen = std::cell::Cell::new((world.reconciles_all().await, 0u32));
    support::operator::poll_until("the reconciles under way to end", MINUTE, || async {
        let now = world.reconciles_all().await;
        let (last, unchanged) = seen.get();
        let unchanged = if now == last { unchanged + 1 } else { 0 };
        seen.set((now, unchanged));
        (unchanged >= 8).then_some(now)
    })
    .await
}

/// A counter of the operator's metrics (summed over its label sets).
async fn counter(world: &World, prefix: &str) -> f64 {
    support::metrics::sum(&world.metrics().await, prefix)
}

/// Creates `name` with fast polling and waits until it awaits approval; its id.
async fn create_pending(world: &World, name: &str) -> String {
    world.apply(&standard(name));
    world
        .wait_for(name, "approvalPending with a link", MINUTE, |o| {
            let s = o.status.as_ref()?;
            (s.state.as_deref() == Some("approvalPending") && s.approval_url.is_some())
                .then(|| s.relationship_id.clone())?
        })
        .await
}

async fn approve(world: &World, id: &str) {
    let status = world
        .control(&format!("relationships/{id}/approve"), json!({}))
        .await;
    assert!(status.is_success(), "approve returned {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_reaches_ready_in_seconds_with_polling_at_minutes_and_bad_events_change_nothing()
 {
    let mut world = World::start("e2e-hook", SandboxOptions::default()).await;
    let id = create_pending(&world, "contoso").await;
    world.stop_operator().await;

    let anchors = trust_anchors(&world).await;
    let port = free_port();
    let (relay, url) = Relay::start(format!("http://127.0.0.1:{port}{PATH}")).await;
    register(&world, &url).await;
    slow_polling(&mut world, "5m");
    world.operator_args = receiver_args(&world, port, &anchors);
    world.start_operator();
    support::operator::poll_until(
        "the restarted operator looked at contoso once",
        MINUTE,
        || async {
            let text = world.metrics_text().await?;
            let kind = "gdap_reconciles_total{kind=\"GdapRelationship\"";
            (support::metrics::sum(&text, kind) >= 1.0).then_some(())
        },
    )
    .await;

    let approved_at = Instant::now();
    approve(&world, &id).await;
    world
        .wait_for(
            "contoso",
            "Ready through webhook events",
            Duration::from_secs(45),
            |o| (condition(o, "Ready")?.0 == "True").then_some(()),
        )
        .await;
    let took = approved_at.elapsed();
    assert!(
        took < Duration::from_secs(45),
        "Ready {took:?} after the approval"
    );
    eprintln!("approval → Ready with webhooks, polling every 5 minutes: {took:?}");
    let metrics = world.metrics().await;
    assert!(
        support::metrics::sum(
            &metrics,
            "gdap_webhook_events_verified_total{event=\"granular-admin-relationship-approved\""
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        support::metrics::sum(
            &metrics,
            "gdap_webhook_reconciles_triggered_total{kind=\"GdapRelationship\""
        ) >= 1.0
    );

    // Bad deliveries: each refused, none triggers a reconcile or a call to Microsoft.
    let genuine = relay
        .deliveries()
        .into_iter()
        .find(|d| {
            String::from_utf8_lossy(&d.body).contains("granular-admin-relationship-activated")
        })
        .expect("the activation event was delivered");
    // Ready is written by the reconcile one genuine event triggered; the next event's may still
    // run. Counted from once they are over.
    let reconciles = settled_reconciles(&world).await;
    let calls = world.requests().await.len();
    let triggered = counter(&world, "gdap_webhook_reconciles_triggered_total").await;

    let replay = relay.send(&genuine.headers, genuine.body.clone()).await;
    assert_eq!(
        replay,
        StatusCode::OK,
        "a replay is answered like a redelivery"
    );
    let tampered_body = String::from_utf8_lossy(&genuine.body).replace("activated", "approved");
    let tampered = relay.send(&genuine.headers, tampered_body).await;
    assert_eq!(tampered, StatusCode::UNAUTHORIZED);
    let mut forged_headers = genuine.headers.clone();
    let forged_signature = format!("Signature {}", base64_of(&[7u8; 256]));
    forged_headers.insert("authorization", forged_signature.parse().unwrap());
    assert_eq!(
        relay.send(&forged_headers, genuine.body.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    let mut elsewhere = genuine.headers.clone();
    elsewhere.insert(
        "x-ms-certificate-url",
        "http://127.0.0.1:9/cert/forger.cer".parse().unwrap(),
    );
    assert_eq!(
        relay.send(&elsewhere, genuine.body.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    let mut unsigned = genuine.headers.clone();
    unsigned.remove("authorization");
    unsigned.remove("x-ms-signature");
    assert_eq!(
        relay.send(&unsigned, genuine.body.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    let oversized = relay.send(&genuine.headers, vec![b' '; 100_000]).await;
    assert_eq!(oversized, StatusCode::PAYLOAD_TOO_LARGE);

    let metrics = world.metrics().await;
    for (reason, n) in [
        ("signature", 2.0),
        ("certificate_url", 1.0),
        ("unsigned", 1.0),
        ("oversized", 1.0),
    ] {
        let got = support::metrics::sum(
            &metrics,
            &format!("gdap_webhook_events_rejected_total{{reason=\"{reason}\""),
        );
        assert_eq!(got, n, "rejected {reason}:\n{metrics}");
    }
    assert!(support::metrics::sum(&metrics, "gdap_webhook_events_deduplicated_total") >= 1.0);
    assert_eq!(
        counter(&world, "gdap_webhook_reconciles_triggered_total").await,
        triggered
    );
    assert_eq!(
        world.reconciles_all().await,
        reconciles,
        "a bad delivery caused a reconcile"
    );
    assert_eq!(
        world.requests().await.len(),
        calls,
        "a bad delivery caused a call to Microsoft"
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_lost_while_the_receiver_is_down_are_caught_up_by_polling() {
    let options = SandboxOptions {
        webhook_retry_base: Duration::from_millis(20),
        ..SandboxOptions::default()
    };
    let mut world = World::prepare("e2e-hook-down", options).await;
    let anchors = trust_anchors(&world).await;
    let down = free_port();
    register(&world, &format!("http://127.0.0.1:{down}{PATH}")).await;
    slow_polling(&mut world, "3s");
    world.operator_args = receiver_args(&world, free_port(), &anchors);
    world.start_operator();
    let id = create_pending(&world, "contoso").await;
    approve(&world, &id).await;
    world
        .wait_for("contoso", "Ready by polling", MINUTE, |o| {
            (condition(o, "Ready")?.0 == "True").then_some(())
        })
        .await;
    let lost =
        support::operator::poll_until("the approval's deliveries given up", MINUTE, || async {
            let deliveries = world.http_get("webhooks/deliveries").await;
            let approved: Vec<Value> = deliveries
                .as_array()?
                .iter()
                .filter(|d| d["eventName"] == "granular-admin-relationship-approved")
                .filter(|d| d["resourceUri"].as_str().is_some_and(|u| u.ends_with(&id)))
                .cloned()
                .collect();
            approved
                .first()
                .filter(|d| d["state"] == "offline")
                .cloned()
        })
        .await;
    assert_eq!(lost["attempts"].as_array().unwrap().len(), 10, "{lost}");
    assert_eq!(
        counter(&world, "gdap_webhook_events_received_total").await,
        0.0
    );
}

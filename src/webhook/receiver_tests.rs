use super::*;
use crate::webhook::certificates::{CertificatePolicy, MICROSOFT_ORGANIZATION};
use crate::webhook::test_pki::{Pki, pki, sign};
use axum::http::Request;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tower::ServiceExt as _;

#[derive(Default)]
struct Recorder {
    standing_by: AtomicBool,
    calls: AtomicUsize,
    ids: Mutex<Vec<String>>,
}

impl Dispatch for Recorder {
    fn acting(&self) -> bool {
        !self.standing_by.load(Ordering::SeqCst)
    }
    fn relationship_changed(&self, id: &str) -> Result<Triggered, NotActing> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.ids.lock().unwrap().push(id.to_string());
        Ok(vec![("GdapRelationship", 1)])
    }
}

struct Setup {
    router: Router,
    dispatch: Arc<Recorder>,
    metrics: WebhookMetrics,
    cert_url: String,
}

/// Serves `pki`'s leaf at `/cert/signing.cer` and builds a receiver trusting `anchor_pem`.
async fn setup(pki: &Pki, anchor_pem: &str) -> Setup {
    let der = pki.leaf.to_vec();
    let app = Router::new().route(
        "/cert/signing.cer",
        axum::routing::get(move || async move { der }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let prefix = format!("http://{addr}/cert/");
    let policy = CertificatePolicy::new(
        std::slice::from_ref(&prefix),
        anchor_pem,
        MICROSOFT_ORGANIZATION,
    )
    .unwrap();
    let dispatch = Arc::new(Recorder::default());
    let metrics = WebhookMetrics::default();
    let receiver = Receiver::new(
        CertificateStore::new(policy).unwrap(),
        Limits {
            max_body: 4096,
            max_age: Duration::hours(1),
        },
        metrics.clone(),
        dispatch.clone(),
    );
    Setup {
        router: router(Arc::new(receiver), "/webhooks/partner-center"),
        dispatch,
        metrics,
        cert_url: format!("{prefix}signing.cer"),
    }
}

fn event_body(name: &str, changed: DateTime<Utc>) -> String {
    serde_json::json!({
        "EventName": name,
        "ResourceUri": "https://api.partnercenter.microsoft.com/granularAdminRelationships/rel-1",
        "ResourceName": "GranularAdminRelationship",
        "AuditUri": null,
        "ResourceChangeUtcDate": changed.to_rfc3339(),
    })
    .to_string()
}

fn signed(body: &str, signature: &[u8], cert_url: &str) -> Request<Body> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(signature);
    Request::post("/webhooks/partner-center")
        .header("content-type", "application/json")
        .header("authorization", format!("Signature {encoded}"))
        .header(CERTIFICATE_URL, cert_url)
        .header(SIGNATURE_ALGORITHM, "rsa-sha256")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn send(s: &Setup, request: Request<Body>) -> StatusCode {
    s.router.clone().oneshot(request).await.unwrap().status()
}

fn rejected(s: &Setup, reason: &str) -> u64 {
    s.metrics
        .rejected
        .get_or_create(&crate::webhook::metrics::ReasonLabels {
            reason: reason.into(),
        })
        .get()
}

const APPROVED: &str = "granular-admin-relationship-approved";

#[tokio::test]
async fn a_signed_event_triggers_its_relationship_once_and_a_redelivery_nothing() {
    let pki = pki(MICROSOFT_ORGANIZATION, -1, 1);
    let s = setup(&pki, &pki.ca_pem).await;
    let body = event_body(APPROVED, Utc::now());
    let sig = sign(body.as_bytes());
    assert_eq!(
        send(&s, signed(&body, &sig, &s.cert_url)).await,
        StatusCode::OK
    );
    assert_eq!(
        send(&s, signed(&body, &sig, &s.cert_url)).await,
        StatusCode::OK
    );
    assert_eq!(s.dispatch.calls.load(Ordering::SeqCst), 1);
    assert_eq!(*s.dispatch.ids.lock().unwrap(), vec!["rel-1".to_string()]);
    assert_eq!(s.metrics.deduplicated.get(), 1);
    let verified = s.metrics.verified.get_or_create(&EventLabels {
        event: APPROVED.into(),
    });
    assert_eq!(verified.get(), 1);
}

#[tokio::test]
async fn forged_tampered_unsigned_oversized_and_stale_events_trigger_nothing() {
    let pki = pki(MICROSOFT_ORGANIZATION, -1, 1);
    let s = setup(&pki, &pki.ca_pem).await;
    let body = event_body(APPROVED, Utc::now());
    let sig = sign(body.as_bytes());
    let tampered = body.replace("rel-1", "rel-2");
    assert_eq!(
        send(&s, signed(&tampered, &sig, &s.cert_url)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(rejected(&s, "signature"), 1);
    let mut unsigned = signed(&body, &sig, &s.cert_url);
    unsigned.headers_mut().remove("authorization");
    assert_eq!(send(&s, unsigned).await, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected(&s, "unsigned"), 1);
    let big = format!("{}{}", body, " ".repeat(5000));
    assert_eq!(
        send(&s, signed(&big, &sign(big.as_bytes()), &s.cert_url)).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(rejected(&s, "oversized"), 1);
    let old = event_body(APPROVED, Utc::now() - Duration::hours(2));
    assert_eq!(
        send(&s, signed(&old, &sign(old.as_bytes()), &s.cert_url)).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(rejected(&s, "stale"), 1);
    let elsewhere = "https://evil.example/cert/signing.cer";
    assert_eq!(
        send(&s, signed(&body, &sig, elsewhere)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(rejected(&s, "certificate_url"), 1);
    assert_eq!(
        s.dispatch.calls.load(Ordering::SeqCst),
        0,
        "nothing was triggered"
    );
    assert_eq!(
        send(&s, signed(&body, &sig, &s.cert_url)).await,
        StatusCode::OK,
        "the genuine one still acts"
    );
    assert_eq!(s.dispatch.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_certificate_from_another_anchor_is_refused() {
    let genuine = pki(MICROSOFT_ORGANIZATION, -1, 1);
    let forger = pki(MICROSOFT_ORGANIZATION, -1, 1);
    let s = setup(&forger, &genuine.ca_pem).await;
    let body = event_body(APPROVED, Utc::now());
    let status = send(&s, signed(&body, &sign(body.as_bytes()), &s.cert_url)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected(&s, "certificate_untrusted"), 1);
    assert_eq!(s.dispatch.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_standby_answers_503_and_the_redelivery_acts_once_it_leads() {
    let pki = pki(MICROSOFT_ORGANIZATION, -1, 1);
    let s = setup(&pki, &pki.ca_pem).await;
    s.dispatch.standing_by.store(true, Ordering::SeqCst);
    let body = event_body(APPROVED, Utc::now());
    let sig = sign(body.as_bytes());
    assert_eq!(
        send(&s, signed(&body, &sig, &s.cert_url)).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    s.dispatch.standing_by.store(false, Ordering::SeqCst);
    assert_eq!(
        send(&s, signed(&body, &sig, &s.cert_url)).await,
        StatusCode::OK
    );
    assert_eq!(s.dispatch.calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.metrics.deduplicated.get(), 0);
}

#[tokio::test]
async fn the_signature_may_come_in_x_ms_signature_and_the_test_event_triggers_nothing() {
    let pki = pki(MICROSOFT_ORGANIZATION, -1, 1);
    let s = setup(&pki, &pki.ca_pem).await;
    let body = event_body(TEST_EVENT, Utc::now());
    let mut request = signed(&body, &sign(body.as_bytes()), &s.cert_url);
    let value = request.headers_mut().remove("authorization").unwrap();
    request.headers_mut().insert(MS_SIGNATURE, value);
    assert_eq!(send(&s, request).await, StatusCode::OK);
    assert_eq!(s.dispatch.calls.load(Ordering::SeqCst), 0);
    let verified = s.metrics.verified.get_or_create(&EventLabels {
        event: TEST_EVENT.into(),
    });
    assert_eq!(verified.get(), 1);
}

#[test]
fn every_rejection_reason_is_a_known_series() {
    use crate::webhook::metrics::REJECTION_REASONS;
    let all = [
        Rejection::Oversized,
        Rejection::Unsigned,
        Rejection::Malformed(String::new()),
        Rejection::CertificateUrl(String::new()),
        Rejection::CertificateUnavailable(String::new()),
        Rejection::CertificateUntrusted(String::new()),
        Rejection::Signature,
        Rejection::Stale(String::new()),
        Rejection::NotLeading,
    ];
    for rejection in all {
        assert!(
            REJECTION_REASONS.contains(&rejection.reason()),
            "{rejection:?}"
        );
    }
}

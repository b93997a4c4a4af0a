//! Partner Center webhooks in the sandbox: the registration API and its refusals, GDAP events
//! signed by a certificate that chains to the sandbox's webhook CA, events held back until
//! readers see the change, ten attempts then the offline queue, the validation event, and
//! events the registration does not name.
#![cfg(feature = "sandbox")]

#[path = "sandbox_support/mod.rs"]
mod support;
#[path = "webhook_support/mod.rs"]
mod webhook;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gdap_operator::sandbox::defaults as d;
use gdap_operator::sandbox::{Consistency, Delay, ReadLag, SandboxOptions};
use ring::signature::{ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{Env, GLOBAL_ADMIN, PC, start, start_with};
use webhook::{Received, Receiver, poll_json};

const REGISTRATION: &str = "/webhooks/v1/registration";
const APPROVED: &str = "granular-admin-relationship-approved";
const ACTIVATED: &str = "granular-admin-relationship-activated";
const TERMINATED: &str = "granular-admin-relationship-terminated";
const ASSIGNMENT_CREATED: &str = "granular-admin-access-assignment-created";
const ASSIGNMENT_ACTIVATED: &str = "granular-admin-access-assignment-activated";
const GDAP_EVENTS: [&str; 8] = [
    APPROVED,
    ACTIVATED,
    TERMINATED,
    "granular-admin-relationship-expired",
    ASSIGNMENT_CREATED,
    ASSIGNMENT_ACTIVATED,
    "granular-admin-access-assignment-updated",
    "granular-admin-access-assignment-deleted",
];

async fn pc(env: &Env) -> String {
    env.user_token(d::PARTNER_TENANT_ID, PC).await
}

/// Sets the registration through the control API.
async fn register(env: &Env, url: &str, events: &[&str]) {
    let (s, b) = env
        .control(
            "PUT",
            "/_sandbox/webhooks/registration",
            json!({"webhookUrl": url, "webhookEvents": events}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

async fn deliveries(env: &Env) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/_sandbox/webhooks/deliveries", env.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array().unwrap().clone()
}

/// Checks an event's signature with the certificate its header names, and that the certificate
/// was issued by the sandbox's webhook CA.
async fn assert_signed(env: &Env, event: &Received) {
    let cert_url = event.header("x-ms-certificate-url").unwrap();
    assert_eq!(
        cert_url,
        format!(
            "{}/cert/pcnotifications-dispatch.microsoft.com.cer",
            env.base
        )
    );
    assert_eq!(
        event.header("x-ms-signature-algorithm").unwrap(),
        "rsa-sha256"
    );
    assert_eq!(event.header("content-type").unwrap(), "application/json");
    let der = reqwest::get(&cert_url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(
        leaf.subject()
            .to_string()
            .contains("CN=pcnotifications-dispatch.microsoft.com")
    );
    let ca_pem = reqwest::get(format!(
        "{}/_sandbox/webhooks/certificate-authority",
        env.base
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).unwrap();
    let ca = pem.parse_x509().unwrap();
    assert_eq!(leaf.issuer(), ca.subject());
    UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_ASN1,
        ca.public_key().subject_public_key.data.to_vec(),
    )
    .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
    .expect("the certificate is signed by the CA");
    let header = event
        .header("authorization")
        .or_else(|| event.header("x-ms-signature"))
        .unwrap();
    let signature = STANDARD
        .decode(header.strip_prefix("Signature ").unwrap())
        .unwrap();
    let key = UnparsedPublicKey::new(
        &RSA_PKCS1_2048_8192_SHA256,
        leaf.public_key().subject_public_key.data.to_vec(),
    );
    key.verify(&event.body, &signature)
        .expect("the signature verifies over the exact body");
    let mut tampered = event.body.to_vec();
    tampered.push(b' ');
    assert!(key.verify(&tampered, &signature).is_err());
}

fn assert_date(text: &str, offset: &str) {
    let (date, fraction) = text.split_once('.').unwrap();
    assert_eq!(date.len(), 19, "{text}");
    assert_eq!(fraction, format!("{}{offset}", &fraction[..7]), "{text}");
    assert!(fraction[..7].chars().all(|c| c.is_ascii_digit()), "{text}");
}

#[tokio::test]
async fn registration_is_crud_with_partner_centers_refusals() {
    let env = start().await;
    let token = pc(&env).await;
    let (s, b) = env.get(REGISTRATION, "").await;
    assert_eq!(s, 401, "{b}");
    let (s, b) = env.get(REGISTRATION, &token).await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(b["source"], "PartnerFD");
    assert_eq!(b["code"], "NotFound");
    let (s, events) = env.get(&format!("{REGISTRATION}/events"), &token).await;
    assert_eq!(s, 200);
    for e in GDAP_EVENTS.iter().chain(&["test-created"]) {
        assert!(events.as_array().unwrap().contains(&json!(e)), "{e}");
    }
    let post = |body: Value| {
        let (env, token) = (&env, &token);
        async move { env.call("POST", REGISTRATION, token, Some(body), &[]).await }
    };
    let (s, _, b) = post(json!({"WebhookUrl": "https://h.contoso.com/x", "WebhookEvents": ["test-created", "no-such-event"]})).await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["description"]
            .as_str()
            .unwrap()
            .contains("'no-such-event'")
    );
    let (s, _, b) =
        post(json!({"WebhookUrl": "http://h.contoso.com/x", "WebhookEvents": ["test-created"]}))
            .await;
    assert_eq!(s, 400, "plain http off loopback: {b}");
    let (s, _, b) = env
        .call(
            "PUT",
            REGISTRATION,
            &token,
            Some(
                json!({"WebhookUrl": "https://h.contoso.com/x", "WebhookEvents": ["test-created"]}),
            ),
            &[],
        )
        .await;
    assert_eq!(s, 404, "PUT with none: {b}");

    let (s, _, created) = post(json!({"WebhookUrl": "https://h.contoso.com/x", "WebhookEvents": ["test-created", APPROVED]})).await;
    assert_eq!(s, 200, "{created}");
    assert!(created["SubscriberId"].as_str().unwrap().len() == 36);
    assert_eq!(created["WebhookUrl"], "https://h.contoso.com/x");
    let (s, _, b) =
        post(json!({"WebhookUrl": "https://h.contoso.com/y", "WebhookEvents": ["test-created"]}))
            .await;
    assert_eq!(s, 409, "one registration per partner: {b}");
    let (s, _, updated) = env
        .call(
            "PUT",
            REGISTRATION,
            &token,
            Some(
                json!({"WebhookUrl": "http://127.0.0.1:1/hook", "WebhookEvents": ["test-created"]}),
            ),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["SubscriberId"], created["SubscriberId"]);
    let (s, read) = env.get(REGISTRATION, &token).await;
    assert_eq!((s, &read), (200, &updated));

    for _ in 0..2 {
        let (s, _, b) = env
            .call(
                "POST",
                &format!("{REGISTRATION}/validationEvents"),
                &token,
                None,
                &[],
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    let (s, headers, b) = env
        .call(
            "POST",
            &format!("{REGISTRATION}/validationEvents"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(s, 429, "a third validation event within a minute: {b}");
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );

    let (s, _, b) = env.call("DELETE", REGISTRATION, &token, None, &[]).await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(env.get(REGISTRATION, &token).await.0, 404);
    let (s, _, _) = env.call("DELETE", REGISTRATION, &token, None, &[]).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_state_file_keeps_the_registration() {
    let dir = tempfile::tempdir().unwrap();
    let options = || SandboxOptions {
        state_file: Some(dir.path().join("state.json")),
        consistency: Consistency::immediate(),
        ..Default::default()
    };
    let env = start_with(options()).await;
    register(&env, "https://h.contoso.com/x", &["test-created"]).await;
    env.sandbox.shutdown().await;
    let env = start_with(options()).await;
    let (s, b) = env.get(REGISTRATION, &pc(&env).await).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["WebhookUrl"], "https://h.contoso.com/x");
}

#[tokio::test]
async fn approval_and_assignment_send_signed_events_in_order() {
    let env = start().await;
    let receiver = Receiver::start(200).await;
    register(&env, &receiver.url, &GDAP_EVENTS).await;
    let id = env
        .active_relationship(
            "hooks",
            d::FABRIKAM_TENANT_ID,
            &[GLOBAL_ADMIN],
            &[d::HELPDESK_GROUP_ID],
        )
        .await;
    let tail = format!("/granularAdminRelationships/{id}");
    let approved = receiver.wait_event(APPROVED, &tail).await;
    let activated = receiver.wait_event(ACTIVATED, &tail).await;
    let created = receiver.wait_event(ASSIGNMENT_CREATED, "").await;
    let assignment_active = receiver.wait_event(ASSIGNMENT_ACTIVATED, "").await;
    // Deliveries run concurrently, so arrival order is not fixed; emission order is.
    let order: Vec<String> = deliveries(&env)
        .await
        .iter()
        .map(|d| d["eventName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        order,
        [
            APPROVED,
            ACTIVATED,
            ASSIGNMENT_CREATED,
            ASSIGNMENT_ACTIVATED
        ]
    );

    let body = approved.json();
    assert_eq!(body["ResourceUri"], format!("{}{tail}", env.base));
    assert_eq!(body["ResourceName"], "GranularAdminRelationship");
    assert_eq!(body["AuditUri"], Value::Null);
    assert_date(body["ResourceChangeUtcDate"].as_str().unwrap(), "+00:00");
    let keys: Vec<&str> = std::str::from_utf8(&approved.body)
        .unwrap()
        .match_indices("\":")
        .map(|(i, _)| {
            let text = std::str::from_utf8(&approved.body).unwrap();
            &text[text[..i].rfind('"').unwrap() + 1..i]
        })
        .collect();
    assert_eq!(
        keys,
        [
            "EventName",
            "ResourceUri",
            "ResourceName",
            "AuditUri",
            "ResourceChangeUtcDate"
        ]
    );
    let assignment = created.json();
    assert_eq!(assignment["ResourceName"], "GranularAdminAccessAssignment");
    assert!(
        assignment["ResourceUri"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}{tail}/accessAssignments/", env.base))
    );
    for event in [&approved, &activated, &created, &assignment_active] {
        assert_signed(&env, event).await;
    }
    assert_eq!(receiver.events(APPROVED, &tail).len(), 1, "approved once");
}

#[tokio::test]
async fn an_event_waits_until_readers_see_the_change() {
    let lag = Delay::seconds(2.0, 2.0);
    let env = start_with(SandboxOptions {
        assignment_activation_delay: Duration::from_millis(100),
        consistency: Consistency {
            read_lag: ReadLag {
                gdap: lag,
                ..ReadLag::all(Delay::ZERO)
            },
            ..Consistency::immediate()
        },
        ..Default::default()
    })
    .await;
    let receiver = Receiver::start(200).await;
    register(&env, &receiver.url, &[APPROVED]).await;
    let token = env.admin().await;
    let rel = env
        .create_relationship(
            &token,
            "lagging",
            d::FABRIKAM_TENANT_ID,
            &[GLOBAL_ADMIN],
            "PT0S",
        )
        .await;
    let id = rel["id"].as_str().unwrap();
    let path = format!("/v1.0/tenantRelationships/delegatedAdminRelationships/{id}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.get(&path, &token).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the new relationship never became visible"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let locked = Instant::now();
    let (s, b) = env.lock(&path, &token).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = env
        .control(
            "POST",
            &format!("/_sandbox/relationships/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, seen) = env.get(&path, &token).await;
    assert_eq!(seen["status"], "created", "readers do not see the lock yet");
    let event = receiver
        .wait_event(APPROVED, &format!("/granularAdminRelationships/{id}"))
        .await;
    assert!(
        event.at.duration_since(locked) >= Duration::from_millis(1900),
        "sent {:?} after the lock, before readers could see it",
        event.at.duration_since(locked)
    );
    let (_, seen) = env.get(&path, &token).await;
    assert_ne!(seen["status"], "created");
}

#[tokio::test]
async fn a_failing_receiver_gets_ten_attempts_then_the_event_goes_offline() {
    let env = start_with(SandboxOptions {
        consistency: Consistency::immediate(),
        webhook_retry_base: Duration::from_millis(5),
        ..Default::default()
    })
    .await;
    let receiver = Receiver::start(500).await;
    register(&env, &receiver.url, &["test-created"]).await;
    let token = pc(&env).await;
    let (s, _, b) = env
        .call(
            "POST",
            &format!("{REGISTRATION}/validationEvents"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let correlation = b["correlationId"].as_str().unwrap().to_string();
    let list = poll_json(&format!("{}/_sandbox/webhooks/deliveries", env.base), |v| {
        v[0]["state"] == "offline"
    })
    .await;
    let delivery = &list[0];
    assert_eq!(delivery["eventName"], "test-created");
    assert_eq!(delivery["url"], receiver.url);
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 10);
    assert!(
        attempts
            .iter()
            .all(|a| a["statusCode"] == 500 && a["error"].is_null())
    );
    assert_eq!(receiver.received().len(), 10, "no attempt after the tenth");

    let (s, status) = env
        .get(
            &format!("{REGISTRATION}/validationEvents/{correlation}"),
            &token,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(status["status"], "failed");
    let results = status["results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    assert_eq!(results[0]["responseCode"], "InternalServerError");
    assert_eq!(results[0]["systemError"], false);

    receiver.answer(200);
    let (s, attempt) = env
        .control(
            "POST",
            "/_sandbox/webhooks/redeliver",
            json!({"id": delivery["id"]}),
        )
        .await;
    assert_eq!(s, 200, "{attempt}");
    assert_eq!(attempt["statusCode"], 200);
    let got = receiver.received();
    assert_eq!(got.len(), 11);
    assert_eq!(got[10].body, got[0].body, "the same bytes");
    assert_eq!(
        got[10].header("authorization"),
        got[0].header("authorization")
    );
    let after = deliveries(&env).await;
    assert_eq!(after[0]["attempts"].as_array().unwrap().len(), 11);
    let (s, _) = env
        .control(
            "POST",
            "/_sandbox/webhooks/redeliver",
            json!({"id": "nope"}),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_validation_event_reaches_the_receiver_and_reports_its_results() {
    let env = start().await;
    let receiver = Receiver::start(200).await;
    let token = pc(&env).await;
    let (s, _, b) = env
        .call(
            "POST",
            REGISTRATION,
            &token,
            Some(json!({"WebhookUrl": receiver.url, "WebhookEvents": [APPROVED]})),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = env
        .call(
            "POST",
            &format!("{REGISTRATION}/validationEvents"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(s, 400, "needs test-created: {b}");
    let body = json!({"WebhookUrl": receiver.url, "WebhookEvents": ["test-created"],
                      "SignatureTokenToMsSignatureHeader": true});
    let (s, _, b) = env.call("PUT", REGISTRATION, &token, Some(body), &[]).await;
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = env
        .call(
            "POST",
            &format!("{REGISTRATION}/validationEvents"),
            &token,
            None,
            &[],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let correlation = b["correlationId"].as_str().unwrap().to_string();
    let status_path = format!("{REGISTRATION}/validationEvents/{correlation}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let (s, v) = env.get(&status_path, &token).await;
        assert_eq!(s, 200, "{v}");
        if v["status"] != "pending" {
            break v;
        }
        assert!(Instant::now() < deadline, "still pending: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status["status"], "completed");
    assert_eq!(status["correlationId"], correlation.as_str());
    assert_eq!(status["partnerId"], d::PARTNER_TENANT_ID);
    assert_eq!(status["callbackUrl"], receiver.url);
    let result = &status["results"][0];
    assert_eq!(result["responseCode"], "OK");
    assert_eq!(result["systemError"], false);
    assert_date(result["dateTimeUtc"].as_str().unwrap(), "");

    let event = receiver.wait_event("test-created", &correlation).await;
    assert_eq!(event.json()["ResourceName"], "test");
    assert_eq!(
        event.json()["ResourceUri"],
        format!("{}{status_path}", env.base)
    );
    assert!(
        event.header("authorization").is_none(),
        "signature in x-ms-signature"
    );
    assert!(
        event
            .header("x-ms-signature")
            .unwrap()
            .starts_with("Signature ")
    );
    assert_signed(&env, &event).await;
    let (s, _) = env
        .get(&format!("{REGISTRATION}/validationEvents/unknown"), &token)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn events_the_registration_does_not_name_are_not_sent() {
    let env = start().await;
    let receiver = Receiver::start(200).await;
    register(&env, &receiver.url, &[ACTIVATED, TERMINATED]).await;
    let id = env
        .active_relationship(
            "quiet",
            d::FABRIKAM_TENANT_ID,
            &[GLOBAL_ADMIN],
            &[d::HELPDESK_GROUP_ID],
        )
        .await;
    let tail = format!("/granularAdminRelationships/{id}");
    receiver.wait_event(ACTIVATED, &tail).await;
    let (s, b) = env
        .control(
            "POST",
            &format!("/_sandbox/relationships/{id}/terminate"),
            json!({}),
        )
        .await;
    assert!(s < 300, "{b}");
    // Emission compares views in order: once the termination is sent, the assignment changes
    // before it have been compared too.
    receiver.wait_event(TERMINATED, &tail).await;
    let names: Vec<String> = deliveries(&env)
        .await
        .iter()
        .map(|d| d["eventName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, [ACTIVATED, TERMINATED]);
    assert_eq!(receiver.received().len(), 2);
}

//! Endpoint configuration end to end: the sandbox over HTTPS with its generated CA, trusted via
//! `--ca-file`; and the per-tenant concurrency limit seen from the server side.
#![cfg(feature = "sandbox")]

mod clients_support;

use clients_support::*;
use futures::TryStreamExt;
use gdap_operator::microsoft::{
    EndpointArgs, MicrosoftClients, Reason, TokenOptions, TransportConfig, UserQuery, rotation_fn,
};
use gdap_operator::sandbox::{Sandbox, SandboxOptions, defaults};
use std::time::{Duration, Instant};

fn clients(args: &EndpointArgs) -> MicrosoftClients {
    let endpoints = args.resolve().unwrap();
    let rotation = rotation_fn(|_| async { Ok(()) });
    MicrosoftClients::new(
        TransportConfig::new(endpoints),
        credentials(),
        rotation,
        TokenOptions::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn https_sandbox_is_trusted_only_with_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let options = SandboxOptions {
        tls_dir: Some(dir.path().to_path_buf()),
        ..SandboxOptions::default()
    };
    let sandbox = Sandbox::start(options).await.unwrap();
    let base = sandbox.base_url();
    assert!(base.starts_with("https://"), "{base}");
    let mut args = EndpointArgs {
        login_url: Some(base.clone()),
        graph_url: Some(base.clone()),
        partner_center_url: Some(base.clone()),
        ..Default::default()
    };

    let untrusted = clients(&args);
    let err = untrusted.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let err = gdap_operator::microsoft::TokenSource::bearer(&err, None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::Network, "{err}");

    args.ca_file = Some(dir.path().join("ca.pem"));
    let trusted = clients(&args);
    let app = trusted.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let query = UserQuery {
        select: vec!["id".into()],
        top: Some(10),
        filter: None,
    };
    let users: Vec<_> = trusted
        .directory
        .users(&app, &query)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(users.len(), defaults::CONTOSO_USER_COUNT);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn at_most_n_requests_per_tenant_are_in_flight() {
    let h = start_with(quick(), credentials(), Default::default(), |c| {
        c.per_tenant_concurrency = 2
    })
    .await;
    let app = h.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    gdap_operator::microsoft::TokenSource::bearer(&app, None)
        .await
        .unwrap();
    let slow = serde_json::json!({"rules": [{"pathPrefix": "/v1.0/subscribedSkus", "rate": 0.0, "statuses": [], "latencyMs": 200}]});
    h.control(reqwest::Method::PUT, "/_sandbox/faults", Some(slow))
        .await;
    let started = Instant::now();
    let calls = (0..8).map(|_| h.clients.directory.subscribed_skus(&app));
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    let elapsed = started.elapsed();
    // 8 calls of 200 ms, two at a time: four waves.
    assert!(elapsed >= Duration::from_millis(780), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    h.stop().await;
}

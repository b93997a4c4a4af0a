//! Rotated refresh tokens are written back to the credentials Secret on a real API server, and a
//! concurrent writer (a conflict) never makes the operator lose the newest token.

mod support;

use chrono::Utc;
use gdap_operator::controllers::credentials::{self, store_refresh_token};
use gdap_operator::microsoft::{RotatedRefreshToken, Secret};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_token_wins_against_concurrent_writers() {
    let cp = support::controlplane::get();
    let ns = cp.namespace("rotation");
    let api: Api<KubeSecret> = Api::namespaced(cp.client().await, &ns);
    let secret: KubeSecret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "stringData": {"partnerTenantId": "p", "clientId": "c", "clientSecret": "s", "refreshToken": "rt-0"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &secret).await.unwrap();

    // Another writer keeps changing the Secret (a label) while tokens are stored.
    let other = api.clone();
    let noise = tokio::spawn(async move {
        for i in 0..60 {
            let patch = json!({"metadata": {"labels": {"touched": i.to_string()}}});
            other
                .patch("creds", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    });
    for i in 1..=20 {
        let rotated = RotatedRefreshToken {
            refresh_token: Secret::new(format!("rt-{i}")),
            issued_at: Utc::now(),
        };
        store_refresh_token(&api, "creds", &rotated).await.unwrap();
    }
    noise.await.unwrap();
    let stored = api.get("creds").await.unwrap();
    let parsed = credentials::parse(&stored, &ns, "creds").unwrap();
    assert_eq!(
        parsed.refresh_token.expose(),
        "rt-20",
        "the last rotated token is stored"
    );
    assert!(
        parsed.refresh_token_issued_at.is_some(),
        "the issue time is recorded for the age warning"
    );
    assert_eq!(
        stored.metadata.labels.unwrap()["touched"],
        "59",
        "the other writer's change is kept too"
    );
}

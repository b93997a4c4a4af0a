//! Holding a credentials Secret in use: before anything is written with a Secret's credentials,
//! the Secret carries the label and the finalizer `gdap.io/credentials-in-use`, so deleting it
//! waits until the objects that need it are gone (the Secret controller, `credentials_in_use`,
//! lets it go).
//!
//! Contract:
//! - [`hold`]: labels the Secret, then adds the finalizer (JSON-patch test-and-add, read again and
//!   retried once when another holder changed the finalizers in between; skipped while the Secret
//!   is being deleted, when the API server refuses new finalizers).
//! - [`acquire_and_hold`]: the credentials of an object, read through the cache and held; a hold
//!   that conflicts with other holders (many objects using one Secret at once) is retried a few
//!   times with a short pause.

use super::context::Context;
use super::credentials::{Credentials, CredentialsError};
use super::finalizers;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::time::Duration;

/// The finalizer the operator holds on credentials Secrets in use.
pub const FINALIZER: &str = "gdap.io/credentials-in-use";
/// The label that marks a Secret in use.
pub const LABEL: &str = "gdap.io/credentials-in-use";

/// Holds that conflict with other holders are tried this many times.
const HOLD_ATTEMPTS: usize = 3;

/// Marks `secret` as in use: label, then finalizer.
pub async fn hold(api: &Api<Secret>, secret: &Secret) -> kube::Result<()> {
    if secret.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    if !secret.labels().contains_key(LABEL) {
        let patch = json!({"metadata": {"labels": {LABEL: "true"}}});
        api.patch(
            &secret.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    }
    match finalizers::add(api, secret, FINALIZER).await {
        // Another controller changed the finalizers since the Secret was read (two objects using
        // it reconcile at once): the JSON patch's test failed. Read it again and add once more.
        Err(kube::Error::Api(e)) if e.code == 422 => {
            let fresh = api.get(&secret.name_any()).await?;
            finalizers::add(api, &fresh, FINALIZER).await
        }
        other => other,
    }
}

/// The credentials of an object in `namespace` (Secret `secret_name`), held in use (finalizer on
/// the Secret) before anything is written with them.
pub async fn acquire_and_hold(
    ctx: &Context,
    namespace: &str,
    secret_name: Option<&str>,
) -> Result<Credentials, CredentialsError> {
    let name = secret_name.ok_or(CredentialsError::NoReference)?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let credentials = ctx.credentials.acquire(namespace, name).await?;
        match hold(&secrets, &credentials.secret).await {
            Ok(()) => {
                ctx.secret_in_use(namespace, name);
                return Ok(credentials);
            }
            Err(kube::Error::Api(e)) if conflict(e.code) && attempt < HOLD_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
            }
            Err(source) => {
                return Err(CredentialsError::Kube {
                    namespace: namespace.into(),
                    name: name.into(),
                    source,
                });
            }
        }
    }
}

/// A JSON-patch test that failed (409 or 422): someone changed the object in between.
fn conflict(code: u16) -> bool {
    code == 409 || code == 422
}

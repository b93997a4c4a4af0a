//! The credentials Secrets the Secret controller looks after, read by name: the operator never
//! lists or watches Secrets at large — it reads each by name, and watches each credentials
//! Secret in use alone, by a field selector on its name (`secret_watch`) — so its RBAC can name
//! the few Secrets it needs (`resourceNames`) instead of reading every Secret in the cluster.
//!
//! Contract: controllers report through [`SecretCheck`]s on the context's channel —
//! [`Context::secret_in_use`] each time an object holds a Secret (only the first report of a
//! Secret leads to a read), [`Context::secret_released`] when an object let go of it (always
//! read). [`secrets_by_name`] reads each reported Secret with one GET in its namespace, keeps the
//! Secret controller's store up to date with what it read (a Secret that is gone leaves it), and
//! yields the Secret to be reconciled; the controller's own requeues (poll / resync) then look
//! again. A read the API server refuses is logged with the permission and the chart value that
//! grants it; the objects using the Secret say the same in their conditions.
//!
//! [`Context::secret_in_use`]: super::context::Context::secret_in_use
//! [`Context::secret_released`]: super::context::Context::secret_released

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;
use std::collections::HashSet;
use tokio::sync::mpsc::UnboundedReceiver;

/// A request to look at a credentials Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretCheck {
    /// The Secret.
    pub secret: ObjectRef<Secret>,
    /// An object released it: look now, even when the Secret is known already.
    pub released: bool,
}

impl SecretCheck {
    /// The namespace of the Secret (empty when the reference has none).
    pub fn namespace(&self) -> &str {
        self.secret.namespace.as_deref().unwrap_or_default()
    }
}

/// What the operator does with a credentials Secret (it lists and watches it alone, by name).
pub const CREDENTIAL_VERBS: &str = "get, list, watch, patch and update";

/// The Helm chart value that grants a credentials Secret by name.
pub const CREDENTIALS_VALUE: &str = "rbac.credentialsSecrets";
/// The Helm chart value that grants a connection Secret by name.
pub const CONNECTIONS_VALUE: &str = "rbac.connectionSecrets";

/// What to tell an administrator when the API server refused the operator Secret
/// `namespace/name`: the verbs to grant on it, and the chart `value` that grants them by name.
pub fn forbidden_hint(namespace: &str, name: &str, verbs: &str, value: &str) -> String {
    format!(
        "the operator may use only the Secrets its role names: grant {verbs} on Secret {namespace}/{name} (Helm chart: add \"{name}\" to {value}, or set rbac.secretAccess=any)"
    )
}

/// Whether the Secret is worth a read: every release, and the first report of a Secret in use.
fn worth_reading(known: &mut HashSet<ObjectRef<Secret>>, check: &SecretCheck) -> bool {
    known.insert(check.secret.clone()) || check.released
}

/// The Secrets to reconcile, read by name as the checks arrive (see the module docs).
pub fn secrets_by_name(
    client: Client,
    checks: UnboundedReceiver<SecretCheck>,
    mut writer: Writer<Secret>,
) -> impl futures::Stream<Item = Result<Secret, watcher::Error>> + Send + 'static {
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let state = (client, checks, writer, HashSet::new());
    futures::stream::unfold(
        state,
        |(client, mut checks, mut writer, mut known)| async move {
            loop {
                let check = checks.recv().await?;
                if !worth_reading(&mut known, &check) {
                    continue;
                }
                if let Some(secret) = read(&client, &check, &mut writer).await {
                    return Some((Ok(secret), (client, checks, writer, known)));
                }
            }
        },
    )
}

/// Reads one Secret and records it in the store; `None` when it is gone or cannot be read.
async fn read(client: &Client, check: &SecretCheck, writer: &mut Writer<Secret>) -> Option<Secret> {
    let namespace = check.namespace();
    let name = check.secret.name.as_str();
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(secret)) => {
            writer.apply_watcher_event(&watcher::Event::Apply(secret.clone()));
            Some(secret)
        }
        Ok(None) => {
            let mut gone = Secret::default();
            gone.metadata.name = Some(name.to_string());
            gone.metadata.namespace = Some(namespace.to_string());
            writer.apply_watcher_event(&watcher::Event::Delete(gone));
            None
        }
        Err(kube::Error::Api(e)) if e.code == 403 => {
            tracing::warn!(secret = %name, %namespace, "cannot read the credentials Secret: {}", forbidden_hint(namespace, name, CREDENTIAL_VERBS, CREDENTIALS_VALUE));
            None
        }
        Err(error) => {
            tracing::warn!(secret = %name, %namespace, %error, "cannot read the credentials Secret; it is looked at again when an object uses or releases it");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, released: bool) -> SecretCheck {
        SecretCheck {
            secret: ObjectRef::new(name).within("ns"),
            released,
        }
    }

    #[test]
    fn a_secret_in_use_is_read_once_and_every_release_again() {
        let mut known = HashSet::new();
        let table = [
            (check("a", false), true),
            (check("a", false), false),
            (check("b", false), true),
            (check("a", true), true),
            (check("a", false), false),
            (check("c", true), true),
            (check("c", false), false),
        ];
        for (i, (c, expected)) in table.iter().enumerate() {
            assert_eq!(worth_reading(&mut known, c), *expected, "row {i}: {c:?}");
        }
    }
}

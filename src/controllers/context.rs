//! What every controller shares: the Kubernetes client, the event recorder, metrics, the
//! per-Secret Microsoft clients and the operator's settings.

use super::credentials::CredentialsCache;
use super::gdap_relationship::plan::Timing;
use crate::metrics::Metrics;
use kube::runtime::events::Recorder;
use std::sync::Arc;

/// The controller name used as event reporter and field manager.
pub const MANAGER: &str = "gdap-operator";

/// Settings from the command line.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Secret name used when an object has no `spec.credentialsRef`.
    pub default_credentials_secret: Option<String>,
    /// Polling, resync and timeout intervals.
    pub timing: Timing,
}

/// Shared state of the controllers.
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// Publishes Kubernetes events.
    pub recorder: Recorder,
    /// Operator metrics.
    pub metrics: Arc<Metrics>,
    /// Microsoft clients per credentials Secret.
    pub credentials: CredentialsCache,
    /// Settings.
    pub settings: Settings,
}

impl Context {
    /// The credentials Secret name for an object in `namespace`: its own reference, else the
    /// operator default (`name`, or `namespace/name` which applies to that namespace only — a
    /// Secret is never read from another namespace).
    pub fn secret_name(
        &self,
        namespace: &str,
        credentials_ref: Option<&crate::api::SecretRef>,
    ) -> Option<String> {
        if let Some(r) = credentials_ref {
            return Some(r.name.clone());
        }
        default_secret_for(
            self.settings.default_credentials_secret.as_deref()?,
            namespace,
        )
    }
}

/// Applies the `--credentials-secret` default to an object's namespace.
pub fn default_secret_for(default: &str, namespace: &str) -> Option<String> {
    match default.split_once('/') {
        Some((ns, name)) if ns == namespace => Some(name.to_string()),
        Some(_) => None,
        None => Some(default.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::default_secret_for;

    #[test]
    fn the_default_secret_never_crosses_namespaces() {
        assert_eq!(
            default_secret_for("partner-credentials", "team-a").as_deref(),
            Some("partner-credentials")
        );
        assert_eq!(
            default_secret_for("team-a/creds", "team-a").as_deref(),
            Some("creds")
        );
        assert_eq!(default_secret_for("team-a/creds", "team-b"), None);
    }
}

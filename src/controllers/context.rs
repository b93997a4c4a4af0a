//! What every controller shares: the Kubernetes client, the event recorder, metrics, the
//! per-Secret Microsoft clients and the operator's settings.

use super::credentials::CredentialsCache;
use super::events::EventRecorder;
use super::secrets_by_name::SecretCheck;
use super::timing::{ConsentIntervals, Timing};
use crate::metrics::Metrics;
use kube::Resource;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// The controller name used as event reporter and field manager.
pub const MANAGER: &str = "gdap-operator";

/// Settings from the command line.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Secret name used when an object has no `spec.credentialsRef`.
    pub default_credentials_secret: Option<String>,
    /// Polling, resync and timeout intervals.
    pub timing: Timing,
    /// The AppConsent controller's verification and settle intervals.
    pub consent: ConsentIntervals,
}

/// Shared state of the controllers.
pub struct Context {
    /// Kubernetes client.
    pub client: kube::Client,
    /// Publishes Kubernetes events.
    pub recorder: EventRecorder,
    /// Operator metrics.
    pub metrics: Arc<Metrics>,
    /// Microsoft clients per credentials Secret.
    pub credentials: CredentialsCache,
    /// Settings.
    pub settings: Settings,
    /// Tells the credentials Secret controller which Secrets are in use and asks it to look at
    /// one now (an object using it was released). `None` when no Secret controller runs (tests
    /// of a single controller).
    pub secret_checks: Option<UnboundedSender<SecretCheck>>,
    /// Failures the status could not record (the Kubernetes API failed), per object.
    pub unrecorded_failures: super::failure::FailureCounts,
    /// The operator's recording writes the watch cache has not shown yet, per object.
    pub own_writes: super::own_writes::OwnWrites,
}

impl AsRef<Context> for Context {
    fn as_ref(&self) -> &Context {
        self
    }
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

    /// Records what using Secret `namespace/name` showed: it worked (`None`), or it failed with
    /// this condition reason — a credentials reason (`microsoft_failure::is_credentials_reason`:
    /// the same on every kind) says the credentials are bad; other failures say nothing about
    /// them.
    pub fn credentials_used(&self, namespace: &str, name: Option<&str>, failure: Option<&str>) {
        let Some(name) = name else {
            return;
        };
        match failure {
            None => self.metrics.credentials_valid(namespace, name, Some(true)),
            Some(reason) if super::microsoft_failure::is_credentials_reason(reason) => {
                self.metrics.credentials_valid(namespace, name, Some(false))
            }
            Some(_) => {}
        }
    }

    /// An object using Secret `namespace/name` was released: have the Secret controller look.
    pub fn secret_released(&self, namespace: &str, name: &str) {
        self.check_secret(namespace, name, true);
    }

    /// An object holds Secret `namespace/name`: the Secret controller looks after it from now on
    /// (it reads Secrets by name only, never lists all of them).
    pub fn secret_in_use(&self, namespace: &str, name: &str) {
        self.check_secret(namespace, name, false);
    }

    fn check_secret(&self, namespace: &str, name: &str, released: bool) {
        if let Some(checks) = &self.secret_checks {
            let secret = ObjectRef::new(name).within(namespace);
            let _ = checks.send(SecretCheck { secret, released });
        }
    }

    /// Publishes an event about `object`. The same event (type, reason, action and note) within
    /// six minutes becomes a series on the first ([`EventRecorder`]). A failure (e.g. the namespace is being deleted) is logged, not returned.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(fit_note(note)),
            action: action.chars().take(128).collect(),
            secondary: None,
        };
        match self.recorder.publish(&event, &object.object_ref(&())).await {
            Ok(()) => {}
            // A namespace being deleted refuses new objects (403 too): not the operator's RBAC.
            Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("being terminated") => {
                tracing::debug!(reason, error = %e, "could not publish event: the namespace is being deleted");
            }
            // A refused permission is the operator's RBAC, which a person must fix: say so at
            // the default log level. (Events are rare — transitions only — so this cannot flood.)
            Err(kube::Error::Api(e)) if e.code == 401 || e.code == 403 => {
                tracing::warn!(reason, error = %e, "could not publish an event: the operator may not create events (grant create and patch on events.k8s.io events)");
            }
            Err(e) => tracing::debug!(error = %e, "could not publish event"),
        }
    }
}

/// The API server refuses an event whose note is longer than 1 kB: a longer note is cut at a
/// character boundary and ends with an ellipsis (the object's condition keeps the whole text).
fn fit_note(mut note: String) -> String {
    const LIMIT: usize = 1024;
    const ELLIPSIS: &str = "…";
    if note.len() <= LIMIT {
        return note;
    }
    let mut end = LIMIT - ELLIPSIS.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    note.truncate(end);
    note.push_str(ELLIPSIS);
    note
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
    use super::{default_secret_for, fit_note};

    #[test]
    fn an_event_note_fits_the_api_servers_limit_whole_characters_kept() {
        assert_eq!(fit_note("short".into()), "short");
        let fitted = fit_note("é".repeat(700));
        assert!(fitted.len() <= 1024, "{}", fitted.len());
        assert!(fitted.ends_with('…') && fitted.starts_with("éé"));
    }

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

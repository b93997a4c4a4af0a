//! The act step: a small interpreter of the plan's [`Action`]. Only `Start` does anything: it
//! dereferences what the import needs — the partner credentials (held in use, as for every
//! object) and, for the `postgres` sink, the connection URL (and the CA bundle under `caKey`,
//! when set) from the Secret named by `connectionSecretRef`, always in the object's own
//! namespace — through [`Resources`], and hands
//! the import to the [`Launcher`] (the runner's task). A failure to dereference is a failed
//! attempt, recorded and retried like a failed import.
//! What the task runs is `import`.

use super::import::ImportJob;
use super::plan::{Action, Attempt, Start};
use super::runner::Job;
use crate::api::TenantSync;
use crate::api::conditions::reasons;
use crate::api::tenant_sync::{ConnectionSecretRef, TenantSyncSpec};
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::failure::Failure;
use crate::sync::ImportOptions;
use crate::sync::sink::postgres::Connection;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kube::runtime::reflector::ObjectRef;

/// Why the connection Secret of a `postgres` sink could not be read. Never contains the URL.
/// (A CA bundle that is not PEM is the sink's error, when it connects.)
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The Secret does not exist in the object's namespace.
    #[error(
        "spec.sink.postgres.connectionSecretRef: Secret {namespace}/{name} not found; create it in this namespace with the connection URL under key {key:?}"
    )]
    Missing {
        /// The object's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key it should hold.
        key: String,
    },
    /// The key is missing, empty or not UTF-8.
    #[error(
        "spec.sink.postgres.connectionSecretRef: Secret {namespace}/{name} has no connection URL under key {key:?} (set connectionSecretRef.key if it is stored under another key)"
    )]
    MissingKey {
        /// The object's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key.
        key: String,
    },
    /// `caKey` names a key the Secret does not have (or an empty one).
    #[error(
        "spec.sink.postgres.connectionSecretRef: Secret {namespace}/{name} has no CA bundle under key {key:?} (caKey); put the PEM of the CA that signed the server's certificate there, or remove caKey to trust the system's CAs"
    )]
    MissingCa {
        /// The object's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key `caKey` names.
        key: String,
    },
    /// The Kubernetes API failed or refused the read (then the message says which permission
    /// to grant, on this Secret by name).
    #[error(
        "reading Secret {namespace}/{name}: {source}{}",
        connection_forbidden_advice(source, namespace, name)
    )]
    Kube {
        /// The object's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The API's error.
        source: kube::Error,
    },
}

/// For a refused connection Secret: what to grant, and the chart value that grants it.
fn connection_forbidden_advice(source: &kube::Error, namespace: &str, name: &str) -> String {
    use crate::controllers::secrets_by_name::{CONNECTIONS_VALUE, forbidden_hint};
    match source {
        kube::Error::Api(e) if e.code == 403 => format!(
            "; {}",
            forbidden_hint(namespace, name, "get", CONNECTIONS_VALUE)
        ),
        _ => String::new(),
    }
}

impl ConnectionError {
    fn forbidden(&self) -> bool {
        matches!(self, ConnectionError::Kube { source: kube::Error::Api(e), .. } if e.code == 401 || e.code == 403)
    }

    /// The failure for the report.
    pub fn failure(&self) -> Failure {
        let (reason, transient) = match self {
            ConnectionError::Kube { .. } if self.forbidden() => {
                (reasons::KUBERNETES_FORBIDDEN, false)
            }
            ConnectionError::Kube { .. } => (reasons::KUBERNETES_ERROR, true),
            _ => (reasons::SINK_MISCONFIGURED, false),
        };
        Failure::new(reason, self.to_string(), transient)
    }
}

/// Why an import could not start: the act stage's errors.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// The credentials Secret is missing, incomplete or could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The PostgreSQL connection Secret is missing or could not be read.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

impl ActError {
    /// As a failure for the report.
    pub fn failure(&self) -> Failure {
        match self {
            ActError::Credentials(e) => Failure::new(e.reason(), e.to_string(), e.is_transient()),
            ActError::Connection(e) => e.failure(),
        }
    }
}

/// The Kubernetes reads (and the in-use hold) an import needs.
#[async_trait]
pub trait Resources: Send + Sync {
    /// The partner's clients from the object's credentials Secret, which is held in use.
    async fn credentials(&self) -> Result<Credentials, CredentialsError>;
    /// The connection URL (and the CA bundle under `caKey`) from the Secret `reference`
    /// names, in the object's namespace.
    async fn connection_url(
        &self,
        reference: &ConnectionSecretRef,
    ) -> Result<Connection, ConnectionError>;
}

/// Starts imports (the runner).
pub trait Launcher: Send + Sync {
    /// Runs `job` in a task of its own.
    fn launch(&self, job: Job);
}

impl Launcher for super::runner::Runner {
    fn launch(&self, job: Job) {
        super::runner::Runner::launch(self, job)
    }
}

/// What act works with.
pub struct Target<'a> {
    /// The object's spec.
    pub spec: &'a TenantSyncSpec,
    /// The object's key (`namespace/name/uid`).
    pub key: &'a str,
    /// The object.
    pub object: ObjectRef<TenantSync>,
    /// Kubernetes reads.
    pub resources: &'a dyn Resources,
    /// Where imports run.
    pub launcher: &'a dyn Launcher,
    /// The reconcile's time (of a failed start).
    pub now: DateTime<Utc>,
}

/// What the action did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Nothing was started.
    Nothing,
    /// An import was handed to the runner.
    Started,
    /// The import could not start; the attempt to record.
    StartFailed(Attempt),
}

/// Performs `action`.
pub async fn act(action: &Action, t: &Target<'_>) -> Applied {
    let Action::Start(start) = action else {
        return Applied::Nothing;
    };
    match prepare(start, t).await {
        Ok(job) => {
            t.launcher.launch(job);
            Applied::Started
        }
        Err(e) => {
            tracing::info!(error = %e, "the import cannot start");
            Applied::StartFailed(Attempt {
                id: 0,
                request: start.request.clone(),
                started_at: t.now,
                finished_at: t.now,
                outcome: Err(e.failure()),
            })
        }
    }
}

async fn prepare(start: &Start, t: &Target<'_>) -> Result<Job, ActError> {
    let credentials = t.resources.credentials().await?;
    let postgres = match &t.spec.sink.postgres {
        Some(pg) => Some(
            t.resources
                .connection_url(&pg.connection_secret_ref)
                .await?,
        ),
        None => None,
    };
    let partner = credentials.clients.tokens.partner_tenant_id().to_string();
    Ok(Job {
        key: t.key.to_string(),
        object: t.object.clone(),
        request: start.request.clone(),
        import: ImportJob {
            tenant_id: t.spec.customer.tenant_id.0.to_ascii_lowercase(),
            options: ImportOptions::from_spec(t.spec, Some(partner)),
            sink: t.spec.sink.clone(),
            postgres,
            clients: credentials.clients,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_secret_problems_name_the_field_and_the_key_and_never_the_url() {
        let missing = ConnectionError::Missing {
            namespace: "ns".into(),
            name: "db".into(),
            key: "url".into(),
        };
        let f = missing.failure();
        assert_eq!(
            (f.reason, f.transient),
            (reasons::SINK_MISCONFIGURED, false)
        );
        assert!(
            f.message
                .starts_with("spec.sink.postgres.connectionSecretRef: Secret ns/db not found")
                && f.message.contains("\"url\""),
            "{}",
            f.message
        );
        let no_ca = ConnectionError::MissingCa {
            namespace: "ns".into(),
            name: "db".into(),
            key: "ca.crt".into(),
        }
        .failure();
        assert_eq!(
            (no_ca.reason, no_ca.transient),
            (reasons::SINK_MISCONFIGURED, false)
        );
        assert!(
            no_ca
                .message
                .contains("Secret ns/db has no CA bundle under key \"ca.crt\" (caKey)"),
            "{}",
            no_ca.message
        );
    }
}

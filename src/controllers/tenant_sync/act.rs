//! The act step: a small interpreter of the plan's [`Action`]. Only `Start` does anything: it
//! dereferences what the import needs — the partner credentials (held in use, as for every
//! object) and, for the `postgres` sink, the connection URL (and the CA bundle under `caKey`,
//! when set) from the Secret named by `connectionSecretRef`, always in the object's own
//! namespace — through [`Resources`], and hands
//! the import to the [`Launcher`] (the runner's task). A failure to dereference is a failed
//! attempt, recorded and retried like a failed import.
//!
//! [`import`] is what the task runs: the sink opened from the spec, then
//! `sync::run_import` with the partner app's **app-only** token for the customer tenant (never
//! the delegated user's). [`import_failure`] names the condition reason of each import error.

use super::plan::{Action, Attempt, Start};
use super::runner::Job;
use crate::api::TenantSync;
use crate::api::conditions::reasons;
use crate::api::tenant_sync::{ConnectionSecretRef, SinkSpec, TenantSyncSpec};
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::failure::Failure;
use crate::controllers::microsoft_failure::{self, Caller};
use crate::microsoft::{MicrosoftClients, Reason};
use crate::sync::sink::postgres::Connection;
use crate::sync::{ImportError, ImportOptions, ImportReport, SinkError, run_import, sink};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kube::runtime::reflector::ObjectRef;

/// What one import needs.
#[derive(Clone)]
pub struct ImportJob {
    /// The customer tenant (lower case).
    pub tenant_id: String,
    /// Mode, fields, full-pass interval and the partner's tenant id.
    pub options: ImportOptions,
    /// Where to write.
    pub sink: SinkSpec,
    /// The PostgreSQL connection (URL and CA bundle), for the `postgres` sink.
    pub postgres: Option<Connection>,
    /// The partner's clients (their token cache is shared with every object of the Secret).
    pub clients: MicrosoftClients,
}

/// Runs one import (see the module docs). When Graph refuses it (403, or 401 for a token that
/// carries no permission), the cached app-only
/// tokens of the tenant are dropped: a token's `roles` are fixed when Entra issues it, so one
/// issued before a new application permission took effect would be refused until it expires,
/// however often the import is retried.
pub async fn import(job: &ImportJob) -> Result<ImportReport, Failure> {
    let mut sink = sink::open(&job.sink, job.postgres.as_ref())
        .await
        .map_err(|e| import_failure(&ImportError::Sink(e)))?;
    let token = job.clients.tokens.app_token(&job.tenant_id);
    let result = run_import(
        job.clients.directory.as_ref(),
        &token,
        &job.tenant_id,
        &job.options,
        sink.as_mut(),
    )
    .await;
    if let Err(ImportError::Directory { source, .. }) = &result
        && matches!(
            source.reason(),
            Reason::AccessDenied | Reason::NoPermissions
        )
    {
        job.clients.tokens.invalidate_app_tokens(&job.tenant_id);
    }
    result.map_err(|e| import_failure(&e))
}

/// The failure of an import error: its condition reason, its message (which names the missing
/// permission, the damaged file, …) and whether retrying helps. Microsoft's errors are named by
/// the mapping every controller shares (`controllers::microsoft_failure`, for the app-only
/// reads of an import): a refused certificate or client secret is `CredentialsInvalid` here as
/// on a GdapRelationship or an AppConsent, a refused read `AccessDenied`.
pub fn import_failure(error: &ImportError) -> Failure {
    let reason = match error {
        ImportError::Directory { source, .. } => {
            return microsoft_failure::failure(source, Caller::App, error.to_string());
        }
        _ if error.is_transient() => reasons::TRANSIENT_ERROR,
        ImportError::Sink(SinkError::Config(_)) => reasons::SINK_MISCONFIGURED,
        ImportError::Sink(SinkError::Tls(_)) => reasons::SINK_TLS_REFUSED,
        ImportError::Sink(_) => reasons::SINK_FAILED,
        ImportError::EmptyListing { .. } => reasons::TRANSIENT_ERROR,
        ImportError::Options(_) => reasons::INVALID_SPEC,
    };
    Failure::new(reason, error.to_string(), error.is_transient())
}

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
    use crate::microsoft::Error;
    use crate::sync::sink::postgres::{SslMode, TlsError};

    fn directory(reason: Reason) -> ImportError {
        ImportError::Directory {
            tenant: "t".into(),
            what: "users",
            source: Error::new(reason, "Graph said no"),
        }
    }

    #[test]
    fn each_import_error_has_the_condition_reason_that_says_who_must_act() {
        let table = [
            (
                directory(Reason::AccessDenied),
                reasons::ACCESS_DENIED,
                false,
            ),
            (
                directory(Reason::AppNotInTenant),
                reasons::ACCESS_DENIED,
                false,
            ),
            (directory(Reason::Throttled), reasons::TRANSIENT_ERROR, true),
            (
                directory(Reason::ServiceUnavailable),
                reasons::TRANSIENT_ERROR,
                true,
            ),
            (
                directory(Reason::InvalidClientSecret),
                reasons::CREDENTIALS_INVALID,
                false,
            ),
            (
                directory(Reason::CertificateNotAccepted),
                reasons::CREDENTIALS_INVALID,
                false,
            ),
            (directory(Reason::MfaRequired), reasons::MFA_REQUIRED, false),
            (
                directory(Reason::InvalidRequest),
                reasons::MICROSOFT_ERROR,
                false,
            ),
            (
                ImportError::EmptyListing { tenant: "t".into() },
                reasons::TRANSIENT_ERROR,
                true,
            ),
            (
                ImportError::Sink(SinkError::Busy {
                    tenant: "t".into(),
                    target: "x".into(),
                }),
                reasons::TRANSIENT_ERROR,
                true,
            ),
            (
                ImportError::Sink(SinkError::Config("no url".into())),
                reasons::SINK_MISCONFIGURED,
                false,
            ),
            (
                ImportError::Sink(SinkError::Tls(TlsError::NotOffered {
                    mode: SslMode::Require,
                })),
                reasons::SINK_TLS_REFUSED,
                false,
            ),
            (
                ImportError::Sink(SinkError::Corrupt {
                    path: "/x".into(),
                    detail: "bad".into(),
                }),
                reasons::SINK_FAILED,
                false,
            ),
            (
                ImportError::Options("wrong tenant".into()),
                reasons::INVALID_SPEC,
                false,
            ),
        ];
        for (error, reason, transient) in table {
            let failure = import_failure(&error);
            assert_eq!(
                (failure.reason, failure.transient),
                (reason, transient),
                "{error}"
            );
            assert_eq!(failure.message, error.to_string());
        }
    }

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

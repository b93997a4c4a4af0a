//! One import, as the runner's task runs it: the sink opened from the spec, then
//! `sync::run_import` with the partner app's **app-only** token for the customer tenant (never
//! the delegated user's). [`import_failure`] names the condition reason of each import error.

use crate::api::conditions::reasons;
use crate::api::tenant_sync::SinkSpec;
use crate::controllers::failure::Failure;
use crate::controllers::microsoft_failure::{self, Caller};
use crate::microsoft::{MicrosoftClients, Reason};
use crate::sync::sink::postgres::Connection;
use crate::sync::{ImportError, ImportOptions, ImportReport, SinkError, run_import, sink};

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
}

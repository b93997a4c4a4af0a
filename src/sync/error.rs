//! Errors of the import engine and its sinks, each classed transient (retry later) or permanent
//! (someone must act first), with messages that say what to do.

use crate::microsoft;
use std::path::PathBuf;
use std::time::Duration;

/// Why an import failed. Nothing the failed run wrote became visible: the last good import is
/// still in the sink.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading from Microsoft Graph failed.
    #[error(
        "reading {what} of tenant {tenant} from Microsoft Graph failed: {source}{}",
        permission_hint(source, what)
    )]
    Directory {
        /// The customer tenant.
        tenant: String,
        /// What was being read (`users`, `the users delta`, `subscribed SKUs`, `subscriptions`).
        what: &'static str,
        /// The client's error (named reason, transient or permanent).
        #[source]
        source: microsoft::Error,
    },
    /// A full listing came back without a single user.
    #[error(
        "Microsoft Graph listed no users in tenant {tenant}; a tenant always has at least one, so the listing is taken as incomplete and the last import is kept — the next run tries again"
    )]
    EmptyListing {
        /// The customer tenant.
        tenant: String,
    },
    /// The sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The caller asked for something inconsistent (a bug in the caller, or a bad spec).
    #[error("the import was asked for something inconsistent: {0}")]
    Options(String),
}

fn permission_hint(source: &microsoft::Error, what: &str) -> String {
    if !matches!(
        source.reason(),
        microsoft::Reason::AccessDenied
            | microsoft::Reason::Unauthenticated
            | microsoft::Reason::NoPermissions
    ) {
        return String::new();
    }
    let permission = match what {
        "subscribed SKUs" => "LicenseAssignment.Read.All",
        "subscriptions" => "Organization.Read.All",
        _ => "User.Read.All",
    };
    format!(
        " (the partner app needs the application permission {permission} in this tenant; if the customer revoked the app's consent, consent it again through its AppConsent)"
    )
}

impl ImportError {
    /// True when the same import can succeed later without anybody changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            ImportError::Directory { source, .. } => source.is_transient(),
            ImportError::EmptyListing { .. } => true,
            ImportError::Sink(e) => e.is_transient(),
            ImportError::Options(_) => false,
        }
    }

    /// The cause as a CamelCase name, for logs and the library's callers: the Microsoft
    /// client's reason (`AccessDenied`, `Throttled`, `CertificateNotAccepted`, …), the sink's
    /// (`SinkBusy`, `SinkUnavailable`, …), `EmptyListing` or `InvalidOptions`. It is not a
    /// condition reason: a TenantSync names a failed import through
    /// `controllers::tenant_sync::import::import_failure`, which names Microsoft's errors by the
    /// mapping every controller shares (`controllers::microsoft_failure`).
    pub fn reason(&self) -> &'static str {
        match self {
            ImportError::Directory { source, .. } => source.reason().as_str(),
            ImportError::EmptyListing { .. } => "EmptyListing",
            ImportError::Sink(e) => e.reason(),
            ImportError::Options(_) => "InvalidOptions",
        }
    }

    /// The delay Microsoft asked for, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ImportError::Directory { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`create`, `write`, `rename`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Another import of the same tenant holds the sink.
    #[error(
        "another import of tenant {tenant} is writing to {target} right now; this run was skipped and is retried later"
    )]
    Busy {
        /// The customer tenant.
        tenant: String,
        /// The sink.
        target: String,
    },
    /// Data the sink wrote earlier cannot be read back.
    #[error(
        "{}: {detail} — it was changed or damaged outside the operator; delete it (or the tenant's `current` link) and the next import starts over with a full pass",
        path.display()
    )]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// PostgreSQL refused or failed.
    #[error(
        "PostgreSQL: could not {action}: {}{}",
        postgres_text(source),
        postgres_hint(source)
    )]
    Postgres {
        /// What was being done.
        action: &'static str,
        /// The driver's error (never the connection URL).
        #[source]
        source: tokio_postgres::Error,
    },
    /// TLS with PostgreSQL failed: the server's certificate was refused, or the server does
    /// not offer TLS where the `sslmode` demands it. Someone must change the server, the CA or
    /// the URL.
    #[error("PostgreSQL: could not connect: {0}")]
    Tls(#[from] crate::sync::sink::postgres::tls_error::TlsError),
    /// The sink is configured wrongly.
    #[error("the sink is misconfigured: {0}")]
    Config(String),
}

/// The driver's error in words: its own (`db error`, `error connecting to server`, …) and its
/// causes' — for the server's errors, the severity, the message and the hint (not the detail,
/// which can quote row values).
pub(crate) fn postgres_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let hint = db
            .hint()
            .map(|h| format!(" (hint: {h})"))
            .unwrap_or_default();
        return format!("{}: {}{hint}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

fn postgres_hint(source: &tokio_postgres::Error) -> &'static str {
    let Some(code) = source.code().map(|c| c.code()) else {
        return "";
    };
    let message = source.as_db_error().map_or("", |e| e.message());
    if code == "28000" && message.contains("no encryption") {
        " (the server accepts only TLS connections from here: remove sslmode=disable, and use sslmode=verify-full with the server's CA)"
    } else if code.starts_with("28") {
        " (check the user and password in the connection URL)"
    } else if code == "3D000" {
        " (the database in the connection URL does not exist)"
    } else if code == "42501" {
        " (the database user needs CREATE on the database and ownership of the schema)"
    } else {
        ""
    }
}

impl SinkError {
    /// True when retrying later can help.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::Io { source, .. } => io_is_transient(source),
            SinkError::Busy { .. } => true,
            SinkError::Corrupt { .. } | SinkError::Config(_) | SinkError::Tls(_) => false,
            SinkError::Postgres { source, .. } => postgres_is_transient(source),
        }
    }

    /// A CamelCase reason for a Kubernetes condition.
    pub fn reason(&self) -> &'static str {
        match self {
            SinkError::Busy { .. } => "SinkBusy",
            SinkError::Corrupt { .. } => "SinkCorrupt",
            SinkError::Config(_) => "SinkMisconfigured",
            SinkError::Tls(_) => "SinkTLSRefused",
            e if e.is_transient() => "SinkUnavailable",
            _ => "SinkFailed",
        }
    }

    /// An I/O error with its context.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SinkError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A PostgreSQL error with its context.
    pub fn postgres(action: &'static str, source: tokio_postgres::Error) -> Self {
        SinkError::Postgres { action, source }
    }
}

fn io_is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    !matches!(
        e.kind(),
        PermissionDenied
            | ReadOnlyFilesystem
            | StorageFull
            | QuotaExceeded
            | NotADirectory
            | IsADirectory
            | InvalidInput
            | InvalidData
            | InvalidFilename
            | FileTooLarge
    )
}

fn postgres_is_transient(e: &tokio_postgres::Error) -> bool {
    let Some(code) = e.code().map(|c| c.code()) else {
        // No SQLSTATE: the connection broke or could not be made.
        return true;
    };
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || code.starts_with("57P") // shutdown, cannot connect now
        || matches!(code, "40001" | "40P01" | "55P03")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::{Error, Reason};

    #[test]
    fn directory_errors_keep_the_clients_class_and_name_the_permission() {
        let denied = ImportError::Directory {
            tenant: "t".into(),
            what: "subscriptions",
            source: Error::new(Reason::AccessDenied, "Insufficient privileges"),
        };
        assert!(!denied.is_transient());
        assert_eq!(denied.reason(), "AccessDenied");
        let text = denied.to_string();
        assert!(
            text.contains("Organization.Read.All") && text.contains("AppConsent"),
            "{text}"
        );
        let throttled = ImportError::Directory {
            tenant: "t".into(),
            what: "users",
            source: Error::new(Reason::Throttled, "429")
                .with_retry_after(Some(Duration::from_secs(3))),
        };
        assert!(throttled.is_transient());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        assert!(!throttled.to_string().contains("permission"));
    }

    #[test]
    fn sink_errors_are_classed() {
        let full = SinkError::io(
            "write",
            "/x",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        );
        assert!(!full.is_transient());
        assert_eq!(full.reason(), "SinkFailed");
        let flaky = SinkError::io(
            "write",
            "/x",
            std::io::Error::from(std::io::ErrorKind::Interrupted),
        );
        assert!(flaky.is_transient());
        assert_eq!(flaky.reason(), "SinkUnavailable");
        let busy = SinkError::Busy {
            tenant: "t".into(),
            target: "/x".into(),
        };
        assert!(busy.is_transient() && busy.reason() == "SinkBusy");
        assert!(!ImportError::from(SinkError::Config("x".into())).is_transient());
        assert!(ImportError::EmptyListing { tenant: "t".into() }.is_transient());
    }
}

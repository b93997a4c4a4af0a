//! libpq's `sslmode` as the postgres sink supports it, and how it is written.
//!
//! A leaf of its own so that [`TlsError`](super::tls_error::TlsError), which names the mode,
//! can be named by the sink's error without reaching [`tls`](super::tls), whose set-up answers
//! with the sink's error. Reading the mode from a URL ([`SslMode::parse`]) and mapping it to the
//! driver's mode stay in [`tls`](super::tls).

use std::fmt;

/// libpq's `sslmode`, as this sink supports it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS, certificate unchecked (unless a CA is given).
    Require,
    /// TLS, the certificate chain checked.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    /// The values `sslmode` accepts, for messages.
    pub const ACCEPTED: &'static str = "disable, prefer, require, verify-ca, verify-full";

    /// The value as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

//! Why TLS with the PostgreSQL server failed, in words that say what to change.
//!
//! Apart from [`tls`](super::tls) so that the sink's error can hold a [`TlsError`] while the TLS
//! set-up answers with the sink's error: this module imports neither.

use super::ssl_mode::SslMode;

/// Why TLS with the PostgreSQL server failed; each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The server's certificate does not lead to a trusted CA.
    #[error(
        "the server's certificate is not signed by {roots} (sslmode={mode}); trust the CA that signed it (the connection Secret's caKey), or check that the URL names the right server"
    )]
    UnknownIssuer {
        /// The roots that were tried, in words.
        roots: String,
        /// The mode.
        mode: SslMode,
    },
    /// The certificate does not name the host connected to (`verify-full`).
    #[error(
        "the server's certificate is for {presented}, not {host} (sslmode=verify-full); connect with a host name the certificate names, or use sslmode=verify-ca to check only that a trusted CA signed it"
    )]
    WrongHost {
        /// The host of the URL.
        host: String,
        /// The names in the certificate.
        presented: String,
    },
    /// The certificate has expired or is not valid yet.
    #[error(
        "the server's certificate {when} (sslmode={mode}); the server needs a current certificate"
    )]
    OutOfDate {
        /// `has expired` or `is not valid yet`.
        when: &'static str,
        /// The mode.
        mode: SslMode,
    },
    /// Another problem with the certificate.
    #[error("the server's certificate was refused (sslmode={mode}): {detail}")]
    Certificate {
        /// rustls's words.
        detail: String,
        /// The mode.
        mode: SslMode,
    },
    /// The server does not speak TLS, and the mode demands it.
    #[error(
        "the server does not offer TLS, but sslmode={mode} requires it; turn TLS on in the server (ssl = on), or use sslmode=prefer only on a network you trust"
    )]
    NotOffered {
        /// The mode.
        mode: SslMode,
    },
    /// The handshake failed otherwise.
    #[error("the TLS handshake with the server failed (sslmode={mode}): {detail}")]
    Handshake {
        /// rustls's words.
        detail: String,
        /// The mode.
        mode: SslMode,
    },
}

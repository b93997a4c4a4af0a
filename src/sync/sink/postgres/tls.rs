//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` read from the connection URL, rustls
//! (with the `ring` provider) doing the handshake, and TLS failures told in words that say what
//! to change.
//!
//! Contract, as libpq (so a URL copied from `psql` or a cloud's portal means the same here):
//! - `sslmode=disable`: no TLS.
//! - `sslmode=prefer` (the default when absent): TLS when the server offers it, plain text when
//!   it does not; the certificate is not checked unless a CA is given.
//! - `sslmode=require`: TLS or nothing; the certificate is not checked unless a CA is given
//!   (then, as libpq with a root certificate file, it behaves as `verify-ca`).
//! - `sslmode=verify-ca`: TLS; the server's certificate chain must lead to a trusted CA; its host
//!   names are not compared with the host connected to.
//! - `sslmode=verify-full`: `verify-ca`, and the certificate must name the host of the URL.
//! - The trusted CAs: the PEM bundle the caller gives ([`CaBundle`], for the operator the key
//!   `caKey` of the connection Secret), else `sslrootcert=<file>` (PEM on the operator's
//!   filesystem), else the system's roots (`sslrootcert=system`, or nothing given; the system
//!   store honours `SSL_CERT_FILE` and `SSL_CERT_DIR`). `sslrootcert=system` without `sslmode`
//!   means `verify-full`, and a weaker `sslmode` with it is refused (libpq 16 does the same).
//! - Any other `sslmode` (including libpq's `allow`), or a CA from both the caller and
//!   `sslrootcert`, is a configuration error naming the value and the accepted ones.
//!
//! The driver (tokio-postgres) knows only `disable`, `prefer` and `require` and nothing of
//! `sslrootcert`: [`prepare`] takes both settings out of the URL, parses the rest with the
//! driver and sets the driver's mode itself. Nothing here logs or returns the URL.

use super::ssl_mode::SslMode;
use super::tls_error::TlsError;
use crate::sync::error::{SinkError, postgres_text};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::sync::{Arc, OnceLock};
use tokio_postgres::config::SslMode as DriverMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Reading `sslmode` from a URL and mapping it to the driver's mode (the type is in
/// [`ssl_mode`](super::ssl_mode), with the words it is written in).
impl SslMode {
    /// Parses a value of `sslmode`.
    pub fn parse(value: &str) -> Result<SslMode, SinkError> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => {
                let shown: String = other.chars().take(40).collect();
                Err(SinkError::Config(format!(
                    "sslmode={shown:?} in the connection URL is not supported; use one of {}",
                    SslMode::ACCEPTED
                )))
            }
        }
    }

    fn driver(self) -> DriverMode {
        match self {
            SslMode::Disable => DriverMode::Disable,
            SslMode::Prefer => DriverMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverMode::Require,
        }
    }
}

/// A PEM bundle of CA certificates to trust, and where it came from (named in messages, e.g.
/// `Secret ns/db key ca.crt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundle {
    /// One or more `-----BEGIN CERTIFICATE-----` blocks.
    pub pem: String,
    /// Where it came from, for messages.
    pub origin: String,
}

/// Whose certificates a connection checks the server's against.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// The caller's or `sslrootcert`'s bundle.
    Bundle(CaBundle),
    /// `sslrootcert=<file>`, read when connecting.
    File(String),
    /// The system's roots.
    System,
}

impl Roots {
    fn describe(&self) -> String {
        match self {
            Roots::Bundle(ca) => format!("the CA in {}", ca.origin),
            Roots::File(path) => format!("the CA in file {path} (sslrootcert)"),
            Roots::System => "any CA the system trusts".into(),
        }
    }
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// Nothing (TLS only encrypts).
    Nothing,
    /// The chain leads to one of the roots.
    Chain(Roots),
    /// The chain, and the host name.
    ChainAndHost(Roots),
}

/// The TLS plan of one connection: the mode and what is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    mode: SslMode,
    check: Check,
}

/// What [`prepare`] returns: the driver's configuration, the TLS connector, and what a failed
/// connect needs to explain itself.
pub(crate) struct Prepared {
    /// The driver's configuration, TLS mode set.
    pub config: tokio_postgres::Config,
    /// The rustls connector.
    pub tls: MakeRustlsConnect,
    /// For [`Context::connect_error`].
    pub context: Context,
}

/// What a failed connect is explained with.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    mode: SslMode,
    roots: Option<String>,
}

/// Reads the URL's TLS settings, parses the rest with the driver and builds the connector;
/// `ca` is the caller's CA bundle (the connection Secret's `caKey`).
pub(crate) fn prepare(url: &str, ca: Option<&CaBundle>) -> Result<Prepared, SinkError> {
    let (rest, settings) = split(url)?;
    let mut config: tokio_postgres::Config = rest.parse().map_err(|e| {
        SinkError::Config(format!(
            "the connection URL is not a valid postgres:// URL or key=value string ({})",
            postgres_text(&e)
        ))
    })?;
    let plan = plan(&settings, ca)?;
    config.ssl_mode(plan.mode.driver());
    let context = Context {
        mode: plan.mode,
        roots: match &plan.check {
            Check::Nothing => None,
            Check::Chain(r) | Check::ChainAndHost(r) => Some(r.describe()),
        },
    };
    let tls = connector(&plan.check)?;
    Ok(Prepared {
        config,
        tls,
        context,
    })
}

/// `sslmode` and `sslrootcert` as the URL gives them (decoded).
#[derive(Debug, Default, PartialEq, Eq)]
struct Settings {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// The URL without `sslmode` and `sslrootcert`, and their values.
fn split(url: &str) -> Result<(String, Settings), SinkError> {
    let (rest, found) = match ["postgres://", "postgresql://"]
        .iter()
        .find(|p| url.starts_with(**p))
    {
        Some(prefix) => split_url(url, prefix.len())?,
        None => split_key_value(url),
    };
    let mut settings = Settings::default();
    for (key, value) in found {
        match key.as_str() {
            "sslmode" => settings.sslmode = Some(value),
            _ => settings.sslrootcert = Some(value),
        }
    }
    Ok((rest, settings))
}

fn ours(key: &str) -> bool {
    key == "sslmode" || key == "sslrootcert"
}

/// The URL form: `postgres://user:password@host:port/db?key=value&…` (the query starts at the
/// first `?` after the credentials, as the driver reads it).
fn split_url(url: &str, prefix: usize) -> Result<(String, Vec<(String, String)>), SinkError> {
    let body = &url[prefix..];
    let after_credentials = body.find('@').map_or(0, |i| i + 1);
    let Some(q) = body[after_credentials..].find('?') else {
        return Ok((url.to_string(), Vec::new()));
    };
    let query_start = prefix + after_credentials + q;
    let (head, query) = (&url[..query_start], &url[query_start + 1..]);
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|v| v.into_owned())
    };
    let (mut kept, mut found) = (Vec::new(), Vec::new());
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match decode(key) {
            Ok(key) if ours(&key) => {
                let value = decode(value).map_err(|_| {
                    SinkError::Config(format!(
                        "{key} in the connection URL is not valid percent-encoded UTF-8"
                    ))
                })?;
                found.push((key, value));
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((rest, found))
}

/// The key=value form (`host=… sslmode=verify-full`), tokenised as the driver does: values
/// plain or in single quotes, `\` escaping the next character. A string the driver would not
/// parse is returned whole, for the driver to report.
fn split_key_value(s: &str) -> (String, Vec<(String, String)>) {
    let unchanged = || (s.to_string(), Vec::new());
    let mut it = s.char_indices().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    let (mut rest, mut found, mut copied) = (String::new(), Vec::new(), 0);
    loop {
        skip_ws(&mut it);
        let Some(&(start, _)) = it.peek() else { break };
        while it
            .next_if(|(_, c)| !c.is_whitespace() && *c != '=')
            .is_some()
        {}
        let key_end = it.peek().map_or(s.len(), |&(i, _)| i);
        let key = &s[start..key_end];
        skip_ws(&mut it);
        if it.next_if(|(_, c)| *c == '=').is_none() {
            return unchanged();
        }
        skip_ws(&mut it);
        let quoted = it.next_if(|(_, c)| *c == '\'').is_some();
        let mut value = String::new();
        let mut closed = !quoted;
        while let Some(&(_, c)) = it.peek() {
            if quoted && c == '\'' {
                it.next();
                closed = true;
                break;
            }
            if !quoted && c.is_whitespace() {
                break;
            }
            it.next();
            if c == '\\' {
                if let Some((_, escaped)) = it.next() {
                    value.push(escaped);
                }
            } else {
                value.push(c);
            }
        }
        if !closed || (!quoted && value.is_empty()) {
            return unchanged();
        }
        let end = it.peek().map_or(s.len(), |&(i, _)| i);
        if ours(key) {
            rest.push_str(&s[copied..start]);
            copied = end;
            found.push((key.to_string(), value));
        }
    }
    rest.push_str(&s[copied..]);
    (rest, found)
}

/// The libpq table (see the module docs).
fn plan(settings: &Settings, ca: Option<&CaBundle>) -> Result<Plan, SinkError> {
    let explicit = settings
        .sslmode
        .as_deref()
        .map(SslMode::parse)
        .transpose()?;
    let given = match (ca, settings.sslrootcert.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(SinkError::Config(
                "the CA is given twice, by the connection Secret's caKey and by sslrootcert in the URL; keep one".into(),
            ));
        }
        (Some(ca), None) => Some(Roots::Bundle(ca.clone())),
        (None, Some("system")) => Some(Roots::System),
        (None, Some("")) => {
            return Err(SinkError::Config(
                "sslrootcert in the connection URL is empty; name a PEM file, or system".into(),
            ));
        }
        (None, Some(path)) => Some(Roots::File(path.to_string())),
        (None, None) => None,
    };
    let mode = match (&given, explicit) {
        (Some(Roots::System), None) => SslMode::VerifyFull,
        (Some(Roots::System), Some(mode)) if mode != SslMode::VerifyFull => {
            return Err(SinkError::Config(format!(
                "sslrootcert=system needs sslmode=verify-full (or no sslmode), not sslmode={mode}: the system's CAs sign certificates for anybody's host names"
            )));
        }
        (_, mode) => mode.unwrap_or(SslMode::Prefer),
    };
    let check = match (mode, given) {
        (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => Check::Nothing,
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, roots) => {
            Check::Chain(roots.unwrap_or(Roots::System))
        }
        (SslMode::VerifyFull, roots) => Check::ChainAndHost(roots.unwrap_or(Roots::System)),
    };
    Ok(Plan { mode, check })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls connector of a plan.
fn connector(check: &Check) -> Result<MakeRustlsConnect, SinkError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::Nothing => Arc::new(NoCheck(provider.clone())),
        Check::Chain(roots) => Arc::new(ChainOnly(webpki(roots, &provider)?)),
        Check::ChainAndHost(roots) => webpki(roots, &provider)?,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Config(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // As libpq 17: PostgreSQL's ALPN name (required by servers that accept direct TLS).
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

fn webpki(
    roots: &Roots,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, SinkError> {
    let store = match roots {
        Roots::Bundle(ca) => Arc::new(bundle(&ca.pem, &ca.origin)?),
        Roots::File(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                SinkError::Config(format!(
                    "could not read the CA file {path} that sslrootcert names: {e}"
                ))
            })?;
            let origin = format!("file {path} (sslrootcert)");
            Arc::new(bundle(&String::from_utf8_lossy(&pem), &origin)?)
        }
        Roots::System => system_roots()?,
    };
    WebPkiServerVerifier::builder_with_provider(store, provider.clone())
        .build()
        .map_err(|e| SinkError::Config(format!("TLS setup failed: {e}")))
}

/// The certificates of a PEM bundle. Errors never quote the bundle.
fn bundle(pem: &str, origin: &str) -> Result<RootCertStore, SinkError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            SinkError::Config(format!(
                "the CA bundle in {origin} is not valid PEM; it must hold one or more -----BEGIN CERTIFICATE----- blocks"
            ))
        })?;
    if certs.is_empty() {
        return Err(SinkError::Config(format!(
            "the CA bundle in {origin} holds no certificate; it must hold one or more -----BEGIN CERTIFICATE----- blocks"
        )));
    }
    let mut store = RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|e| {
            SinkError::Config(format!(
                "the CA bundle in {origin} holds a certificate that cannot be used as a CA: {e}"
            ))
        })?;
    }
    Ok(store)
}

/// The system's roots, loaded once per process.
fn system_roots() -> Result<Arc<RootCertStore>, SinkError> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    if let Some(roots) = ROOTS.get() {
        return Ok(roots.clone());
    }
    let loaded = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(loaded.certs);
    if store.is_empty() {
        return Err(SinkError::Config(
            "no system CA certificates were found to check the PostgreSQL server's certificate with; give the CA in the connection Secret (caKey)".into(),
        ));
    }
    Ok(ROOTS.get_or_init(|| Arc::new(store)).clone())
}

/// `verify-ca`: the chain is checked, the host name is not. webpki checks the chain first and
/// the name last, so a name mismatch means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA: the certificate is not checked (the handshake's
/// signatures still are), as libpq does.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Context {
    /// The sink error of a failed connect: a TLS refusal in words, a missing password as a
    /// configuration error, anything else as the driver's error.
    pub(crate) fn connect_error(&self, e: tokio_postgres::Error) -> SinkError {
        if let Some(tls) = self.refusal(&e) {
            return SinkError::Tls(tls);
        }
        if e.as_db_error().is_none() && postgres_text(&e).contains("password missing") {
            return SinkError::Config(
                "the server asks for a password and the connection URL has none; put it in the URL (postgres://user:password@host/db)".into(),
            );
        }
        SinkError::postgres("connect", e)
    }

    fn refusal(&self, e: &tokio_postgres::Error) -> Option<TlsError> {
        let mode = self.mode;
        if e.as_db_error().is_none() && postgres_text(e).contains("server does not support TLS") {
            return Some(TlsError::NotOffered { mode });
        }
        let rustls = rustls_error(e)?;
        Some(match rustls {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer => TlsError::UnknownIssuer {
                    roots: self.roots.clone().unwrap_or_else(|| "a trusted CA".into()),
                    mode,
                },
                CertificateError::NotValidForNameContext {
                    expected,
                    presented,
                } => TlsError::WrongHost {
                    host: expected.to_str().into_owned(),
                    presented: names(presented),
                },
                CertificateError::NotValidForName => TlsError::WrongHost {
                    host: "the host in the URL".into(),
                    presented: "other names".into(),
                },
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsError::OutOfDate {
                        when: "has expired",
                        mode,
                    }
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsError::OutOfDate {
                        when: "is not valid yet",
                        mode,
                    }
                }
                other => TlsError::Certificate {
                    detail: other.to_string(),
                    mode,
                },
            },
            other => TlsError::Handshake {
                detail: other.to_string(),
                mode,
            },
        })
    }
}

/// The rustls error somewhere in the driver's error chain (tokio-rustls wraps it in an
/// `io::Error`, whose `source` skips it, so the wrapped error is looked at too).
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        next = err.source();
    }
    None
}

/// The certificate's names as people write them (`localhost or 127.0.0.1`), from webpki's
/// `DnsName("localhost")`, `IpAddress(127.0.0.1)`.
fn names(presented: &[String]) -> String {
    let plain: Vec<String> = presented
        .iter()
        .map(|n| {
            n.strip_prefix("DnsName(\"")
                .and_then(|n| n.strip_suffix("\")"))
                .map(String::from)
                .or_else(|| {
                    let ip = n.strip_prefix("IpAddress(")?.strip_suffix(')')?;
                    // webpki writes ::1 as 0::1.
                    Some(
                        ip.parse::<std::net::IpAddr>()
                            .map_or(ip.to_string(), |ip| ip.to_string()),
                    )
                })
                .unwrap_or_else(|| n.clone())
        })
        .collect();
    match plain.as_slice() {
        [] => "no host name at all".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> (String, Settings) {
        split(url).unwrap()
    }

    #[test]
    fn url_settings_are_taken_out_and_the_rest_kept_byte_for_byte() {
        let table = [
            (
                "postgres://u:p%40ss@h:5432/db?sslmode=verify-full&application_name=x",
                "postgres://u:p%40ss@h:5432/db?application_name=x",
                Some("verify-full"),
                None,
            ),
            (
                "postgresql://h/db?sslrootcert=%2Fetc%2Fca.pem&sslmode=verify-ca",
                "postgresql://h/db",
                Some("verify-ca"),
                Some("/etc/ca.pem"),
            ),
            // A `?` in the password is not the query.
            (
                "postgres://u:a?b@h/db?sslmode=require",
                "postgres://u:a?b@h/db",
                Some("require"),
                None,
            ),
            ("postgres://h/db", "postgres://h/db", None, None),
            (
                "host=h user=u password='a b\\'c' sslmode=verify-full sslrootcert = system dbname=d",
                "host=h user=u password='a b\\'c'   dbname=d",
                Some("verify-full"),
                Some("system"),
            ),
            (
                "host=h sslmode='verify-ca'",
                "host=h ",
                Some("verify-ca"),
                None,
            ),
        ];
        for (url, rest, mode, root) in table {
            let (got, s) = settings(url);
            assert_eq!(got, rest, "{url}");
            assert_eq!(s.sslmode.as_deref(), mode, "{url}");
            assert_eq!(s.sslrootcert.as_deref(), root, "{url}");
            // The driver reads what is left.
            got.parse::<tokio_postgres::Config>()
                .unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        // Malformed key=value strings go to the driver whole, for it to report.
        assert_eq!(settings("host=h sslmode").0, "host=h sslmode");
    }

    fn plan_of(mode: Option<&str>, root: Option<&str>, ca: bool) -> Result<Plan, SinkError> {
        let settings = Settings {
            sslmode: mode.map(String::from),
            sslrootcert: root.map(String::from),
        };
        let ca = ca.then(|| CaBundle {
            pem: "x".into(),
            origin: "Secret ns/db key ca.crt".into(),
        });
        plan(&settings, ca.as_ref())
    }

    #[test]
    fn the_sslmode_table_is_libpqs() {
        use Check::*;
        let bundle = Roots::Bundle(CaBundle {
            pem: "x".into(),
            origin: "Secret ns/db key ca.crt".into(),
        });
        let file = Roots::File("/ca.pem".into());
        let table = [
            (None, None, false, SslMode::Prefer, Nothing),
            (Some("disable"), None, true, SslMode::Disable, Nothing),
            (Some("prefer"), None, false, SslMode::Prefer, Nothing),
            (
                Some("prefer"),
                None,
                true,
                SslMode::Prefer,
                Chain(bundle.clone()),
            ),
            (Some("require"), None, false, SslMode::Require, Nothing),
            (
                Some("require"),
                Some("/ca.pem"),
                false,
                SslMode::Require,
                Chain(file.clone()),
            ),
            (
                Some("verify-ca"),
                None,
                false,
                SslMode::VerifyCa,
                Chain(Roots::System),
            ),
            (
                Some("verify-ca"),
                None,
                true,
                SslMode::VerifyCa,
                Chain(bundle.clone()),
            ),
            (
                Some("verify-full"),
                None,
                false,
                SslMode::VerifyFull,
                ChainAndHost(Roots::System),
            ),
            (
                Some("verify-full"),
                None,
                true,
                SslMode::VerifyFull,
                ChainAndHost(bundle.clone()),
            ),
            (
                Some("verify-full"),
                Some("/ca.pem"),
                false,
                SslMode::VerifyFull,
                ChainAndHost(file),
            ),
            (
                None,
                Some("system"),
                false,
                SslMode::VerifyFull,
                ChainAndHost(Roots::System),
            ),
        ];
        for (mode, root, ca, want_mode, want_check) in table {
            let plan = plan_of(mode, root, ca).unwrap();
            assert_eq!(
                (plan.mode, plan.check),
                (want_mode, want_check),
                "{mode:?} {root:?} ca={ca}"
            );
        }
        assert_eq!(SslMode::VerifyCa.driver(), DriverMode::Require);
        assert_eq!(SslMode::Prefer.driver(), DriverMode::Prefer);
    }

    #[test]
    fn unknown_modes_and_contradictions_are_configuration_errors_that_say_what_is_accepted() {
        for (mode, root, ca, needle) in [
            (Some("verify_full"), None, false, "\"verify_full\""),
            (Some("allow"), None, false, "disable, prefer, require"),
            (Some("VERIFY-FULL"), None, false, "verify-ca, verify-full"),
            (
                Some("require"),
                Some("system"),
                false,
                "needs sslmode=verify-full",
            ),
            (None, Some("/ca.pem"), true, "given twice"),
            (None, Some(""), false, "empty"),
        ] {
            let err = plan_of(mode, root, ca).unwrap_err();
            assert!(matches!(err, SinkError::Config(_)), "{err}");
            assert!(err.to_string().contains(needle), "{mode:?}: {err}");
            assert!(!err.is_transient());
        }
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        for url in [
            "postgres://u:hunter2@127.0.0.1:notaport/db?sslmode=require",
            "postgres://u:hunter2@h/db?sslmode=verify-full&sslcert=x",
        ] {
            let err = prepare(url, None).err().unwrap();
            let text = err.to_string();
            assert!(matches!(err, SinkError::Config(_)), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        let err = prepare("postgres://u:hunter2@h/db?sslmode=verify-fill", None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("\"verify-fill\"") && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn ca_bundles_that_are_not_certificates_are_refused_without_quoting_them() {
        let origin = "Secret ns/db key ca.crt";
        for pem in [
            "not pem at all",
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        ] {
            let err = bundle(pem, origin).unwrap_err().to_string();
            assert!(
                err.contains(origin) && err.contains("no certificate"),
                "{err}"
            );
            assert!(!err.contains("c2VjcmV0"), "{err}");
        }
        let broken = "-----BEGIN CERTIFICATE-----\nc2VjcmV0";
        let err = bundle(broken, origin).unwrap_err().to_string();
        assert!(
            err.contains("not valid PEM") && !err.contains("c2VjcmV0"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_connection_string_is_split_without_panicking(
            url in "(postgres(ql)?://)?[a-z0-9:@?&=/%' \\\\é]{0,80}"
        ) {
            let _ = split(&url);
        }
    }

    #[test]
    fn certificate_names_read_as_people_write_them() {
        let presented = [
            "DnsName(\"localhost\")".to_string(),
            "IpAddress(127.0.0.1)".to_string(),
            "IpAddress(0::1)".to_string(),
        ];
        assert_eq!(names(&presented), "localhost, 127.0.0.1 or ::1");
        assert_eq!(names(&presented[..1]), "localhost");
        assert_eq!(names(&[]), "no host name at all");
    }
}

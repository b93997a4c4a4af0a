//! The one error type of the Microsoft clients and its classification.
//!
//! Contract:
//! - Every failure is an [`Error`] with a named [`Reason`]; [`Error::is_transient`] says whether
//!   retrying later can help (throttling, outages, timeouts) or the user must act first.
//! - Graph's error `code` and `request-id`, the HTTP status, the AADSTS number and a server
//!   `Retry-After` are carried when known.
//! - `Display` says what went wrong and what to do about it. It never contains a secret, a
//!   refresh token or an access token: request bodies and headers are never quoted, and server
//!   messages are reduced to their first line with anything token-shaped removed.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Result alias of the Microsoft clients.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a call failed, named so controllers can turn it into a condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// 429: Microsoft throttled the caller.
    Throttled,
    /// 5xx or `temporarily_unavailable`: the service had a transient failure.
    ServiceUnavailable,
    /// No answer within the per-attempt timeout (for a read or an idempotent write).
    Timeout,
    /// The connection could not be made.
    Network,
    /// A non-idempotent write (POST) may or may not have happened: look before retrying.
    OutcomeUnknown,
    /// The new refresh token could not be handed to the rotation callback.
    RotationNotPersisted,
    /// 404: the object does not exist.
    NotFound,
    /// 412 / `resourceModified`: the ETag no longer matches; the object changed since it was read.
    PreconditionFailed,
    /// 409 / `nameAlreadyExists`: a conflicting object exists.
    Conflict,
    /// The object to create already exists (a Partner Center consent, a service principal, an
    /// app role assignment): treat the create as done, then verify.
    AlreadyExists,
    /// 400: Microsoft rejected the request as invalid.
    InvalidRequest,
    /// 403 from Graph: the caller lacks the permission or GDAP role.
    AccessDenied,
    /// 401 that a fresh token did not cure.
    Unauthenticated,
    /// Graph's 401 "Either scp or roles claim need to be present in the token": the token
    /// carries no permission for the API — for an app-only token, the app holds no application
    /// permission of Microsoft Graph in that tenant (its service principal may still be there).
    NoPermissions,
    /// AADSTS65001 / 90099: the app has not been consented (authorized) in the tenant.
    ConsentMissing,
    /// AADSTS700082 / 70008: the refresh token expired from inactivity.
    RefreshTokenExpired,
    /// AADSTS50173 / 70043 / 70044: the refresh token was revoked (password change, admin
    /// revocation, sign-in frequency).
    RefreshTokenRevoked,
    /// AADSTS70000 / 9002313: the stored refresh token is not valid (malformed, issued to another
    /// app, or already replaced by a rotation).
    RefreshTokenInvalid,
    /// AADSTS7000215 / `invalid_client`: the client secret is wrong.
    InvalidClientSecret,
    /// AADSTS7000222: the client secret has expired.
    ClientSecretExpired,
    /// AADSTS700027 (and 7000274, 7000214, 7000277, 1000502): Entra did not accept the client
    /// certificate — not registered on the app, expired or revoked, or the key does not match.
    CertificateNotAccepted,
    /// AADSTS700024: the client assertion is outside its valid time range (clock skew).
    ClientAssertionTimeInvalid,
    /// AADSTS700023 / 700021 / 50048 / 50027 / 5002730 / 90011: Entra refused the client
    /// assertion's audience, issuer, subject, algorithm or format.
    ClientAssertionInvalid,
    /// AADSTS700016 / 7000229: the application (or its service principal) is not in the tenant.
    AppNotInTenant,
    /// AADSTS500011 / 650052 / Partner Center "lacks a service principal": a resource's service
    /// principal is missing in the customer tenant.
    ServicePrincipalMissing,
    /// AADSTS50076 / 50079: multi-factor authentication is required.
    MfaRequired,
    /// AADSTS53003: blocked by Conditional Access.
    ConditionalAccess,
    /// AADSTS50020 / 50034 / 90072: the partner user has no working GDAP access in that tenant.
    NoGdapAccess,
    /// AADSTS90002: the tenant does not exist (wrong id or wrong cloud).
    TenantNotFound,
    /// AADSTS70011: the requested scope is invalid.
    InvalidScope,
    /// Another AADSTS error.
    SignInFailed,
    /// Partner Center 404: the customer is unknown to Partner Center.
    CustomerNotFound,
    /// Partner Center 403: the partner user may not do this for that customer.
    PartnerCenterForbidden,
    /// `syncStateNotFound` / 410 on a delta link: start a full synchronisation.
    DeltaExpired,
    /// The client refused to send the request: the token is of the wrong kind or audience.
    WrongToken,
    /// The response could not be understood.
    InvalidResponse,
    /// The response's body ended before its JSON did (a proxy or the service cut it short):
    /// retrying later can help. For a write that succeeded the answer is
    /// [`Reason::OutcomeUnknown`] instead, so the caller looks before writing again.
    ResponseCutShort,
    /// The client is misconfigured (endpoint URLs, CA file).
    Configuration,
    /// Another HTTP error.
    Http,
}

impl Reason {
    /// True when retrying later can succeed without anybody changing anything.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Reason::Throttled
                | Reason::ServiceUnavailable
                | Reason::Timeout
                | Reason::Network
                | Reason::RotationNotPersisted
                | Reason::ResponseCutShort
        )
    }

    /// The reason as a CamelCase word, suitable for a Kubernetes condition reason.
    pub fn as_str(self) -> &'static str {
        self.texts().0
    }

    /// What the user (or the operator) should do about it.
    pub fn advice(self) -> &'static str {
        self.texts().1
    }

    fn texts(self) -> (&'static str, &'static str) {
        use Reason::*;
        match self {
            Throttled => (
                "Throttled",
                "Microsoft is throttling requests; the operator retries after the delay Microsoft asks for",
            ),
            ServiceUnavailable => (
                "ServiceUnavailable",
                "Microsoft had a transient failure; the operator retries with backoff",
            ),
            Timeout => (
                "Timeout",
                "Microsoft did not answer in time; the operator retries with backoff",
            ),
            Network => (
                "Network",
                "could not connect; check network egress, proxies and the endpoint URLs",
            ),
            OutcomeUnknown => (
                "OutcomeUnknown",
                "a create request may have reached Microsoft but no answer came back; look the object up (by display name) before creating it again",
            ),
            RotationNotPersisted => (
                "RotationNotPersisted",
                "the rotated refresh token could not be stored; check that the operator may update the credentials Secret",
            ),
            NotFound => (
                "NotFound",
                "the object does not exist at Microsoft; check the id, or let the operator create it",
            ),
            PreconditionFailed => (
                "PreconditionFailed",
                "the object changed since it was read (ETag mismatch); read it again and re-apply",
            ),
            Conflict => (
                "Conflict",
                "a conflicting object exists (for GDAP: the display name must be unique across the partner's relationships)",
            ),
            AlreadyExists => (
                "AlreadyExists",
                "the object already exists; treat the create as done and verify it",
            ),
            InvalidRequest => (
                "InvalidRequest",
                "Microsoft rejected the request; correct the spec as the message says",
            ),
            AccessDenied => (
                "AccessDenied",
                "the caller lacks the permission or GDAP role for this call; grant it (app permission, Admin agent role or GDAP role) and retry",
            ),
            NoPermissions => (
                "NoPermissions",
                "the token carries no permission for Microsoft Graph: the app holds no application permission in this tenant (the customer removed them, or none was granted); consent it again through its AppConsent",
            ),
            Unauthenticated => (
                "Unauthenticated",
                "Microsoft did not accept the access token; check the cloud and endpoint settings and the app registration",
            ),
            ConsentMissing => (
                "ConsentMissing",
                "the app has not been consented in this tenant; create an AppConsent or have an administrator use the admin-consent URL",
            ),
            RefreshTokenExpired => (
                "RefreshTokenExpired",
                "the stored refresh token expired from inactivity (90 days); sign in again as the partner GDAP user with MFA and store the new refresh token in the credentials Secret",
            ),
            RefreshTokenRevoked => (
                "RefreshTokenRevoked",
                "the refresh token was revoked (password change, session revocation or sign-in frequency); sign in again as the partner GDAP user with MFA and store the new refresh token in the credentials Secret",
            ),
            RefreshTokenInvalid => (
                "RefreshTokenInvalid",
                "the stored refresh token is not valid (malformed, for another app, or already replaced); sign in again as the partner GDAP user with MFA and store the new refresh token in the credentials Secret",
            ),
            InvalidClientSecret => (
                "InvalidClientSecret",
                "the client secret is wrong; store the secret's value (not its id) under clientSecret in the credentials Secret",
            ),
            ClientSecretExpired => (
                "ClientSecretExpired",
                "the client secret has expired; create a new secret on the app registration and update the credentials Secret",
            ),
            CertificateNotAccepted => (
                "CertificateNotAccepted",
                "Entra did not accept the client certificate: upload the certificate in clientCertificate to the app registration (Certificates & secrets), replace it if it expired, and check that clientKey is its private key",
            ),
            ClientAssertionTimeInvalid => (
                "ClientAssertionTimeInvalid",
                "Entra found the signed client assertion outside its validity window; synchronise the operator's clock (NTP)",
            ),
            ClientAssertionInvalid => (
                "ClientAssertionInvalid",
                "Entra refused the signed client assertion (audience, issuer or format); check clientId and that --cloud/--login-url point at the login host that issues the tokens",
            ),
            AppNotInTenant => (
                "AppNotInTenant",
                "the application is not known in this tenant; check clientId and the tenant, or consent the app in the tenant",
            ),
            ServicePrincipalMissing => (
                "ServicePrincipalMissing",
                "a resource's service principal is missing in the customer tenant; create it (POST /servicePrincipals) or drop that resource from the grants",
            ),
            MfaRequired => (
                "MfaRequired",
                "the partner user's sign-in behind the stored refresh token did not use multi-factor authentication, which Partner Center requires for App+User calls (and Entra when a policy asks for it); sign in again interactively as that user, complete MFA, and store the new refresh token under refreshToken in the credentials Secret",
            ),
            ConditionalAccess => (
                "ConditionalAccess",
                "a Conditional Access policy blocked the sign-in; the customer must exclude service providers or the app from the policy",
            ),
            NoGdapAccess => (
                "NoGdapAccess",
                "the partner user has no working GDAP access in this customer tenant; check the relationship is active and the user's group is assigned",
            ),
            TenantNotFound => (
                "TenantNotFound",
                "the tenant does not exist in this cloud; check the tenant id and --cloud",
            ),
            InvalidScope => (
                "InvalidScope",
                "the requested scope is invalid; check the cloud setting and the app registration",
            ),
            SignInFailed => ("SignInFailed", "the sign-in failed; see the AADSTS code"),
            CustomerNotFound => (
                "CustomerNotFound",
                "Partner Center does not know this customer; check the tenant id and that a reseller relationship exists",
            ),
            PartnerCenterForbidden => (
                "PartnerCenterForbidden",
                "the partner user must be in AdminAgents and hold Global, Application or Cloud Application Administrator through an active GDAP relationship with the customer",
            ),
            DeltaExpired => (
                "DeltaExpired",
                "the delta link expired; run a full synchronisation",
            ),
            WrongToken => (
                "WrongToken",
                "the request needs a different token kind or audience; this is a bug in the caller",
            ),
            InvalidResponse => (
                "InvalidResponse",
                "Microsoft's answer could not be understood",
            ),
            ResponseCutShort => (
                "ResponseCutShort",
                "Microsoft's answer was cut short on the way (a network or service fault); the operator looks again",
            ),
            Configuration => ("Configuration", "fix the operator's endpoint configuration"),
            Http => ("HttpError", "see the HTTP status and code"),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the Microsoft clients. See the module docs.
#[derive(Debug, Clone)]
pub struct Error {
    reason: Reason,
    detail: Option<String>,
    status: Option<u16>,
    code: Option<String>,
    request_id: Option<String>,
    aadsts: Option<u32>,
    retry_after: Option<Duration>,
}

impl std::error::Error for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        write!(f, " — {}", self.reason.advice())?;
        let mut facts = Vec::new();
        if let Some(s) = self.status {
            facts.push(format!("HTTP {s}"));
        }
        if let Some(c) = &self.code {
            facts.push(format!("code {c}"));
        }
        if let Some(a) = self.aadsts {
            facts.push(format!("AADSTS{a}"));
        }
        if let Some(r) = &self.request_id {
            facts.push(format!("request-id {r}"));
        }
        if !facts.is_empty() {
            write!(f, " [{}]", facts.join(", "))?;
        }
        Ok(())
    }
}

impl Error {
    /// A new error with a reason and a short, secret-free detail.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Error {
            reason,
            detail: Some(sanitize(&detail.into())),
            status: None,
            code: None,
            request_id: None,
            aadsts: None,
            retry_after: None,
        }
    }

    fn bare(reason: Reason, status: Option<u16>) -> Self {
        Error {
            reason,
            detail: None,
            status,
            code: None,
            request_id: None,
            aadsts: None,
            retry_after: None,
        }
    }

    /// The named reason.
    pub fn reason(&self) -> Reason {
        self.reason
    }
    /// True when retrying later can help.
    pub fn is_transient(&self) -> bool {
        self.reason.is_transient()
    }
    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        self.status
    }
    /// Graph's `error.code` or Partner Center's `code`, or the OAuth `error` of a token failure.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
    /// Graph's `request-id` (or Partner Center's request id) for support cases.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
    /// The AADSTS error number of a token failure.
    pub fn aadsts(&self) -> Option<u32> {
        self.aadsts
    }
    /// The delay Microsoft asked for (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Sets the delay Microsoft asked for (for fakes and tests).
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// The same error with another reason (a client that knows what an answer means for its
    /// call, e.g. "already exists" on a create).
    pub(crate) fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = reason;
        self
    }

    /// True when the detail text (Microsoft's message, sanitised) contains `needle`.
    pub(crate) fn detail_contains(&self, needle: &str) -> bool {
        self.detail.as_deref().is_some_and(|d| d.contains(needle))
    }

    /// The same error, recording the HTTP status of the answer it came with.
    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Microsoft accepted the write — its success status arrived — but the rest of the answer
    /// was lost (cut short): the write happened, only its answer is unknown.
    pub fn write_landed_unanswered(&self) -> bool {
        self.reason == Reason::OutcomeUnknown
            && self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// Turns a possibly-applied write failure into [`Reason::OutcomeUnknown`], keeping the facts.
    pub(crate) fn into_outcome_unknown(mut self) -> Self {
        self.reason = Reason::OutcomeUnknown;
        self.retry_after = None;
        self
    }

    /// Removes every occurrence of the given secret values from the detail text.
    pub(crate) fn scrub(mut self, secrets: &[&str]) -> Self {
        if let Some(d) = &mut self.detail {
            for s in secrets.iter().filter(|s| s.len() >= 4) {
                *d = d.replace(s, "***");
            }
        }
        self
    }

    /// Classifies a transport failure. `may_have_been_sent` is false when the request surely did
    /// not leave (connection refused); `idempotent` says whether repeating it is harmless.
    pub(crate) fn from_transport(err: &reqwest::Error, idempotent: bool) -> Self {
        let never_sent = err.is_connect() || err.is_builder();
        let reason = if !never_sent && !idempotent {
            Reason::OutcomeUnknown
        } else if err.is_timeout() {
            Reason::Timeout
        } else {
            Reason::Network
        };
        // reqwest's Display names the URL, never headers or bodies.
        Error::new(reason, transport_text(err))
    }

    /// Classifies a Graph error response.
    pub(crate) fn from_graph(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let envelope: Option<GraphEnvelope> = serde_json::from_slice(body).ok();
        let inner = envelope.map(|e| e.error);
        let code = inner.as_ref().and_then(|i| i.code.clone());
        let mut err = Error::bare(graph_reason(status, code.as_deref()), Some(status.as_u16()));
        err.detail = inner
            .as_ref()
            .and_then(|i| i.message.as_deref())
            .map(sanitize);
        if status == StatusCode::UNAUTHORIZED
            && err
                .detail
                .as_deref()
                .is_some_and(|m| m.contains(NO_PERMISSIONS_MESSAGE))
        {
            err.reason = Reason::NoPermissions;
        }
        err.request_id = header_str(headers, "request-id").or_else(|| {
            inner
                .as_ref()
                .and_then(|i| i.inner_error.as_ref()?.request_id.clone())
        });
        err.code = code;
        err.retry_after = parse_retry_after(headers);
        err
    }

    /// Classifies an Entra token-endpoint error response.
    pub(crate) fn from_token(status: StatusCode, body: &[u8]) -> Self {
        let parsed: TokenErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let aadsts = parsed
            .error_codes
            .first()
            .copied()
            .or_else(|| aadsts_from_text(parsed.error_description.as_deref().unwrap_or("")));
        let reason = token_reason(status, parsed.error.as_deref(), aadsts);
        let mut err = Error::bare(reason, Some(status.as_u16()));
        err.detail = parsed.error_description.as_deref().map(sanitize);
        err.code = parsed.error;
        err.request_id = parsed.trace_id;
        err.aadsts = aadsts;
        err
    }

    /// Classifies a Partner Center error response.
    pub(crate) fn from_partner_center(
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Self {
        let parsed: PcErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let description = parsed.description.clone().unwrap_or_default();
        let code = parsed.code.map(|c| match c {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        let reason = pc_reason(status, code.as_deref(), &description);
        let mut err = Error::bare(reason, Some(status.as_u16()));
        err.detail = parsed.description.as_deref().map(sanitize);
        err.code = code;
        err.request_id =
            header_str(headers, "ms-requestid").or_else(|| header_str(headers, "ms-correlationid"));
        err.retry_after = parse_retry_after(headers);
        err
    }
}

fn transport_text(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_string)
}

/// Parses `Retry-After` as (possibly fractional) seconds, as Graph sends it. HTTP dates are
/// accepted too. Negative or absurd values are ignored.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && (0.0..=86_400.0).contains(&secs))
            .then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Graph's answer (401) to a token that carries neither `scp` nor `roles`.
pub const NO_PERMISSIONS_MESSAGE: &str =
    "Either scp or roles claim need to be present in the token";

fn graph_reason(status: StatusCode, code: Option<&str>) -> Reason {
    match (status.as_u16(), code.unwrap_or("")) {
        (_, "syncStateNotFound" | "resyncRequired") | (410, _) => Reason::DeltaExpired,
        (_, "resourceModified") | (412, _) => Reason::PreconditionFailed,
        (_, "nameAlreadyExists") | (409, _) => Reason::Conflict,
        (429, _) => Reason::Throttled,
        (500 | 502 | 503 | 504, _) => Reason::ServiceUnavailable,
        (404, _) => Reason::NotFound,
        (403, _) => Reason::AccessDenied,
        (401, _) => Reason::Unauthenticated,
        (400 | 422, _) => Reason::InvalidRequest,
        _ => Reason::Http,
    }
}

/// Partner Center's error code for an App+User token without an MFA claim (HTTP 401), enforced
/// since April 2026.
pub const PC_MFA_REQUIRED_CODE: &str = "900421";

fn pc_reason(status: StatusCode, code: Option<&str>, description: &str) -> Reason {
    match status.as_u16() {
        400 if description.contains("lacks a service principal") => Reason::ServicePrincipalMissing,
        400 => Reason::InvalidRequest,
        401 if code == Some(PC_MFA_REQUIRED_CODE) => Reason::MfaRequired,
        401 => Reason::Unauthenticated,
        403 => Reason::PartnerCenterForbidden,
        404 => Reason::CustomerNotFound,
        409 => Reason::AlreadyExists,
        429 => Reason::Throttled,
        500 | 502 | 503 | 504 => Reason::ServiceUnavailable,
        _ => Reason::Http,
    }
}

/// Maps an AADSTS number (or, failing that, the OAuth `error`) to a reason.
pub fn token_reason(status: StatusCode, error: Option<&str>, aadsts: Option<u32>) -> Reason {
    if let Some(reason) = aadsts.and_then(aadsts_reason) {
        return reason;
    }
    match error.unwrap_or("") {
        "temporarily_unavailable" => Reason::ServiceUnavailable,
        "invalid_client" => Reason::InvalidClientSecret,
        "consent_required" => Reason::ConsentMissing,
        "interaction_required" => Reason::MfaRequired,
        "invalid_scope" => Reason::InvalidScope,
        _ if status.is_server_error() => Reason::ServiceUnavailable,
        _ if status == StatusCode::TOO_MANY_REQUESTS => Reason::Throttled,
        _ => Reason::SignInFailed,
    }
}

/// The reason for a known AADSTS number.
pub fn aadsts_reason(code: u32) -> Option<Reason> {
    Some(match code {
        700082 | 70008 => Reason::RefreshTokenExpired,
        50173 | 70043 | 70044 => Reason::RefreshTokenRevoked,
        70000 | 9002313 => Reason::RefreshTokenInvalid,
        65001 | 90099 => Reason::ConsentMissing,
        7000215 => Reason::InvalidClientSecret,
        7000222 => Reason::ClientSecretExpired,
        700027 | 7000274 | 7000214 | 7000277 | 1000502 => Reason::CertificateNotAccepted,
        700024 => Reason::ClientAssertionTimeInvalid,
        700023 | 700021 | 50048 | 50027 | 5002730 | 90011 => Reason::ClientAssertionInvalid,
        700016 | 7000229 => Reason::AppNotInTenant,
        500011 | 650052 => Reason::ServicePrincipalMissing,
        50076 | 50079 => Reason::MfaRequired,
        53003 => Reason::ConditionalAccess,
        50020 | 50034 | 90072 => Reason::NoGdapAccess,
        90002 => Reason::TenantNotFound,
        70011 => Reason::InvalidScope,
        _ => return None,
    })
}

fn aadsts_from_text(text: &str) -> Option<u32> {
    let start = text.find("AADSTS")? + 6;
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Reduces a server message to one line of at most 300 characters and removes anything that
/// looks like a token (JWTs, long opaque strings).
pub fn sanitize(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let cleaned: Vec<String> = line
        .split(' ')
        .map(|word| {
            let opaque = word.len() >= 80 || (word.starts_with("eyJ") && word.len() >= 20);
            if opaque {
                "[redacted]".to_string()
            } else {
                word.to_string()
            }
        })
        .collect();
    let joined = cleaned.join(" ");
    match joined.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &joined[..i]),
        None => joined,
    }
}

#[derive(Deserialize)]
struct GraphEnvelope {
    error: GraphErrorBody,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    code: Option<String>,
    message: Option<String>,
    #[serde(rename = "innerError", alias = "innererror")]
    inner_error: Option<GraphInnerError>,
}

#[derive(Deserialize)]
struct GraphInnerError {
    #[serde(rename = "request-id")]
    request_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct TokenErrorBody {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    trace_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct PcErrorBody {
    code: Option<serde_json::Value>,
    description: Option<String>,
}

#[cfg(test)]
mod tests;

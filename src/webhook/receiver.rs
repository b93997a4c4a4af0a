//! The receiver: one POST route that verifies a Partner Center event, drops what it has seen,
//! and asks for reconciles of the objects the event concerns.
//!
//! Contract, in order (the first failing step answers; nothing is triggered before the last):
//! 1. the body is at most `max_body` bytes (`413`, `oversized`);
//! 2. a signature is given — `Authorization: Signature <base64>`, or `x-ms-signature` when the
//!    registration asked for it — (`401`, `unsigned`), with `X-MS-Signature-Algorithm:
//!    rsa-sha256` and an `X-MS-Certificate-Url` (`400`, `malformed`);
//! 3. the certificate URL is allowed (`401`, `certificate_url`), the certificate can be fetched
//!    (`503`, `certificate_unavailable`: Partner Center retries) and is trusted (`401`,
//!    `certificate_untrusted`) — see `certificates.rs`;
//! 4. the signature verifies over the raw body (`401`, `signature`);
//! 5. the body is an event (`400`, `malformed`) that changed at most `max_age` ago and not
//!    more than [`CLOCK_SKEW`] in the future (`400`, `stale`);
//! 6. this replica runs the controllers (`503`, `not_leading`: with leader election only the
//!    leader acts; Partner Center's retry may reach it);
//! 7. the event was not seen before (`200`, counted as deduplicated, nothing triggered);
//! 8. a GDAP event asks for reconciles of the objects of its relationship ([`Dispatch`]);
//!    other events (the validation event, events of other resources) are only counted. `200`.
//!
//! Answers are short and never echo the body. The receiver holds no secret and writes nothing
//! but metrics and log lines; the reconciles read Microsoft's state, so an event can only make
//! the operator look sooner.

use super::certificates::{CertificateError, CertificateStore};
use super::event::{PartnerEvent, TEST_EVENT};
use super::metrics::{EventLabels, TriggeredLabels, WebhookMetrics};
use super::replay::Seen;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};

/// How far in the future an event's change time may be (clocks differ).
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The header of the signature when the registration asked for it instead of `Authorization`.
pub const MS_SIGNATURE: &str = "x-ms-signature";
/// The header naming the signing certificate's URL.
pub const CERTIFICATE_URL: &str = "x-ms-certificate-url";
/// The header naming the signature algorithm.
pub const SIGNATURE_ALGORITHM: &str = "x-ms-signature-algorithm";

/// This replica does not run the controllers now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotActing;

/// How many objects of one kind an event asked to reconcile.
pub type Triggered = Vec<(&'static str, usize)>;

/// Where verified GDAP events go: the controllers.
pub trait Dispatch: Send + Sync {
    /// Whether the controllers run in this replica (and have listed their objects).
    fn acting(&self) -> bool;
    /// Asks for reconciles of the objects that concern relationship `id`.
    fn relationship_changed(&self, id: &str) -> Result<Triggered, NotActing>;
}

/// The receiver's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest body accepted, in bytes.
    pub max_body: usize,
    /// The oldest change an event may report.
    pub max_age: Duration,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The body is larger than allowed.
    Oversized,
    /// No signature.
    Unsigned,
    /// Headers or body not as Partner Center sends them.
    Malformed(String),
    /// The certificate URL is not allowed.
    CertificateUrl(String),
    /// The certificate could not be fetched.
    CertificateUnavailable(String),
    /// The certificate is not trusted.
    CertificateUntrusted(String),
    /// The signature does not verify.
    Signature,
    /// The change is too old (or in the future).
    Stale(String),
    /// This replica does not run the controllers.
    NotLeading,
}

impl Rejection {
    /// The metric label and the answer's text.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Oversized => "oversized",
            Rejection::Unsigned => "unsigned",
            Rejection::Malformed(_) => "malformed",
            Rejection::CertificateUrl(_) => "certificate_url",
            Rejection::CertificateUnavailable(_) => "certificate_unavailable",
            Rejection::CertificateUntrusted(_) => "certificate_untrusted",
            Rejection::Signature => "signature",
            Rejection::Stale(_) => "stale",
            Rejection::NotLeading => "not_leading",
        }
    }

    /// The HTTP status answered.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Oversized => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Malformed(_) | Rejection::Stale(_) => StatusCode::BAD_REQUEST,
            Rejection::CertificateUnavailable(_) | Rejection::NotLeading => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn detail(&self) -> &str {
        match self {
            Rejection::Malformed(d)
            | Rejection::CertificateUrl(d)
            | Rejection::CertificateUnavailable(d)
            | Rejection::CertificateUntrusted(d)
            | Rejection::Stale(d) => d,
            _ => "",
        }
    }
}

impl From<CertificateError> for Rejection {
    fn from(e: CertificateError) -> Self {
        match e {
            CertificateError::UrlRefused(d) => Rejection::CertificateUrl(d),
            CertificateError::Unavailable(d) => Rejection::CertificateUnavailable(d),
            CertificateError::Untrusted(d) => Rejection::CertificateUntrusted(d),
        }
    }
}

/// What became of an accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// First seen; the reconciles it asked for.
    Acted(Triggered),
    /// Seen before: nothing done.
    Duplicate,
}

/// The receiver.
pub struct Receiver {
    certificates: CertificateStore,
    limits: Limits,
    metrics: WebhookMetrics,
    dispatch: Arc<dyn Dispatch>,
    seen: Mutex<Seen>,
}

impl Receiver {
    /// A receiver.
    pub fn new(
        certificates: CertificateStore,
        limits: Limits,
        metrics: WebhookMetrics,
        dispatch: Arc<dyn Dispatch>,
    ) -> Self {
        Receiver {
            certificates,
            limits,
            metrics,
            dispatch,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Verifies a delivery and acts on it (steps 2–8; the body was read within the limit).
    pub async fn receive(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Accepted, Rejection> {
        let signed = Signed::from_headers(headers)?;
        let certificate = self.certificates.get(&signed.certificate_url).await?;
        if !certificate.verify(body, &signed.signature) {
            return Err(Rejection::Signature);
        }
        let event = PartnerEvent::parse(body).map_err(Rejection::Malformed)?;
        self.check_age(&event, now)?;
        if !self.dispatch.acting() {
            return Err(Rejection::NotLeading);
        }
        let identity = event.identity();
        let changed = event.resource_change_utc_date.with_timezone(&Utc);
        let first = self
            .seen()
            .first_time(&identity, changed, self.limits.max_age, now);
        if !first {
            self.metrics.deduplicated.inc();
            return Ok(Accepted::Duplicate);
        }
        let triggered = match self.act(&event) {
            Ok(triggered) => triggered,
            Err(NotActing) => {
                self.seen().forget(&identity);
                return Err(Rejection::NotLeading);
            }
        };
        self.count(&event, &triggered);
        Ok(Accepted::Acted(triggered))
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_age(&self, event: &PartnerEvent, now: DateTime<Utc>) -> Result<(), Rejection> {
        let changed = event.resource_change_utc_date.with_timezone(&Utc);
        if now - changed > self.limits.max_age {
            return Err(Rejection::Stale(format!(
                "the change at {changed} is older than --webhook-max-event-age"
            )));
        }
        if changed - now > CLOCK_SKEW {
            return Err(Rejection::Stale(format!(
                "the change at {changed} is in the future"
            )));
        }
        Ok(())
    }

    fn act(&self, event: &PartnerEvent) -> Result<Triggered, NotActing> {
        match event.relationship_id() {
            Some(id) => {
                let triggered = self.dispatch.relationship_changed(&id)?;
                tracing::info!(event = %event.event_name, relationship = %id, ?triggered, "Partner Center event: reconciling what it concerns");
                Ok(triggered)
            }
            None if event.event_name == TEST_EVENT => {
                tracing::info!("Partner Center validation event received and verified");
                Ok(Vec::new())
            }
            None => {
                tracing::debug!(event = %event.event_name, "Partner Center event concerns no GDAP relationship; ignored");
                Ok(Vec::new())
            }
        }
    }

    fn count(&self, event: &PartnerEvent, triggered: &Triggered) {
        self.metrics
            .verified
            .get_or_create(&EventLabels {
                event: event.event_name.clone(),
            })
            .inc();
        for (kind, n) in triggered {
            self.metrics
                .triggered
                .get_or_create(&TriggeredLabels {
                    kind: kind.to_string(),
                })
                .inc_by(*n as u64);
        }
    }

    fn refuse(&self, rejection: &Rejection) -> Response {
        self.metrics.reject(rejection.reason());
        tracing::warn!(
            reason = rejection.reason(),
            detail = rejection.detail(),
            "Partner Center webhook delivery refused"
        );
        (rejection.status(), rejection.reason()).into_response()
    }
}

/// The signature headers of a delivery.
struct Signed {
    signature: Vec<u8>,
    certificate_url: String,
}

impl Signed {
    fn from_headers(headers: &HeaderMap) -> Result<Signed, Rejection> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let given = text(header::AUTHORIZATION.as_str()).or_else(|| text(MS_SIGNATURE));
        let Some(given) = given else {
            return Err(Rejection::Unsigned);
        };
        let encoded = match given.split_once(' ') {
            Some((scheme, value)) if scheme.eq_ignore_ascii_case("Signature") => value.trim(),
            Some(_) => return Err(Rejection::Unsigned),
            None => given,
        };
        let malformed = |why: &str| Rejection::Malformed(why.to_string());
        let signature = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| malformed("the signature is not base64"))?;
        let algorithm =
            text(SIGNATURE_ALGORITHM).ok_or_else(|| malformed("no X-MS-Signature-Algorithm"))?;
        if !algorithm.eq_ignore_ascii_case("rsa-sha256") {
            return Err(malformed("X-MS-Signature-Algorithm is not rsa-sha256"));
        }
        let certificate_url = text(CERTIFICATE_URL)
            .ok_or_else(|| malformed("no X-MS-Certificate-Url"))?
            .to_string();
        Ok(Signed {
            signature,
            certificate_url,
        })
    }
}

/// The receiver's router: POST `path`.
pub fn router(receiver: Arc<Receiver>, path: &str) -> Router {
    Router::new()
        .route(path, post(deliver))
        .layer(DefaultBodyLimit::disable())
        .with_state(receiver)
}

async fn deliver(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receiver.metrics.received.inc();
    let max = receiver.limits.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return receiver.refuse(&Rejection::Oversized);
    }
    let Ok(bytes) = axum::body::to_bytes(body, max).await else {
        return receiver.refuse(&Rejection::Oversized);
    };
    match receiver.receive(&headers, &bytes, Utc::now()).await {
        Ok(Accepted::Acted(_)) => (StatusCode::OK, "accepted").into_response(),
        Ok(Accepted::Duplicate) => (StatusCode::OK, "duplicate").into_response(),
        Err(rejection) => receiver.refuse(&rejection),
    }
}

#[cfg(test)]
#[path = "receiver_tests.rs"]
mod tests;

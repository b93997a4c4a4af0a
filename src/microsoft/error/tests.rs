use super::*;
use reqwest::header::{HeaderValue, RETRY_AFTER};

fn token_err(status: u16, body: &str) -> Error {
    Error::from_token(StatusCode::from_u16(status).unwrap(), body.as_bytes())
}

#[test]
fn aadsts_codes_map_to_named_reasons() {
    let cases = [
        (700082, Reason::RefreshTokenExpired),
        (70008, Reason::RefreshTokenExpired),
        (50173, Reason::RefreshTokenRevoked),
        (65001, Reason::ConsentMissing),
        (70000, Reason::RefreshTokenInvalid),
        (9002313, Reason::RefreshTokenInvalid),
        (7000215, Reason::InvalidClientSecret),
        (7000222, Reason::ClientSecretExpired),
        (700016, Reason::AppNotInTenant),
        (7000229, Reason::AppNotInTenant),
        (50076, Reason::MfaRequired),
        (50079, Reason::MfaRequired),
        (53003, Reason::ConditionalAccess),
        (90072, Reason::NoGdapAccess),
        (90002, Reason::TenantNotFound),
        (650052, Reason::ServicePrincipalMissing),
        (700027, Reason::CertificateNotAccepted),
        (700024, Reason::ClientAssertionTimeInvalid),
        (700023, Reason::ClientAssertionInvalid),
        (700021, Reason::ClientAssertionInvalid),
        (50027, Reason::ClientAssertionInvalid),
    ];
    for (code, reason) in cases {
        let body = format!(
            r#"{{"error":"invalid_grant","error_description":"AADSTS{code}: text.\r\nTrace ID: x","error_codes":[{code}],"trace_id":"tr-1"}}"#
        );
        let err = token_err(400, &body);
        assert_eq!(err.reason(), reason, "AADSTS{code}");
        assert_eq!(err.aadsts(), Some(code));
        assert!(!err.is_transient());
        assert_eq!(err.request_id(), Some("tr-1"));
        assert!(err.to_string().contains(reason.advice()));
    }
}

#[test]
fn aadsts_number_is_read_from_the_description_when_codes_are_missing() {
    let err = token_err(
        400,
        r#"{"error":"invalid_grant","error_description":"AADSTS700082: expired"}"#,
    );
    assert_eq!(err.reason(), Reason::RefreshTokenExpired);
    assert_eq!(err.aadsts(), Some(700082));
}

#[test]
fn unknown_token_errors_fall_back_to_the_oauth_error() {
    assert_eq!(
        token_err(401, r#"{"error":"invalid_client"}"#).reason(),
        Reason::InvalidClientSecret
    );
    assert_eq!(
        token_err(503, "not json").reason(),
        Reason::ServiceUnavailable
    );
    assert!(token_err(503, "").is_transient());
    assert_eq!(
        token_err(400, r#"{"error":"invalid_grant","error_codes":[12345]}"#).reason(),
        Reason::SignInFailed
    );
}

#[test]
fn graph_envelope_gives_code_request_id_and_reason() {
    let body = r#"{"error":{"code":"resourceModified","message":"The ETag does not match.","innerError":{"request-id":"rid-7","date":"x"}}}"#;
    let err = Error::from_graph(
        StatusCode::PRECONDITION_FAILED,
        &HeaderMap::new(),
        body.as_bytes(),
    );
    assert_eq!(err.reason(), Reason::PreconditionFailed);
    assert_eq!(err.code(), Some("resourceModified"));
    assert_eq!(err.request_id(), Some("rid-7"));
    assert_eq!(err.status(), Some(412));
    let text = err.to_string();
    assert!(
        text.contains("rid-7") && text.contains("read it again"),
        "{text}"
    );
}

#[test]
fn graph_statuses_classify_transient_or_permanent() {
    let h = HeaderMap::new();
    let r = |s: u16, code: &str| {
        let body = format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        Error::from_graph(StatusCode::from_u16(s).unwrap(), &h, body.as_bytes())
    };
    assert!(r(429, "TooManyRequests").is_transient());
    assert!(r(503, "serviceNotAvailable").is_transient());
    assert!(r(504, "x").is_transient());
    assert_eq!(r(404, "itemNotFound").reason(), Reason::NotFound);
    assert_eq!(
        r(403, "Authorization_RequestDenied").reason(),
        Reason::AccessDenied
    );
    assert_eq!(r(400, "syncStateNotFound").reason(), Reason::DeltaExpired);
    assert_eq!(r(410, "x").reason(), Reason::DeltaExpired);
    assert_eq!(r(400, "badRequest").reason(), Reason::InvalidRequest);
    assert!(!r(400, "badRequest").is_transient());
}

#[test]
fn retry_after_parses_fractional_seconds() {
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, HeaderValue::from_static("2.128"));
    assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(2128)));
    h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
    assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
    h.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
    assert_eq!(parse_retry_after(&h), None);
    h.insert(
        RETRY_AFTER,
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
}

#[test]
fn partner_center_errors_map_to_reasons() {
    let h = HeaderMap::new();
    let pc = |s: u16, desc: &str| {
        let body = format!(r#"{{"code":600012,"description":"{desc}","source":"PartnerFD"}}"#);
        Error::from_partner_center(StatusCode::from_u16(s).unwrap(), &h, body.as_bytes())
    };
    let missing = pc(
        400,
        "The app is trying to access a service 'c5393580' that your organization 'x' lacks a service principal for.",
    );
    assert_eq!(missing.reason(), Reason::ServicePrincipalMissing);
    assert_eq!(missing.code(), Some("600012"));
    assert_eq!(pc(403, "nope").reason(), Reason::PartnerCenterForbidden);
    assert_eq!(pc(404, "nope").reason(), Reason::CustomerNotFound);
    assert_eq!(pc(409, "exists").reason(), Reason::AlreadyExists);
    assert_eq!(pc(401, "expired").reason(), Reason::Unauthenticated);
    assert!(pc(500, "boom").is_transient());
    let mfa = Error::from_partner_center(
        StatusCode::UNAUTHORIZED,
        &h,
        br#"{"code":"900421","description":"MFA claim missing","source":"PartnerFD"}"#,
    );
    assert_eq!(mfa.reason(), Reason::MfaRequired);
    assert!(!mfa.is_transient());
    assert!(
        mfa.to_string().contains("sign in again interactively"),
        "{mfa}"
    );
}

#[test]
fn sanitize_removes_token_shaped_words_and_extra_lines() {
    let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOi.payload.sig";
    let long = "0.A".to_string() + &"x".repeat(120);
    let text = format!("bad token {jwt} and {long}\r\nTrace ID: secret-line");
    let out = sanitize(&text);
    assert!(
        !out.contains(jwt) && !out.contains(&long) && !out.contains("secret-line"),
        "{out}"
    );
    let rel = "5d027261-d21f-4aa9-b7db-7fa1f56fb163-8777b240-c6f0-4469-9e98-a3205431b836";
    assert!(sanitize(&format!("id {rel} is invalid")).contains(rel));
    assert!(
        sanitize(&"a".repeat(1000).replace('a', "a "))
            .chars()
            .count()
            <= 301
    );
}

#[test]
fn scrub_removes_known_secret_values() {
    let err = Error::new(Reason::SignInFailed, "server echoed s3cr3t-value back")
        .scrub(&["s3cr3t-value"]);
    assert!(!err.to_string().contains("s3cr3t-value"));
}

proptest::proptest! {
    /// Error answers are outside data: any status and body give an error with a reason and a
    /// one-line, token-free message, never a panic.
    #[test]
    fn any_error_answer_is_classified(
        status in 100u16..600,
        body in "\\PC{0,200}|\\{\"error\": \\{\"code\": \"[a-zA-Z]{0,12}\", \"message\": \"[^\"]{0,40}\"\\}\\}|\\{\"error\": \"[a-z_]{0,20}\", \"error_description\": \"AADSTS[0-9]{0,12}: [^\"]{0,30}\", \"error_codes\": \\[[0-9]{0,12}\\]\\}|\\{\"code\": \"[0-9A-Za-z]{0,8}\", \"description\": \"[^\"]{0,40}\"\\}",
        retry_after in "\\PC{0,12}",
    ) {
        let status = StatusCode::from_u16(status).unwrap();
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&retry_after) {
            headers.insert(RETRY_AFTER, v);
        }
        for err in [
            Error::from_graph(status, &headers, body.as_bytes()),
            Error::from_partner_center(status, &headers, body.as_bytes()),
            Error::from_token(status, body.as_bytes()),
        ] {
            let text = err.to_string();
            proptest::prop_assert!(!text.contains('\n'), "{}", text);
            let _ = (err.reason(), err.is_transient(), err.retry_after());
        }
    }
}

#[test]
fn a_graph_401_for_a_token_without_permissions_says_the_app_holds_none() {
    let body = r#"{"error":{"code":"InvalidAuthenticationToken","message":"Either scp or roles claim need to be present in the token."}}"#;
    let err = Error::from_graph(StatusCode::UNAUTHORIZED, &HeaderMap::new(), body.as_bytes());
    assert_eq!(err.reason(), Reason::NoPermissions);
    assert!(!err.is_transient());
    let other = r#"{"error":{"code":"InvalidAuthenticationToken","message":"Lifetime validation failed, the token is expired."}}"#;
    let err = Error::from_graph(
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        other.as_bytes(),
    );
    assert_eq!(err.reason(), Reason::Unauthenticated);
}

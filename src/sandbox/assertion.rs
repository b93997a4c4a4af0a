//! Certificate credentials at the token endpoint: verifying a signed client assertion against the
//! certificates registered on the app (fixture `apps[].certificates`).
//!
//! Contract: [`verify`] accepts what Entra accepts from Microsoft's libraries — RS256 or PS256,
//! the certificate named by header `x5t#S256` (SHA-256) or `x5t` (SHA-1, MSAL's legacy form),
//! claims `aud` = this token endpoint, `iss` = `sub` = `client_id`, `exp` in the future, `nbf`
//! (optional: MSAL Python omits it) not more than 5 minutes ahead. Each failure is Entra's AADSTS
//! error: unexpected `client_assertion_type` 90011 and an algorithm other than RS256/PS256 5002730
//! (both `400 invalid_request`); otherwise `401 invalid_client` with 50027 (not a JWT), 700027
//! (unknown key, bad signature, certificate outside its validity), 700021 (`iss` is not the
//! client), 50048 (`sub` is not `iss`), 700023 (`aud`), 700024 (time range). A repeated `jti` is accepted: MSAL reuses
//! one assertion for up to 9 minutes, so Entra cannot refuse replays within the lifetime.

use super::entra::{EntraError, entra_error};
use super::state::App;
use crate::microsoft::certificate::{CLIENT_ASSERTION_TYPE, ParsedCertificate, thumbprint_sha256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::Value;
use std::collections::HashMap;

/// Tolerated clock skew for `nbf`.
const SKEW_SECONDS: i64 = 300;

/// A registered certificate, ready to verify with.
struct Registered {
    sha256: String,
    sha1: String,
    parsed: ParsedCertificate,
}

fn registered(app: &App) -> Vec<Registered> {
    app.certificates
        .iter()
        .filter_map(|pem| ParsedCertificate::from_pem(pem).ok())
        .map(|(parsed, der)| Registered {
            sha256: thumbprint_sha256(&der),
            sha1: URL_SAFE_NO_PAD.encode(ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                &der,
            )),
            parsed,
        })
        .collect()
}

fn invalid_client(code: u32, text: &str) -> EntraError {
    entra_error(401, "invalid_client", code, text)
}

/// The decoded parts of a compact JWT.
struct Jwt {
    header: Value,
    claims: Value,
    signed: String,
    signature: Vec<u8>,
}

fn decode(assertion: &str) -> Option<Jwt> {
    let mut parts = assertion.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = |p: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok()?).ok()
    };
    Some(Jwt {
        header: json(h).filter(Value::is_object)?,
        claims: json(c).filter(Value::is_object)?,
        signed: format!("{h}.{c}"),
        signature: URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?,
    })
}

/// Verifies the client assertion of a token request for `app`; `audiences` are the token URLs
/// this request may name as `aud`.
pub fn verify(
    app: &App,
    form: &HashMap<String, String>,
    audiences: &[String],
    now: DateTime<Utc>,
) -> Result<(), EntraError> {
    if form.get("client_assertion_type").map(String::as_str) != Some(CLIENT_ASSERTION_TYPE) {
        return Err(entra_error(
            400,
            "invalid_request",
            90011,
            "Unexpected client assertion type.",
        ));
    }
    let jwt = form
        .get("client_assertion")
        .and_then(|a| decode(a))
        .ok_or_else(|| invalid_client(50027, "JWT token is invalid or malformed."))?;
    check_signature(app, &jwt, now)?;
    check_claims(app, &jwt.claims, audiences, now)
}

/// Finds the certificate the header names and checks the signature and its validity.
fn check_signature(app: &App, jwt: &Jwt, now: DateTime<Utc>) -> Result<(), EntraError> {
    let alg = jwt.header["alg"].as_str().unwrap_or_default();
    let algorithm = match alg {
        "RS256" => &RSA_PKCS1_2048_8192_SHA256,
        "PS256" => &RSA_PSS_2048_8192_SHA256,
        _ => {
            return Err(entra_error(
                400,
                "invalid_request",
                5002730,
                "Invalid JWT token. Unsupported key for the signing algorithm.",
            ));
        }
    };
    let (s256, s1) = (jwt.header["x5t#S256"].as_str(), jwt.header["x5t"].as_str());
    let named = s256.or(s1).unwrap_or_default();
    let hex = URL_SAFE_NO_PAD
        .decode(named.trim_end_matches('='))
        .map(|b| b.iter().map(|x| format!("{x:02X}")).collect::<String>())
        .unwrap_or_else(|_| named.to_string());
    let key_error = |reason: &str| {
        invalid_client(
            700027,
            &format!(
                "Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used by client: '{hex}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                app.client_id
            ),
        )
    };
    let found = registered(app).into_iter().find(|r| match (s256, s1) {
        (Some(t), _) => r.sha256 == t.trim_end_matches('='),
        (None, Some(t)) => r.sha1 == t.trim_end_matches('='),
        (None, None) => false,
    });
    let Some(cert) = found.map(|r| r.parsed) else {
        return Err(key_error("The key was not found."));
    };
    UnparsedPublicKey::new(algorithm, &cert.rsa_public_key)
        .verify(jwt.signed.as_bytes(), &jwt.signature)
        .map_err(|_| {
            key_error("The provided signature value did not match the expected signature value.")
        })?;
    if now < cert.not_before || now > cert.not_after {
        return Err(key_error(&format!(
            "The key used is expired. Found key 'Start={}, End={}'",
            cert.not_before.format("%m/%d/%Y %H:%M:%S"),
            cert.not_after.format("%m/%d/%Y %H:%M:%S")
        )));
    }
    Ok(())
}

fn check_claims(
    app: &App,
    claims: &Value,
    audiences: &[String],
    now: DateTime<Utc>,
) -> Result<(), EntraError> {
    let text = |k: &str| claims[k].as_str().unwrap_or_default().to_string();
    if !text("iss").eq_ignore_ascii_case(&app.client_id) {
        return Err(invalid_client(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ));
    }
    if text("sub") != text("iss") {
        return Err(invalid_client(
            50048,
            "Subject mismatches Issuer claim in the client assertion.",
        ));
    }
    let aud = text("aud");
    let normal = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
    if !audiences.iter().any(|a| normal(a) == normal(&aud)) {
        return Err(invalid_client(
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ));
    }
    // NumericDate may have a fraction (RFC 7519 §2; MSAL Python sends `time.time() + 600`).
    let seconds = |k: &str| claims[k].as_f64().map(|t| t as i64);
    let (exp, nbf) = (seconds("exp"), seconds("nbf").unwrap_or(0));
    let at = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S.0000000Z")
            .to_string()
    };
    let current = now.timestamp();
    if exp.is_none_or(|e| e <= current) || nbf > current + SKEW_SECONDS {
        return Err(invalid_client(
            700024,
            &format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                at(current),
                at(nbf),
                at(exp.unwrap_or(0))
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A client assertion is outside data: any text is decoded or refused, never a panic.
        #[test]
        fn arbitrary_client_assertions_are_decoded_or_refused(
            text in "\\PC{0,120}|[A-Za-z0-9_=-]{0,40}\\.[A-Za-z0-9_=-]{0,40}\\.[A-Za-z0-9_=-]{0,40}(\\.x)?",
        ) {
            let _ = decode(&text);
        }
    }
}

//! The pending interactive sign-ins and unredeemed codes of a sandbox ([`SignIns`], in memory
//! only): what the sign-in endpoints (`signin.rs`) record, the control API completes and the token
//! endpoint (`token.rs`) redeems.

use super::entra::{EntraError, entra_error};
use super::signin_fault::{missing, non_empty};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

/// `grant_type` of the device authorization grant.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Lifetime of a device code in seconds (Entra's `expires_in`).
pub const DEVICE_CODE_SECONDS: i64 = 900;
/// Lifetime of an authorization code in seconds (Entra: 10 minutes).
pub const AUTH_CODE_SECONDS: i64 = 600;
/// How long anything is remembered after it lapsed (so an expired code still says "expired").
const FORGET_AFTER_SECONDS: i64 = 3600;

/// The pending sign-ins and unredeemed codes of a sandbox (in memory only).
#[derive(Debug, Clone, Default)]
pub struct SignIns {
    pub(super) devices: Vec<DeviceCode>,
    pub(super) requests: Vec<AuthorizeRequest>,
    codes: Vec<AuthCode>,
}

/// A device code and what became of its sign-in.
#[derive(Debug, Clone)]
pub(super) struct DeviceCode {
    pub(super) device_code: String,
    pub(super) user_code: String,
    pub(super) client_id: String,
    pub(super) scope: String,
    pub(super) created: DateTime<Utc>,
    pub(super) outcome: Outcome,
    pub(super) redeemed: bool,
}

/// The outcome of a device-code sign-in.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    Pending,
    Approved(SignedIn),
    Declined,
}

/// An authorization request waiting for the person on the sign-in page.
#[derive(Debug, Clone)]
pub(super) struct AuthorizeRequest {
    pub(super) id: String,
    pub(super) tenant: String,
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) scope: String,
    pub(super) state: Option<String>,
    pub(super) nonce: Option<String>,
    pub(super) challenge: Option<(String, String)>,
    pub(super) login_hint: String,
    pub(super) created: DateTime<Utc>,
}

/// An authorization code.
#[derive(Debug, Clone)]
struct AuthCode {
    code: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    challenge: Option<(String, String)>,
    who: SignedIn,
    created: DateTime<Utc>,
    redeemed: bool,
}

/// A completed sign-in: who signed in, whether with MFA, and the `nonce` to echo in the ID
/// token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Object id of the partner user.
    pub user_id: String,
    /// Whether the sign-in used a second factor.
    pub mfa: bool,
    /// The authorization request's `nonce`.
    pub nonce: Option<String>,
}

/// What the person (or the control API) decided.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Signed in as this partner user, with or without MFA.
    Approve {
        /// Object id of the partner user.
        user_id: String,
        /// Whether a second factor was used.
        mfa: bool,
    },
    /// Cancelled.
    Decline,
}

/// Why a user code cannot be completed.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceProblem {
    /// No device code has this user code.
    Unknown,
    /// Its 15 minutes are over.
    Expired,
    /// It was already signed in or declined.
    Completed,
}

/// A random opaque value with a prefix.
pub(super) fn random(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Upper case without separators: how a typed user code is compared.
pub(super) fn normalise_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether `verifier` answers the PKCE `challenge` (RFC 7636, `S256` or `plain`).
pub(super) fn pkce_matches(verifier: &str, challenge: &str, method: &str) -> bool {
    if method == "S256" {
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref()) == challenge
    } else {
        verifier == challenge
    }
}

impl SignIns {
    pub(super) fn forget_lapsed(&mut self, now: DateTime<Utc>) {
        let keep = |created: DateTime<Utc>, life: i64| {
            now - created < Duration::seconds(life + FORGET_AFTER_SECONDS)
        };
        self.devices
            .retain(|d| keep(d.created, DEVICE_CODE_SECONDS));
        self.requests.retain(|r| keep(r.created, 0));
        self.codes.retain(|c| keep(c.created, AUTH_CODE_SECONDS));
    }

    /// A user code no live device code has: nine letters, like Entra's.
    pub(super) fn fresh_user_code(&self) -> String {
        loop {
            let code: String = uuid::Uuid::new_v4().as_bytes()[..9]
                .iter()
                .map(|b| char::from(b'A' + b % 26))
                .collect();
            if !self.devices.iter().any(|d| d.user_code == code) {
                return code;
            }
        }
    }

    /// The scope of the device code or authorization code a token request redeems (a token
    /// request may leave `scope` out; Entra then uses the scopes the sign-in was for).
    pub fn stored_scope(&self, grant: &str, form: &HashMap<String, String>) -> Option<String> {
        match grant {
            DEVICE_CODE_GRANT => {
                let code = form.get("device_code")?;
                self.devices
                    .iter()
                    .find(|d| &d.device_code == code)
                    .map(|d| d.scope.clone())
            }
            "authorization_code" => {
                let code = form.get("code")?;
                self.codes
                    .iter()
                    .find(|c| &c.code == code)
                    .map(|c| c.scope.clone())
            }
            _ => None,
        }
    }

    /// Checks a device code for the token endpoint without redeeming it.
    pub fn device_grant(
        &self,
        form: &HashMap<String, String>,
        client: &str,
        now: DateTime<Utc>,
    ) -> Result<SignedIn, EntraError> {
        let code = non_empty(form, "device_code").ok_or_else(|| missing("device_code").entra())?;
        let device = self
            .devices
            .iter()
            .find(|d| d.device_code == code && d.client_id == client)
            .ok_or_else(|| {
                entra_error(
                    400,
                    "bad_verification_code",
                    70000,
                    "The provided value for the input parameter 'device_code' is not valid: no device code with this value was issued to this client.",
                )
            })?;
        if device.redeemed {
            return Err(entra_error(
                400,
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed: the device code was already redeemed.",
            ));
        }
        if now - device.created >= Duration::seconds(DEVICE_CODE_SECONDS) {
            return Err(entra_error(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            ));
        }
        match &device.outcome {
            Outcome::Pending => Err(entra_error(
                400,
                "authorization_pending",
                70016,
                "The provided request has not yet been authorized by the user. The user must input their code.",
            )),
            Outcome::Declined => Err(entra_error(
                400,
                "authorization_declined",
                70000,
                "The user declined the authorization request on the sign-in page.",
            )),
            Outcome::Approved(who) => Ok(who.clone()),
        }
    }

    /// Checks an authorization code for the token endpoint (client, single use, age, redirect
    /// URI, PKCE) without redeeming it.
    pub fn code_grant(
        &self,
        form: &HashMap<String, String>,
        client: &str,
        now: DateTime<Utc>,
    ) -> Result<SignedIn, EntraError> {
        let value = non_empty(form, "code").ok_or_else(|| missing("code").entra())?;
        let code = self.codes.iter().find(|c| c.code == value).ok_or_else(|| {
            entra_error(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        })?;
        if code.client_id != client {
            return Err(entra_error(
                400,
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed: the authorization code was issued to a different client.",
            ));
        }
        if code.redeemed {
            return Err(entra_error(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if now - code.created >= Duration::seconds(AUTH_CODE_SECONDS) {
            return Err(entra_error(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            ));
        }
        let redirect = form.get("redirect_uri").map(String::as_str).unwrap_or("");
        if redirect != code.redirect_uri {
            return Err(entra_error(
                400,
                "invalid_grant",
                500112,
                &format!(
                    "The reply address '{redirect}' does not match the reply address '{}' provided when requesting Authorization code.",
                    code.redirect_uri
                ),
            ));
        }
        if let Some((challenge, method)) = &code.challenge {
            match non_empty(form, "code_verifier") {
                None => {
                    return Err(entra_error(
                        400,
                        "invalid_grant",
                        50148,
                        "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
                    ));
                }
                Some(v) if !pkce_matches(v, challenge, method) => {
                    return Err(entra_error(
                        400,
                        "invalid_grant",
                        501481,
                        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(code.who.clone())
    }

    /// Marks the device code or authorization code of a successful token request as redeemed.
    pub fn redeem(&mut self, grant: &str, form: &HashMap<String, String>) {
        match grant {
            DEVICE_CODE_GRANT => {
                let code = form.get("device_code");
                for d in self
                    .devices
                    .iter_mut()
                    .filter(|d| Some(&d.device_code) == code)
                {
                    d.redeemed = true;
                }
            }
            "authorization_code" => {
                let code = form.get("code");
                for c in self.codes.iter_mut().filter(|c| Some(&c.code) == code) {
                    c.redeemed = true;
                }
            }
            _ => {}
        }
    }

    /// Completes the pending device code with this user code (signs in or declines).
    pub fn complete_device(
        &mut self,
        user_code: &str,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Result<(), DeviceProblem> {
        let wanted = normalise_user_code(user_code);
        let device = self
            .devices
            .iter_mut()
            .filter(|d| d.user_code == wanted)
            .max_by_key(|d| d.created)
            .ok_or(DeviceProblem::Unknown)?;
        if now - device.created >= Duration::seconds(DEVICE_CODE_SECONDS) {
            return Err(DeviceProblem::Expired);
        }
        if !matches!(device.outcome, Outcome::Pending) {
            return Err(DeviceProblem::Completed);
        }
        device.outcome = match decision {
            Decision::Approve { user_id, mfa } => Outcome::Approved(SignedIn {
                user_id,
                mfa,
                nonce: None,
            }),
            Decision::Decline => Outcome::Declined,
        };
        Ok(())
    }

    /// The id of the most recent pending authorization request with this `state`.
    pub fn request_with_state(&self, state: &str) -> Option<String> {
        self.requests
            .iter()
            .filter(|r| r.state.as_deref() == Some(state))
            .max_by_key(|r| r.created)
            .map(|r| r.id.clone())
    }

    /// Completes a pending authorization request: a code on approval, `access_denied` on
    /// decline. Returns the URL to redirect the browser to (`None`: no such request).
    pub fn complete_request(
        &mut self,
        id: &str,
        decision: Decision,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let at = self.requests.iter().position(|r| r.id == id)?;
        let request = self.requests.remove(at);
        let params = match decision {
            Decision::Approve { user_id, mfa } => {
                let code = random("sandbox-code-");
                self.codes.push(AuthCode {
                    code: code.clone(),
                    client_id: request.client_id.clone(),
                    redirect_uri: request.redirect_uri.clone(),
                    scope: request.scope.clone(),
                    challenge: request.challenge.clone(),
                    who: SignedIn {
                        user_id,
                        mfa,
                        nonce: request.nonce.clone(),
                    },
                    created: now,
                    redeemed: false,
                });
                vec![("code".to_string(), code)]
            }
            Decision::Decline => error_params(
                "access_denied",
                65004,
                "User declined to consent to access the app.",
            ),
        };
        Some(redirect_url(
            &request.redirect_uri,
            params,
            request.state.as_deref(),
        ))
    }

    /// The sign-ins waiting for a person, for `GET /_sandbox/sign-ins`.
    pub fn pending(&self, now: DateTime<Utc>) -> Vec<Value> {
        let devices = self
            .devices
            .iter()
            .filter(|d| matches!(d.outcome, Outcome::Pending))
            .filter(|d| now - d.created < Duration::seconds(DEVICE_CODE_SECONDS))
            .map(|d| {
                json!({"kind": "deviceCode", "userCode": d.user_code, "clientId": d.client_id,
                    "scope": d.scope, "created": d.created.to_rfc3339(),
                    "expiresAt": (d.created + Duration::seconds(DEVICE_CODE_SECONDS)).to_rfc3339()})
            });
        let requests = self.requests.iter().map(|r| {
            json!({"kind": "authorize", "state": r.state, "clientId": r.client_id, "scope": r.scope,
                "redirectUri": r.redirect_uri, "created": r.created.to_rfc3339()})
        });
        devices.chain(requests).collect()
    }
}

/// `error`, `error_description` (with Entra's trace lines) and `error_uri` of a redirect.
pub(super) fn error_params(error: &str, code: u32, text: &str) -> Vec<(String, String)> {
    let now = Utc::now().format("%Y-%m-%d %H:%M:%SZ");
    let description = format!(
        "AADSTS{code}: {text}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {now}",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    vec![
        ("error".into(), error.into()),
        ("error_description".into(), description),
        (
            "error_uri".into(),
            format!("https://login.microsoftonline.com/error?code={code}"),
        ),
    ]
}

/// The redirect URI with `params` and `state` added to its query.
pub(super) fn redirect_url(
    redirect_uri: &str,
    params: Vec<(String, String)>,
    state: Option<&str>,
) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return redirect_uri.to_string();
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in &params {
            query.append_pair(k, v);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    url.to_string()
}

impl SignIns {
    pub(super) fn pending_user_code(&self, code: &str, now: DateTime<Utc>) -> bool {
        let wanted = normalise_user_code(code);
        self.devices.iter().any(|d| {
            d.user_code == wanted
                && matches!(d.outcome, Outcome::Pending)
                && now - d.created < Duration::seconds(DEVICE_CODE_SECONDS)
        })
    }
}

impl DeviceProblem {
    /// What the device page says.
    pub fn text(&self) -> &'static str {
        match self {
            DeviceProblem::Unknown => "That code didn't work. Check the code and try again.",
            DeviceProblem::Expired => {
                "The code you entered has expired. Get a new code from the device you're trying to sign in to and try again."
            }
            DeviceProblem::Completed => {
                "This code was already used. Get a new code from the device you're trying to sign in to and try again."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_is_rfc7636s_example() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge, "S256"));
        assert!(!pkce_matches("another", challenge, "S256"));
        assert!(pkce_matches("same", "same", "plain"));
    }

    #[test]
    fn redirects_keep_the_query_and_add_state() {
        let url = redirect_url(
            "http://localhost:8400/cb?x=1",
            vec![("code".into(), "c&d".into())],
            Some("s t"),
        );
        assert_eq!(url, "http://localhost:8400/cb?x=1&code=c%26d&state=s+t");
    }

    #[test]
    fn a_device_code_completes_once_and_expires() {
        let now = Utc::now();
        let mut s = SignIns::default();
        s.devices.push(DeviceCode {
            device_code: "d".into(),
            user_code: "ABCDEFGHI".into(),
            client_id: "c".into(),
            scope: "openid".into(),
            created: now,
            outcome: Outcome::Pending,
            redeemed: false,
        });
        let approve = || Decision::Approve {
            user_id: "u".into(),
            mfa: true,
        };
        let late = now + Duration::seconds(DEVICE_CODE_SECONDS);
        assert_eq!(
            s.complete_device("abcd-efghi", approve(), late),
            Err(DeviceProblem::Expired)
        );
        assert_eq!(s.complete_device("abcdefghi", approve(), now), Ok(()));
        assert_eq!(
            s.complete_device("ABCDEFGHI", approve(), now),
            Err(DeviceProblem::Completed)
        );
        assert_eq!(
            s.complete_device("XXXXXXXXX", approve(), now),
            Err(DeviceProblem::Unknown)
        );
    }
}

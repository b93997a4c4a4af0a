//! Interactive sign-in as Entra does it: the device authorization grant (RFC 8628:
//! `POST /{tenant}/oauth2/v2.0/devicecode` and the `/devicelogin` page), the authorization
//! endpoint with PKCE (`GET /{tenant}/oauth2/v2.0/authorize`, its sign-in page, posted to
//! `/{tenant}/login`), and the pending sign-ins and authorization codes that the token endpoint
//! (`token.rs`) redeems.
//!
//! Contract:
//! - Only partner users sign in (the world's partner users); `{tenant}` is a tenant id or domain,
//!   or `organizations`/`common`, which stand for the user's home tenant (the partner tenant).
//! - A device code lives 900 s and an authorization code 600 s on the sandbox's clock (the wall
//!   clock plus every `/_sandbox/clock` advance); each is redeemed once. The poll interval is
//!   `SandboxOptions::device_code_interval` (5 s like Entra by default); polling faster is not
//!   punished with `slow_down`.
//! - The authorization endpoint checks the client and the redirect URI first and shows an error
//!   page (no redirect) when either is wrong: the app registration has only loopback redirect
//!   URIs, `http://localhost[:port]/…` and `http://127.0.0.1[:port]/…`, any port, as Entra allows
//!   for loopback. Later errors redirect to the redirect URI with `error`, `error_description`
//!   and `state`. Only `response_type=code` and `response_mode=query` are served.
//! - A sign-in completes through the pages (a person in a browser) or the control API
//!   (`POST /_sandbox/sign-ins`, in `control.rs`), both through [`SignIns::complete_device`] and
//!   [`SignIns::complete_request`]. Whether the user did MFA is a choice on the page (checked by
//!   default) and is carried into every refresh token that descends from the sign-in.
//! - Pending sign-ins and codes live in memory only: they are not persisted with
//!   `--state-file` and not in the state dump, and `/_sandbox/reset` drops them.

use super::context::Shared;
use super::entra::{EntraError, entra_error};
use super::fixture::Fixture;
use super::http::{Base, Ctx};
use super::state::World;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// `grant_type` of the device authorization grant.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Lifetime of a device code in seconds (Entra's `expires_in`).
pub const DEVICE_CODE_SECONDS: i64 = 900;
/// Lifetime of an authorization code in seconds (Entra: 10 minutes).
pub const AUTH_CODE_SECONDS: i64 = 600;
/// How long anything is remembered after it lapsed (so an expired code still says "expired").
const FORGET_AFTER_SECONDS: i64 = 3600;

/// Routes of the sign-in endpoints and pages.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device_code))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize))
        .route("/{tenant}/login", post(login))
        .route("/devicelogin", get(device_page).post(device_login))
}

/// The pending sign-ins and unredeemed codes of a sandbox (in memory only).
#[derive(Debug, Clone, Default)]
pub struct SignIns {
    devices: Vec<DeviceCode>,
    requests: Vec<AuthorizeRequest>,
    codes: Vec<AuthCode>,
}

/// A device code and what became of its sign-in.
#[derive(Debug, Clone)]
struct DeviceCode {
    device_code: String,
    user_code: String,
    client_id: String,
    scope: String,
    created: DateTime<Utc>,
    outcome: Outcome,
    redeemed: bool,
}

/// The outcome of a device-code sign-in.
#[derive(Debug, Clone)]
enum Outcome {
    Pending,
    Approved(SignedIn),
    Declined,
}

/// An authorization request waiting for the person on the sign-in page.
#[derive(Debug, Clone)]
struct AuthorizeRequest {
    id: String,
    tenant: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    challenge: Option<(String, String)>,
    login_hint: String,
    created: DateTime<Utc>,
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

/// The sandbox's clock: the wall clock plus every advance of `/_sandbox/clock`.
pub fn sandbox_now(shared: &Shared) -> DateTime<Utc> {
    shared.now() + shared.clock_advanced()
}

/// The tenant a user signs in to: `organizations` and `common` stand for the user's home tenant
/// (every sandbox user's is the partner tenant), anything else is a tenant id or domain.
pub fn sign_in_tenant(world: &World, tenant: &str) -> Option<String> {
    if tenant.eq_ignore_ascii_case("organizations") || tenant.eq_ignore_ascii_case("common") {
        return Some(world.partner.tenant_id.clone());
    }
    world.resolve_tenant(tenant)
}

/// The UPN the control API signs in when none is named: the user of the built-in fixture's
/// [`super::defaults::PARTNER_REFRESH_TOKEN`] (the partner's GDAP admin).
pub fn default_user(fixture: &Fixture) -> Option<String> {
    fixture
        .apps
        .iter()
        .flat_map(|a| a.refresh_tokens.iter())
        .find(|rt| rt.token == super::defaults::PARTNER_REFRESH_TOKEN)
        .map(|rt| rt.user.clone())
}

/// An Entra error before it is rendered: as a JSON answer, an error page or a redirect.
struct Fault {
    error: &'static str,
    code: u32,
    text: String,
}

impl Fault {
    fn new(error: &'static str, code: u32, text: impl Into<String>) -> Fault {
        Fault {
            error,
            code,
            text: text.into(),
        }
    }

    /// The token-endpoint style answer (HTTP 400).
    fn entra(self) -> EntraError {
        entra_error(400, self.error, self.code, &self.text)
    }
}

/// Entra's AADSTS700016 for a client id that no app has (`unauthorized_client`).
pub fn unknown_client(client_id: &str, tenant: &str) -> EntraError {
    unknown_client_fault(client_id, tenant).entra()
}

fn unknown_client_fault(client_id: &str, tenant: &str) -> Fault {
    Fault::new(
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
        ),
    )
}

fn tenant_not_found(tenant: &str) -> Fault {
    Fault::new(
        "invalid_request",
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    )
}

fn missing(name: &str) -> Fault {
    Fault::new(
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

fn unknown_resource(resource: &str, tid: &str) -> Fault {
    Fault::new(
        "invalid_resource",
        500011,
        format!("The resource principal named {resource} was not found in the tenant named {tid}."),
    )
}

fn non_empty<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// A random opaque value with a prefix.
fn random(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Upper case without separators: how a typed user code is compared.
fn normalise_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether `verifier` answers the PKCE `challenge` (RFC 7636, `S256` or `plain`).
fn pkce_matches(verifier: &str, challenge: &str, method: &str) -> bool {
    if method == "S256" {
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref()) == challenge
    } else {
        verifier == challenge
    }
}

impl SignIns {
    fn forget_lapsed(&mut self, now: DateTime<Utc>) {
        let keep = |created: DateTime<Utc>, life: i64| {
            now - created < Duration::seconds(life + FORGET_AFTER_SECONDS)
        };
        self.devices
            .retain(|d| keep(d.created, DEVICE_CODE_SECONDS));
        self.requests.retain(|r| keep(r.created, 0));
        self.codes.retain(|c| keep(c.created, AUTH_CODE_SECONDS));
    }

    /// A user code no live device code has: nine letters, like Entra's.
    fn fresh_user_code(&self) -> String {
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
fn error_params(error: &str, code: u32, text: &str) -> Vec<(String, String)> {
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
fn redirect_url(redirect_uri: &str, params: Vec<(String, String)>, state: Option<&str>) -> String {
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

/// Whether a redirect URI is one of the app's: loopback over plain HTTP, any port, no fragment.
fn loopback(redirect_uri: &str) -> bool {
    url::Url::parse(redirect_uri).is_ok_and(|u| {
        u.scheme() == "http"
            && matches!(u.host_str(), Some("localhost" | "127.0.0.1"))
            && u.fragment().is_none()
            && u.username().is_empty()
    })
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store, no-cache"),
    );
    response
}

fn found(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    super::http::set_header(response.headers_mut(), header::LOCATION, location);
    no_store(response)
}

async fn device_code(
    State(shared): Ctx,
    Base(base): Base,
    Path(tenant): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    match start_device_flow(&shared, &base, &tenant, &form) {
        Ok(body) => no_store(axum::Json(body).into_response()),
        Err(e) => e.into_response(),
    }
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`: a new device code and user code.
fn start_device_flow(
    shared: &Shared,
    base: &str,
    tenant: &str,
    form: &HashMap<String, String>,
) -> Result<Value, EntraError> {
    let now = sandbox_now(shared);
    let mut world = shared.world();
    let tid = sign_in_tenant(&world, tenant).ok_or_else(|| tenant_not_found(tenant).entra())?;
    let client_id = non_empty(form, "client_id").ok_or_else(|| missing("client_id").entra())?;
    if !world.apps.contains_key(client_id) {
        return Err(unknown_client(client_id, &tid));
    }
    let scope = non_empty(form, "scope").ok_or_else(|| missing("scope").entra())?;
    if let Some(Err(bad)) = super::token::resource_of(scope) {
        return Err(unknown_resource(&bad, &tid).entra());
    }
    world.sign_ins.forget_lapsed(now);
    let user_code = world.sign_ins.fresh_user_code();
    let device_code = random("DAQABIQEAAAB");
    world.sign_ins.devices.push(DeviceCode {
        device_code: device_code.clone(),
        user_code: user_code.clone(),
        client_id: client_id.to_string(),
        scope: scope.to_string(),
        created: now,
        outcome: Outcome::Pending,
        redeemed: false,
    });
    let uri = format!("{base}/devicelogin");
    let interval = shared.options.device_code_interval.as_secs().max(1);
    Ok(json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": DEVICE_CODE_SECONDS,
        "interval": interval,
        "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."),
    }))
}

/// How an authorization request is refused: an error page (the redirect URI cannot be trusted)
/// or a redirect with the error.
enum Refusal {
    Page(Fault),
    Redirect(Fault),
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: validates the request and shows the sign-in page.
async fn authorize(
    State(shared): Ctx,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = sandbox_now(&shared);
    let mut world = shared.world();
    let request = match authorization_request(&world, &tenant, &q, now) {
        Ok(request) => request,
        Err(Refusal::Page(fault)) => return error_page(fault.code, &fault.text),
        Err(Refusal::Redirect(fault)) => {
            let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
            let params = error_params(fault.error, fault.code, &fault.text);
            let state = q.get("state").map(String::as_str);
            return found(&redirect_url(&redirect, params, state));
        }
    };
    let app = world.app_display_name(&request.client_id);
    let page = signin_page(&request, &app, &request.login_hint, None);
    world.sign_ins.forget_lapsed(now);
    world.sign_ins.requests.push(request);
    page
}

fn authorization_request(
    world: &World,
    tenant: &str,
    q: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<AuthorizeRequest, Refusal> {
    let tid =
        sign_in_tenant(world, tenant).ok_or_else(|| Refusal::Page(tenant_not_found(tenant)))?;
    let client_id = non_empty(q, "client_id").ok_or_else(|| Refusal::Page(missing("client_id")))?;
    if !world.apps.contains_key(client_id) {
        return Err(Refusal::Page(unknown_client_fault(client_id, &tid)));
    }
    let Some(redirect_uri) = non_empty(q, "redirect_uri") else {
        return Err(Refusal::Page(Fault::new(
            "invalid_request",
            500113,
            "No reply address is registered for the application.",
        )));
    };
    if !loopback(redirect_uri) {
        return Err(Refusal::Page(Fault::new(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this."
            ),
        )));
    }
    check_response(q).map_err(Refusal::Redirect)?;
    let scope = non_empty(q, "scope").ok_or_else(|| Refusal::Redirect(missing("scope")))?;
    if let Some(Err(bad)) = super::token::resource_of(scope) {
        return Err(Refusal::Redirect(unknown_resource(&bad, &tid)));
    }
    let challenge = match (
        non_empty(q, "code_challenge"),
        non_empty(q, "code_challenge_method"),
    ) {
        (None, _) => None,
        (Some(c), None | Some("plain")) => Some((c.to_string(), "plain".to_string())),
        (Some(c), Some("S256")) => Some((c.to_string(), "S256".to_string())),
        (Some(_), Some(other)) => {
            return Err(Refusal::Redirect(Fault::new(
                "invalid_request",
                90023,
                format!(
                    "The code_challenge_method '{other}' is not supported; use 'S256' or 'plain'."
                ),
            )));
        }
    };
    if q.get("prompt").is_some_and(|p| p == "none") {
        return Err(Refusal::Redirect(Fault::new(
            "login_required",
            50058,
            "A silent sign-in request was sent but no user is signed in.",
        )));
    }
    Ok(AuthorizeRequest {
        id: random("sandbox-request-"),
        tenant: tenant.to_string(),
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scope: scope.to_string(),
        state: q.get("state").cloned(),
        nonce: q.get("nonce").cloned(),
        challenge,
        login_hint: q.get("login_hint").cloned().unwrap_or_default(),
        created: now,
    })
}

/// `response_type` must be `code` (the app has no implicit grant) and `response_mode` `query`.
fn check_response(q: &HashMap<String, String>) -> Result<(), Fault> {
    let Some(response_type) = non_empty(q, "response_type") else {
        return Err(missing("response_type"));
    };
    if response_type != "code" {
        let code = if response_type.contains("id_token") {
            700054
        } else {
            700051
        };
        return Err(Fault::new(
            "unsupported_response_type",
            code,
            format!("response_type '{response_type}' is not enabled for the application."),
        ));
    }
    match non_empty(q, "response_mode") {
        None | Some("query") => Ok(()),
        Some(other) => Err(Fault::new(
            "invalid_request",
            90023,
            format!("The sandbox serves response_mode 'query' only, not '{other}'."),
        )),
    }
}

/// `POST /{tenant}/login`: the sign-in page's form (`request`, `login`, `mfa`, `action`).
async fn login(
    State(shared): Ctx,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let now = sandbox_now(&shared);
    let mut world = shared.world();
    let id = form.get("request").cloned().unwrap_or_default();
    let Some(request) = world.sign_ins.requests.iter().find(|r| r.id == id).cloned() else {
        return message_page(
            StatusCode::BAD_REQUEST,
            "Sign-in request not found",
            "This sign-in request is unknown, expired or already completed. Start the sign-in again from the application.",
        );
    };
    let decision = if form.get("action").is_some_and(|a| a == "cancel") {
        Decision::Decline
    } else {
        let upn = form.get("login").map(|l| l.trim()).unwrap_or_default();
        let Some(user) = world.partner_user_by_upn(upn) else {
            let app = world.app_display_name(&request.client_id);
            let error = no_such_user(upn, &world);
            return signin_page(&request, &app, upn, Some(&error));
        };
        Decision::Approve {
            user_id: user.id.clone(),
            mfa: form.contains_key("mfa"),
        }
    };
    match world.sign_ins.complete_request(&id, decision, now) {
        Some(url) => found(&url),
        None => error_page(90015, "The sign-in request is no longer pending."),
    }
}

/// AADSTS50034, as the sign-in page shows it.
fn no_such_user(upn: &str, world: &World) -> String {
    format!(
        "AADSTS50034: The user account {upn} does not exist in the {} directory. To sign into this application, the account must be added to the directory.",
        world.partner.tenant_id
    )
}

/// `GET /devicelogin`: the page where a person enters the user code.
async fn device_page() -> Response {
    device_form("", "", None)
}

/// `POST /devicelogin`: the device page's form (`code`, `login`, `mfa`, `action`).
async fn device_login(
    State(shared): Ctx,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let now = sandbox_now(&shared);
    let mut world = shared.world();
    let code = form.get("code").map(|c| c.trim()).unwrap_or_default();
    let upn = form.get("login").map(|l| l.trim()).unwrap_or_default();
    let cancel = form.get("action").is_some_and(|a| a == "cancel");
    let decision = if cancel {
        Decision::Decline
    } else {
        match world.partner_user_by_upn(upn) {
            Some(user) => Decision::Approve {
                user_id: user.id.clone(),
                mfa: form.contains_key("mfa"),
            },
            None if world.sign_ins.pending_user_code(code, now) => {
                let error = no_such_user(upn, &world);
                return device_form(code, upn, Some(&error));
            }
            None => return device_form(code, upn, Some(DeviceProblem::Unknown.text())),
        }
    };
    match world.sign_ins.complete_device(code, decision, now) {
        Ok(()) if cancel => message_page(
            StatusCode::OK,
            "Sign-in cancelled",
            "You declined to sign in on the other device. You may now close this window.",
        ),
        Ok(()) => message_page(
            StatusCode::OK,
            "You have signed in",
            "You have signed in to the application on your device. You may now close this window.",
        ),
        Err(problem) => device_form(code, upn, Some(problem.text())),
    }
}

impl SignIns {
    fn pending_user_code(&self, code: &str, now: DateTime<Utc>) -> bool {
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

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<style>body{{font-family:sans-serif;max-width:28em;margin:3em auto;padding:0 1em}}\
label{{display:block;margin:.8em 0}}input[type=text]{{width:100%;padding:.4em}}\
.error{{color:#a80000}}button{{padding:.4em 1.2em;margin-right:.5em}}</style></head>\
<body><p>gdap-operator sandbox — emulated Microsoft sign-in</p><h1>{title}</h1>\n{body}\n</body></html>\n",
        title = esc(title)
    );
    no_store((status, Html(page)).into_response())
}

fn error_line(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default()
}

/// The authorization request's sign-in page.
fn signin_page(
    request: &AuthorizeRequest,
    app: &str,
    login: &str,
    error: Option<&str>,
) -> Response {
    let body = format!(
        "<p>Sign in to continue to {app}.</p>{error}\
<form method=\"post\" action=\"/{tenant}/login\">\
<input type=\"hidden\" name=\"request\" value=\"{id}\">\
<label>User principal name <input type=\"text\" name=\"login\" value=\"{login}\" autofocus></label>\
<label><input type=\"checkbox\" name=\"mfa\" value=\"1\" checked> Verify with a second factor (MFA)</label>\
<button type=\"submit\" name=\"action\" value=\"signin\">Sign in</button>\
<button type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button></form>",
        app = esc(app),
        error = error_line(error),
        tenant = esc(&request.tenant),
        id = esc(&request.id),
        login = esc(login),
    );
    html(StatusCode::OK, "Sign in", &body)
}

/// The device page.
fn device_form(code: &str, login: &str, error: Option<&str>) -> Response {
    let body = format!(
        "<p>Enter the code displayed on your device, and the account to sign in with.</p>{error}\
<form method=\"post\" action=\"/devicelogin\">\
<label>Code <input type=\"text\" name=\"code\" value=\"{code}\" autofocus></label>\
<label>User principal name <input type=\"text\" name=\"login\" value=\"{login}\"></label>\
<label><input type=\"checkbox\" name=\"mfa\" value=\"1\" checked> Verify with a second factor (MFA)</label>\
<button type=\"submit\" name=\"action\" value=\"continue\">Continue</button>\
<button type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button></form>",
        error = error_line(error),
        code = esc(code),
        login = esc(login),
    );
    html(StatusCode::OK, "Enter code", &body)
}

/// An Entra error page (no redirect).
fn error_page(code: u32, text: &str) -> Response {
    let body = format!(
        "<p class=\"error\" id=\"error\">AADSTS{code}: {}</p>",
        esc(text)
    );
    html(
        StatusCode::BAD_REQUEST,
        "Sorry, but we're having trouble signing you in.",
        &body,
    )
}

fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    html(
        status,
        title,
        &format!("<p id=\"message\">{}</p>", esc(text)),
    )
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
    fn only_loopback_http_redirects_are_the_apps() {
        assert!(loopback("http://localhost:8400"));
        assert!(loopback("http://127.0.0.1:53123/callback"));
        assert!(loopback("http://localhost/"));
        assert!(!loopback("https://localhost:8400"));
        assert!(!loopback("http://evil.example:8400"));
        assert!(!loopback("http://localhost.evil.example/"));
        assert!(!loopback("http://localhost:8400/#x"));
        assert!(!loopback("not a url"));
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

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
use super::entra::EntraError;
use super::fixture::Fixture;
use super::http::{Base, Ctx};
use super::scope::resource_of;
use super::signin_fault::{
    Fault, missing, non_empty, tenant_not_found, unknown_client, unknown_client_fault,
    unknown_resource,
};
use super::signin_state::{
    AuthorizeRequest, DEVICE_CODE_SECONDS, Decision, DeviceCode, DeviceProblem, Outcome,
    error_params, random, redirect_url,
};
use super::state::World;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Routes of the sign-in endpoints and pages.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device_code))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize))
        .route("/{tenant}/login", post(login))
        .route("/devicelogin", get(device_page).post(device_login))
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
    if let Some(Err(bad)) = resource_of(scope) {
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
    if let Some(Err(bad)) = resource_of(scope) {
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
}

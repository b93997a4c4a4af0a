//! Login: the Entra v2.0 token endpoint, OpenID discovery and JWKS.
//!
//! Contract: `POST /{tenant}/oauth2/v2.0/token` supports `client_credentials` (app-only; refused
//! with AADSTS7000229 unless the app has a service principal in that tenant; `roles` = the app
//! roles granted there, left out when there are none) and `refresh_token` (partner user; a new
//! refresh token is returned and the presented one stays valid, as on Entra — with strict refresh
//! tokens it dies once that successor is used; inactivity beyond 90 days and session revocation fail with `invalid_grant`; a customer tenant needs GDAP
//! access and the customer's consent of the app (AADSTS90099 without its service principal,
//! AADSTS65001 without a delegated grant on the resource), and `scp` there is what the customer
//! granted; `amr` says whether the refresh token's original sign-in used MFA, and rotation keeps
//! that fact). The client authenticates with a client secret or a signed client assertion
//! (`assertion.rs`); `appidacr` records which (`1`/`2`). A failed request never consumes the
//! refresh token. The interactive grants, `urn:ietf:params:oauth:grant-type:device_code` and
//! `authorization_code` (with PKCE), redeem what `signin.rs` recorded and answer like the refresh
//! grant: all three user grants mint through one function, so a sign-in's refresh token works
//! exactly like a fixture token and carries the sign-in's MFA fact. User grants addressed to
//! `organizations`/`common` are for the user's home tenant (the partner tenant). Errors come from
//! `entra.rs`, tokens from `jwt.rs`.

use super::context::Shared;
use super::entra::{EntraError, classify_aadsts, entra_error};
use super::http::{Base, Ctx};
use super::jwt::base_claims;
use super::scope::resource_of;
use super::signin::{sandbox_now, sign_in_tenant};
use super::signin_fault::unknown_client;
use super::signin_state::{DEVICE_CODE_GRANT, SignedIn};
use super::state::World;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Refresh tokens expire after this much inactivity (AADSTS700082).
pub const REFRESH_TOKEN_DAYS: i64 = 90;

/// Routes of the login service.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/{tenant}/.well-known/openid-configuration", get(discovery))
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
}

async fn jwks(State(shared): Ctx) -> Response {
    axum::Json(shared.keys.jwks()).into_response()
}

async fn discovery(State(shared): Ctx, Base(base): Base, Path(tenant): Path<String>) -> Response {
    let tid = shared
        .world()
        .resolve_tenant(&tenant)
        .unwrap_or(tenant.clone());
    axum::Json(json!({
        "issuer": format!("{base}/{tid}/v2.0"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token", DEVICE_CODE_GRANT],
        "code_challenge_methods_supported": ["plain", "S256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "tid", "preferred_username", "ver"],
        "request_uri_parameter_supported": false,
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }))
    .into_response()
}

fn client_secret(
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    }
}

async fn token(
    State(shared): Ctx,
    Base(base): Base,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    match issue(&shared, &base, &tenant, &headers, &form) {
        Ok(body) => {
            let mut r = axum::Json(body).into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store, no-cache"),
            );
            r
        }
        Err(e) => e.into_response(),
    }
}

fn issue(
    shared: &Shared,
    base: &str,
    tenant: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Value, EntraError> {
    let grant = form
        .get("grant_type")
        .map(String::as_str)
        .unwrap_or_default()
        .to_string();
    let mut world = shared.world();
    let user_grant = matches!(
        grant.as_str(),
        "refresh_token" | "authorization_code" | DEVICE_CODE_GRANT
    );
    let tid = if user_grant {
        sign_in_tenant(&world, tenant)
    } else {
        world.resolve_tenant(tenant)
    };
    let tid = tid.ok_or_else(|| {
        entra_error(400, "invalid_request", 90002, &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."))
    })?;
    if let Some(code) = shared.lock(&shared.token_faults).take(&tid, &grant) {
        let (status, error, text) = classify_aadsts(code);
        return Err(entra_error(status, error, code, text));
    }
    let (client_id, secret) = client_secret(form, headers);
    let client_id = client_id.ok_or_else(|| {
        entra_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    })?;
    let Some(app) = world.apps.get(&client_id).cloned() else {
        return Err(unknown_client(&client_id, &tid));
    };
    let audiences = token_urls(base, tenant, &tid);
    let appidacr = authenticate_client(&app, secret, form, &audiences, shared.now())?;
    // A code is checked before the scope: a token request may leave `scope` out and get the
    // scopes the sign-in was for.
    let now = sandbox_now(shared);
    let signed_in = match grant.as_str() {
        DEVICE_CODE_GRANT => Some(world.sign_ins.device_grant(form, &app.client_id, now)?),
        "authorization_code" => Some(world.sign_ins.code_grant(form, &app.client_id, now)?),
        _ => None,
    };
    let scope = match form.get("scope").filter(|s| !s.trim().is_empty()) {
        Some(scope) => scope.clone(),
        None => world
            .sign_ins
            .stored_scope(&grant, form)
            .unwrap_or_default(),
    };
    let (aud, resource_app) = match resource_of(&scope) {
        None => {
            return Err(entra_error(
                400,
                "invalid_request",
                90014,
                "The required field 'scope' is missing from the credential.",
            ));
        }
        Some(Err(bad)) => {
            return Err(entra_error(
                400,
                "invalid_resource",
                500011,
                &format!(
                    "The resource principal named {bad} was not found in the tenant named {tid}."
                ),
            ));
        }
        Some(Ok(r)) => r,
    };
    let lifetime = shared.options.token_lifetime.as_secs() as i64;
    let issuer = format!("{base}/{tid}/v2.0");
    let request = UserTokenRequest {
        aud,
        issuer: &issuer,
        tid: &tid,
        client_id: &app.client_id,
        appidacr,
        lifetime,
        scope: &scope,
        client_info: form.get("client_info").is_some_and(|v| v == "1"),
    };
    if let Some(who) = signed_in {
        let user = partner_user(&world, &who.user_id)?;
        gdap_access(&world, &user, &app.client_id, &tid)?;
        let scp = delegated_scopes(&world, &app, &tid, resource_app)?;
        world.sign_ins.redeem(&grant, form);
        return Ok(user_tokens(shared, world, &request, who, scp, None));
    }
    match grant.as_str() {
        "client_credentials" => {
            if !scope.split(' ').any(|s| s.ends_with("/.default")) {
                return Err(entra_error(
                    400,
                    "invalid_scope",
                    1002012,
                    &format!(
                        "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                    ),
                ));
            }
            let (oid, roles) = app_only_grant(&world, &tid, &app.client_id, resource_app)?;
            let mut claims = base_claims(aud, &issuer, &tid, &app.client_id, &oid, "app", lifetime);
            claims.appidacr = Some(appidacr.into());
            // Entra leaves `roles` out when no app role is granted (e.g. after the customer
            // revoked the consent): Graph then answers 403 to every read.
            claims.roles = (!roles.is_empty()).then_some(roles);
            let claims = serde_json::to_value(claims).unwrap_or_default();
            Ok(
                json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                      "access_token": shared.keys.sign(&claims)}),
            )
        }
        "refresh_token" => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let (user_id, mfa) = check_refresh_token(&world, &presented, &app.client_id, &tid)?;
            let scp = delegated_scopes(&world, &app, &tid, resource_app)?;
            if let Some(rt) = world.refresh_tokens.get_mut(&presented) {
                rt.redeemed_at = Some(Utc::now());
            }
            let who = SignedIn {
                user_id,
                mfa,
                nonce: None,
            };
            Ok(user_tokens(
                shared,
                world,
                &request,
                who,
                scp,
                Some(&presented),
            ))
        }
        "" => Err(entra_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )),
        other => Err(entra_error(
            400,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

/// What a user grant's tokens are for: the resource, the tenant, the client and how it
/// authenticated, the requested scopes.
struct UserTokenRequest<'a> {
    aud: &'a str,
    issuer: &'a str,
    tid: &'a str,
    client_id: &'a str,
    appidacr: &'static str,
    lifetime: i64,
    scope: &'a str,
    client_info: bool,
}

/// The answer to a successful user grant (refresh token, device code, authorization code): a
/// new refresh token that remembers the user and whether the sign-in used MFA (the successor of
/// `predecessor` when one was redeemed), an access token with `scp`, an ID token when `openid`
/// was asked (with the sign-in's `nonce`), `client_info` when asked. Persists the world.
fn user_tokens(
    shared: &Shared,
    mut world: std::sync::MutexGuard<'_, World>,
    request: &UserTokenRequest<'_>,
    who: SignedIn,
    scp: Vec<String>,
    predecessor: Option<&str>,
) -> Value {
    let new_rt = format!("sandbox-rt-{}", uuid::Uuid::new_v4().simple());
    world.refresh_tokens.insert(
        new_rt.clone(),
        super::state::RefreshToken {
            user_id: who.user_id.clone(),
            client_id: request.client_id.to_string(),
            issued_at: Utc::now(),
            redeemed_at: None,
            successor: None,
            mfa: who.mfa,
        },
    );
    if let Some(old) = predecessor.and_then(|p| world.refresh_tokens.get_mut(p)) {
        old.successor = Some(new_rt.clone());
    }
    let user = world.partner_user(&who.user_id).cloned();
    drop(world);
    shared.persist();
    let (upn, name) = user
        .map(|u| (u.user_principal_name, u.display_name))
        .unwrap_or_default();
    let (aud, tid, lifetime) = (request.aud, request.tid, request.lifetime);
    let mut claims = base_claims(
        aud,
        request.issuer,
        tid,
        request.client_id,
        &who.user_id,
        "user",
        lifetime,
    );
    claims.upn = Some(upn.clone());
    claims.scp = Some(scp.join(" "));
    claims.amr = Some(amr(who.mfa));
    claims.appidacr = Some(request.appidacr.into());
    let claims = serde_json::to_value(claims).unwrap_or_default();
    let mut body = json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
        "scope": scp.iter().map(|s| format!("{aud}/{s}")).collect::<Vec<_>>().join(" "),
        "access_token": shared.keys.sign(&claims), "refresh_token": new_rt});
    if request.scope.split(' ').any(|s| s == "openid") {
        let subject = IdTokenSubject {
            oid: &who.user_id,
            upn: &upn,
            name: &name,
            nonce: who.nonce.as_deref(),
        };
        body["id_token"] = json!(id_token(shared, request, &subject));
    }
    if request.client_info {
        body["client_info"] =
            json!(URL_SAFE_NO_PAD.encode(json!({"uid": who.user_id, "utid": tid}).to_string()));
    }
    body
}

/// The `amr` of a user's tokens: Entra lists every method used, `mfa` when a second factor was.
fn amr(mfa: bool) -> Vec<String> {
    let methods: &[&str] = if mfa { &["pwd", "mfa"] } else { &["pwd"] };
    methods.iter().map(|m| m.to_string()).collect()
}

/// The token URLs a client assertion may name as `aud` for a request to `tenant` (as written in
/// the path, or resolved to the tenant id; v2.0 or v1 endpoint).
fn token_urls(base: &str, tenant: &str, tid: &str) -> Vec<String> {
    [tenant, tid]
        .iter()
        .flat_map(|t| {
            [
                format!("{base}/{t}/oauth2/v2.0/token"),
                format!("{base}/{t}/oauth2/token"),
            ]
        })
        .collect()
}

/// Authenticates the client: a signed client assertion (certificate) when one is sent, else the
/// client secret. Returns the `appidacr` of its tokens (`2` certificate, `1` secret).
fn authenticate_client(
    app: &super::state::App,
    secret: Option<String>,
    form: &HashMap<String, String>,
    audiences: &[String],
    now: chrono::DateTime<Utc>,
) -> Result<&'static str, EntraError> {
    if form.contains_key("client_assertion") || form.contains_key("client_assertion_type") {
        super::assertion::verify(app, form, audiences, Utc::now())?;
        return Ok("2");
    }
    match secret {
        None => Err(entra_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        Some(s) if !app.secrets.contains(&s) => Err(entra_error(
            401,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        )),
        Some(s) if secret_expired(app, &s, now) => Err(entra_error(
            401,
            "invalid_client",
            7000222,
            &format!(
                "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
                app.client_id
            ),
        )),
        Some(_) => Ok("1"),
    }
}

/// Whether the secret's recorded validity (`passwordCredentials`, same order as the secrets)
/// ended before `now` (Entra then refuses it with AADSTS7000222).
fn secret_expired(app: &super::state::App, secret: &str, now: chrono::DateTime<Utc>) -> bool {
    app.secrets
        .iter()
        .position(|s| s == secret)
        .and_then(|i| app.password_credentials.get(i))
        .is_some_and(|c| c.end_date_time <= now)
}

/// Who an ID token is about.
struct IdTokenSubject<'a> {
    oid: &'a str,
    upn: &'a str,
    name: &'a str,
    nonce: Option<&'a str>,
}

fn id_token(shared: &Shared, request: &UserTokenRequest<'_>, who: &IdTokenSubject<'_>) -> String {
    let now = Utc::now().timestamp();
    let mut claims = json!({"aud": request.client_id, "iss": request.issuer, "iat": now, "nbf": now,
        "exp": now + request.lifetime, "name": who.name, "oid": who.oid,
        "preferred_username": who.upn, "sub": who.oid, "tid": request.tid, "ver": "2.0"});
    if let Some(nonce) = who.nonce {
        claims["nonce"] = json!(nonce);
    }
    shared.keys.sign(&claims)
}

/// The service principal id and app roles of an app-only token in a tenant.
fn app_only_grant(
    world: &World,
    tid: &str,
    client: &str,
    resource_app: &str,
) -> Result<(String, Vec<String>), EntraError> {
    if tid == world.partner.tenant_id {
        let roles = world
            .apps
            .get(client)
            .and_then(|a| a.partner_app_roles.get(resource_app))
            .cloned()
            .unwrap_or_default();
        return Ok((
            super::ids::derived_id(&format!("partner-sp/{client}")),
            roles,
        ));
    }
    let tenant = world
        .tenants
        .get(tid)
        .ok_or_else(|| entra_error(400, "invalid_request", 90002, "Tenant not found."))?;
    let sp = tenant.service_principal(client).ok_or_else(|| {
        entra_error(
            400,
            "unauthorized_client",
            7000229,
            &format!(
                "The client application {client} is missing service principal in the tenant {tid}."
            ),
        )
    })?;
    if tenant.service_principal(resource_app).is_none() {
        return Err(entra_error(
            400,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {resource_app} was not found in the tenant named {}.",
                tenant.display_name
            ),
        ));
    }
    Ok((
        sp.id.clone(),
        tenant.granted_app_roles(client, resource_app, Utc::now()),
    ))
}

/// The `scp` of a delegated token for `resource_app` in `tid`. In the partner tenant (the app's
/// home) they are the app registration's delegated permissions. In a customer tenant Entra builds
/// them from the customer's consent: the app must be authorized there (its service principal
/// exists, else AADSTS90099 — Partner Center's consent or an admin consent creates it), and the
/// scopes are those of its delegated grants (`oauth2PermissionGrants`) on the resource (none:
/// AADSTS65001).
fn delegated_scopes(
    world: &World,
    app: &super::state::App,
    tid: &str,
    resource_app: &str,
) -> Result<Vec<String>, EntraError> {
    let not_consented = || {
        entra_error(
            400,
            "invalid_grant",
            65001,
            &format!(
                "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.",
                app.client_id, app.display_name
            ),
        )
    };
    let Some(tenant) = world.tenants.get(tid) else {
        let scp = app.delegated.get(resource_app).cloned().unwrap_or_default();
        return if scp.is_empty() {
            Err(not_consented())
        } else {
            Ok(scp)
        };
    };
    let client = tenant.service_principal(&app.client_id).ok_or_else(|| {
        entra_error(
            400,
            "invalid_grant",
            90099,
            &format!(
                "The application '{}' ({}) has not been authorized in the tenant '{tid}'. Applications must be authorized to access the customer tenant before partner delegated administrators can use them. Provide pre-consent or execute the appropriate Partner Center API to authorize the application.",
                app.client_id, app.display_name
            ),
        )
    })?;
    let resource = tenant.service_principal(resource_app).ok_or_else(|| {
        entra_error(
            400,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {resource_app} was not found in the tenant named {}.",
                tenant.display_name
            ),
        )
    })?;
    let mut scopes: Vec<String> = Vec::new();
    for grant in tenant
        .grants
        .iter()
        .filter(|g| g.client_id == client.id && g.resource_id == resource.id)
        .filter(|g| super::consistency::reached(g.effective_at, Utc::now()))
    {
        for scope in grant.scope.split(' ').filter(|s| !s.is_empty()) {
            if !scopes.iter().any(|s| s.eq_ignore_ascii_case(scope)) {
                scopes.push(scope.to_string());
            }
        }
    }
    if scopes.is_empty() {
        return Err(not_consented());
    }
    Ok(scopes)
}

/// Checks a refresh token for a request to `tid` without redeeming it (a request that fails
/// later must not consume it); returns the user's object id and whether the sign-in used MFA.
fn check_refresh_token(
    world: &World,
    presented: &str,
    client: &str,
    tid: &str,
) -> Result<(String, bool), EntraError> {
    let now = Utc::now();
    let rt = world
        .refresh_tokens
        .get(presented)
        .cloned()
        .ok_or_else(|| {
            entra_error(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        })?;
    if rt.client_id != client {
        return Err(entra_error(
            400,
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed: the refresh token was issued to a different client.",
        ));
    }
    let successor_used = rt
        .successor
        .as_ref()
        .and_then(|next| world.refresh_tokens.get(next))
        .is_none_or(|next| next.redeemed_at.is_some());
    if world.consistency.strict_refresh_tokens && rt.redeemed_at.is_some() && successor_used {
        return Err(entra_error(
            400,
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed: the refresh token was rotated and its successor has been used (this sandbox runs with strict refresh tokens: it retires a refresh token once the one it was exchanged for is used).",
        ));
    }
    if now - rt.issued_at > Duration::days(REFRESH_TOKEN_DAYS) {
        return Err(entra_error(
            400,
            "invalid_grant",
            700082,
            &format!(
                "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for {} days.",
                rt.issued_at.to_rfc3339(),
                REFRESH_TOKEN_DAYS
            ),
        ));
    }
    let user = partner_user(world, &rt.user_id)?;
    if user
        .sessions_revoked_at
        .is_some_and(|at| at >= rt.issued_at)
    {
        return Err(entra_error(
            400,
            "invalid_grant",
            50173,
            &format!(
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
                rt.issued_at.to_rfc3339(),
                user.sessions_revoked_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            ),
        ));
    }
    gdap_access(world, &user, client, tid)?;
    Ok((user.id, rt.mfa))
}

/// The partner user with this object id (AADSTS50034 when there is none).
fn partner_user(world: &World, user_id: &str) -> Result<super::state::PartnerUser, EntraError> {
    world.partner_user(user_id).cloned().ok_or_else(|| {
        entra_error(
            400,
            "invalid_grant",
            50034,
            "The user account does not exist in the directory.",
        )
    })
}

/// A partner user gets delegated tokens for a customer tenant only with GDAP access there
/// (AADSTS50020).
fn gdap_access(
    world: &World,
    user: &super::state::PartnerUser,
    client: &str,
    tid: &str,
) -> Result<(), EntraError> {
    let now = Utc::now();
    if tid != world.partner.tenant_id && world.gdap_roles(&user.id, tid, now).is_empty() {
        return Err(entra_error(
            400,
            "invalid_grant",
            50020,
            &format!(
                "User account '{}' from identity provider 'https://sts.windows.net/{}/' does not exist in tenant '{tid}' and cannot access the application '{client}' in that tenant (no active GDAP access).",
                user.user_principal_name, world.partner.tenant_id
            ),
        ));
    }
    Ok(())
}

impl World {
    /// Resolves a tenant id or domain (partner or customer) to a tenant id.
    pub fn resolve_tenant(&self, tenant: &str) -> Option<String> {
        let t = tenant.to_ascii_lowercase();
        if t == self.partner.tenant_id || t == self.partner.domain.to_ascii_lowercase() {
            return Some(self.partner.tenant_id.clone());
        }
        self.tenants
            .values()
            .find(|c| c.id == t || c.primary_domain.eq_ignore_ascii_case(&t))
            .map(|c| c.id.clone())
    }
}

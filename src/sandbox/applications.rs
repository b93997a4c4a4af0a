//! The partner's app registrations in the partner tenant: `GET /v1.0/applications(appId='…')`
//! and `GET /v1.0/applications?$filter=appId eq '…'`, with `passwordCredentials` (the client
//! secrets: `hint` = the value's first three characters, `keyId`, `displayName`,
//! `startDateTime`, `endDateTime` from the fixture's `endsInDays`, `secretText: null`) and
//! `keyCredentials` (the certificates: `customKeyIdentifier` = base64 of the SHA-1 thumbprint,
//! `type` `AsymmetricX509Cert`, `usage` `Verify`, the subject as `displayName`, the
//! certificate's validity).
//!
//! Contract: a token of the partner tenant; delegated with `Application.Read.All`,
//! `Application.ReadWrite.All`, `Directory.Read.All`, `Directory.ReadWrite.All` or
//! `Directory.AccessAsUser.All`, or app-only with one of those application permissions (not
//! `Directory.AccessAsUser.All`); else `403 Authorization_RequestDenied`. An unknown appId is
//! `404 Request_ResourceNotFound` (the alternate key) or an empty collection (the filter).
//! `$select` applies.

use super::auth::Denied;
use super::context::Shared;
use super::directory::{collection, request_error, resource_missing};
use super::groups::partner_read;
use super::http::{Base, Ctx, json_response};
use super::ids::derived_id;
use super::odata::{Query, project};
use super::state::App;
use crate::microsoft::certificate::{pem_to_der, thumbprint_sha1_base64};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Delegated scopes that allow reading applications.
const SCOPES: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
];

/// Application permissions that allow reading applications.
const APP_ROLES: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Routes of `/applications`.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/applications", get(list))
        .route("/v1.0/applications(appId={key}", get(by_app_id))
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn key_credential(pem: &str) -> Option<Value> {
    let der = pem_to_der(pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    let thumbprint = thumbprint_sha1_base64(&der);
    let validity = cert.validity();
    let at = |t: x509_parser::time::ASN1Time| {
        chrono::DateTime::from_timestamp(t.timestamp(), 0).map(time)
    };
    Some(json!({
        "customKeyIdentifier": thumbprint,
        "displayName": cert.subject().to_string(),
        "endDateTime": at(validity.not_after),
        "key": null,
        "keyId": derived_id(&format!("certificate/{thumbprint}")),
        "startDateTime": at(validity.not_before),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }))
}

fn application(app: &App) -> Map<String, Value> {
    let secrets: Vec<Value> = app
        .password_credentials
        .iter()
        .map(|p| {
            json!({
                "customKeyIdentifier": null,
                "displayName": (!p.display_name.is_empty()).then_some(&p.display_name),
                "endDateTime": time(p.end_date_time),
                "hint": p.hint,
                "keyId": p.key_id,
                "secretText": null,
                "startDateTime": time(p.start_date_time),
            })
        })
        .collect();
    let certificates: Vec<Value> = app
        .certificates
        .iter()
        .filter_map(|pem| key_credential(pem))
        .collect();
    let mut object = Map::new();
    object.insert(
        "id".into(),
        json!(derived_id(&format!("application/{}", app.client_id))),
    );
    object.insert("appId".into(), json!(app.client_id));
    object.insert("displayName".into(), json!(app.display_name));
    object.insert("publisherDomain".into(), Value::Null);
    object.insert("signInAudience".into(), json!("AzureADMultipleOrgs"));
    object.insert("passwordCredentials".into(), Value::Array(secrets));
    object.insert("keyCredentials".into(), Value::Array(certificates));
    object
}

async fn list(
    State(shared): Ctx,
    Base(base): Base,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    partner_read(&shared, &headers, "/applications", SCOPES, APP_ROLES)?;
    let world = shared.world();
    let items = world
        .apps
        .values()
        .map(|a| Value::Object(application(a)))
        .collect();
    let body = collection(&base, "applications", items, &Query::parse(q.as_deref()))?;
    Ok(json_response(200, body, None))
}

/// `applications(appId='…')`: the route captures `'…')`.
async fn by_app_id(
    State(shared): Ctx,
    Base(base): Base,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Denied> {
    partner_read(&shared, &headers, "/applications", SCOPES, APP_ROLES)?;
    let Some(app_id) = key
        .strip_suffix(')')
        .and_then(|k| k.strip_prefix('\''))
        .and_then(|k| k.strip_suffix('\''))
    else {
        return Err(request_error(&format!(
            "Invalid alternate key: expected applications(appId='{{appId}}'), got applications(appId={key}."
        ))
        .into());
    };
    let world = shared.world();
    let Some(app) = world
        .apps
        .values()
        .find(|a| a.client_id.eq_ignore_ascii_case(app_id))
    else {
        return Err(resource_missing(&format!("appId='{app_id}'")).into());
    };
    let mut body = project(
        application(app),
        Query::parse(q.as_deref()).select().as_deref(),
    );
    body.insert(
        "@odata.context".into(),
        json!(format!("{base}/v1.0/$metadata#applications/$entity")),
    );
    Ok(json_response(200, Value::Object(body), None))
}

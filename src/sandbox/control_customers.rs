//! `POST /_sandbox/customers`: the partner signs a new customer while the sandbox runs (for a
//! test that watches a fleet onboard it). Its tenant is built as a fixture customer's.

use super::control_error::{ControlError, Result, body_json, err};
use super::fixture::CustomerFixture;
use super::http::{Ctx, json_response};
use super::pc_customers::customer as pc_customer;
use super::state::{SignRefused, World};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value};

/// The fields of `POST /_sandbox/customers` (the fixture's names for a customer).
const CUSTOMER_FIELDS: [&str; 4] = [
    "tenantId",
    "displayName",
    "primaryDomain",
    "servicePrincipals",
];

/// A customer to sign, as the request asks for it.
struct Signing {
    name: String,
    tenant_id: Option<String>,
    domain: Option<String>,
    principals: Option<Vec<String>>,
}

/// `POST /_sandbox/customers {"displayName", "tenantId"?, "primaryDomain"?,
/// "servicePrincipals"?}`: the partner signs a new customer. Its tenant is built as a fixture
/// customer's ([`CustomerFixture::signed`]: Microsoft Graph's service principal unless
/// `servicePrincipals` says otherwise, nothing consented, no SKUs, no users); `tenantId` defaults
/// to a fresh id of the world, `primaryDomain` to the name's initial `onmicrosoft.com` domain.
/// Answers `201` with the customer as Partner Center lists it; `409` when the tenant id or the
/// domain is taken; `400` naming the field for bad input.
pub async fn sign_customer(State(shared): Ctx, body: Bytes) -> Result<Response> {
    let signing = parse(&body)?;
    let now = shared.now();
    let mut world = shared.world();
    let tenant_id = signing.tenant_id.unwrap_or_else(|| world.next_id());
    let domain = match signing.domain {
        Some(domain) => domain,
        None => free_initial_domain(&world, &signing.name, &tenant_id),
    };
    let mut customer = CustomerFixture::signed(&tenant_id, &signing.name, &domain);
    if let Some(principals) = signing.principals {
        customer.service_principals = principals;
    }
    match world.sign_customer(&customer, now) {
        Ok(tenant) => Ok(json_response(201, pc_customer(tenant), None)),
        Err(SignRefused::TenantExists) => Err(err(
            409,
            format!("tenantId: tenant {tenant_id} exists already"),
        )),
        Err(SignRefused::DomainTaken) => Err(err(
            409,
            format!("primaryDomain: {domain} is another tenant's domain"),
        )),
    }
}

/// The request's customer, or a 400 naming the field.
fn parse(body: &Bytes) -> Result<Signing> {
    let Value::Object(body) = body_json(body)? else {
        return Err(err(
            400,
            "body must be a customer object {\"displayName\": …}",
        ));
    };
    if let Some(unknown) = body.keys().find(|k| !CUSTOMER_FIELDS.contains(&k.as_str())) {
        let known = CUSTOMER_FIELDS.join(", ");
        return Err(err(
            400,
            format!("{unknown}: unknown field; a customer has {known}"),
        ));
    }
    let name = text(&body, "displayName")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err(400, "displayName: required, the company's name"))?;
    let tenant_id = text(&body, "tenantId")?
        .map(|t| guid(&t).ok_or_else(|| err(400, format!("tenantId: {t:?} is not a GUID"))))
        .transpose()?;
    let domain = text(&body, "primaryDomain")?
        .map(|d| d.to_ascii_lowercase())
        .map(|d| match is_domain(&d) {
            true => Ok(d),
            false => Err(err(
                400,
                format!("primaryDomain: {d:?} is not a domain name"),
            )),
        })
        .transpose()?;
    let principals = principals(&body)?;
    Ok(Signing {
        name,
        tenant_id,
        domain,
        principals,
    })
}

/// The string field `name` (trimmed), `None` when absent or null.
fn text(body: &Map<String, Value>, name: &str) -> Result<Option<String>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(err(400, format!("{name}: must be a string"))),
    }
}

/// `servicePrincipals`: a list of appIds, `None` when absent or null.
fn principals(body: &Map<String, Value>) -> Result<Option<Vec<String>>> {
    let refused =
        || -> ControlError { err(400, "servicePrincipals: must be a list of appIds (GUIDs)") };
    match body.get("servicePrincipals") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().and_then(guid))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(refused),
        Some(_) => Err(refused()),
    }
}

/// The customer's initial domain: the name's under `onmicrosoft.com` (or the tenant id's), with
/// the first free number when that is taken — initial domains are unique.
fn free_initial_domain(world: &World, name: &str, tenant_id: &str) -> String {
    let initial = CustomerFixture::initial_domain(name)
        .unwrap_or_else(|| format!("tenant{}.onmicrosoft.com", &tenant_id[..8]));
    let (label, rest) = initial.split_once('.').unwrap_or((&initial, ""));
    let mut domain = initial.clone();
    let mut n = 1;
    while world.domain_taken(&domain) {
        n += 1;
        domain = format!("{label}{n}.{rest}");
    }
    domain
}

/// `text` as a lower-case hyphenated GUID, `None` when it is not one.
fn guid(text: &str) -> Option<String> {
    let id = uuid::Uuid::try_parse(text).ok()?.hyphenated().to_string();
    (id == text.to_ascii_lowercase()).then_some(id)
}

/// Whether `domain` is a DNS name of two or more labels of letters, digits and inner hyphens.
fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

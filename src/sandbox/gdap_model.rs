//! GDAP wire model: JSON serialisation of relationships, requests, assignments and operations,
//! ETags, paging of GDAP collections, and the validation rules of relationship bodies.
//!
//! Contract: timestamps are ISO-8601 UTC with seven fractional digits; ETags are weak
//! (`W/"…"`) and change on every write; `activatedDateTime`/`endDateTime` are `null` until
//! active. Validation failures are `400 badRequest` with a message naming the field (Microsoft
//! does not document these errors; see docs/sandbox.md).

use super::http::{GraphError, bad_request};
use super::odata::{Filter, Query, decode_token, encode_token, link};
use super::state::{Assignment, Operation, RelRequest, Relationship};
use crate::api::RoleCatalog;
use crate::api::roles::{GLOBAL_ADMINISTRATOR_ID, GdapSupport};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// Path of the relationships collection.
pub const RELATIONSHIPS: &str = "/v1.0/tenantRelationships/delegatedAdminRelationships";
/// Maximum `$top` of GDAP collections.
pub const MAX_TOP: i64 = 300;
/// Page size when no `$top` is given.
pub const DEFAULT_TOP: i64 = 100;

/// ISO-8601 with seven fractional digits, as Graph sends.
pub fn ts(t: DateTime<Utc>) -> String {
    let s = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    format!("{}Z", &s[..s.len() - 2])
}

fn ts_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(ts(t))).unwrap_or(Value::Null)
}

/// A weak ETag for an object id and version.
pub fn etag(id: &str, version: u64) -> String {
    let raw = format!(
        "'\"{:016x}-{version:08x}\"'",
        super::generate::mix(id.len() as u64 ^ fnv(id))
    );
    format!(
        "W/\"{}\"",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x1000_0000_01b3)
    })
}

fn roles_json(roles: &[String]) -> Value {
    json!({"unifiedRoles": roles.iter().map(|r| json!({"roleDefinitionId": r})).collect::<Vec<_>>()})
}

/// A relationship as Graph returns it.
pub fn relationship_json(r: &Relationship) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminRelationship",
        "@odata.etag": etag(&r.id, r.version),
        "id": r.id,
        "displayName": r.display_name,
        "duration": r.duration,
        "autoExtendDuration": r.auto_extend_duration,
        "customer": r.customer.as_ref().map(|c| json!({"tenantId": c.tenant_id, "displayName": c.display_name})),
        "accessDetails": roles_json(&r.roles),
        "status": r.status,
        "createdDateTime": ts(r.created),
        "lastModifiedDateTime": ts(r.last_modified),
        "activatedDateTime": ts_opt(r.activated),
        "endDateTime": ts_opt(r.end),
    })
}

/// A relationship request as Graph returns it.
pub fn request_json(q: &RelRequest) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminRelationshipRequest",
        "@odata.etag": etag(&q.id, q.version),
        "id": q.id, "action": q.action, "status": q.status,
        "createdDateTime": ts(q.created), "lastModifiedDateTime": ts(q.last_modified),
    })
}

/// An access assignment as Graph returns it.
pub fn assignment_json(a: &Assignment) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminAccessAssignment",
        "@odata.etag": etag(&a.id, a.version),
        "id": a.id,
        "status": a.status,
        "accessContainer": {"accessContainerId": a.group_id, "accessContainerType": "securityGroup"},
        "accessDetails": roles_json(&a.roles),
        "createdDateTime": ts(a.created),
        "lastModifiedDateTime": ts(a.last_modified),
    })
}

/// An operation as Graph returns it; `delegatedAdminRelationshipUpdate` is an evolvable enum
/// member shown only with `Prefer: include-unknown-enum-members`.
pub fn operation_json(op: &Operation, data: &Value, include_unknown: bool) -> Value {
    let kind = if op.operation_type == "delegatedAdminRelationshipUpdate" && !include_unknown {
        "unknownFutureValue"
    } else {
        op.operation_type.as_str()
    };
    json!({
        "@odata.type": "#microsoft.graph.delegatedAdminRelationshipOperation",
        "@odata.etag": etag(&op.id, op.version),
        "id": op.id, "operationType": kind, "status": op.status, "data": data.to_string(),
        "createdDateTime": ts(op.created), "lastModifiedDateTime": ts(op.last_modified),
    })
}

/// One page of a GDAP collection, honouring `$filter`, `$orderby`, `$select`, `$top` (≤ 300),
/// `$count` and `$skiptoken`; `@odata.nextLink` keeps the other options.
/// A page of one relationship's sub-collection (`accessAssignments`, `requests`, `operations`),
/// with its nextLink path and `@odata.context`.
pub fn relationship_page(
    items: Vec<Value>,
    q: &Query,
    base: &str,
    relationship_id: &str,
    collection: &str,
) -> Result<Value, GraphError> {
    let path = format!("{RELATIONSHIPS}/{relationship_id}/{collection}");
    let context = format!(
        "tenantRelationships/delegatedAdminRelationships('{relationship_id}')/{collection}"
    );
    page(items, q, base, &path, &context)
}

pub fn page(
    items: Vec<Value>,
    q: &Query,
    base: &str,
    path: &str,
    context: &str,
) -> Result<Value, GraphError> {
    let top = q
        .top()
        .map_err(|t| bad_request(&format!("Invalid value '{t}' for $top.")))?
        .unwrap_or(DEFAULT_TOP);
    if !(1..=MAX_TOP).contains(&top) {
        return Err(bad_request(&format!(
            "The value of $top must be between 1 and {MAX_TOP}; got {top}."
        )));
    }
    let filter = q
        .get("filter")
        .map(Filter::parse)
        .transpose()
        .map_err(|m| bad_request(&m))?;
    let offset: usize = match q.skiptoken() {
        Some(t) => decode_token(t).ok_or_else(|| bad_request("The $skiptoken is invalid."))?,
        None => 0,
    };
    let mut matching: Vec<Value> = items
        .into_iter()
        .filter(|v| filter.as_ref().is_none_or(|f| f.matches(v)))
        .collect();
    if let Some(order) = q.get("orderby") {
        order_by(&mut matching, order);
    }
    let total = matching.len();
    let select = q.select();
    let value: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(top as usize)
        .map(|v| match v {
            Value::Object(m) => Value::Object(super::odata::project(m, select.as_deref())),
            other => other,
        })
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{base}/v1.0/$metadata#{context}")),
    );
    if q.count() {
        body.insert("@odata.count".into(), json!(total));
    }
    let next = offset + value.len();
    body.insert("value".into(), Value::Array(value));
    if next < total {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for name in ["filter", "select", "count", "orderby"] {
            if let Some(v) = q.get(name) {
                pairs.push((dollar(name), v.to_string()));
            }
        }
        pairs.push(("$top", top.to_string()));
        pairs.push(("$skiptoken", encode_token(&next)));
        body.insert("@odata.nextLink".into(), json!(link(base, path, &pairs)));
    }
    Ok(Value::Object(body))
}

/// Sorts by `$orderby=prop [asc|desc]` (string order of the property; stable).
fn order_by(items: &mut [Value], order: &str) {
    let mut parts = order.split_whitespace();
    let prop = parts.next().unwrap_or_default().to_string();
    let desc = parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
    let key = |v: &Value| match v.get(&prop) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    items.sort_by(|a, b| {
        if desc {
            key(b).cmp(&key(a))
        } else {
            key(a).cmp(&key(b))
        }
    });
}

fn dollar(name: &str) -> &'static str {
    match name {
        "filter" => "$filter",
        "select" => "$select",
        "orderby" => "$orderby",
        _ => "$count",
    }
}

/// Parses an ISO-8601 duration into whole days (`P730D`, `P2Y`, `P1Y6M`, `P4W`; Y = 365 days,
/// M = 30 days; time parts must be zero).
pub fn duration_days(text: &str) -> Option<i64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut days = 0i64;
    let mut num = String::new();
    for c in date.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        days += n * match c {
            'Y' => 365,
            'M' => 30,
            'W' => 7,
            'D' => 1,
            _ => return None,
        };
    }
    if !num.is_empty() || (date.is_empty() && time.is_empty()) {
        return None;
    }
    let time_zero = time.is_empty()
        || time
            .trim_end_matches(['H', 'M', 'S'])
            .chars()
            .all(|c| c == '0' || c.is_ascii_alphabetic());
    time_zero.then_some(days)
}

/// Validates a displayName (1–50 characters).
pub fn check_display_name(name: &Value) -> Result<String, GraphError> {
    let name = name
        .as_str()
        .ok_or_else(|| bad_request("The displayName property is required and must be a string."))?;
    let len = name.chars().count();
    if len == 0 || len > 50 {
        return Err(bad_request(&format!(
            "The displayName must be between 1 and 50 characters long; it has {len}."
        )));
    }
    Ok(name.to_string())
}

/// Validates a duration (P1D–P2Y, i.e. 1–730 days); returns (text, days).
pub fn check_duration(value: &Value) -> Result<(String, i64), GraphError> {
    let text = value.as_str().ok_or_else(|| {
        bad_request("The duration property is required and must be an ISO 8601 duration.")
    })?;
    let days = duration_days(text).ok_or_else(|| {
        bad_request(&format!(
            "The duration '{text}' is not a valid ISO 8601 duration."
        ))
    })?;
    if !(1..=730).contains(&days) {
        return Err(bad_request(&format!(
            "The duration '{text}' must be between P1D and P2Y (730 days)."
        )));
    }
    Ok((text.to_string(), days))
}

/// Validates autoExtendDuration (`PT0S`, `P0D` or `P180D`).
pub fn check_auto_extend(value: &Value) -> Result<String, GraphError> {
    match value.as_str() {
        Some(v @ ("PT0S" | "P0D" | "P180D")) => Ok(v.to_string()),
        _ => Err(bad_request(&format!(
            "The autoExtendDuration '{}' is not supported; use PT0S, P0D or P180D.",
            value.as_str().unwrap_or("?")
        ))),
    }
}

/// Validates `accessDetails.unifiedRoles`: non-empty, unique, built-in GDAP roles.
pub fn check_roles(access: &Value) -> Result<Vec<String>, GraphError> {
    let list = access
        .get("unifiedRoles")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_request("The accessDetails.unifiedRoles property is required."))?;
    if list.is_empty() {
        return Err(bad_request(
            "The accessDetails.unifiedRoles must contain at least one role.",
        ));
    }
    let mut roles = Vec::new();
    for item in list {
        let id = item
            .get("roleDefinitionId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let known = RoleCatalog::builtin().all().iter().find(|r| r.id == id);
        match known {
            Some(r) if r.gdap_support != GdapSupport::DoNotUse => {}
            Some(r) => {
                return Err(bad_request(&format!(
                    "The role '{}' ({id}) is not supported in GDAP relationships.",
                    r.name
                )));
            }
            None => {
                return Err(bad_request(&format!(
                    "The roleDefinitionId '{id}' is not a valid Microsoft Entra built-in role template id."
                )));
            }
        }
        if roles.contains(&id) {
            return Err(bad_request(&format!(
                "The roleDefinitionId '{id}' is listed more than once."
            )));
        }
        roles.push(id);
    }
    Ok(roles)
}

/// Global Administrator cannot be combined with auto-extension.
pub fn check_ga_auto_extend(roles: &[String], auto_extend: &str) -> Result<(), GraphError> {
    if auto_extend == "P180D" && roles.iter().any(|r| r == GLOBAL_ADMINISTRATOR_ID) {
        return Err(bad_request(
            "Relationships that include the Global Administrator role cannot be auto-extended; set autoExtendDuration to PT0S.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_to_days() {
        assert_eq!(duration_days("P730D"), Some(730));
        assert_eq!(duration_days("P2Y"), Some(730));
        assert_eq!(duration_days("P1Y6M"), Some(545));
        assert_eq!(duration_days("P4W"), Some(28));
        assert_eq!(duration_days("PT0S"), Some(0));
        assert_eq!(duration_days("730"), None);
        assert_eq!(duration_days("P"), None);
        assert_eq!(duration_days("PT5H"), None);
    }

    #[test]
    fn timestamps_have_seven_fraction_digits_and_etags_change_with_version() {
        let t = DateTime::parse_from_rfc3339("2025-01-07T10:15:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ts(t), "2025-01-07T10:15:00.1234567Z");
        assert_ne!(etag("a", 1), etag("a", 2));
        assert!(etag("a", 1).starts_with("W/\""));
    }
}

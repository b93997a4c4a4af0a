//! OData query options: parsing `$select`, `$top`, `$filter`, `$skiptoken`, and opaque page
//! tokens.
//!
//! Contract: [`Query::parse`] accepts the raw query string (option names case-insensitive, with
//! or without `$`). Page tokens are base64url-encoded JSON chosen by each endpoint; clients must
//! treat them as opaque. [`Filter`] understands the small `$filter` language the sandbox needs:
//! `prop eq 'value'` clauses (property paths with `/`) joined by `and`/`or` (no mixing, no
//! parentheses), and `prop in ('a','b')`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Parsed query options.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
            .unwrap_or_default();
        Query { pairs }
    }

    /// The value of an option (`name` without `$`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.trim_start_matches('$').eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `$select` as a list of property names.
    pub fn select(&self) -> Option<Vec<String>> {
        self.get("select").map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
    }

    /// `$top` parsed (Err when not a number).
    pub fn top(&self) -> Result<Option<i64>, String> {
        self.get("top")
            .map(|t| t.trim().parse::<i64>().map_err(|_| t.to_string()))
            .transpose()
    }

    /// `$skiptoken`.
    pub fn skiptoken(&self) -> Option<&str> {
        self.get("skiptoken")
    }

    /// Whether `$count=true`.
    pub fn count(&self) -> bool {
        self.get("count")
            .is_some_and(|c| c.eq_ignore_ascii_case("true"))
    }
}

/// Encodes a page token.
pub fn encode_token<T: Serialize>(token: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(token).unwrap_or_default())
}

/// Decodes a page token.
pub fn decode_token<T: DeserializeOwned>(token: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.trim()).ok()?).ok()
}

/// A link with query options, percent-encoded.
pub fn link(base: &str, path: &str, pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return format!("{base}{path}");
    }
    format!(
        "{base}{path}?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// Keeps only selected properties (plus `id` and annotations); identity when no `$select`.
pub fn project(object: Map<String, Value>, select: Option<&[String]>) -> Map<String, Value> {
    let Some(select) = select else { return object };
    object
        .into_iter()
        .filter(|(k, _)| {
            k == "id" || k.starts_with('@') || select.iter().any(|s| s.eq_ignore_ascii_case(k))
        })
        .collect()
}

/// A parsed `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    any: bool,
    clauses: Vec<(String, Vec<String>)>,
}

impl Filter {
    /// Parses a filter expression; Err carries a message for Graph's `400`.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let lower = text.to_ascii_lowercase();
        let (any, parts): (bool, Vec<&str>) = if lower.contains(" or ") {
            (true, split_ci(text, " or "))
        } else {
            (false, split_ci(text, " and "))
        };
        let clauses = parts
            .into_iter()
            .map(clause)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter { any, clauses })
    }

    /// The values that property `path` must equal (ignoring ASCII case, as [`Filter::matches`]
    /// compares) for an object to match: `Some` only when every clause must hold and one is on
    /// `path`. A handler may pass over objects whose `path` is none of these before rendering
    /// them; the filter itself still decides.
    pub fn required(&self, path: &str) -> Option<&[String]> {
        if self.any {
            return None;
        }
        let (_, values) = self.clauses.iter().find(|(p, _)| p == path)?;
        Some(values)
    }

    /// Evaluates the filter against a JSON object.
    pub fn matches(&self, object: &Value) -> bool {
        let test = |(path, values): &(String, Vec<String>)| {
            let mut v = object;
            for seg in path.split('/') {
                v = v.get(seg).unwrap_or(&Value::Null);
            }
            let actual = match v {
                Value::String(s) => s.clone(),
                Value::Null => return false,
                other => other.to_string(),
            };
            values.iter().any(|x| x.eq_ignore_ascii_case(&actual))
        };
        if self.any {
            self.clauses.iter().any(test)
        } else {
            self.clauses.iter().all(test)
        }
    }
}

fn split_ci<'a>(text: &'a str, sep: &str) -> Vec<&'a str> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(i) = lower[start..].find(sep) {
        out.push(&text[start..start + i]);
        start += i + sep.len();
    }
    out.push(&text[start..]);
    out
}

fn unquote(v: &str) -> Result<String, String> {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Ok(inner.replace("''", "'"));
    }
    if v.parse::<f64>().is_ok() || v == "true" || v == "false" {
        return Ok(v.to_string());
    }
    Err(format!("Invalid filter literal {v}."))
}

fn clause(text: &str) -> Result<(String, Vec<String>), String> {
    let t = text.trim().trim_start_matches('(').trim_end_matches(')');
    let lower = t.to_ascii_lowercase();
    if let Some(i) = lower.find(" eq ") {
        return Ok((t[..i].trim().to_string(), vec![unquote(&t[i + 4..])?]));
    }
    if let Some(i) = lower.find(" in ") {
        let list = t[i + 4..]
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')');
        let values = list
            .split(',')
            .map(unquote)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((t[..i].trim().to_string(), values));
    }
    Err(format!(
        "Invalid filter clause: '{}'. Only 'eq' and 'in' comparisons are supported.",
        text.trim()
    ))
}

#[cfg(test)]
mod tests {

    proptest::proptest! {
        /// Query strings, `$filter`s and page tokens come from clients: any of them is parsed or
        /// refused without panicking.
        #[test]
        fn arbitrary_queries_filters_and_page_tokens_never_panic(
            raw in "\\PC{0,80}|(\\$(top|select|filter|skiptoken|count)=[^&]{0,20}&?){0,4}",
            filter in "\\PC{0,60}|[a-zA-Z/]{1,12} (eq|in|EQ) [('a-z0-9, ]{0,20}( (and|or|AND) [a-z]{1,5} eq '[a-z]{0,4}'){0,3}",
            token in "\\PC{0,60}|[A-Za-z0-9_-]{0,60}",
        ) {
            let query = Query::parse(Some(&raw));
            let _ = (query.select(), query.top(), query.skiptoken(), query.count());
            if let Ok(parsed) = Filter::parse(&filter) {
                let _ = parsed.matches(&json!({"status": "active", "customer": {"tenantId": "t"}, "n": 1}));
            }
            let _ = decode_token::<Value>(&token);
        }
    }
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_match_paths_and_combinations() {
        let rel = json!({"status": "active", "customer": {"tenantId": "T1"}});
        assert!(
            Filter::parse("customer/tenantId eq 't1'")
                .unwrap()
                .matches(&rel)
        );
        assert!(
            Filter::parse("status eq 'active' and customer/tenantId eq 'T1'")
                .unwrap()
                .matches(&rel)
        );
        assert!(
            !Filter::parse("status eq 'created' and customer/tenantId eq 'T1'")
                .unwrap()
                .matches(&rel)
        );
        assert!(
            Filter::parse("status eq 'created' or status eq 'active'")
                .unwrap()
                .matches(&rel)
        );
        assert!(
            Filter::parse("status in ('created','active')")
                .unwrap()
                .matches(&rel)
        );
        assert!(Filter::parse("startswith(displayName,'a')").is_err());
    }

    #[test]
    fn a_required_value_is_one_every_match_has() {
        let required = |text: &str| {
            let filter = Filter::parse(text).unwrap();
            filter.required("displayName").map(<[String]>::to_vec)
        };
        let names = |n: &[&str]| Some(n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(required("displayName eq 'A'"), names(&["A"]));
        assert_eq!(
            required("status eq 'active' and displayName in ('a','b')"),
            names(&["a", "b"])
        );
        assert_eq!(required("status eq 'active' or displayName eq 'a'"), None);
        assert_eq!(required("status eq 'active'"), None);
        assert_eq!(required("customer/displayName eq 'a'"), None);
        // What `required` names, `matches` compares the same way (ignoring ASCII case).
        let filter = Filter::parse("displayName eq 'abc'").unwrap();
        assert!(filter.matches(&json!({"displayName": "ABC"})));
        assert!(filter.required("displayName").unwrap()[0].eq_ignore_ascii_case("ABC"));
    }

    #[test]
    fn query_options_are_case_insensitive_and_tokens_round_trip() {
        let q = Query::parse(Some("%24top=5&$select=id,displayName&$SkipToken=abc"));
        assert_eq!(q.top(), Ok(Some(5)));
        assert_eq!(q.select().unwrap(), vec!["id", "displayName"]);
        assert_eq!(q.skiptoken(), Some("abc"));
        let t: (u64, String) = decode_token(&encode_token(&(7u64, "x".to_string()))).unwrap();
        assert_eq!(t, (7, "x".into()));
    }
}

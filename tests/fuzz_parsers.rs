//! Property tests of the parsers and decoders of outside data the crate exposes (issue 15): for
//! arbitrary input none of them panics, and each keeps its contract — a duration is `P<n>D`, a
//! schedule that parses has a next run and a bounded jitter, an id put into a Graph URL stays one
//! path segment, a display name fits Microsoft's 50 characters, a sanitised message carries no
//! token. The crate-private ones (the token endpoint's answer, error envelopes, paging links,
//! the sandbox's JWTs, OData queries, `$batch` bodies and fixtures) have `proptest` unit tests
//! next to them. `PROPTEST_CASES` raises the number of cases (`make soak` sets it).

use gdap_operator::api::IsoDays;
use gdap_operator::api::naming::{MAX_DISPLAY_NAME, display_name, generation_name};
use gdap_operator::microsoft::Endpoints;
use gdap_operator::microsoft::error::{parse_retry_after, sanitize};
use gdap_operator::microsoft::models::Page;
use gdap_operator::microsoft::models::directory::{
    AppRoleAssignment, BatchResponse, CompanySubscription, OAuth2PermissionGrant, ServicePrincipal,
    SubscribedSku, User,
};
use gdap_operator::microsoft::models::gdap::{AccessAssignment, Operation, Relationship};
use gdap_operator::microsoft::models::partner_center::ApplicationConsent;
use gdap_operator::sync::schedule::Schedule;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON value, nested a few levels, with keys that the models know mixed in, so decoding
/// gets past the first field.
fn json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "id",
        "displayName",
        "status",
        "duration",
        "createdDateTime",
        "endDateTime",
        "activatedDateTime",
        "autoExtendDuration",
        "customer",
        "tenantId",
        "accessDetails",
        "unifiedRoles",
        "roleDefinitionId",
        "accessContainer",
        "accessContainerId",
        "@odata.etag",
        "@odata.nextLink",
        "@odata.deltaLink",
        "@removed",
        "value",
        "assignedLicenses",
        "skuId",
        "prepaidUnits",
        "consumedUnits",
        "appId",
        "appRoles",
        "accountEnabled",
        "userType",
        "nextLifecycleDateTime",
        "responses",
        "body",
        "applicationGrants",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        prop::sample::select(vec![
            "2022-02-10T11:24:42.3148266Z",
            "2020-08-18T12:51:51",
            "",
            "P730D",
            "PT0S",
            "active",
            "approvalPending",
            "9999-12-31T23:59:59.9999999Z",
            "-0001-01-01T00:00:00Z",
            "2022-13-45T25:61:61Z",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

/// Decodes `value` (and its text) as `T`; a decode error is fine, a panic is not.
fn decodes<T: serde::de::DeserializeOwned>(value: &Value) -> Option<T> {
    let text = value.to_string();
    let _ = serde_json::from_str::<T>(&text);
    serde_json::from_value::<T>(value.clone()).ok()
}

/// proptest's settings here: `PROPTEST_CASES` cases (256 by default); failures are printed with
/// their minimal input rather than written to a regressions file.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn day_durations_are_exactly_p_n_d(text in "\\PC{0,12}|P[0-9]{0,6}D|P[0-9]{1,3}[YMWDH]|PT[0-9]{1,3}H") {
        let parsed = text.parse::<IsoDays>();
        let shape = text.len() >= 3
            && text.len() <= 6
            && text.starts_with('P')
            && text.ends_with('D')
            && text[1..text.len() - 1].bytes().all(|b| b.is_ascii_digit());
        prop_assert_eq!(parsed.is_ok(), shape, "{:?}", text);
        if let Ok(days) = parsed {
            prop_assert_eq!(days.to_string().parse::<IsoDays>().unwrap(), days);
        }
    }

    #[test]
    fn schedules_never_panic_and_a_parsed_one_runs_and_spreads(
        text in "[0-9*/,@ a-zA-Z?LW#-]{0,40}",
        key in "\\PC{0,40}",
        seconds in 0i64..4_102_444_800,
    ) {
        if let Ok(schedule) = Schedule::parse(&text) {
            let after = chrono::DateTime::from_timestamp(seconds, 0).unwrap();
            if let Some(next) = schedule.next_after(after) {
                prop_assert!(next > after);
            }
            let jitter = schedule.jitter(&key);
            prop_assert!(jitter >= chrono::Duration::zero());
            prop_assert!(jitter <= chrono::Duration::hours(1));
            prop_assert!(schedule.interval() > chrono::Duration::zero());
        }
    }

    #[test]
    fn five_field_crons_never_panic(fields in prop::collection::vec("[0-9*/,-]{1,8}|[A-Za-z]{3}", 5)) {
        let _ = Schedule::parse(&fields.join(" "));
    }

    #[test]
    fn graph_and_partner_center_models_decode_anything_without_panicking(value in json()) {
        if let Some(r) = decodes::<Relationship>(&value) {
            let _ = r.access_details.role_ids();
        }
        decodes::<AccessAssignment>(&value);
        decodes::<Operation>(&value);
        decodes::<Page<Relationship>>(&value);
        decodes::<Page<User>>(&value);
        decodes::<Page<SubscribedSku>>(&value);
        decodes::<Page<CompanySubscription>>(&value);
        if let Some(sp) = decodes::<ServicePrincipal>(&value) {
            let _ = sp.app_role_id("User.Read.All");
        }
        decodes::<AppRoleAssignment>(&value);
        decodes::<OAuth2PermissionGrant>(&value);
        decodes::<BatchResponse>(&value);
        decodes::<ApplicationConsent>(&value);
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<Page<Relationship>>(&bytes);
        let _ = serde_json::from_slice::<Page<User>>(&bytes);
        let _ = serde_json::from_slice::<ApplicationConsent>(&bytes);
    }

    #[test]
    fn retry_after_is_bounded_or_ignored(text in "\\PC{0,40}|[0-9]{1,12}(\\.[0-9]{1,6})?|-[0-9]{1,5}") {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(value) = reqwest::header::HeaderValue::from_str(&text) {
            headers.insert(reqwest::header::RETRY_AFTER, value);
        }
        if let Some(wait) = parse_retry_after(&headers)
            && text.trim().parse::<f64>().is_ok()
        {
            prop_assert!(wait <= std::time::Duration::from_secs(86_400));
        }
    }

    #[test]
    fn sanitised_messages_are_one_short_line_without_tokens(text in "\\PC{0,400}(\neyJ[a-zA-Z0-9]{30}\\.x)?") {
        let clean = sanitize(&text);
        prop_assert!(!clean.contains('\n'));
        prop_assert!(clean.chars().count() <= 301, "{} chars", clean.chars().count());
        prop_assert!(clean.split(' ').all(|w| !(w.starts_with("eyJ") && w.len() >= 20)));
    }

    #[test]
    fn an_id_in_a_graph_url_stays_one_path_segment(id in "\\PC{0,40}|\\.\\.|\\.|[./?#%]{1,8}") {
        let endpoints = Endpoints::local("http://127.0.0.1:1", None).unwrap();
        let url = endpoints.graph_url(&["tenantRelationships", "delegatedAdminRelationships", &id]);
        let segments: Vec<&str> = url.path_segments().unwrap().collect();
        prop_assert_eq!(segments.len(), 4, "{} from {:?}", url, id);
        prop_assert_eq!(&segments[..3], &["v1.0", "tenantRelationships", "delegatedAdminRelationships"]);
        prop_assert!(url.query().is_none() && url.fragment().is_none(), "{}", url);
        prop_assert_eq!(url.host_str(), Some("127.0.0.1"));
    }

    #[test]
    fn display_names_fit_fifty_characters(
        given in prop::option::of("\\PC{0,60}"),
        name in "[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?",
        uid in "\\PC{0,40}",
        generation in 0u32..u32::MAX,
    ) {
        let base = display_name(given.as_deref(), &name, &uid);
        if given.as_deref().is_none_or(str::is_empty) {
            prop_assert!(base.chars().count() <= MAX_DISPLAY_NAME);
        }
        let successor = generation_name(&base, generation);
        if generation > 0 {
            prop_assert!(successor.chars().count() <= MAX_DISPLAY_NAME, "{}", successor);
            let suffix = format!("-r{generation}");
            prop_assert!(successor.ends_with(&suffix), "{}", successor);
        }
    }

    #[test]
    fn certificates_and_keys_of_any_shape_are_refused_without_panicking(
        certificate in "\\PC{0,200}|-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]{0,300}\n-----END CERTIFICATE-----",
        key in "\\PC{0,200}|-----BEGIN (RSA )?PRIVATE KEY-----\n[A-Za-z0-9+/=\n]{0,300}\n-----END (RSA )?PRIVATE KEY-----",
    ) {
        prop_assert!(gdap_operator::microsoft::ClientCertificate::from_pem(&certificate, &key).is_err());
    }

    #[test]
    fn role_references_of_any_shape_resolve_or_are_refused(reference in "\\PC{0,80}") {
        let catalog = gdap_operator::api::roles::RoleCatalog::builtin();
        let _ = catalog.resolve(&reference);
        let _ = catalog.find(&reference);
    }
}

#[cfg(feature = "sandbox")]
mod sandbox_fixtures {
    use gdap_operator::sandbox::Fixture;
    use proptest::prelude::*;

    /// The fixture example of docs/sandbox.md, which a test holds to the loader.
    fn example() -> String {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/sandbox.md"),
        )
        .unwrap();
        let start = doc.find("<!-- fixture-example").unwrap();
        let block = &doc[start..];
        let open = block.find("```yaml\n").unwrap() + 8;
        let close = block[open..].find("```").unwrap();
        block[open..open + close].to_string()
    }

    proptest! {
        #![proptest_config(super::config())]

        #[test]
        fn arbitrary_text_is_refused_or_loaded_never_a_panic(text in "\\PC{0,300}") {
            let _ = Fixture::from_yaml(&text);
        }

        #[test]
        fn a_mangled_fixture_is_refused_or_loaded_never_a_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4, "\\PC{0,12}"), 1..6),
        ) {
            let mut lines: Vec<String> = example().lines().map(str::to_string).collect();
            for (at, how, text) in edits {
                let i = at.index(lines.len());
                match how {
                    0 => { lines.remove(i); }
                    1 => lines[i] = format!("{}{text}", lines[i]),
                    2 => {
                        let cut = lines[i].char_indices().map(|(j, _)| j).nth(lines[i].chars().count() / 2).unwrap_or(0);
                        lines[i].truncate(cut);
                    }
                    _ => lines.insert(i, text),
                }
                if lines.is_empty() {
                    break;
                }
            }
            let _ = Fixture::from_yaml(&lines.join("\n"));
        }
    }
}

/// A Partner Center event body with fields from `json()` and GDAP-looking resource URIs.
fn webhook_body() -> impl Strategy<Value = Vec<u8>> {
    let uri = prop::string::string_regex(
        "(https?://[a-z.]{1,12}/)?(granularAdminRelationships/)?[A-Za-z0-9%/._-]{0,40}",
    )
    .unwrap();
    let name = prop::sample::select(vec![
        "granular-admin-relationship-approved",
        "granular-admin-access-assignment-deleted",
        "test-created",
        "",
    ]);
    prop_oneof![
        any::<Vec<u8>>(),
        json().prop_map(|v| v.to_string().into_bytes()),
        (name, uri, any::<i64>()).prop_map(|(name, uri, secs)| {
            let date = chrono::DateTime::from_timestamp(secs % 4_000_000_000, 0)
                .unwrap_or_default()
                .to_rfc3339();
            serde_json::json!({"EventName": name, "ResourceUri": uri, "ResourceChangeUtcDate": date})
                .to_string()
                .into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// A webhook body never panics the parser, and a relationship id read from it is one plain
    /// path segment (it only selects objects from the cache).
    #[test]
    fn webhook_events_parse_without_panic_and_name_plain_ids(body in webhook_body()) {
        if let Ok(event) = gdap_operator::webhook::event::PartnerEvent::parse(&body)
            && let Some(id) = event.relationship_id()
        {
            prop_assert!(!id.is_empty() && id.len() <= 100);
            prop_assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{id}");
        }
    }

    /// Any certificate URL is judged without panic, and one that is allowed stays under the prefix.
    #[test]
    fn certificate_urls_are_allowed_only_under_the_prefix(text in "(https?://)?[a-z0-9.:@%/?#_-]{0,60}(\\.cer)?") {
        let anchor = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
        let prefix = "https://certs.example/cert/".to_string();
        let policy = gdap_operator::webhook::certificates::CertificatePolicy::new(&[prefix], anchor, "O")
            .expect("a policy");
        if let Ok(url) = policy.allowed_url(&text) {
            prop_assert!(url.as_str().starts_with("https://certs.example/cert/"), "{url}");
            prop_assert!(url.query().is_none() && url.username().is_empty());
        }
    }
}

//! The Graph directory client against the sandbox: users paging, delta, SKUs, service
//! principals, app role assignments, permission grants and `$batch`.
#![cfg(feature = "sandbox")]

mod clients_support;

use clients_support::roles::*;
use clients_support::*;
use futures::TryStreamExt;
use gdap_operator::microsoft::models::directory::*;
use gdap_operator::microsoft::{Audience, Reason, TokenSource, UserQuery};
use gdap_operator::sandbox::defaults;

fn select() -> Vec<String> {
    [
        "id",
        "displayName",
        "userPrincipalName",
        "assignedLicenses",
        "accountEnabled",
        "userType",
        "onPremisesExtensionAttributes",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test]
async fn users_stream_across_pages_with_select() {
    let h = start().await;
    let app = h.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let query = UserQuery {
        select: select(),
        top: Some(4),
        filter: None,
    };
    let users: Vec<User> = h
        .clients
        .directory
        .users(&app, &query)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(users.len(), defaults::CONTOSO_USER_COUNT);
    let mut ids: Vec<_> = users.iter().map(|u| u.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), defaults::CONTOSO_USER_COUNT, "no user twice");
    assert!(
        users
            .iter()
            .all(|u| u.user_principal_name.is_some() && u.assigned_licenses.is_some())
    );
    assert!(
        users.iter().all(|u| u.job_title.is_none()),
        "only $select-ed properties come back"
    );
    let pages = h
        .requests()
        .await
        .into_iter()
        .filter(|(m, p, _)| m == "GET" && p == "/v1.0/users")
        .count();
    assert_eq!(pages, defaults::CONTOSO_USER_COUNT.div_ceil(4));
    h.stop().await;
}

#[tokio::test]
async fn users_delta_round_then_incremental_round() {
    let h = start().await;
    let app = h.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let dir = &h.clients.directory;
    let items: Vec<DeltaItem> = dir
        .users_delta(&app, &DeltaStart::Initial { select: select() })
        .try_collect()
        .await
        .unwrap();
    let Some(DeltaItem::DeltaLink(link)) = items.last().cloned() else {
        panic!("a round ends with its delta link")
    };
    let changed = items
        .iter()
        .filter(|i| matches!(i, DeltaItem::Changed(_)))
        .count();
    assert_eq!(changed, defaults::CONTOSO_USER_COUNT);
    assert_eq!(
        items
            .iter()
            .filter(|i| matches!(i, DeltaItem::DeltaLink(_)))
            .count(),
        1
    );

    // Change the directory: one user joins, one leaves.
    let leaver = items
        .iter()
        .find_map(|i| match i {
            DeltaItem::Changed(u) => Some(u.id.clone()),
            _ => None,
        })
        .unwrap();
    let tenant = defaults::CONTOSO_TENANT_ID;
    let joiner = serde_json::json!({"userPrincipalName": "new.joiner@contoso.example", "displayName": "New Joiner", "accountEnabled": true});
    let added = h
        .control(
            reqwest::Method::POST,
            &format!("/_sandbox/tenants/{tenant}/users"),
            Some(joiner),
        )
        .await;
    h.control(
        reqwest::Method::DELETE,
        &format!("/_sandbox/tenants/{tenant}/users/{leaver}"),
        None,
    )
    .await;

    let next: Vec<DeltaItem> = dir
        .users_delta(&app, &DeltaStart::Link(link.clone()))
        .try_collect()
        .await
        .unwrap();
    let Some(DeltaItem::DeltaLink(new_link)) = next.last().cloned() else {
        panic!()
    };
    assert_eq!(
        next.len(),
        3,
        "only the two changes and the new link: {next:?}"
    );
    assert!(
        next.iter().any(
            |i| matches!(i, DeltaItem::Changed(u) if Some(u.id.as_str()) == added["id"].as_str()
        && u.display_name.as_deref() == Some("New Joiner"))
        ),
        "{next:?}"
    );
    assert!(
        next.iter()
            .any(|i| matches!(i, DeltaItem::Removed { id, .. } if *id == leaver)),
        "{next:?}"
    );
    assert_ne!(new_link, link, "each round returns a new delta link");
    assert!(!new_link.is_empty());

    let latest: Vec<DeltaItem> = dir
        .users_delta(&app, &DeltaStart::Latest)
        .try_collect()
        .await
        .unwrap();
    assert!(
        matches!(latest.as_slice(), [DeltaItem::DeltaLink(_)]),
        "{latest:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn expired_or_garbage_delta_links_mean_full_resync() {
    let h = start().await;
    let app = h.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let link = format!("{}/v1.0/users/delta?$deltatoken=not-a-real-token", h.base());
    let err = h
        .clients
        .directory
        .users_delta(&app, &DeltaStart::Link(link))
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(
        matches!(err.reason(), Reason::DeltaExpired | Reason::InvalidRequest),
        "{err}"
    );
    h.stop().await;
}

#[tokio::test]
async fn skus_with_the_app_token_and_app_reads_with_gdap_delegation() {
    let h = start_with(quick(), credentials(), Default::default(), |_| {}).await;
    let app = h.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let dir = &h.clients.directory;
    let skus = dir.subscribed_skus(&app).await.unwrap();
    assert!(!skus.is_empty());
    assert!(
        skus.iter()
            .all(|s| s.sku_part_number.is_some() && !s.service_plans.is_empty())
    );
    assert!(
        skus.iter()
            .any(|s| s.consumed_units > 0 && s.prepaid_units.enabled >= s.consumed_units)
    );

    // Contoso granted the app only User.Read.All, LicenseAssignment.Read.All and
    // Organization.Read.All: reading
    // service principals app-only is refused with a named reason and Graph's code.
    let err = dir
        .service_principal_by_app_id(&app, defaults::apps::MICROSOFT_GRAPH)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::AccessDenied, "{err}");
    assert_eq!(err.code(), Some("Authorization_RequestDenied"));
    assert!(err.request_id().is_some());

    // As the partner's GDAP user (Directory Readers through an active relationship) it works.
    let rel = h
        .active_relationship(
            "client-dir-reader",
            defaults::CONTOSO_TENANT_ID,
            &[DIRECTORY_READERS],
        )
        .await;
    h.assign(&rel.id, defaults::HELPDESK_GROUP_ID, &[DIRECTORY_READERS])
        .await;
    let gdap_user = h
        .clients
        .tokens
        .delegated_token(defaults::CONTOSO_TENANT_ID, Audience::Graph);
    let graph_sp = dir
        .service_principal_by_app_id(&gdap_user, defaults::apps::MICROSOFT_GRAPH)
        .await
        .unwrap();
    assert_eq!(graph_sp.unwrap().app_id, defaults::apps::MICROSOFT_GRAPH);
    let absent = dir
        .service_principal_by_app_id(&gdap_user, "00000000-0000-0000-0000-0000000000aa")
        .await
        .unwrap();
    assert!(absent.is_none());
    let ours = dir
        .service_principal_by_app_id(&gdap_user, defaults::PARTNER_CLIENT_ID)
        .await
        .unwrap()
        .expect("the partner app is consented in Contoso");
    let roles = dir
        .app_role_assignments(&gdap_user, &ours.id)
        .await
        .unwrap();
    assert!(
        roles.len() >= 2,
        "Contoso granted the partner app its read roles: {roles:?}"
    );
    assert!(
        roles
            .iter()
            .all(|r| r.principal_id.as_deref() == Some(ours.id.as_str()))
    );
    let grants = dir
        .oauth2_permission_grants(&gdap_user, &ours.id)
        .await
        .unwrap();
    assert!(grants.iter().all(|g| g.client_id == ours.id));
    h.stop().await;
}

#[tokio::test]
async fn batch_answers_in_request_order_and_caps_size() {
    let h = start().await;
    let app = h.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let requests = vec![
        BatchRequest::get("1", "/users?$select=id&$top=2"),
        BatchRequest::get("2", "/subscribedSkus"),
        BatchRequest::get("3", "/subscribedSkus?$select=skuId,skuPartNumber"),
        BatchRequest::get("4", "/servicePrincipals?$select=id"),
    ];
    let answers = h.clients.directory.batch(&app, &requests).await.unwrap();
    assert_eq!(
        answers.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3", "4"]
    );
    assert!(answers[..3].iter().all(|a| a.status == 200), "{answers:?}");
    assert_eq!(
        answers[3].status, 403,
        "an inner refusal does not fail the batch"
    );
    let too_many: Vec<_> = (0..21)
        .map(|i| BatchRequest::get(i.to_string(), "/users"))
        .collect();
    let err = h
        .clients
        .directory
        .batch(&app, &too_many)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::InvalidRequest);
    h.stop().await;
}

#[tokio::test]
async fn reads_need_a_graph_token_for_that_tenant() {
    let h = start().await;
    let pc = h.partner_center();
    assert_eq!(
        pc.audience(),
        gdap_operator::microsoft::Audience::PartnerCenter
    );
    let err = h.clients.directory.subscribed_skus(&pc).await.unwrap_err();
    assert_eq!(err.reason(), Reason::WrongToken);
    assert_eq!(h.clients.tokens.grants_made(), 0);
    h.stop().await;
}

//! The clients' authentication against the sandbox: certificate credentials (signed client
//! assertions) for both grants, `MfaRequired` for a sign-in without MFA, dropping cached app-only
//! tokens after a consent change, and the consent pieces the AppConsent controller builds on —
//! service principals, app role assignments and Partner Center consents — written only with the
//! partner user's delegated token.
#![cfg(feature = "sandbox")]

mod clients_support;

use clients_support::roles::*;
use clients_support::*;
use gdap_operator::microsoft::models::directory::NewAppRoleAssignment;
use gdap_operator::microsoft::models::partner_center::{ApplicationConsent, ApplicationGrant};
use gdap_operator::microsoft::{
    Audience, ClientCredential, PartnerCredentials, Reason, TokenSource,
};
use gdap_operator::sandbox::defaults;

fn certificate_credentials() -> PartnerCredentials {
    PartnerCredentials {
        client_credential: ClientCredential::certificate(
            defaults::PARTNER_CLIENT_CERTIFICATE_PEM,
            defaults::PARTNER_CLIENT_KEY_PEM,
        )
        .unwrap(),
        ..credentials()
    }
}

/// The claims of a bearer token, unverified.
fn claims_of(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_certificate_credential_serves_both_grants() {
    let h = start_with(
        quick(),
        certificate_credentials(),
        Default::default(),
        |_| {},
    )
    .await;
    let app = h.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let bearer = app.bearer(None).await.unwrap();
    assert_eq!(claims_of(bearer.expose())["appidacr"], "2");
    let skus = h.clients.directory.subscribed_skus(&app).await.unwrap();
    assert!(!skus.is_empty());
    let graph = h.graph();
    let bearer = graph.bearer(None).await.unwrap();
    let c = claims_of(bearer.expose());
    assert_eq!(
        (c["idtyp"].as_str(), c["appidacr"].as_str()),
        (Some("user"), Some("2"))
    );
    h.clients
        .gdap
        .list_relationships(&graph, &Default::default())
        .await
        .unwrap();
    assert_eq!(h.rotations(), 1, "the refresh-token grant rotated as usual");
    h.stop().await;
}

#[tokio::test]
async fn an_unregistered_certificate_is_named_without_key_material() {
    let key_pem = include_str!("../src/sandbox/signing-key.pem");
    let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["not-registered".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    let creds = PartnerCredentials {
        client_credential: ClientCredential::certificate(&cert, key_pem).unwrap(),
        ..credentials()
    };
    let h = start_with(quick(), creds, Default::default(), |_| {}).await;
    let err = h
        .clients
        .tokens
        .app_token(defaults::CONTOSO_TENANT_ID)
        .bearer(None)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::CertificateNotAccepted, "{err}");
    assert_eq!(err.aadsts(), Some(700027));
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(text.contains("upload the certificate"), "{text}");
    assert!(!text.contains("eyJ") && !text.contains("MII"), "{text}");
    h.stop().await;
}

fn graph_consent(scopes: &[&str]) -> ApplicationConsent {
    ApplicationConsent {
        application_id: defaults::PARTNER_CLIENT_ID.into(),
        display_name: None,
        application_grants: vec![ApplicationGrant::new(
            defaults::apps::MICROSOFT_GRAPH,
            scopes.iter().copied(),
        )],
    }
}

#[tokio::test]
async fn a_sign_in_without_mfa_is_reported_as_mfa_required() {
    let creds = PartnerCredentials {
        refresh_token: defaults::PARTNER_NO_MFA_REFRESH_TOKEN.into(),
        ..credentials()
    };
    let h = start_with(quick(), creds, Default::default(), |_| {}).await;
    let pc = h.partner_center();
    let err = h
        .clients
        .partner_center
        .create_application_consent(
            &pc,
            defaults::CONTOSO_TENANT_ID,
            &graph_consent(&["User.Read"]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::MfaRequired, "{err}");
    assert_eq!((err.status(), err.code()), (Some(401), Some("900421")));
    assert!(
        err.to_string().contains("sign in again interactively"),
        "says what to do: {err}"
    );
    assert_eq!(
        h.clients.tokens.grants_made(),
        1,
        "no second refresh-token grant: a fresh token from the same sign-in lacks MFA too"
    );
    // Graph does not check it: the GDAP API still works with this sign-in.
    h.clients
        .gdap
        .list_relationships(&h.graph(), &Default::default())
        .await
        .unwrap();
    h.stop().await;

    // The MFA-backed sign-in of the same user passes that check (and is then refused for lacking
    // a consent-capable GDAP role).
    let h = start().await;
    let pc = h.partner_center();
    let err = h
        .clients
        .partner_center
        .create_application_consent(
            &pc,
            defaults::CONTOSO_TENANT_ID,
            &graph_consent(&["User.Read"]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::PartnerCenterForbidden, "{err}");
    h.stop().await;
}

#[tokio::test]
async fn invalidating_app_tokens_makes_a_consent_change_visible() {
    let h = start().await;
    let app = h.clients.tokens.app_token(defaults::CONTOSO_TENANT_ID);
    let dir = &h.clients.directory;
    dir.subscribed_skus(&app).await.unwrap();
    h.control(
        reqwest::Method::POST,
        &format!(
            "/_sandbox/tenants/{}/consents/{}/revoke",
            defaults::CONTOSO_TENANT_ID,
            defaults::PARTNER_CLIENT_ID
        ),
        None,
    )
    .await;
    dir.subscribed_skus(&app)
        .await
        .expect("the cached token still carries the roles it was issued with");
    assert_eq!(h.clients.tokens.grants_made(), 1);
    let other = h.clients.tokens.app_token(defaults::NORTHWIND_TENANT_ID);
    other.bearer(None).await.unwrap();
    assert_eq!(
        h.clients
            .tokens
            .invalidate_app_tokens(defaults::CONTOSO_TENANT_ID),
        1,
        "only Contoso's app-only token is dropped"
    );
    let made = h.clients.tokens.grants_made();
    let err = dir.subscribed_skus(&app).await.unwrap_err();
    assert_eq!(
        err.reason(),
        Reason::NoPermissions,
        "the new token carries no roles at all: {err}"
    );
    assert!(
        h.clients.tokens.grants_made() > made,
        "a new Contoso token was fetched"
    );
    let made = h.clients.tokens.grants_made();
    other.bearer(None).await.unwrap();
    assert_eq!(h.clients.tokens.grants_made(), made, "Northwind's kept");
    // Delegated tokens are dropped on their own: app-only ones stay.
    let delegated = h
        .clients
        .tokens
        .delegated_token(defaults::NORTHWIND_TENANT_ID, Audience::Graph);
    let _ = delegated.bearer(None).await;
    assert_eq!(
        h.clients
            .tokens
            .invalidate_delegated_tokens(defaults::NORTHWIND_TENANT_ID),
        1,
        "only the delegated token is dropped"
    );
    other.bearer(None).await.unwrap();
    assert_eq!(
        h.clients
            .tokens
            .invalidate_app_tokens(defaults::NORTHWIND_TENANT_ID),
        1,
        "the app-only token was kept"
    );
    h.stop().await;
}

#[tokio::test]
async fn consent_pieces_are_written_with_the_delegated_token() {
    let h = start_with(quick(), credentials(), Default::default(), |_| {}).await;
    let customer = defaults::FABRIKAM_TENANT_ID;
    let rel = h
        .active_relationship("client-auth-apps", customer, &[APPLICATION_ADMIN])
        .await;
    h.assign(&rel.id, defaults::APP_ADMINS_GROUP_ID, &[APPLICATION_ADMIN])
        .await;
    let dir = &h.clients.directory;
    let gdap_user = h.clients.tokens.delegated_token(customer, Audience::Graph);

    // Before any consent Entra gives the partner user no token for the app in the customer
    // (AADSTS90099): the app must be authorized there first, which Partner Center's consent
    // does without a customer token. Its scopes are what the delegated token then carries.
    let refused = gdap_user.bearer(None).await.unwrap_err();
    assert_eq!(refused.reason(), Reason::ConsentMissing, "{refused}");
    assert_eq!(refused.aadsts(), Some(90099));
    let pc = h.partner_center();
    let consent = graph_consent(&[
        "User.Read",
        "Directory.Read.All",
        "Application.ReadWrite.All",
        "AppRoleAssignment.ReadWrite.All",
    ]);
    let pcs = &h.clients.partner_center;
    pcs.create_application_consent(&pc, customer, &consent)
        .await
        .unwrap();
    let exists = pcs
        .create_application_consent(&pc, customer, &consent)
        .await
        .unwrap_err();
    assert_eq!(exists.reason(), Reason::AlreadyExists, "{exists}");
    let ours = dir
        .service_principal_by_app_id(&gdap_user, defaults::PARTNER_CLIENT_ID)
        .await
        .unwrap()
        .expect("the consent created the app's service principal");
    let grants = dir
        .oauth2_permission_grants(&gdap_user, &ours.id)
        .await
        .unwrap();
    assert_eq!(
        grants[0].scope,
        "User.Read Directory.Read.All Application.ReadWrite.All AppRoleAssignment.ReadWrite.All"
    );

    // A missing resource service principal is found and created; a second create says so.
    let o365 = defaults::apps::OFFICE365_MANAGEMENT;
    assert!(
        dir.service_principal_by_app_id(&gdap_user, o365)
            .await
            .unwrap()
            .is_none()
    );
    let created = dir
        .create_service_principal(&gdap_user, o365)
        .await
        .unwrap();
    assert_eq!(created.app_id, o365);
    let again = dir
        .create_service_principal(&gdap_user, o365)
        .await
        .unwrap_err();
    assert_eq!(again.reason(), Reason::AlreadyExists, "{again}");

    // Application permissions: resolve the name through the resource's appRoles.
    let graph = dir
        .service_principal_by_app_id(&gdap_user, defaults::apps::MICROSOFT_GRAPH)
        .await
        .unwrap()
        .unwrap();
    let graph = dir.service_principal(&gdap_user, &graph.id).await.unwrap();
    let role = graph
        .app_role_id("user.read.all")
        .expect("Graph offers User.Read.All")
        .to_string();
    let new = NewAppRoleAssignment {
        principal_id: ours.id.clone(),
        resource_id: graph.id.clone(),
        app_role_id: role.clone(),
    };
    let refused = dir
        .create_app_role_assignment(&gdap_user, &new)
        .await
        .unwrap_err();
    assert_eq!(
        refused.reason(),
        Reason::AccessDenied,
        "Application Administrator may not grant Graph app roles: {refused}"
    );
    let rel = h
        .active_relationship("client-auth-pra", customer, &[PRIVILEGED_ROLE_ADMIN])
        .await;
    h.assign(
        &rel.id,
        defaults::HELPDESK_GROUP_ID,
        &[PRIVILEGED_ROLE_ADMIN],
    )
    .await;
    let assigned = dir
        .create_app_role_assignment(&gdap_user, &new)
        .await
        .unwrap();
    assert_eq!(assigned.app_role_id, role);
    let twice = dir
        .create_app_role_assignment(&gdap_user, &new)
        .await
        .unwrap_err();
    assert_eq!(twice.reason(), Reason::AlreadyExists, "{twice}");
    let on_resource = dir
        .app_role_assigned_to(&gdap_user, &graph.id)
        .await
        .unwrap();
    assert!(on_resource.iter().any(|a| a.id == assigned.id));

    // The app-only token now carries the role; removing the grant takes it away again.
    let app = h.clients.tokens.app_token(customer);
    let bearer = app.bearer(None).await.unwrap();
    assert_eq!(
        claims_of(bearer.expose())["roles"],
        serde_json::json!(["User.Read.All"])
    );
    dir.delete_app_role_assignment(&gdap_user, &graph.id, &assigned.id)
        .await
        .unwrap();
    assert!(
        dir.app_role_assignments(&gdap_user, &ours.id)
            .await
            .unwrap()
            .is_empty()
    );
    pcs.delete_application_consent(&pc, customer, defaults::PARTNER_CLIENT_ID)
        .await
        .unwrap();
    assert!(
        dir.oauth2_permission_grants(&gdap_user, &ours.id)
            .await
            .unwrap()
            .is_empty()
    );
    h.stop().await;
}

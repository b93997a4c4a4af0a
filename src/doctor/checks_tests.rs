//! Table tests of the verdicts.

use super::*;
use crate::doctor::report::Status;
use crate::doctor::targets::Named;
use crate::microsoft::models::directory::{KeyCredential, PasswordCredential};
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn secret_setup() -> Setup {
    Setup {
        tenant: "partner".into(),
        client_id: "app".into(),
        credential: CredentialInUse::Secret { hint: "abc".into() },
    }
}

fn cert_setup(not_after: DateTime<Utc>) -> Setup {
    Setup {
        credential: CredentialInUse::Certificate {
            not_after,
            thumbprint_sha1: vec![1, 2, 3],
        },
        ..secret_setup()
    }
}

fn claims(user: &str, amr: Option<&[&str]>, scopes: &[&str]) -> TokenClaims {
    TokenClaims {
        user: Some(user.into()),
        amr: amr.map(|a| a.iter().map(|s| s.to_string()).collect()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        tenant: Some("partner".into()),
    }
}

fn err(reason: Reason, status: u16) -> Error {
    Error::new(reason, "from a test").with_status(status)
}

fn days(n: i64) -> DateTime<Utc> {
    now() + TimeDelta::days(n)
}

#[test]
fn client_credentials_verdicts() {
    let cases: Vec<(Setup, Option<Error>, Status, &str)> = vec![
        (secret_setup(), None, Status::Pass, "client secret accepted"),
        (
            secret_setup(),
            Some(err(Reason::InvalidClientSecret, 401)),
            Status::Fail,
            "Value (not its Secret ID)",
        ),
        (
            secret_setup(),
            Some(err(Reason::ClientSecretExpired, 401)),
            Status::Fail,
            "create a new client secret",
        ),
        (
            secret_setup(),
            Some(err(Reason::AppNotInTenant, 400)),
            Status::Fail,
            "check clientId and partnerTenantId",
        ),
        (cert_setup(days(200)), None, Status::Pass, "valid until"),
        (cert_setup(days(10)), None, Status::Warn, "before then"),
        (
            cert_setup(days(-1)),
            None,
            Status::Fail,
            "create a new certificate",
        ),
        (
            cert_setup(days(200)),
            Some(err(Reason::CertificateNotAccepted, 401)),
            Status::Fail,
            "upload the certificate",
        ),
    ];
    for (setup, error, status, says) in cases {
        let check = client_credentials(&setup, error.as_ref().map_or(Ok(()), Err), now());
        assert_eq!(check.status, status, "{check:?}");
        let text = format!("{} {}", check.detail, check.fix.unwrap_or_default());
        assert!(text.contains(says), "{text:?} lacks {says:?}");
    }
}

fn app(secrets: &[(&str, i64)], certificates: &[(&str, i64)]) -> Application {
    Application {
        id: "obj".into(),
        app_id: "app".into(),
        display_name: None,
        password_credentials: secrets
            .iter()
            .map(|(hint, d)| PasswordCredential {
                key_id: None,
                hint: Some(hint.to_string()),
                display_name: None,
                start_date_time: None,
                end_date_time: Some(days(*d)),
            })
            .collect(),
        key_credentials: certificates
            .iter()
            .map(|(id, d)| KeyCredential {
                key_id: None,
                custom_key_identifier: Some(id.to_string()),
                display_name: None,
                key_type: None,
                usage: None,
                start_date_time: None,
                end_date_time: Some(days(*d)),
            })
            .collect(),
    }
}

#[test]
fn credential_expiry_verdicts() {
    let reader = claims("u", Some(&["mfa"]), &["Application.Read.All"]);
    let no_reader = claims("u", Some(&["mfa"]), &["User.Read"]);
    // base64 of [1, 2, 3] is "AQID"; its hex is "010203".
    type Case<'a> = (
        Setup,
        Result<Option<Application>, Error>,
        &'a TokenClaims,
        Status,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            secret_setup(),
            Ok(Some(app(&[("abc", 400)], &[]))),
            &reader,
            Status::Pass,
            "in 400 days",
        ),
        (
            secret_setup(),
            Ok(Some(app(&[("abc", 29)], &[]))),
            &reader,
            Status::Warn,
            "in 29 days",
        ),
        (
            secret_setup(),
            Ok(Some(app(&[("abc", -2)], &[]))),
            &reader,
            Status::Fail,
            "2 days ago",
        ),
        (
            secret_setup(),
            Ok(Some(app(&[("abc", 400), ("abc", 5), ("xyz", -9)], &[]))),
            &reader,
            Status::Warn,
            "in 5 days",
        ),
        (
            secret_setup(),
            Ok(Some(app(&[("xyz", 400)], &[]))),
            &reader,
            Status::Warn,
            "not among the 1 secret(s)",
        ),
        (
            cert_setup(days(400)),
            Ok(Some(app(&[], &[("AQID", 20)]))),
            &reader,
            Status::Warn,
            "in 20 days",
        ),
        (
            cert_setup(days(400)),
            Ok(Some(app(&[], &[("010203", 400)]))),
            &reader,
            Status::Pass,
            "certificate in use",
        ),
        (
            cert_setup(days(400)),
            Ok(Some(app(&[("abc", 1)], &[("AAAA", 3)]))),
            &reader,
            Status::Warn,
            "not among",
        ),
        (
            cert_setup(days(33)),
            Ok(Some(app(&[], &[("AAAA", 33)]))),
            &reader,
            Status::Pass,
            "matched by its end",
        ),
        (
            secret_setup(),
            Ok(None),
            &reader,
            Status::Warn,
            "not registered in the partner tenant",
        ),
        (
            secret_setup(),
            Err(err(Reason::AccessDenied, 403)),
            &no_reader,
            Status::Warn,
            "Application.Read.All",
        ),
        (
            secret_setup(),
            Err(err(Reason::AccessDenied, 403)),
            &reader,
            Status::Warn,
            "AccessDenied",
        ),
    ];
    for (setup, read, graph, status, says) in cases {
        let check = credential_expiry(&setup, read.as_ref().map(Option::as_ref), graph, now());
        assert_eq!(check.status, status, "{says}: {check:?}");
        let text = format!("{} {}", check.detail, check.fix.clone().unwrap_or_default());
        if says != "matched by its end" {
            assert!(text.contains(says), "{text:?} lacks {says:?}");
        }
    }
}

#[test]
fn refresh_token_and_mfa_verdicts() {
    let user = claims("a@p", Some(&["pwd", "mfa"]), &[]);
    assert_eq!(
        refresh_token(Ok(&user), &secret_setup(), "kept").status,
        Status::Pass
    );
    for (reason, says) in [
        (Reason::RefreshTokenExpired, "inactivity"),
        (Reason::RefreshTokenRevoked, "revoked"),
        (Reason::RefreshTokenInvalid, "not valid"),
        (Reason::MfaRequired, "multi-factor"),
        (Reason::ConsentMissing, "Entra refused it"),
    ] {
        let check = refresh_token(Err(&err(reason, 400)), &secret_setup(), "kept");
        assert_eq!(check.status, Status::Fail);
        assert!(check.detail.contains(says), "{check:?}");
        assert!(check.fix.unwrap().contains("gdap-operator login"));
    }
    assert_eq!(user_mfa(&user).status, Status::Pass);
    let check = user_mfa(&claims("a@p", Some(&["pwd"]), &[]));
    assert_eq!(check.status, Status::Fail);
    assert!(check.detail.contains("a@p") && check.fix.unwrap().contains("gdap-operator login"));
    assert_eq!(user_mfa(&claims("a@p", None, &[])).status, Status::Warn);
}

#[test]
fn delegated_permission_verdicts() {
    const ALL: &[&str] = &[
        "DelegatedAdminRelationship.ReadWrite.All",
        "User.Read",
        "Application.ReadWrite.All",
        "AppRoleAssignment.ReadWrite.All",
    ];
    let without =
        |gone: &str| -> Vec<&str> { ALL.iter().copied().filter(|s| *s != gone).collect() };
    let pc = claims("u", None, &["user_impersonation"]);
    let pc_bare = claims("u", None, &[]);
    let setup = secret_setup();
    type Case<'a> = (
        Vec<&'a str>,
        Result<&'a TokenClaims, Error>,
        Option<bool>,
        Status,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            ALL.to_vec(),
            Ok(&pc),
            None,
            Status::Pass,
            "user_impersonation",
        ),
        (
            without("DelegatedAdminRelationship.ReadWrite.All"),
            Ok(&pc),
            Some(false),
            Status::Fail,
            "DelegatedAdminRelationship.ReadWrite.All (GdapRelationship",
        ),
        (
            without("AppRoleAssignment.ReadWrite.All"),
            Ok(&pc),
            None,
            Status::Fail,
            "AppRoleAssignment.ReadWrite.All",
        ),
        (
            without("AppRoleAssignment.ReadWrite.All"),
            Ok(&pc),
            Some(true),
            Status::Fail,
            "AppRoleAssignment.ReadWrite.All",
        ),
        (
            without("AppRoleAssignment.ReadWrite.All"),
            Ok(&pc),
            Some(false),
            Status::Warn,
            "no AppConsent",
        ),
        (
            without("User.Read"),
            Ok(&pc),
            None,
            Status::Fail,
            "User.Read",
        ),
        (
            ALL.to_vec(),
            Ok(&pc_bare),
            None,
            Status::Fail,
            "Partner Center user_impersonation",
        ),
        (
            ALL.to_vec(),
            Err(err(Reason::ConsentMissing, 400)),
            None,
            Status::Fail,
            "issued no Partner Center token",
        ),
    ];
    for (scopes, pc, uses, status, says) in cases {
        let graph = claims("u", None, &scopes);
        let check = delegated_permissions(&setup, &graph, pc.as_ref().map(|c| *c), uses);
        assert_eq!(check.status, status, "{says}: {check:?}");
        assert!(check.detail.contains(says), "{check:?} lacks {says:?}");
        if status != Status::Pass {
            assert!(check.fix.unwrap().contains("API permissions"));
        }
    }
}

fn group_object(name: &str) -> DirectoryObject {
    DirectoryObject {
        id: "g".into(),
        odata_type: Some("#microsoft.graph.group".into()),
        display_name: Some(name.into()),
    }
}

#[test]
fn graph_gdap_and_partner_center_verdicts() {
    let user = claims("a@p", None, &["DelegatedAdminRelationship.ReadWrite.All"]);
    let bare = claims("a@p", None, &["User.Read"]);
    let admin = [group_object("Helpdesk"), group_object("AdminAgents")];
    let helpdesk = [group_object("Helpdesk")];
    let denied = err(Reason::AccessDenied, 403);
    type Case<'a> = (
        &'a TokenClaims,
        Result<usize, &'a Error>,
        Result<&'a [DirectoryObject], &'a Error>,
        Status,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (&user, Ok(1), Ok(&admin), Status::Pass, "is in AdminAgents"),
        (
            &user,
            Ok(0),
            Ok(&helpdesk),
            Status::Fail,
            "not in AdminAgents",
        ),
        (
            &user,
            Ok(0),
            Err(&denied),
            Status::Warn,
            "could not be read",
        ),
        (
            &bare,
            Err(&denied),
            Ok(&admin),
            Status::Fail,
            "token lacks DelegatedAdminRelationship",
        ),
        (
            &user,
            Err(&denied),
            Ok(&admin),
            Status::Fail,
            "refused to list GDAP relationships to a@p",
        ),
    ];
    for (graph, rels, groups, status, says) in cases {
        let check = graph_gdap(graph, rels, groups);
        assert_eq!(check.status, status, "{says}: {check:?}");
        assert!(check.detail.contains(says), "{check:?} lacks {says:?}");
    }
    let page = CustomerPage {
        total_count: 3,
        ..CustomerPage::default()
    };
    assert_eq!(partner_center("a@p", Ok(&page)).status, Status::Pass);
    let mfa = partner_center("a@p", Err(&err(Reason::MfaRequired, 401)));
    assert_eq!(mfa.status, Status::Fail);
    assert!(mfa.fix.unwrap().contains("complete MFA"));
    let forbidden = partner_center("a@p", Err(&err(Reason::PartnerCenterForbidden, 403)));
    assert!(
        forbidden.detail.contains("not in AdminAgents"),
        "{forbidden:?}"
    );
}

fn named(kind: &str, name: &str) -> Named {
    Named {
        kind: kind.into(),
        label: format!("{kind} {name} (f.yaml)"),
    }
}

#[test]
fn security_group_verdicts_name_each_missing_group_and_its_objects() {
    let mut targets = Targets::default();
    for id in ["a", "b", "c", "d"] {
        targets
            .groups
            .insert(id.into(), vec![named("GdapRelationship", "r")]);
    }
    let group = |security: bool| Group {
        id: "x".into(),
        display_name: Some("X".into()),
        security_enabled: Some(security),
    };
    let found: BTreeMap<String, Result<Option<Group>, Error>> = [
        ("a".to_string(), Ok(Some(group(true)))),
        ("b".to_string(), Ok(None)),
        ("c".to_string(), Ok(Some(group(false)))),
        ("d".to_string(), Err(err(Reason::AccessDenied, 403))),
    ]
    .into_iter()
    .collect();
    let graph = claims("u", None, &["User.Read"]);
    let checks = security_groups(&secret_setup(), &targets, &found, &graph);
    let summary: Vec<(Status, bool)> = checks
        .iter()
        .map(|c| (c.status, c.detail.contains("GdapRelationship r (f.yaml)")))
        .collect();
    assert_eq!(
        summary,
        [
            (Status::Fail, true),
            (Status::Fail, true),
            (Status::Warn, true)
        ],
        "{checks:#?}"
    );
    assert!(
        checks[0].detail.contains("security group b")
            && checks[0].detail.contains("does not exist")
    );
    assert!(checks[1].detail.contains("not a security group"));
    assert!(
        checks[2]
            .fix
            .as_deref()
            .unwrap()
            .contains("GroupMember.Read.All")
    );
    let all_there: BTreeMap<String, Result<Option<Group>, Error>> =
        [("a".to_string(), Ok(Some(group(true))))]
            .into_iter()
            .collect();
    let mut one = Targets::default();
    one.groups
        .insert("a".into(), vec![named("GdapRelationship", "r")]);
    let checks = security_groups(&secret_setup(), &one, &all_there, &graph);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].status, Status::Pass);
}

#[test]
fn customer_verdicts_fail_for_consents_and_warn_for_gdap_only() {
    let mut targets = Targets::default();
    targets
        .customers
        .insert("known".into(), vec![named("AppConsent", "c0")]);
    targets.customers.insert(
        "consent".into(),
        vec![named("GdapRelationship", "r1"), named("AppConsent", "c1")],
    );
    targets
        .customers
        .insert("gdap".into(), vec![named("GdapRelationship", "r2")]);
    targets
        .customers
        .insert("sync".into(), vec![named("TenantSync", "s3")]);
    targets
        .customers
        .insert("broken".into(), vec![named("TenantSync", "s4")]);
    let customer = PartnerCustomer {
        id: "known".into(),
        company_profile: Default::default(),
    };
    let found: BTreeMap<String, Result<Option<PartnerCustomer>, Error>> = [
        ("known".to_string(), Ok(Some(customer))),
        ("consent".to_string(), Ok(None)),
        ("gdap".to_string(), Ok(None)),
        ("sync".to_string(), Ok(None)),
        (
            "broken".to_string(),
            Err(err(Reason::ServiceUnavailable, 503)),
        ),
    ]
    .into_iter()
    .collect();
    let checks = customers(&targets, &found);
    let by_tenant = |t: &str| {
        checks
            .iter()
            .find(|c| {
                c.detail.contains(&format!("{t} named by"))
                    || c.detail.contains(&format!("customer {t}"))
            })
            .unwrap_or_else(|| panic!("no line for {t}: {checks:#?}"))
    };
    assert_eq!(checks.len(), 4, "{checks:#?}");
    let consent = by_tenant("consent");
    assert_eq!(consent.status, Status::Fail);
    assert!(
        consent
            .detail
            .contains("not a customer of this partner in Partner Center")
    );
    assert!(consent.detail.contains("AppConsent c1"));
    assert_eq!(by_tenant("gdap").status, Status::Warn);
    assert_eq!(by_tenant("sync").status, Status::Warn);
    assert_eq!(by_tenant("broken").status, Status::Fail);
}

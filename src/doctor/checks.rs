//! The verdict of each check from what was observed (pure: no I/O, no clock — `now` is given).
//! The reads that produce the observations are in `probe.rs`.

use super::claims::TokenClaims;
use super::report::Check;
use super::targets::{Named, Targets, labels};
use crate::api::consent_rules::OPERATOR_GRAPH_SCOPES;
use crate::microsoft::models::directory::{Application, DirectoryObject, Group};
use crate::microsoft::models::partner_center::{CustomerPage, PartnerCustomer};
use crate::microsoft::{Error, Reason};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeMap;

/// `client-credentials`: the app signs in to the partner tenant (client credentials grant).
pub const CLIENT_CREDENTIALS: &str = "client-credentials";
/// `credential-expiry`: when Microsoft says the credential in use ends.
pub const CREDENTIAL_EXPIRY: &str = "credential-expiry";
/// `refresh-token`: the partner user's refresh token redeems.
pub const REFRESH_TOKEN: &str = "refresh-token";
/// `user-mfa`: the user behind the refresh token signed in with MFA.
pub const USER_MFA: &str = "user-mfa";
/// `delegated-permissions`: the delegated tokens carry the scopes the operator's calls need.
pub const DELEGATED_PERMISSIONS: &str = "delegated-permissions";
/// `graph-gdap`: Graph's GDAP API answers this user, who is in AdminAgents.
pub const GRAPH_GDAP: &str = "graph-gdap";
/// `partner-center`: Partner Center answers this user.
pub const PARTNER_CENTER: &str = "partner-center";
/// `manifests`: the manifests given are valid.
pub const MANIFESTS: &str = "manifests";
/// `security-groups`: every security group the manifests name exists in the partner tenant.
pub const SECURITY_GROUPS: &str = "security-groups";
/// `customers`: every customer tenant the manifests name is a customer of this partner.
pub const CUSTOMERS: &str = "customers";

/// The checks without manifests, in order.
pub const BASE_CHECKS: [&str; 7] = [
    CLIENT_CREDENTIALS,
    CREDENTIAL_EXPIRY,
    REFRESH_TOKEN,
    USER_MFA,
    DELEGATED_PERMISSIONS,
    GRAPH_GDAP,
    PARTNER_CENTER,
];

/// The checks that manifests add, in order.
pub const MANIFEST_CHECKS: [&str; 3] = [MANIFESTS, SECURITY_GROUPS, CUSTOMERS];

/// A credential ending within this is a warning.
pub const WARN_WITHIN: TimeDelta = TimeDelta::days(30);

/// What `gdap-operator login` fixes, for refresh-token advice.
const SIGN_IN_AGAIN: &str = "sign in again as the partner GDAP user with MFA (`gdap-operator login`) and store the new refresh token under refreshToken";

/// The app's credential in use.
#[derive(Clone)]
pub enum CredentialInUse {
    /// A client secret, known here only by Graph's `hint` (its first three characters, never
    /// printed).
    Secret {
        /// The first three characters.
        hint: String,
    },
    /// A certificate.
    Certificate {
        /// The end of its validity (from the PEM).
        not_after: DateTime<Utc>,
        /// Its SHA-1 thumbprint (Graph's `customKeyIdentifier`).
        thumbprint_sha1: Vec<u8>,
    },
}

impl std::fmt::Debug for CredentialInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl CredentialInUse {
    fn kind(&self) -> &'static str {
        match self {
            CredentialInUse::Secret { .. } => "client secret",
            CredentialInUse::Certificate { .. } => "certificate",
        }
    }
}

/// Who and what is being checked.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The partner tenant.
    pub tenant: String,
    /// The app's client id.
    pub client_id: String,
    /// Its credential.
    pub credential: CredentialInUse,
}

/// The facts of an error for a one-line detail: reason, AADSTS, HTTP status, code.
pub fn facts(e: &Error) -> String {
    let mut parts = Vec::new();
    if let Some(a) = e.aadsts() {
        parts.push(format!("AADSTS{a}"));
    }
    if let Some(s) = e.status() {
        parts.push(format!("HTTP {s}"));
    }
    if let Some(c) = e.code().filter(|c| !c.is_empty()) {
        parts.push(format!("code {c}"));
    }
    if parts.is_empty() {
        e.reason().to_string()
    } else {
        format!("{} ({})", e.reason(), parts.join(", "))
    }
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// How far `end` is: `Err` the days since it passed, `Ok` the days left.
fn days_left(end: DateTime<Utc>, now: DateTime<Utc>) -> Result<i64, i64> {
    if end <= now {
        Err((now - end).num_days())
    } else {
        Ok((end - now).num_days())
    }
}

/// `client-credentials`.
pub fn client_credentials(setup: &Setup, outcome: Result<(), &Error>, now: DateTime<Utc>) -> Check {
    let who = format!("app {} in tenant {}", setup.client_id, setup.tenant);
    let kind = setup.credential.kind();
    if let Err(e) = outcome {
        let fix = match e.reason() {
            Reason::InvalidClientSecret => format!(
                "store the secret's Value (not its Secret ID) under clientSecret; Entra admin center → App registrations → {} → Certificates & secrets (create a new one if the value is lost)",
                setup.client_id
            ),
            Reason::ClientSecretExpired => format!(
                "create a new client secret on app {} (Certificates & secrets) and store it under clientSecret",
                setup.client_id
            ),
            Reason::AppNotInTenant => format!(
                "no application {} in tenant {}: check clientId and partnerTenantId (the app must be registered in the partner tenant)",
                setup.client_id, setup.tenant
            ),
            reason => reason.advice().to_string(),
        };
        return Check::fail(
            CLIENT_CREDENTIALS,
            format!("Entra refused the {kind} of {who}: {}", facts(e)),
            fix,
        );
    }
    match &setup.credential {
        CredentialInUse::Secret { .. } => Check::pass(
            CLIENT_CREDENTIALS,
            format!("client secret accepted by Entra ({who})"),
        ),
        CredentialInUse::Certificate { not_after, .. } => match days_left(*not_after, now) {
            Err(_) => Check::fail(
                CLIENT_CREDENTIALS,
                format!(
                    "the certificate of {who} expired on {} (notAfter in clientCertificate)",
                    day(*not_after)
                ),
                "create a new certificate, upload it to the app registration (Certificates & secrets) and store it under clientCertificate and clientKey",
            ),
            Ok(days) if *not_after - now < WARN_WITHIN => Check::warn(
                CLIENT_CREDENTIALS,
                format!(
                    "certificate accepted by Entra ({who}), but it expires on {} (in {days} days)",
                    day(*not_after)
                ),
                "create a new certificate, add it to the app registration next to the old one, and store it under clientCertificate and clientKey before then",
            ),
            Ok(days) => Check::pass(
                CLIENT_CREDENTIALS,
                format!(
                    "certificate accepted by Entra ({who}); valid until {} ({days} days)",
                    day(*not_after)
                ),
            ),
        },
    }
}

/// Delegated Graph scopes that may read an application registration.
pub const READ_APPLICATIONS: [&str; 4] = [
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.AccessAsUser.All",
];

/// Delegated Graph scopes that may read groups.
pub const READ_GROUPS: [&str; 5] = [
    "GroupMember.Read.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.AccessAsUser.All",
];

fn matches_thumbprint(identifier: &str, thumbprint: &[u8]) -> bool {
    let hex: String = thumbprint.iter().map(|b| format!("{b:02x}")).collect();
    identifier.eq_ignore_ascii_case(&hex)
        || base64::engine::general_purpose::STANDARD
            .decode(identifier)
            .is_ok_and(|bytes| bytes == thumbprint)
}

/// `credential-expiry`: the end Microsoft records for the credential in use.
pub fn credential_expiry(
    setup: &Setup,
    read: Result<Option<&Application>, &Error>,
    graph: &TokenClaims,
    now: DateTime<Utc>,
) -> Check {
    let app = match read {
        Err(e)
            if e.reason() == Reason::AccessDenied && !graph.has_any_scope(&READ_APPLICATIONS) =>
        {
            return Check::warn(
                CREDENTIAL_EXPIRY,
                format!(
                    "cannot read app {} in the partner tenant: the delegated Graph token has none of {}",
                    setup.client_id,
                    READ_APPLICATIONS.join(", ")
                ),
                "to let doctor read when the credential expires, add the Microsoft Graph delegated permission Application.Read.All to the app registration (API permissions) and grant admin consent",
            );
        }
        Err(e) => {
            return Check::warn(
                CREDENTIAL_EXPIRY,
                format!(
                    "cannot read app {} in the partner tenant: {}",
                    setup.client_id,
                    facts(e)
                ),
                format!(
                    "check the end date in the Entra admin center (App registrations → {} → Certificates & secrets); {}",
                    setup.client_id,
                    e.reason().advice()
                ),
            );
        }
        Ok(None) => {
            return Check::warn(
                CREDENTIAL_EXPIRY,
                format!(
                    "app {} is not registered in the partner tenant {}, so its credentials cannot be read there",
                    setup.client_id, setup.tenant
                ),
                "check the credential's end date in the tenant the app is registered in",
            );
        }
        Ok(Some(app)) => app,
    };
    let (ends, count, what): (Vec<Option<DateTime<Utc>>>, usize, &str) = match &setup.credential {
        CredentialInUse::Secret { hint } => (
            app.password_credentials
                .iter()
                .filter(|p| p.hint.as_deref() == Some(hint.as_str()))
                .map(|p| p.end_date_time)
                .collect(),
            app.password_credentials.len(),
            "secret",
        ),
        CredentialInUse::Certificate {
            thumbprint_sha1,
            not_after,
        } => (
            app.key_credentials
                .iter()
                .filter(|k| {
                    k.custom_key_identifier
                        .as_deref()
                        .is_some_and(|id| matches_thumbprint(id, thumbprint_sha1))
                        || k.end_date_time
                            .is_some_and(|e| (e - *not_after).num_seconds().abs() < 1)
                })
                .map(|k| k.end_date_time)
                .collect(),
            app.key_credentials.len(),
            "certificate",
        ),
    };
    if ends.is_empty() {
        return Check::warn(
            CREDENTIAL_EXPIRY,
            format!(
                "the {what} in use is not among the {count} {what}(s) of app {} (matched by {})",
                setup.client_id,
                if what == "secret" {
                    "Graph's hint, the value's first three characters"
                } else {
                    "thumbprint"
                }
            ),
            "check which credential the Secret holds; remove credentials nobody uses from the app registration",
        );
    }
    // Several secrets may share a hint: the earliest end is the one to worry about.
    let Some(end) = ends.iter().flatten().min().copied() else {
        return Check::pass(
            CREDENTIAL_EXPIRY,
            format!("the {what} in use has no end date"),
        );
    };
    let rotate = format!(
        "add a new {what} to app {} (Certificates & secrets), store it in the credentials Secret, then remove the old one",
        setup.client_id
    );
    match days_left(end, now) {
        Err(days) => Check::fail(
            CREDENTIAL_EXPIRY,
            format!(
                "Microsoft says the {what} in use expired on {} ({days} days ago)",
                day(end)
            ),
            rotate,
        ),
        Ok(days) if end - now < WARN_WITHIN => Check::warn(
            CREDENTIAL_EXPIRY,
            format!(
                "Microsoft says the {what} in use expires on {} (in {days} days)",
                day(end)
            ),
            rotate,
        ),
        Ok(days) => Check::pass(
            CREDENTIAL_EXPIRY,
            format!(
                "Microsoft says the {what} in use expires on {} (in {days} days)",
                day(end)
            ),
        ),
    }
}

/// `refresh-token`: `rotation` says what happened to the new refresh token.
pub fn refresh_token(
    outcome: Result<&TokenClaims, &Error>,
    setup: &Setup,
    rotation: &str,
) -> Check {
    match outcome {
        Ok(claims) => Check::pass(
            REFRESH_TOKEN,
            format!(
                "the refresh token redeems for {} in tenant {} ({rotation})",
                claims.user_or_default(),
                setup.tenant
            ),
        ),
        Err(e) => {
            let fix = match e.reason() {
                Reason::RefreshTokenExpired
                | Reason::RefreshTokenRevoked
                | Reason::RefreshTokenInvalid
                | Reason::MfaRequired => SIGN_IN_AGAIN.to_string(),
                Reason::ConsentMissing => format!(
                    "grant admin consent to app {} in the partner tenant (App registrations → API permissions → Grant admin consent), then {SIGN_IN_AGAIN}",
                    setup.client_id
                ),
                reason => format!(
                    "{}; if that does not help, {SIGN_IN_AGAIN}",
                    reason.advice()
                ),
            };
            let why = match e.reason() {
                Reason::RefreshTokenExpired => "it expired from inactivity (90 days)",
                Reason::RefreshTokenRevoked => {
                    "it was revoked (password change, session revocation or sign-in frequency)"
                }
                Reason::RefreshTokenInvalid => {
                    "it is not valid (malformed, issued to another app, or not a refresh token)"
                }
                Reason::MfaRequired => "Entra asks for multi-factor authentication",
                Reason::ConditionalAccess => "a Conditional Access policy blocks it",
                _ => "Entra refused it",
            };
            Check::fail(
                REFRESH_TOKEN,
                format!("the refresh token does not redeem: {why} — {}", facts(e)),
                fix,
            )
        }
    }
}

/// `user-mfa`.
pub fn user_mfa(claims: &TokenClaims) -> Check {
    let user = claims.user_or_default();
    match &claims.amr {
        Some(amr) if claims.has_mfa() => Check::pass(
            USER_MFA,
            format!("{user} signed in with MFA (amr: {})", amr.join(", ")),
        ),
        Some(amr) => Check::fail(
            USER_MFA,
            format!(
                "the sign-in of {user} behind the refresh token used no second factor (amr: {}): Partner Center refuses App+User calls without MFA since April 2026",
                amr.join(", ")
            ),
            format!(
                "run `gdap-operator login` as {user} again and complete MFA; store the new refresh token"
            ),
        ),
        None => Check::warn(
            USER_MFA,
            format!(
                "the token of {user} carries no amr claim: whether the sign-in used MFA is unknown"
            ),
            "Partner Center needs an MFA sign-in; if partner-center fails with MfaRequired, run `gdap-operator login` again with MFA",
        ),
    }
}

/// One delegated permission the operator needs.
#[derive(Debug, Clone, Copy)]
pub struct Needed {
    /// Any of these scopes will do; the first is the one to add.
    pub any_of: &'static [&'static str],
    /// What needs it.
    pub for_what: &'static str,
    /// Needed by AppConsent only.
    pub consent_only: bool,
}

/// The Graph scopes the operator's calls need in the partner's delegated token. The GDAP API
/// needs `DelegatedAdminRelationship.ReadWrite.All`; AppConsent reads the user's groups
/// (`/me/memberOf`) and, in customer tenants, uses the two scopes of
/// [`OPERATOR_GRAPH_SCOPES`], which the app registration must declare (the partner tenant's
/// consent of them shows in this token's `scp`).
pub const GRAPH_NEEDS: [Needed; 4] = [
    Needed {
        any_of: &["DelegatedAdminRelationship.ReadWrite.All"],
        for_what: "GdapRelationship: relationships and access assignments",
        consent_only: false,
    },
    Needed {
        any_of: &[
            "User.Read",
            "GroupMember.Read.All",
            "Directory.Read.All",
            "Directory.AccessAsUser.All",
        ],
        for_what: "AppConsent: the partner user's groups (/me/memberOf)",
        consent_only: true,
    },
    Needed {
        any_of: &[OPERATOR_GRAPH_SCOPES[0]],
        for_what: "AppConsent: service principals in customer tenants",
        consent_only: true,
    },
    Needed {
        any_of: &[OPERATOR_GRAPH_SCOPES[1]],
        for_what: "AppConsent: application permissions in customer tenants",
        consent_only: true,
    },
];

/// The Partner Center scope of the consent API and the customer reads.
pub const PARTNER_CENTER_SCOPE: &str = "user_impersonation";

/// `delegated-permissions`. `uses_consents`: whether AppConsent is in play — `None` without
/// manifests (assume it is), else whether the manifests hold an AppConsent.
pub fn delegated_permissions(
    setup: &Setup,
    graph: &TokenClaims,
    partner_center: Result<&TokenClaims, &Error>,
    uses_consents: Option<bool>,
) -> Check {
    let missing: Vec<&Needed> = GRAPH_NEEDS
        .iter()
        .filter(|n| !graph.has_any_scope(n.any_of))
        .collect();
    let mut hard: Vec<String> = missing
        .iter()
        .filter(|n| !n.consent_only || uses_consents != Some(false))
        .map(|n| format!("Microsoft Graph {} ({})", n.any_of[0], n.for_what))
        .collect();
    let soft: Vec<String> = missing
        .iter()
        .filter(|n| n.consent_only && uses_consents == Some(false))
        .map(|n| format!("Microsoft Graph {} ({})", n.any_of[0], n.for_what))
        .collect();
    let pc_problem = match partner_center {
        Ok(pc) if pc.has_any_scope(&[PARTNER_CENTER_SCOPE]) => None,
        Ok(_) => Some(format!(
            "Microsoft Partner Center {PARTNER_CENTER_SCOPE} (application consents and customers)"
        )),
        Err(e) => Some(format!(
            "Microsoft Partner Center {PARTNER_CENTER_SCOPE} (Entra issued no Partner Center token: {})",
            facts(e)
        )),
    };
    hard.extend(pc_problem);
    let fix = format!(
        "Entra admin center → App registrations → {} → API permissions → Add a permission (delegated) → the ones named → Grant admin consent; then sign in again (`gdap-operator login`) so the refresh token carries them",
        setup.client_id
    );
    if !hard.is_empty() {
        return Check::fail(
            DELEGATED_PERMISSIONS,
            format!("the delegated tokens lack {}", hard.join("; ")),
            fix,
        );
    }
    if !soft.is_empty() {
        return Check::warn(
            DELEGATED_PERMISSIONS,
            format!(
                "the Graph token lacks {}: not needed by these manifests (no AppConsent), needed once one is applied",
                soft.join("; ")
            ),
            fix,
        );
    }
    Check::pass(
        DELEGATED_PERMISSIONS,
        format!(
            "the Graph token has DelegatedAdminRelationship.ReadWrite.All, {} and a scope to read the user's groups; the Partner Center token has {PARTNER_CENTER_SCOPE}",
            OPERATOR_GRAPH_SCOPES.join(", ")
        ),
    )
}

/// The Partner Center group whose members may call Partner Center and write GDAP.
pub const ADMIN_AGENTS: &str = "AdminAgents";

/// `graph-gdap`: `relationships` is the first page read; `groups` the user's memberships.
pub fn graph_gdap(
    graph: &TokenClaims,
    relationships: Result<usize, &Error>,
    groups: Result<&[DirectoryObject], &Error>,
) -> Check {
    let user = graph.user_or_default();
    let add_admin_agent = format!(
        "give {user} the Admin agent role (Partner Center → Account settings → User management), which adds them to the partner tenant's AdminAgents group; then sign in again"
    );
    let listed = match relationships {
        Ok(n) => n,
        Err(e)
            if e.reason() == Reason::AccessDenied
                && !graph.has_any_scope(&[
                    "DelegatedAdminRelationship.Read.All",
                    "DelegatedAdminRelationship.ReadWrite.All",
                ]) =>
        {
            return Check::fail(
                GRAPH_GDAP,
                format!(
                    "Graph refused to list GDAP relationships: the token lacks DelegatedAdminRelationship.ReadWrite.All — {}",
                    facts(e)
                ),
                "add the Microsoft Graph delegated permission DelegatedAdminRelationship.ReadWrite.All to the app registration and grant admin consent",
            );
        }
        Err(e) if e.reason() == Reason::AccessDenied => {
            return Check::fail(
                GRAPH_GDAP,
                format!(
                    "Graph refused to list GDAP relationships to {user}: {}",
                    facts(e)
                ),
                add_admin_agent,
            );
        }
        Err(e) => {
            return Check::fail(
                GRAPH_GDAP,
                format!("listing GDAP relationships failed: {}", facts(e)),
                e.reason().advice(),
            );
        }
    };
    match groups {
        Ok(groups) => {
            let admin_agent = groups.iter().any(|g| {
                g.display_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(ADMIN_AGENTS))
            });
            if admin_agent {
                Check::pass(
                    GRAPH_GDAP,
                    format!(
                        "{user} lists GDAP relationships ({listed} on the first page) and is in AdminAgents"
                    ),
                )
            } else {
                Check::fail(
                    GRAPH_GDAP,
                    format!(
                        "{user} can list GDAP relationships but is not in AdminAgents: Microsoft refuses GDAP writes (create, lock, assign, terminate) to them"
                    ),
                    add_admin_agent,
                )
            }
        }
        Err(e) => Check::warn(
            GRAPH_GDAP,
            format!(
                "{user} lists GDAP relationships ({listed} on the first page); whether they are in AdminAgents (needed for writes) could not be read: {}",
                facts(e)
            ),
            "check in Partner Center that the user has the Admin agent role; add the Microsoft Graph delegated permission User.Read so doctor can read the user's groups",
        ),
    }
}

/// `partner-center`.
pub fn partner_center(user: &str, read: Result<&CustomerPage, &Error>) -> Check {
    match read {
        Ok(page) => Check::pass(
            PARTNER_CENTER,
            format!(
                "Partner Center answers {user}: {} customer(s)",
                page.total_count
            ),
        ),
        Err(e) => {
            let (why, fix) = match e.reason() {
                Reason::MfaRequired => (
                    "the sign-in behind the token used no MFA".to_string(),
                    format!(
                        "run `gdap-operator login` as {user} again and complete MFA; store the new refresh token"
                    ),
                ),
                Reason::PartnerCenterForbidden => (
                    format!("{user} is not allowed (not in AdminAgents)"),
                    format!(
                        "give {user} the Admin agent role (Partner Center → Account settings → User management), which adds them to AdminAgents"
                    ),
                ),
                reason => (reason.advice().to_string(), reason.advice().to_string()),
            };
            Check::fail(
                PARTNER_CENTER,
                format!(
                    "Partner Center refused GET /v1/customers: {why} — {}",
                    facts(e)
                ),
                fix,
            )
        }
    }
}

/// `security-groups`: one line per group that is missing or unreadable, or one pass line.
/// `found` holds the read of every group id of `targets`.
pub fn security_groups(
    setup: &Setup,
    targets: &Targets,
    found: &BTreeMap<String, Result<Option<Group>, Error>>,
    graph: &TokenClaims,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for (id, named) in &targets.groups {
        let by = labels(named);
        match found.get(id) {
            Some(Ok(Some(group))) if group.security_enabled == Some(false) => {
                checks.push(Check::fail(
                    SECURITY_GROUPS,
                    format!(
                        "group {id} ({}) named by {by} is not a security group",
                        group.display_name.as_deref().unwrap_or("no name")
                    ),
                    "GDAP assigns roles to security groups only: name a security group of the partner tenant in spec.accessAssignments[].securityGroupId",
                ));
            }
            Some(Ok(Some(_))) => {}
            Some(Ok(None)) => checks.push(Check::fail(
                SECURITY_GROUPS,
                format!(
                    "security group {id} named by {by} does not exist in the partner tenant {}",
                    setup.tenant
                ),
                "create the group in the partner tenant (Entra admin center → Groups, type Security) or correct spec.accessAssignments[].securityGroupId",
            )),
            Some(Err(e))
                if e.reason() == Reason::AccessDenied && !graph.has_any_scope(&READ_GROUPS) =>
            {
                checks.push(Check::warn(
                    SECURITY_GROUPS,
                    format!(
                        "cannot verify group {id} named by {by}: the Graph token has none of {}",
                        READ_GROUPS.join(", ")
                    ),
                    "add the Microsoft Graph delegated permission GroupMember.Read.All to the app registration and grant admin consent, or check the group by hand",
                ));
            }
            Some(Err(e)) => checks.push(Check::warn(
                SECURITY_GROUPS,
                format!("cannot verify group {id} named by {by}: {}", facts(e)),
                e.reason().advice(),
            )),
            None => {}
        }
    }
    if checks.is_empty() {
        checks.push(Check::pass(
            SECURITY_GROUPS,
            format!(
                "all {} security group(s) the manifests name exist in the partner tenant",
                targets.groups.len()
            ),
        ));
    }
    checks
}

/// `customers`: one line per tenant that is not this partner's customer (or unreadable), or one
/// pass line. See the module docs for why a GdapRelationship- or TenantSync-only tenant is a
/// warning and an AppConsent's a failure.
pub fn customers(
    targets: &Targets,
    found: &BTreeMap<String, Result<Option<PartnerCustomer>, Error>>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for (tenant, named) in &targets.customers {
        let by = labels(named);
        match found.get(tenant) {
            Some(Ok(Some(_))) | None => {}
            Some(Ok(None)) => {
                let consents: Vec<Named> = named
                    .iter()
                    .filter(|n| n.kind == "AppConsent")
                    .cloned()
                    .collect();
                let detail = format!(
                    "{tenant} named by {by} is not a customer of this partner in Partner Center"
                );
                if consents.is_empty() {
                    checks.push(Check::warn(
                        CUSTOMERS,
                        format!("{detail}: a GDAP relationship can still be created and approved (a GDAP-only customer), but Partner Center calls for it will fail"),
                        "check the tenant id; for application consents the tenant must be a customer in Partner Center (a reseller relationship)",
                    ));
                } else {
                    checks.push(Check::fail(
                        CUSTOMERS,
                        format!("{detail}: Partner Center's consent API answers 404 for {}", labels(&consents)),
                        "check the tenant id, or establish a reseller relationship with the customer in Partner Center before applying the AppConsent",
                    ));
                }
            }
            Some(Err(e)) => checks.push(Check::fail(
                CUSTOMERS,
                format!("cannot read customer {tenant} named by {by}: {}", facts(e)),
                e.reason().advice(),
            )),
        }
    }
    if checks.is_empty() {
        checks.push(Check::pass(
            CUSTOMERS,
            format!(
                "all {} customer tenant(s) the manifests name are customers of this partner",
                targets.customers.len()
            ),
        ));
    }
    checks
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;

//! The reads behind the checks (the thin layer): tokens from Entra, then Graph and Partner
//! Center, each answer handed to its pure verdict in `checks.rs`. Read-only: nothing is written
//! to Microsoft; the rotated refresh token goes where `export`/`plan` put it.

use super::checks::{self as c, CredentialInUse, Setup};
use super::claims::TokenClaims;
use super::report::Check;
use super::targets::Loaded;
use crate::controllers::credentials::{Credentials, parse};
use crate::microsoft::certificate::{pem_to_der, thumbprint_sha1_base64};
use crate::microsoft::{ClientCredential, Error, TokenSource};
use crate::onboard::credentials::CredentialArgs;
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::BTreeMap;

/// Runs every check in order; never fails (a check that cannot run says why).
pub async fn check_all(
    args: &CredentialArgs,
    manifests: Option<&Loaded>,
    now: DateTime<Utc>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let (credentials, setup) = match open(args) {
        Ok(opened) => opened,
        Err(e) => {
            checks.push(Check::fail(
                c::CLIENT_CREDENTIALS,
                format!("the credentials cannot be used: {e:#}"),
                "give partnerTenantId, clientId, refreshToken and clientSecret (or clientCertificate + clientKey) in the --credentials Secret manifest, or as flags / GDAP_* environment variables",
            ));
            skip_rest(&mut checks, c::CLIENT_CREDENTIALS, manifests);
            return checks;
        }
    };
    let tokens = &credentials.clients.tokens;
    let app = tokens.app_token(&setup.tenant).bearer(None).await;
    let client = c::client_credentials(&setup, app.as_ref().map(drop), now);
    let client_failed = client.status == super::report::Status::Fail && app.is_err();
    checks.push(client);
    if client_failed {
        skip_rest(&mut checks, c::CLIENT_CREDENTIALS, manifests);
        return checks;
    }

    let graph_token = tokens.partner_graph();
    let graph = graph_token
        .bearer(None)
        .await
        .map(|t| TokenClaims::decode(t.expose()).unwrap_or_default());
    let rotation = if args.write_back {
        "the new refresh token was written back"
    } else {
        "the new refresh token was discarded; --write-back stores it"
    };
    let refresh = c::refresh_token(graph.as_ref(), &setup, rotation);
    let Ok(graph) = graph else {
        checks.push(Check::skip(c::CREDENTIAL_EXPIRY, c::REFRESH_TOKEN));
        checks.push(refresh);
        skip_rest(&mut checks, c::REFRESH_TOKEN, manifests);
        return checks;
    };
    let directory = credentials.clients.directory.as_ref();
    let application = directory
        .application_by_app_id(&graph_token, &setup.client_id)
        .await;
    checks.push(c::credential_expiry(
        &setup,
        application.as_ref().map(Option::as_ref),
        &graph,
        now,
    ));
    checks.push(refresh);
    checks.push(c::user_mfa(&graph));

    let pc_token = tokens.partner_center();
    let pc = pc_token
        .bearer(None)
        .await
        .map(|t| TokenClaims::decode(t.expose()).unwrap_or_default());
    let uses_consents = match manifests {
        Some(Loaded::Valid(t)) => Some(
            t.customers
                .values()
                .flatten()
                .any(|n| n.kind == "AppConsent"),
        ),
        _ => None,
    };
    checks.push(c::delegated_permissions(
        &setup,
        &graph,
        pc.as_ref(),
        uses_consents,
    ));

    let gdap = credentials.clients.gdap.as_ref();
    let first_page = gdap.relationships_first_page(&graph_token, 1).await;
    let groups = directory.my_memberships(&graph_token).await;
    checks.push(c::graph_gdap(
        &graph,
        first_page.as_ref().map(Vec::len),
        groups.as_deref(),
    ));

    let pc_api = credentials.clients.partner_center.as_ref();
    let partner_center_ok = match &pc {
        Ok(_) => {
            let page = pc_api.customers_first_page(&pc_token, 1).await;
            let check = c::partner_center(graph.user_or_default(), page.as_ref());
            let ok = check.status == super::report::Status::Pass;
            checks.push(check);
            ok
        }
        Err(_) => {
            checks.push(Check::skip(c::PARTNER_CENTER, c::DELEGATED_PERMISSIONS));
            false
        }
    };

    let Some(loaded) = manifests else {
        return checks;
    };
    let targets = match loaded {
        Loaded::Invalid(_) => {
            checks.extend(manifest_lines(loaded));
            checks.push(Check::skip(c::SECURITY_GROUPS, c::MANIFESTS));
            checks.push(Check::skip(c::CUSTOMERS, c::MANIFESTS));
            return checks;
        }
        Loaded::Valid(targets) => targets,
    };
    checks.extend(manifest_lines(loaded));
    let concurrency = args.concurrency.max(1);
    let found_groups: BTreeMap<String, Result<_, Error>> =
        futures::stream::iter(targets.groups.keys().cloned())
            .map(|id| {
                let token = &graph_token;
                async move {
                    let read = directory.group(token, &id).await;
                    (id, read)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    checks.extend(c::security_groups(&setup, targets, &found_groups, &graph));
    if !partner_center_ok {
        checks.push(Check::skip(c::CUSTOMERS, c::PARTNER_CENTER));
        return checks;
    }
    let found_customers: BTreeMap<String, Result<_, Error>> =
        futures::stream::iter(targets.customers.keys().cloned())
            .map(|tenant| {
                let token = &pc_token;
                async move {
                    let read = pc_api.customer(token, &tenant).await;
                    (tenant, read)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    checks.extend(c::customers(targets, &found_customers));
    checks
}

/// The `manifests` lines: one per problem, or one pass (or warning when nothing was found).
pub fn manifest_lines(loaded: &Loaded) -> Vec<Check> {
    match loaded {
        Loaded::Invalid(problems) => problems
            .iter()
            .map(|p| {
                Check::fail(
                    c::MANIFESTS,
                    p.to_string(),
                    "correct the manifest (`gdap-operator validate` reports the same)",
                )
            })
            .collect(),
        Loaded::Valid(t) if t.objects == 0 => vec![Check::warn(
            c::MANIFESTS,
            "no gdap.io objects in the files given",
            "name the files or directories that hold the GdapRelationship, AppConsent and TenantSync manifests",
        )],
        Loaded::Valid(t) => vec![Check::pass(
            c::MANIFESTS,
            format!(
                "{} gdap.io object(s) valid; they name {} security group(s) and {} customer tenant(s)",
                t.objects,
                t.groups.len(),
                t.customers.len()
            ),
        )],
    }
}

/// Every check after `failed` is skipped, naming it; the offline `manifests` check still runs.
fn skip_rest(checks: &mut Vec<Check>, failed: &str, manifests: Option<&Loaded>) {
    let done: Vec<&str> = checks.iter().map(|c| c.id).collect();
    for id in c::BASE_CHECKS {
        if !done.contains(&id) {
            checks.push(Check::skip(id, failed));
        }
    }
    if let Some(loaded) = manifests {
        checks.extend(manifest_lines(loaded));
        let needs = match loaded {
            Loaded::Invalid(_) => c::MANIFESTS,
            Loaded::Valid(_) => failed,
        };
        checks.push(Check::skip(c::SECURITY_GROUPS, needs));
        checks.push(Check::skip(c::CUSTOMERS, needs));
    }
}

/// The clients (as `export`/`plan` build them) and what the checks need to know of the set-up.
fn open(args: &CredentialArgs) -> anyhow::Result<(Credentials, Setup)> {
    let credentials = args.credentials()?;
    let parsed = parse(&credentials.secret, "(command line)", "doctor")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let credential = match &parsed.client_credential {
        ClientCredential::Secret(secret) => CredentialInUse::Secret {
            hint: secret.expose().chars().take(3).collect(),
        },
        ClientCredential::Certificate(cert) => {
            let pem = credentials
                .secret
                .data
                .as_ref()
                .and_then(|d| d.get("clientCertificate"))
                .map(|b| String::from_utf8_lossy(&b.0).to_string())
                .unwrap_or_default();
            let thumbprint_sha1 = pem_to_der(&pem)
                .ok()
                .and_then(|der| {
                    base64::engine::general_purpose::STANDARD
                        .decode(thumbprint_sha1_base64(&der))
                        .ok()
                })
                .unwrap_or_default();
            CredentialInUse::Certificate {
                not_after: cert.not_after(),
                thumbprint_sha1,
            }
        }
    };
    let setup = Setup {
        tenant: parsed.partner_tenant_id.clone(),
        client_id: parsed.client_id.clone(),
        credential,
    };
    Ok((credentials, setup))
}

//! `gdap-operator login`: obtains the partner GDAP user's refresh token by an interactive sign-in
//! (device code by default, authorization code with PKCE on a loopback redirect with
//! `--browser`), checks it (user, MFA, Partner Center) and stores it in the credentials Secret
//! or a file. Never prints a token.
//!
//! The steps, in order, so that nothing is stored that the operator's calls would be refused
//! with, and nobody signs in only to learn that a flag is missing:
//! 1. [`args`]: exactly one destination; the app's identity from the flags laid over the
//!    existing credentials Secret ([`storage`] reads it first), checked by the operator's own
//!    parser; then the write is tried as a server-side dry run (or a probe file), so a missing
//!    permission or an invalid name shows before anyone signs in.
//! 2. The sign-in ([`device`] or [`browser`], through [`oauth`]) for the app's delegated Graph
//!    permissions (`https://graph.microsoft.com/.default offline_access openid profile`).
//! 3. [`checks`] on the tokens' claims: the partner tenant, the user, MFA in `amr`, and
//!    `DelegatedAdminRelationship.ReadWrite.All` in `scp`.
//! 4. The new refresh token is redeemed once for Partner Center, exactly as the operator does
//!    (the token provider's `user_impersonation offline_access` scope), and Partner Center is
//!    asked for one customer (`GET /v1/customers?size=1`): 401 code 900421 means no MFA, 403 a
//!    user outside AdminAgents. The refresh token that redemption returns (rotation) is the one
//!    stored: the last one Entra issued.
//! 5. [`storage`] writes it and a summary goes to stdout; instructions and warnings go to stderr.
//!
//! Choices that differ from a first sketch, and why:
//! - The device flow never opens a browser (its point is signing in on another device); with
//!   `--browser` one is opened unless `--no-open`.
//! - The loopback listener also takes `[::1]:{port}` when it can, because browsers may resolve
//!   `localhost` to the IPv6 loopback first.
//! - Besides `data.refreshToken`, the merge patch sets the issued-at annotation the operator
//!   reads for its token-age warning; a stale one would misreport the new token's age.
//! - `--client-id`/`--partner-tenant-id` that differ from an existing Secret's keys are refused:
//!   the refresh token only works with the app and tenant it was issued to, and only
//!   `refreshToken` is written.
//! - A missing `User.Read` (or another permission that lets the operator read `/me/memberOf`) is
//!   a warning, not a refusal: only AppConsent needs it.
//!
//! Exit status: 0 stored; 1 anything else (a refusal, a failed or declined sign-in, a timeout,
//! Ctrl-C), with nothing stored and one `error:` line that says why and what to do.

pub mod args;
pub mod browser;
pub mod checks;
pub mod device;
pub mod oauth;
pub mod storage;

pub use args::LoginArgs;

use crate::microsoft::{
    MicrosoftClients, PartnerCredentials, RotatedRefreshToken, Secret, TokenOptions,
    TransportConfig, rotation_fn,
};
use std::sync::{Arc, Mutex};

/// Runs `login`.
pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    args.check_flags()?;
    let destination = args.destination()?;
    let endpoints = args
        .endpoints
        .resolve()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = storage::Store::open(&destination, args.kubeconfig.as_deref()).await?;
    let label = store.secret_label();
    let (app, keys) = args.app(store.existing(), label.as_deref())?;
    store.preflight(&keys).await?;
    let client = oauth::SignInClient::new(
        endpoints.clone(),
        &app.partner_tenant_id,
        &app.client_id,
        app.client_credential.clone(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;

    let sign_in = async {
        if args.browser {
            browser::sign_in(&client, args.redirect_port, !args.no_open, args.timeout).await
        } else {
            device::sign_in(&client, args.timeout).await
        }
    };
    let tokens = tokio::select! {
        tokens = sign_in => tokens?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; nothing was stored"),
    };
    let Some(refresh_token) = tokens.refresh_token.clone() else {
        anyhow::bail!(
            "Entra returned no refresh token (offline_access was not granted); nothing was stored — check the app registration's permissions include offline_access, then run login again"
        );
    };

    let who = checks::signed_in(&tokens)?;
    eprintln!("Signed in as {} (tenant {}).", who.user, who.tenant);
    checks::check_claims(&who, &app.partner_tenant_id)
        .map_err(|r| anyhow::anyhow!("{r}. Nothing was stored."))?;
    let missing = who.missing_scopes(&checks::MEMBER_OF_SCOPES);
    if missing.len() == checks::MEMBER_OF_SCOPES.len() {
        eprintln!(
            "warning: the Graph token holds none of {}; the operator cannot read the user's groups (/me/memberOf), which AppConsent needs — add User.Read to the app's delegated permissions",
            checks::MEMBER_OF_SCOPES.join(", ")
        );
    }

    let latest = Arc::new(Mutex::new(refresh_token));
    let clients = partner_center_clients(endpoints, &app, latest.clone())?;
    let accepted = tokio::select! {
        accepted = checks::partner_center_accepts(&clients, &who.user) => accepted?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; nothing was stored"),
    };
    accepted.map_err(|r| anyhow::anyhow!("{r}. Nothing was stored."))?;

    let token = latest.lock().expect("token lock").clone();
    let place = store.save(&token, &keys).await?;
    println!(
        "Signed in as {} (tenant {}), MFA: yes",
        who.user, who.tenant
    );
    println!("Partner Center accepts the user.");
    println!("Stored the refresh token in {place}.");
    Ok(())
}

/// Clients that redeem `latest` (the new refresh token) as the operator would, keeping each
/// rotated refresh token in `latest`.
fn partner_center_clients(
    endpoints: crate::microsoft::Endpoints,
    app: &PartnerCredentials,
    latest: Arc<Mutex<Secret>>,
) -> anyhow::Result<MicrosoftClients> {
    let credentials = PartnerCredentials {
        refresh_token: latest.lock().expect("token lock").clone(),
        refresh_token_issued_at: Some(chrono::Utc::now()),
        ..app.clone()
    };
    let rotation = rotation_fn(move |rotated: RotatedRefreshToken| {
        let latest = latest.clone();
        async move {
            *latest.lock().expect("token lock") = rotated.refresh_token;
            Ok(())
        }
    });
    MicrosoftClients::new(
        TransportConfig::new(endpoints),
        credentials,
        rotation,
        TokenOptions::default(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(all(test, feature = "sandbox"))]
mod tests {
    use super::*;
    use crate::microsoft::Endpoints;
    use crate::sandbox::{Consistency, Sandbox, SandboxOptions, defaults};

    fn app(refresh_token: &str) -> PartnerCredentials {
        PartnerCredentials {
            partner_tenant_id: defaults::PARTNER_TENANT_ID.into(),
            client_id: defaults::PARTNER_CLIENT_ID.into(),
            client_credential: defaults::PARTNER_CLIENT_SECRET.into(),
            refresh_token: refresh_token.into(),
            refresh_token_issued_at: None,
        }
    }

    #[tokio::test]
    async fn the_partner_center_check_keeps_the_rotated_token_and_refuses_a_sign_in_without_mfa() {
        let sandbox = Sandbox::start(SandboxOptions {
            consistency: Consistency::immediate(),
            ..Default::default()
        })
        .await
        .unwrap();
        let endpoints = Endpoints::local(&sandbox.base_url(), None).unwrap();

        let latest = Arc::new(Mutex::new(Secret::new(defaults::PARTNER_REFRESH_TOKEN)));
        let app_mfa = app(defaults::PARTNER_REFRESH_TOKEN);
        let clients = partner_center_clients(endpoints.clone(), &app_mfa, latest.clone()).unwrap();
        checks::partner_center_accepts(&clients, "admin@partner.example")
            .await
            .unwrap()
            .unwrap();
        let stored = latest.lock().unwrap().clone();
        assert!(!stored.is_empty());
        assert_ne!(
            stored.expose(),
            defaults::PARTNER_REFRESH_TOKEN,
            "the token kept is the one the Partner Center redemption returned"
        );

        let latest = Arc::new(Mutex::new(Secret::new(
            defaults::PARTNER_NO_MFA_REFRESH_TOKEN,
        )));
        let no_mfa = app(defaults::PARTNER_NO_MFA_REFRESH_TOKEN);
        let clients = partner_center_clients(endpoints, &no_mfa, latest).unwrap();
        let refusal = checks::partner_center_accepts(&clients, "admin@partner.example")
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(
            refusal,
            checks::Refusal::PartnerCenterMfa {
                user: "admin@partner.example".into()
            }
        );
        sandbox.shutdown().await;
    }
}

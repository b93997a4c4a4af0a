//! `gdap-operator doctor [FILE|DIR …]`: checks a partner set-up against Microsoft before
//! anything is applied, one line per check, each failure with what to do. Read-only.
//!
//! Contract. It reads the credentials exactly as `export` and `plan` do
//! ([`crate::onboard::credentials::CredentialArgs`]:
//! a Secret manifest and/or flags; the refresh token is redeemed and the rotated one thrown
//! away unless `--write-back`). The checks, in order, each with a stable id (`checks.rs`):
//! `client-credentials` (an app-only token for the partner tenant; a certificate's notAfter
//! from the PEM: warning within 30 days, failure once past), `credential-expiry` (the end date
//! Microsoft records for the secret in use — matched by Graph's `hint` — or the certificate —
//! matched by thumbprint — read from `GET /applications(appId='…')` with the delegated token; a
//! warning when it cannot be read, naming the permission that would allow it),
//! `refresh-token`, `user-mfa` (`amr` of the delegated token), `delegated-permissions` (`scp`
//! of the partner's Graph and Partner Center tokens), `graph-gdap` (the first page of
//! relationships, and membership of AdminAgents through `/me/memberOf`), `partner-center`
//! (`GET /v1/customers?size=1`); with manifests also `manifests` (validate's rules and
//! messages), `security-groups` (`GET /groups/{id}` per group named) and `customers`
//! (`GET /v1/customers/{id}` per tenant named). A check that needs one that did not pass is
//! `skip` ("needs: …"). Exit 0 when nothing failed (warnings allowed), else 1.
//!
//! Decisions:
//! - Claims are read from the access tokens' payloads without verifying them: doctor only
//!   explains, and the tokens come straight from Entra. Tokens, the secret and the refresh
//!   token are never printed (the secret's hint is used for matching only).
//! - `delegated-permissions` reads the partner tenant's tokens. The scopes the operator uses in
//!   customer tenants (`Application.ReadWrite.All`, `AppRoleAssignment.ReadWrite.All`) come
//!   from each customer's consent, but the app registration must declare them, and the partner
//!   tenant's consent of the declaration shows in this token; when the manifests hold no
//!   AppConsent their absence is a warning, not a failure.
//! - `customers`: Microsoft lets a partner hold a GDAP relationship with a tenant that has no
//!   reseller relationship (a "GDAP-only" customer, which Partner Center's customer API answers
//!   with 404, reference §3.2), and TenantSync reads through the app's own consent. So a tenant
//!   named only by GdapRelationship or TenantSync objects that Partner Center does not know is a
//!   warning; one named by an AppConsent is a failure, since the consent API needs the customer.
//! - `graph-gdap` checks AdminAgents through the user's groups: GDAP reads may work without it,
//!   but Microsoft lets only Admin agents write.
//!
//! Layout: `args` (command line), `claims` (token claims), `checks` (the verdicts, pure),
//! `targets` (what manifests name), `probe` (the reads), `report` (lines, JSON, exit code).

pub mod args;
pub mod checks;
pub mod claims;
pub mod probe;
pub mod report;
pub mod targets;

pub use args::{DoctorArgs, OutputFormat};
pub use report::{Check, Report, Status};

/// Runs `doctor`; the exit code is 0 when no check failed, 1 otherwise.
pub async fn run(args: DoctorArgs) -> anyhow::Result<u8> {
    let manifests = match args.paths.is_empty() {
        true => None,
        false => Some(targets::load(&args.paths)?),
    };
    let checks = probe::check_all(&args.credentials, manifests.as_ref(), chrono::Utc::now()).await;
    let report = Report::new(checks);
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print!("{}", report.text()),
    }
    Ok(report.exit_code())
}

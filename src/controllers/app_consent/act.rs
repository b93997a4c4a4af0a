//! The act step: a small interpreter of the plan's [`Action`]. Every write is made as the
//! partner's GDAP user — Partner Center with the delegated Partner Center token of the partner
//! tenant, Graph with the delegated Graph token of the customer tenant; the types admit no other
//! (`DelegatedToken`). After a write that changes what the app may do in the tenant, the cached
//! app-only tokens of that tenant are dropped, since their `roles` were fixed when they were
//! issued; after a consent, its cached delegated tokens too (their `scp` likewise). It reads no clock and never guesses Microsoft's next state: the next observe sees it.
//! It needs no Kubernetes-side write (the reconcile remembers the write, see `pending`).
//!
//! "Already exists" (Partner Center's 409 "Permission entry already exists.", Graph's 409 for a
//! service principal, its 400 "Permission being assigned already exists on the object.") means
//! the object is there: the write is done, and Microsoft's reads will show it. It is never an
//! error and never a reason to delete and write again — that would restart Entra's propagation.

use super::observe::{microsoft_is_transient, microsoft_reason};
use super::step::Action;
use crate::api::conditions::events;
use crate::api::consent_rules::describe_resource;
use crate::controllers::failure::Failure;
use crate::microsoft::models::partner_center::ApplicationConsent;
use crate::microsoft::{
    self, DelegatedToken, DirectoryApi, PartnerCenterApi, Reason, TokenProvider,
};

/// What act works with.
pub struct Target<'a> {
    /// The customer tenant id.
    pub customer: &'a str,
    /// The partner application's id.
    pub application_id: &'a str,
    /// The Partner Center client.
    pub partner_center: &'a dyn PartnerCenterApi,
    /// The Graph directory client.
    pub directory: &'a dyn DirectoryApi,
    /// The partner user's Partner Center token (partner tenant).
    pub partner_center_token: &'a DelegatedToken,
    /// The partner user's Graph token in the customer tenant.
    pub customer_token: &'a DelegatedToken,
    /// The token cache whose app-only tokens of the customer are dropped after a change.
    pub tokens: &'a TokenProvider,
}

/// What an action did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Nothing was written (wait, idle, refuse, release).
    Nothing,
    /// Partner Center consented the application; the event note.
    Consented(String),
    /// Written; the event to publish.
    Done {
        /// Event reason (`api::conditions::events`).
        reason: &'static str,
        /// Event note.
        note: String,
    },
}

/// Why an action failed: the act stage's errors.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// Microsoft refused or failed the write.
    #[error("{what}: {error}")]
    Microsoft {
        /// What was being written.
        what: String,
        /// Microsoft's error.
        error: microsoft::Error,
    },
}

impl ActError {
    fn new(what: impl Into<String>, error: microsoft::Error) -> Self {
        ActError::Microsoft {
            what: what.into(),
            error,
        }
    }

    /// Microsoft's error.
    pub fn error(&self) -> &microsoft::Error {
        let ActError::Microsoft { error, .. } = self;
        error
    }

    /// Retrying later can help without anybody acting.
    pub fn is_transient(&self) -> bool {
        microsoft_is_transient(self.error())
    }

    /// Automation cannot do it: a customer administrator should use the admin-consent link
    /// (Partner Center wants MFA, or refuses the partner user).
    pub fn needs_manual_consent(&self) -> bool {
        matches!(
            self.error().reason(),
            Reason::MfaRequired | Reason::PartnerCenterForbidden
        )
    }

    /// As a failure for the report.
    pub fn failure(&self) -> Failure {
        Failure::new(
            microsoft_reason(self.error()),
            self.to_string(),
            self.is_transient(),
        )
    }
}

fn done(reason: &'static str, note: String) -> Applied {
    Applied::Done { reason, note }
}

/// Performs `action`.
pub async fn act(action: &Action, t: &Target<'_>) -> Result<Applied, ActError> {
    match action {
        Action::Consent { body, replace } => consent(t, body, *replace).await,
        Action::CreateServicePrincipal { app_id } => {
            let what = format!(
                "creating the service principal of {}",
                describe_resource(app_id)
            );
            match t
                .directory
                .create_service_principal(t.customer_token, app_id)
                .await
            {
                Ok(_) => {}
                Err(e) if e.reason() == Reason::AlreadyExists => {}
                Err(e) => return Err(ActError::new(what, e)),
            }
            Ok(done(
                events::SERVICE_PRINCIPAL_CREATED,
                format!(
                    "created the service principal of {} in the customer tenant",
                    describe_resource(app_id)
                ),
            ))
        }
        Action::GrantAppRole {
            role,
            resource,
            body,
        } => {
            let name = format!("{role} of {}", describe_resource(resource));
            match t
                .directory
                .create_app_role_assignment(t.customer_token, body)
                .await
            {
                Ok(_) => {}
                Err(e) if e.reason() == Reason::AlreadyExists => {}
                Err(e) => return Err(ActError::new(format!("granting {name}"), e)),
            }
            t.tokens.invalidate_app_tokens(t.customer);
            Ok(done(
                events::APP_ROLE_GRANTED,
                format!("granted the application permission {name}"),
            ))
        }
        Action::RevokeAppRole {
            role,
            resource,
            resource_sp_id,
            assignment_id,
        } => {
            let name = format!("{role} of {}", describe_resource(resource));
            match t
                .directory
                .delete_app_role_assignment(t.customer_token, resource_sp_id, assignment_id)
                .await
            {
                Ok(()) => {}
                Err(e) if e.reason() == Reason::NotFound => {}
                Err(e) => return Err(ActError::new(format!("removing {name}"), e)),
            }
            t.tokens.invalidate_app_tokens(t.customer);
            Ok(done(
                events::APP_ROLE_REVOKED,
                format!("removed the application permission {name}"),
            ))
        }
        Action::RemoveConsent => {
            remove_consent(t).await?;
            t.tokens.invalidate_app_tokens(t.customer);
            Ok(done(
                events::CONSENT_REMOVED,
                "removed the consent through Partner Center (the app's delegated grants)".into(),
            ))
        }
        Action::Release(_) | Action::Wait(_) | Action::Idle | Action::Refuse(_) => {
            Ok(Applied::Nothing)
        }
    }
}

/// Partner Center consent; `replace` deletes the existing one first (Microsoft's way to change a
/// consent; the plan asks for it only when a read shows a consent that lacks scopes and no
/// write of the operator is pending). An "already exists" answer means a consent is there —
/// typically the operator's own, which Microsoft's reads do not show yet: done, the next
/// observe sees it.
async fn consent(
    t: &Target<'_>,
    body: &ApplicationConsent,
    replace: bool,
) -> Result<Applied, ActError> {
    if replace {
        remove_consent(t).await?;
    }
    let created = t
        .partner_center
        .create_application_consent(t.partner_center_token, t.customer, body)
        .await;
    let existed = match created {
        Ok(_) => false,
        Err(e) if e.reason() == Reason::AlreadyExists => true,
        Err(e) => return Err(ActError::new("consenting through Partner Center", e)),
    };
    t.tokens.invalidate_app_tokens(t.customer);
    // The next read must use a token Entra issues now: one from before the consent still reads
    // with the old grant while the new one is not effective yet.
    t.tokens.invalidate_delegated_tokens(t.customer);
    let grants: Vec<String> = body
        .application_grants
        .iter()
        .map(|g| {
            format!(
                "{}: {}",
                describe_resource(&g.enterprise_application_id),
                g.scope
            )
        })
        .collect();
    let note = match (replace, existed) {
        (_, true) => format!(
            "Partner Center already has a consent of the application ({}); waiting for Microsoft to show it",
            grants.join("; ")
        ),
        (true, false) => format!(
            "replaced the consent with the delegated permissions through Partner Center ({})",
            grants.join("; ")
        ),
        (false, false) => format!(
            "consented the delegated permissions through Partner Center ({})",
            grants.join("; ")
        ),
    };
    Ok(Applied::Consented(note))
}

/// Partner Center DELETE; "not found" (no consent, or a repeated DELETE) is done.
async fn remove_consent(t: &Target<'_>) -> Result<(), ActError> {
    match t
        .partner_center
        .delete_application_consent(t.partner_center_token, t.customer, t.application_id)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.reason(), Reason::NotFound | Reason::CustomerNotFound) => Ok(()),
        Err(e) => Err(ActError::new(
            "removing the consent through Partner Center",
            e,
        )),
    }
}

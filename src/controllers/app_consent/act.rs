//! The act step: a small interpreter of the plan's [`Action`]. Every write is made as the
//! partner's GDAP user — Partner Center with the delegated Partner Center token of the partner
//! tenant, Graph with the delegated Graph token of the customer tenant; the types admit no other
//! (`DelegatedToken`). After a write that changes what the app may do in the tenant, the cached
//! app-only tokens of that tenant are dropped, since their `roles` were fixed when they were
//! issued. It reads no clock and never guesses Microsoft's next state: the next observe sees it.
//! It needs no Kubernetes-side write.

use super::observe::{microsoft_is_transient, microsoft_reason};
use super::plan::Action;
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

/// Partner Center consent; `replace` deletes the existing one first. An "already exists" answer
/// to a plain consent means the existing consent does not give the app what the plan saw
/// missing, so it is replaced as well (Microsoft's samples change a consent the same way).
async fn consent(
    t: &Target<'_>,
    body: &ApplicationConsent,
    replace: bool,
) -> Result<Applied, ActError> {
    if replace {
        remove_consent(t).await?;
    }
    let pc = t.partner_center;
    let created = pc
        .create_application_consent(t.partner_center_token, t.customer, body)
        .await;
    let replaced = match created {
        Ok(_) => replace,
        Err(e) if e.reason() == Reason::AlreadyExists && !replace => {
            remove_consent(t).await?;
            pc.create_application_consent(t.partner_center_token, t.customer, body)
                .await
                .map_err(|e| ActError::new("consenting through Partner Center", e))?;
            true
        }
        Err(e) => return Err(ActError::new("consenting through Partner Center", e)),
    };
    t.tokens.invalidate_app_tokens(t.customer);
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
    let verb = if replaced {
        "replaced the consent with"
    } else {
        "consented"
    };
    Ok(Applied::Consented(format!(
        "{verb} the delegated permissions through Partner Center ({})",
        grants.join("; ")
    )))
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

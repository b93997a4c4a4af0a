//! The Partner Center client: create and delete application consents (app + user), and read
//! the partner's customers.
//!
//! Contract: implements [`PartnerCenterApi`] against `{partner_center}/v1/customers/{tenant}/
//! applicationconsents`. Both methods take a [`DelegatedToken`] for the Partner Center audience
//! (checked before sending). The create carries one `ms-requestid` across its retries, which
//! Partner Center uses for idempotency, so it may be retried like an idempotent call. A DELETE
//! repeated after an unanswered success reports `CustomerNotFound` (404): treat it as done.
//!
//! Answers worth knowing: a consent that exists already is [`Reason::AlreadyExists`] (`409`
//! "Permission entry already exists."): treat it as success and verify it. A token whose
//! sign-in used no MFA is [`Reason::MfaRequired`] (`401`, code `900421`, enforced by Microsoft
//! since April 2026): the stored refresh token must come from an interactive sign-in with MFA.
//! Partner Center offers no GET of consents: verify them in the customer tenant through Graph
//! (the app's service principal and its `oauth2PermissionGrants`).
//!
//! [`Reason::AlreadyExists`]: crate::microsoft::Reason::AlreadyExists
//! [`Reason::MfaRequired`]: crate::microsoft::Reason::MfaRequired
//!
//! An app-only token cannot be passed (this does not compile):
//!
//! ```compile_fail,E0308
//! # async fn f(pc: &dyn gdap_operator::microsoft::PartnerCenterApi, tokens: &gdap_operator::microsoft::TokenProvider,
//! #            consent: &gdap_operator::microsoft::models::partner_center::ApplicationConsent) {
//! let app = tokens.app_token("11111111-2222-3333-4444-555555555555");
//! let _ = pc.create_application_consent(&app, "11111111-2222-3333-4444-555555555555", consent).await;
//! # }
//! ```
//!
//! With the delegated Partner Center token it compiles:
//!
//! ```no_run
//! # async fn f(pc: &dyn gdap_operator::microsoft::PartnerCenterApi, tokens: &gdap_operator::microsoft::TokenProvider,
//! #            consent: &gdap_operator::microsoft::models::partner_center::ApplicationConsent) {
//! let delegated = tokens.partner_center();
//! let _ = pc.create_application_consent(&delegated, "11111111-2222-3333-4444-555555555555", consent).await;
//! # }
//! ```

use crate::microsoft::api::PartnerCenterApi;
use crate::microsoft::endpoints::Audience;
use crate::microsoft::error::{Error, Reason, Result};
use crate::microsoft::models::partner_center::{ApplicationConsent, CustomerPage, PartnerCustomer};
use crate::microsoft::token::{DelegatedToken, require_audience};
use crate::microsoft::transport::{Call, Service, Transport};
use async_trait::async_trait;
use reqwest::Method;
use std::sync::Arc;

/// The real Partner Center client.
#[derive(Debug, Clone)]
pub struct PartnerCenterClient {
    transport: Arc<Transport>,
}

impl PartnerCenterClient {
    /// A client on a shared transport.
    pub fn new(transport: Arc<Transport>) -> Self {
        PartnerCenterClient { transport }
    }
}

#[async_trait]
impl PartnerCenterApi for PartnerCenterClient {
    async fn create_application_consent(
        &self,
        token: &DelegatedToken,
        customer_tenant_id: &str,
        consent: &ApplicationConsent,
    ) -> Result<ApplicationConsent> {
        require_audience(token, Audience::PartnerCenter)?;
        let url = self.transport.endpoints().partner_center_url(&[
            "customers",
            customer_tenant_id,
            "applicationconsents",
        ]);
        let body = serde_json::to_value(consent).map_err(|e| {
            Error::new(
                Reason::InvalidRequest,
                format!("cannot encode consent: {e}"),
            )
        })?;
        let call = Call::new(Method::POST, url, Service::PartnerCenter, token)
            .json(body)
            .idempotent(true);
        let reply = self.transport.send(&call).await?;
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(consent.clone());
        }
        reply.json()
    }

    async fn delete_application_consent(
        &self,
        token: &DelegatedToken,
        customer_tenant_id: &str,
        application_id: &str,
    ) -> Result<()> {
        require_audience(token, Audience::PartnerCenter)?;
        let url = self.transport.endpoints().partner_center_url(&[
            "customers",
            customer_tenant_id,
            "applicationconsents",
            application_id,
        ]);
        let call = Call::new(Method::DELETE, url, Service::PartnerCenter, token);
        self.transport.send(&call).await.map(drop)
    }

    async fn customer(
        &self,
        token: &DelegatedToken,
        customer_tenant_id: &str,
    ) -> Result<Option<PartnerCustomer>> {
        require_audience(token, Audience::PartnerCenter)?;
        let url = self
            .transport
            .endpoints()
            .partner_center_url(&["customers", customer_tenant_id]);
        let call = Call::new(Method::GET, url, Service::PartnerCenter, token);
        match self.transport.send(&call).await {
            Ok(reply) => reply.json().map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn customers_first_page(
        &self,
        token: &DelegatedToken,
        size: u32,
    ) -> Result<CustomerPage> {
        require_audience(token, Audience::PartnerCenter)?;
        let mut url = self
            .transport
            .endpoints()
            .partner_center_url(&["customers"]);
        url.query_pairs_mut().append_pair("size", &size.to_string());
        let call = Call::new(Method::GET, url, Service::PartnerCenter, token);
        self.transport.send(&call).await?.json()
    }
}

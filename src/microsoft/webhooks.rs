//! The Partner Center webhook-registration client: read, create and update the partner's one
//! registration, send a validation event and read how its delivery went.
//!
//! Contract: every call goes to `{partner_center}/webhooks/v1/registration…` with a
//! [`DelegatedToken`] for the Partner Center audience (checked before sending): writes are made
//! as the partner's delegated user, never app-only. A missing registration is `Ok(None)` (Partner
//! Center answers 404). The creates (`POST` of the registration and of a validation event) are
//! not idempotent, so the transport does not repeat them blindly; the update (`PUT`) may be
//! repeated. Partner Center allows two validation events a minute (`429` beyond).

use crate::microsoft::endpoints::Audience;
use crate::microsoft::error::{Error, Reason, Result};
use crate::microsoft::models::webhooks::{ValidationEvent, ValidationStatus, WebhookRegistration};
use crate::microsoft::token::{DelegatedToken, require_audience};
use crate::microsoft::transport::{Call, Service, Transport};
use reqwest::{Method, Url};
use std::sync::Arc;

/// The webhook-registration client.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    transport: Arc<Transport>,
}

impl WebhookClient {
    /// A client on a shared transport.
    pub fn new(transport: Arc<Transport>) -> Self {
        WebhookClient { transport }
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut all = vec!["registration"];
        all.extend_from_slice(segments);
        self.transport.endpoints().partner_center_webhooks_url(&all)
    }

    /// The registration, or `None` when the partner has none.
    pub async fn registration(
        &self,
        token: &DelegatedToken,
    ) -> Result<Option<WebhookRegistration>> {
        require_audience(token, Audience::PartnerCenter)?;
        let call = Call::new(Method::GET, self.url(&[]), Service::PartnerCenter, token);
        match self.transport.send(&call).await {
            Ok(reply) => reply.json().map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the registration (Partner Center refuses a second one with 409).
    pub async fn create(
        &self,
        token: &DelegatedToken,
        registration: &WebhookRegistration,
    ) -> Result<WebhookRegistration> {
        self.write(Method::POST, token, registration).await
    }

    /// Replaces the registration's URL and events.
    pub async fn update(
        &self,
        token: &DelegatedToken,
        registration: &WebhookRegistration,
    ) -> Result<WebhookRegistration> {
        self.write(Method::PUT, token, registration).await
    }

    async fn write(
        &self,
        method: Method,
        token: &DelegatedToken,
        registration: &WebhookRegistration,
    ) -> Result<WebhookRegistration> {
        require_audience(token, Audience::PartnerCenter)?;
        let body = serde_json::to_value(WebhookRegistration {
            subscriber_id: None,
            ..registration.clone()
        })
        .map_err(|e| {
            Error::new(
                Reason::InvalidRequest,
                format!("cannot encode registration: {e}"),
            )
        })?;
        let call = Call::new(method, self.url(&[]), Service::PartnerCenter, token).json(body);
        self.transport.send(&call).await?.json()
    }

    /// Asks Partner Center to send a `test-created` event to the registration's URL.
    pub async fn send_validation_event(&self, token: &DelegatedToken) -> Result<ValidationEvent> {
        require_audience(token, Audience::PartnerCenter)?;
        let url = self.url(&["validationEvents"]);
        let call = Call::new(Method::POST, url, Service::PartnerCenter, token);
        self.transport.send(&call).await?.json()
    }

    /// How the delivery of validation event `correlation_id` went.
    pub async fn validation_status(
        &self,
        token: &DelegatedToken,
        correlation_id: &str,
    ) -> Result<ValidationStatus> {
        require_audience(token, Audience::PartnerCenter)?;
        let url = self.url(&["validationEvents", correlation_id]);
        let call = Call::new(Method::GET, url, Service::PartnerCenter, token);
        self.transport.send(&call).await?.json()
    }
}

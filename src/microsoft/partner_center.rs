//! The Partner Center client: create and delete application consents (app + user), and read
//! the partner's customers.
//!
//! Contract: implements [`PartnerCenterApi`] against `{partner_center}/v1/customers/{tenant}/
//! applicationconsents` and `{partner_center}/v1/customers`. Every method takes a
//! [`DelegatedToken`] for the Partner Center audience (checked before sending). The create
//! carries one `ms-requestid` across its retries, which Partner Center uses for idempotency, so
//! it may be retried like an idempotent call. A DELETE repeated after an unanswered success
//! reports `CustomerNotFound` (404): treat it as done.
//!
//! Answers worth knowing: a consent that exists already is [`Reason::AlreadyExists`] (`409`
//! "Permission entry already exists."): treat it as success and verify it. A token whose
//! sign-in used no MFA is [`Reason::MfaRequired`] (`401`, code `900421`, enforced by Microsoft
//! since April 2026): the stored refresh token must come from an interactive sign-in with MFA.
//! Partner Center offers no GET of consents: verify them in the customer tenant through Graph
//! (the app's service principal and its `oauth2PermissionGrants`).
//!
//! The customer list ([`PartnerCenterApi::list_customers`]) asks for pages of
//! [`CUSTOMER_PAGE_SIZE`] and follows each page's `links.next`: the next request goes to
//! `/v1/customers` on the configured host with the link's query and only its
//! `MS-ContinuationToken` header (no other header a server names is sent). Each page is one
//! transport call, so a throttled page is retried like any read. A continuation token seen
//! twice, a next link without one, or more than [`MAX_CUSTOMER_PAGES`] pages end the list with
//! [`Reason::InvalidResponse`] instead of looping.
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
use crate::microsoft::models::partner_center::{
    ApplicationConsent, CONTINUATION_HEADER, CustomerPage, Link, PartnerCustomer,
};
use crate::microsoft::token::{DelegatedToken, require_audience};
use crate::microsoft::transport::{Call, Service, Transport};
use async_trait::async_trait;
use reqwest::{Method, Url};
use std::collections::HashSet;
use std::sync::Arc;

/// Partner Center's largest page of customers (`size` is 1–500); the list asks for it.
pub const CUSTOMER_PAGE_SIZE: u32 = 500;

/// The most pages of customers the list follows (500,000 customers at [`CUSTOMER_PAGE_SIZE`])
/// before it takes the server's answers for a loop.
pub const MAX_CUSTOMER_PAGES: usize = 1_000;

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

    /// `{partner_center}/v1/customers?{query}`.
    fn customers_url(&self, query: &str) -> Url {
        let mut url = self
            .transport
            .endpoints()
            .partner_center_url(&["customers"]);
        url.set_query(Some(query));
        url
    }

    /// One page of customers, continuing a list when `continuation` is set.
    async fn customers_page(
        &self,
        token: &DelegatedToken,
        url: Url,
        continuation: Option<String>,
    ) -> Result<CustomerPage> {
        let mut call = Call::new(Method::GET, url, Service::PartnerCenter, token);
        if let Some(value) = continuation {
            call = call.header(CONTINUATION_HEADER, value);
        }
        self.transport.send(&call).await?.json()
    }
}

/// The continuations a list has followed: refuses a repeated token and a list longer than
/// [`MAX_CUSTOMER_PAGES`], so a server that loops cannot keep the client asking forever.
#[derive(Debug, Default)]
struct Continuations {
    seen: HashSet<String>,
}

impl Continuations {
    /// The continuation token of `next`, the link of the last page fetched, if the list may
    /// follow it.
    fn follow(&mut self, next: &Link) -> Result<String> {
        let looping = |detail: String| {
            Error::new(
                Reason::InvalidResponse,
                format!("Partner Center's customer list {detail}; stopped instead of looping"),
            )
        };
        let Some(token) = next.continuation_token().filter(|t| !t.is_empty()) else {
            return Err(looping(format!(
                "names a next page without an {CONTINUATION_HEADER} header"
            )));
        };
        let fetched = self.seen.len() + 1;
        if fetched >= MAX_CUSTOMER_PAGES {
            return Err(looping(format!(
                "goes on after {fetched} pages (at most {MAX_CUSTOMER_PAGES} are followed)"
            )));
        }
        if !self.seen.insert(token.to_string()) {
            return Err(looping(format!(
                "repeated a continuation token after {fetched} pages"
            )));
        }
        Ok(token.to_string())
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
        let url = self.customers_url(&format!("size={size}"));
        self.customers_page(token, url, None).await
    }

    async fn list_customers(&self, token: &DelegatedToken) -> Result<Vec<PartnerCustomer>> {
        require_audience(token, Audience::PartnerCenter)?;
        let mut url = self.customers_url(&format!("size={CUSTOMER_PAGE_SIZE}"));
        let mut continuation = None;
        let mut followed = Continuations::default();
        let mut customers = Vec::new();
        loop {
            let page = self.customers_page(token, url, continuation).await?;
            customers.extend(page.items);
            let Some(next) = page.links.next else {
                return Ok(customers);
            };
            continuation = Some(followed.follow(&next)?);
            let query = next
                .query()
                .map(str::to_string)
                .unwrap_or_else(|| format!("size={CUSTOMER_PAGE_SIZE}&seekOperation=Next"));
            url = self.customers_url(&query);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::models::partner_center::LinkHeader;

    fn link(token: &str) -> Link {
        Link {
            uri: "/customers?size=500&seekOperation=Next".into(),
            method: "GET".into(),
            headers: vec![LinkHeader {
                key: "MS-ContinuationToken".into(),
                value: token.into(),
            }],
        }
    }

    #[test]
    fn new_continuations_are_followed_and_a_repeated_one_is_refused() {
        let mut followed = Continuations::default();
        assert_eq!(followed.follow(&link("a")).unwrap(), "a");
        assert_eq!(followed.follow(&link("b")).unwrap(), "b");
        let err = followed.follow(&link("a")).unwrap_err();
        assert_eq!(err.reason(), Reason::InvalidResponse);
        assert!(err.to_string().contains("repeated"), "{err}");
    }

    #[test]
    fn a_next_link_without_a_continuation_is_refused() {
        let mut followed = Continuations::default();
        let mut bare = link("");
        assert!(followed.follow(&bare).is_err(), "an empty token");
        bare.headers.clear();
        let err = followed.follow(&bare).unwrap_err();
        assert!(err.to_string().contains("MS-ContinuationToken"), "{err}");
    }

    #[test]
    fn the_header_name_is_compared_without_case() {
        let mut lower = link("t");
        lower.headers[0].key = "ms-continuationtoken".into();
        assert_eq!(Continuations::default().follow(&lower).unwrap(), "t");
    }

    #[test]
    fn a_list_longer_than_the_page_limit_is_refused() {
        let mut followed = Continuations::default();
        for i in 1..MAX_CUSTOMER_PAGES {
            followed.follow(&link(&i.to_string())).unwrap();
        }
        let err = followed.follow(&link("one more")).unwrap_err();
        assert_eq!(err.reason(), Reason::InvalidResponse);
        assert!(err.to_string().contains("1000 pages"), "{err}");
    }
}

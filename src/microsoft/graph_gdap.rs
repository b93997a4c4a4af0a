//! The Graph GDAP client: relationships, their requests, access assignments and operations.
//!
//! Contract: implements [`GdapApi`] against `{graph}/v1.0/tenantRelationships/…`. Writes take a
//! [`DelegatedToken`] (enforced by the signature) for the Graph audience (checked before
//! sending). PATCH and DELETE send the caller's ETag in `If-Match`; a stale one fails with
//! `PreconditionFailed`. Creates and request POSTs are non-idempotent: an ambiguous failure is
//! `OutcomeUnknown`, and the caller looks the relationship up by display name before retrying.
//! Every call sends `Prefer: include-unknown-enum-members` so new enum members arrive by name.
//! PATCH and DELETE are retried like idempotent calls; if a first attempt succeeded unanswered,
//! the retry reports `PreconditionFailed` (PATCH: the ETag moved) or `NotFound` (DELETE):
//! re-read before concluding anything.
//!
//! ```compile_fail,E0308
//! # async fn f(gdap: &dyn gdap_operator::microsoft::GdapApi, tokens: &gdap_operator::microsoft::TokenProvider,
//! #            new: &gdap_operator::microsoft::models::gdap::NewRelationship) {
//! let app = tokens.app_token("11111111-2222-3333-4444-555555555555");
//! // An app-only token cannot be passed where a delegated one is required: this does not compile.
//! let _ = gdap.create_relationship(&app, new).await;
//! # }
//! ```
//!
//! The same call with the partner's delegated token compiles:
//!
//! ```no_run
//! # async fn f(gdap: &dyn gdap_operator::microsoft::GdapApi, tokens: &gdap_operator::microsoft::TokenProvider,
//! #            new: &gdap_operator::microsoft::models::gdap::NewRelationship) {
//! let delegated = tokens.partner_graph();
//! let _ = gdap.create_relationship(&delegated, new).await;
//! # }
//! ```

use crate::microsoft::api::{GdapApi, RelationshipFilter};
use crate::microsoft::endpoints::Audience;
use crate::microsoft::error::{Error, Reason, Result};
use crate::microsoft::models::gdap::*;
use crate::microsoft::paging;
use crate::microsoft::token::{DelegatedToken, TokenSource, require_audience};
use crate::microsoft::transport::{Call, Reply, Service, Transport};
use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use std::sync::Arc;

const RELATIONSHIPS: [&str; 2] = ["tenantRelationships", "delegatedAdminRelationships"];
const CUSTOMERS: [&str; 2] = ["tenantRelationships", "delegatedAdminCustomers"];
const PREFER: (&str, &str) = ("prefer", "include-unknown-enum-members");

/// The approval link the customer's Global Administrator opens (public cloud).
pub fn approval_url(relationship_id: &str) -> String {
    format!(
        "https://admin.microsoft.com/AdminPortal/Home#/partners/invitation/granularAdminRelationships/{relationship_id}"
    )
}

/// The real GDAP client.
#[derive(Debug, Clone)]
pub struct GraphGdapClient {
    transport: Arc<Transport>,
}

impl GraphGdapClient {
    /// A client on a shared transport.
    pub fn new(transport: Arc<Transport>) -> Self {
        GraphGdapClient { transport }
    }

    fn url(&self, rest: &[&str]) -> Url {
        let mut segments = RELATIONSHIPS.to_vec();
        segments.extend_from_slice(rest);
        self.transport.endpoints().graph_url(&segments)
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        token: &dyn TokenSource,
        url: Url,
    ) -> Result<T> {
        require_audience(token, Audience::Graph)?;
        let call = Call::new(Method::GET, url, Service::Graph, token).header(PREFER.0, PREFER.1);
        self.transport.send(&call).await?.json()
    }

    async fn list<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        token: &dyn TokenSource,
        url: Url,
    ) -> Result<Vec<T>> {
        require_audience(token, Audience::Graph)?;
        paging::collect(
            &self.transport,
            token,
            url,
            &[(PREFER.0, PREFER.1.to_string())],
        )
        .await
    }

    async fn write(
        &self,
        token: &DelegatedToken,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
        etag: Option<&str>,
    ) -> Result<Reply> {
        require_audience(token, Audience::Graph)?;
        let mut call = Call::new(method, url, Service::Graph, token).header(PREFER.0, PREFER.1);
        if let Some(body) = body {
            call = call.json(body);
        }
        if let Some(etag) = etag {
            call = call.header("if-match", etag);
        }
        self.transport.send(&call).await
    }

    async fn patch<T: serde::de::DeserializeOwned>(
        &self,
        token: &DelegatedToken,
        url: Url,
        etag: &str,
        body: serde_json::Value,
    ) -> Result<Updated<T>> {
        let reply = self
            .write(token, Method::PATCH, url, Some(body), Some(etag))
            .await?;
        if reply.status == StatusCode::ACCEPTED {
            let operation_id = reply
                .header("location")
                .and_then(|l| l.rsplit('/').next().map(str::to_string));
            let retry_after = crate::microsoft::error::parse_retry_after(&reply.headers);
            return Ok(Updated::Accepted {
                operation_id,
                retry_after,
            });
        }
        Ok(Updated::Done(reply.json()?))
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| {
        Error::new(
            Reason::InvalidRequest,
            format!("cannot encode request: {e}"),
        )
    })
}

/// Quotes a string for an OData `$filter` literal.
pub fn odata_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn filter_expression(filter: &RelationshipFilter) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(t) = &filter.customer_tenant_id {
        parts.push(format!("customer/tenantId eq {}", odata_quote(t)));
    }
    if let Some(n) = &filter.display_name {
        parts.push(format!("displayName eq {}", odata_quote(n)));
    }
    (!parts.is_empty()).then(|| parts.join(" and "))
}

#[async_trait]
impl GdapApi for GraphGdapClient {
    async fn create_relationship(
        &self,
        token: &DelegatedToken,
        new: &NewRelationship,
    ) -> Result<Relationship> {
        let reply = self
            .write(
                token,
                Method::POST,
                self.url(&[]),
                Some(to_json(new)?),
                None,
            )
            .await?;
        reply.json()
    }

    async fn get_relationship(&self, token: &dyn TokenSource, id: &str) -> Result<Relationship> {
        self.read(token, self.url(&[id])).await
    }

    async fn list_relationships(
        &self,
        token: &dyn TokenSource,
        filter: &RelationshipFilter,
    ) -> Result<Vec<Relationship>> {
        let mut url = self.url(&[]);
        if let Some(f) = filter_expression(filter) {
            url.query_pairs_mut().append_pair("$filter", &f);
        }
        if let Some(top) = filter.page_size {
            url.query_pairs_mut()
                .append_pair("$top", &top.clamp(1, 300).to_string());
        }
        self.list(token, url).await
    }

    async fn relationships_first_page(
        &self,
        token: &dyn TokenSource,
        top: u32,
    ) -> Result<Vec<Relationship>> {
        let mut url = self.url(&[]);
        url.query_pairs_mut()
            .append_pair("$top", &top.clamp(1, 300).to_string());
        let page: crate::microsoft::models::Page<Relationship> = self.read(token, url).await?;
        Ok(page.value)
    }

    async fn update_relationship(
        &self,
        token: &DelegatedToken,
        id: &str,
        etag: &str,
        patch: &RelationshipPatch,
    ) -> Result<Updated<Relationship>> {
        self.patch(token, self.url(&[id]), etag, to_json(patch)?)
            .await
    }

    async fn delete_relationship(
        &self,
        token: &DelegatedToken,
        id: &str,
        etag: &str,
    ) -> Result<()> {
        self.write(token, Method::DELETE, self.url(&[id]), None, Some(etag))
            .await
            .map(drop)
    }

    async fn lock_for_approval(
        &self,
        token: &DelegatedToken,
        id: &str,
    ) -> Result<RelationshipRequest> {
        let body = serde_json::json!({"action": RequestAction::LockForApproval});
        self.write(
            token,
            Method::POST,
            self.url(&[id, "requests"]),
            Some(body),
            None,
        )
        .await?
        .json()
    }

    async fn terminate_relationship(
        &self,
        token: &DelegatedToken,
        id: &str,
    ) -> Result<RelationshipRequest> {
        let body = serde_json::json!({"action": RequestAction::Terminate});
        self.write(
            token,
            Method::POST,
            self.url(&[id, "requests"]),
            Some(body),
            None,
        )
        .await?
        .json()
    }

    async fn list_requests(
        &self,
        token: &dyn TokenSource,
        id: &str,
    ) -> Result<Vec<RelationshipRequest>> {
        self.list(token, self.url(&[id, "requests"])).await
    }

    async fn create_access_assignment(
        &self,
        token: &DelegatedToken,
        relationship_id: &str,
        new: &NewAccessAssignment,
    ) -> Result<AccessAssignment> {
        let url = self.url(&[relationship_id, "accessAssignments"]);
        self.write(token, Method::POST, url, Some(to_json(new)?), None)
            .await?
            .json()
    }

    async fn get_access_assignment(
        &self,
        token: &dyn TokenSource,
        relationship_id: &str,
        id: &str,
    ) -> Result<AccessAssignment> {
        self.read(token, self.url(&[relationship_id, "accessAssignments", id]))
            .await
    }

    async fn list_access_assignments(
        &self,
        token: &dyn TokenSource,
        relationship_id: &str,
    ) -> Result<Vec<AccessAssignment>> {
        self.list(token, self.url(&[relationship_id, "accessAssignments"]))
            .await
    }

    async fn update_access_assignment(
        &self,
        token: &DelegatedToken,
        relationship_id: &str,
        id: &str,
        etag: &str,
        access_details: &AccessDetails,
    ) -> Result<Updated<AccessAssignment>> {
        let body = serde_json::json!({"accessDetails": to_json(access_details)?});
        self.patch(
            token,
            self.url(&[relationship_id, "accessAssignments", id]),
            etag,
            body,
        )
        .await
    }

    async fn delete_access_assignment(
        &self,
        token: &DelegatedToken,
        relationship_id: &str,
        id: &str,
        etag: &str,
    ) -> Result<()> {
        let url = self.url(&[relationship_id, "accessAssignments", id]);
        self.write(token, Method::DELETE, url, None, Some(etag))
            .await
            .map(drop)
    }

    async fn list_operations(
        &self,
        token: &dyn TokenSource,
        relationship_id: &str,
    ) -> Result<Vec<Operation>> {
        self.list(token, self.url(&[relationship_id, "operations"]))
            .await
    }

    async fn get_operation(
        &self,
        token: &dyn TokenSource,
        relationship_id: &str,
        operation_id: &str,
    ) -> Result<Operation> {
        self.read(
            token,
            self.url(&[relationship_id, "operations", operation_id]),
        )
        .await
    }

    async fn list_customers(&self, token: &dyn TokenSource) -> Result<Vec<DelegatedAdminCustomer>> {
        let mut url = self.transport.endpoints().graph_url(&CUSTOMERS);
        url.query_pairs_mut().append_pair("$top", "300");
        self.list(token, url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_quoted_and_combined() {
        let f = RelationshipFilter {
            customer_tenant_id: Some("t-1".into()),
            display_name: Some("O'Brien".into()),
            page_size: None,
        };
        assert_eq!(
            filter_expression(&f).unwrap(),
            "customer/tenantId eq 't-1' and displayName eq 'O''Brien'"
        );
        assert_eq!(filter_expression(&RelationshipFilter::default()), None);
    }
}

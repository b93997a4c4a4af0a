//! The Graph directory of a (customer) tenant: users, users delta, subscribed SKUs, company
//! subscriptions, service principals, app role assignments, OAuth2 permission grants and `$batch`;
//! and, in the partner tenant, the signed-in partner user's group memberships (`/me/memberOf`), a
//! group by id and the partner app's registration with its credentials' validity.
//!
//! Contract: implements [`DirectoryApi`]. Users and delta rounds are *streams* that hold one
//! page at a time, never a whole tenant. A delta round ends with exactly one
//! [`DeltaItem::DeltaLink`]; an expired delta link fails with `DeltaExpired` (run a full round).
//! `$batch` takes at most 20 requests; inner 429/503 answers are resubmitted after their
//! `Retry-After`, within the transport's retry policy. Writes (service principals, app role
//! assignments) take a [`DelegatedToken`]; "already exists" answers (`409`, or Graph's `400`
//! "Permission being assigned already exists") become [`Reason::AlreadyExists`].
//!
//! An app-only token cannot be passed to a write (this does not compile):
//!
//! ```compile_fail,E0308
//! # async fn f(dir: &dyn gdap_operator::microsoft::DirectoryApi, tokens: &gdap_operator::microsoft::TokenProvider) {
//! let app = tokens.app_token("11111111-2222-3333-4444-555555555555");
//! let _ = dir.create_service_principal(&app, "00000003-0000-0000-c000-000000000000").await;
//! # }
//! ```
//!
//! With the partner user's delegated Graph token for the customer it compiles:
//!
//! ```no_run
//! # async fn f(dir: &dyn gdap_operator::microsoft::DirectoryApi, tokens: &gdap_operator::microsoft::TokenProvider) {
//! use gdap_operator::microsoft::Audience;
//! let delegated = tokens.delegated_token("11111111-2222-3333-4444-555555555555", Audience::Graph);
//! let _ = dir.create_service_principal(&delegated, "00000003-0000-0000-c000-000000000000").await;
//! # }
//! ```

use crate::microsoft::api::{DirectoryApi, UserQuery};
use crate::microsoft::endpoints::Audience;
use crate::microsoft::error::{Error, Reason, Result};
use crate::microsoft::graph_gdap::odata_quote;
use crate::microsoft::models::Page;
use crate::microsoft::models::directory::*;
use crate::microsoft::paging::{self, fetch_page, rebase};
use crate::microsoft::retry::RetryEvent;
use crate::microsoft::token::{DelegatedToken, TokenSource, require_audience};
use crate::microsoft::transport::{Call, Service, Transport};
use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::{Method, Url};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Most requests one `$batch` may carry.
pub const MAX_BATCH: usize = 20;

/// The real directory client.
#[derive(Debug, Clone)]
pub struct GraphDirectoryClient {
    transport: Arc<Transport>,
}

impl GraphDirectoryClient {
    /// A client on a shared transport.
    pub fn new(transport: Arc<Transport>) -> Self {
        GraphDirectoryClient { transport }
    }

    fn url(&self, segments: &[&str]) -> Url {
        self.transport.endpoints().graph_url(segments)
    }

    fn delta_first_url(&self, start: &DeltaStart) -> Result<Url> {
        Ok(match start {
            DeltaStart::Initial { select } => {
                let mut url = self.url(&["users", "delta"]);
                if !select.is_empty() {
                    url.query_pairs_mut()
                        .append_pair("$select", &select.join(","));
                }
                url
            }
            DeltaStart::Latest => {
                let mut url = self.url(&["users", "delta"]);
                url.query_pairs_mut().append_pair("$deltatoken", "latest");
                url
            }
            DeltaStart::Link(link) => rebase(&self.transport, link)?,
        })
    }

    async fn send_batch(
        &self,
        token: &dyn TokenSource,
        requests: &[BatchRequest],
    ) -> Result<Vec<BatchResponse>> {
        #[derive(serde::Deserialize)]
        struct Answer {
            responses: Vec<BatchResponse>,
        }
        let reads_only = requests
            .iter()
            .all(|r| r.method.eq_ignore_ascii_case("GET"));
        let call = Call::new(Method::POST, self.url(&["$batch"]), Service::Graph, token)
            .json(serde_json::json!({ "requests": requests }))
            .idempotent(reads_only);
        Ok(self
            .transport
            .send(&call)
            .await?
            .json::<Answer>()?
            .responses)
    }
}

fn inner_retry_after(resp: &BatchResponse) -> Option<Duration> {
    let value = resp
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))?
        .1;
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

fn inner_retry_event(
    policy: &crate::microsoft::RetryPolicy,
    resp: &BatchResponse,
    attempt: u32,
) -> RetryEvent {
    let reason = if resp.status == 429 {
        Reason::Throttled
    } else {
        Reason::ServiceUnavailable
    };
    let retry_after = inner_retry_after(resp);
    let as_error = Error::new(reason, "inner $batch response").with_retry_after(retry_after);
    RetryEvent {
        attempt,
        reason,
        status: Some(resp.status),
        retry_after,
        wait: policy.delay_for(&as_error, attempt),
    }
}

/// Graph's ways of saying "that exists already": `409` on a service principal, `400` "Permission
/// being assigned already exists on the object." on an app role assignment.
fn already_exists(err: Error) -> Error {
    let exists = err.reason() == Reason::Conflict
        || (err.reason() == Reason::InvalidRequest && err.detail_contains("already exists"));
    if exists {
        err.with_reason(Reason::AlreadyExists)
    } else {
        err
    }
}

fn is_throttled(resp: &BatchResponse) -> bool {
    matches!(resp.status, 429 | 503)
}

struct DeltaState {
    next: Option<Url>,
    buffer: VecDeque<DeltaItem>,
}

#[async_trait]
impl DirectoryApi for GraphDirectoryClient {
    fn users(
        &self,
        token: &dyn TokenSource,
        query: &UserQuery,
    ) -> BoxStream<'static, Result<User>> {
        if let Err(e) = require_audience(token, Audience::Graph) {
            return stream::once(async { Err(e) }).boxed();
        }
        let mut url = self.url(&["users"]);
        {
            let mut q = url.query_pairs_mut();
            if !query.select.is_empty() {
                q.append_pair("$select", &query.select.join(","));
            }
            if let Some(top) = query.top {
                q.append_pair("$top", &top.clamp(1, 999).to_string());
            }
            if let Some(f) = &query.filter {
                q.append_pair("$filter", f);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        paging::items(self.transport.clone(), token.to_shared(), url, Vec::new())
    }

    fn users_delta(
        &self,
        token: &dyn TokenSource,
        start: &DeltaStart,
    ) -> BoxStream<'static, Result<DeltaItem>> {
        let first =
            require_audience(token, Audience::Graph).and_then(|_| self.delta_first_url(start));
        let first = match first {
            Ok(u) => u,
            Err(e) => return stream::once(async { Err(e) }).boxed(),
        };
        let (transport, token) = (self.transport.clone(), token.to_shared());
        let state = DeltaState {
            next: Some(first),
            buffer: VecDeque::new(),
        };
        stream::try_unfold(state, move |mut st| {
            let (transport, token) = (transport.clone(), token.clone());
            async move {
                loop {
                    if let Some(item) = st.buffer.pop_front() {
                        return Ok(Some((item, st)));
                    }
                    let Some(url) = st.next.take() else {
                        return Ok(None);
                    };
                    let page: Page<RawDeltaUser> =
                        fetch_page(&transport, token.as_ref(), url, &[]).await?;
                    st.buffer = page.value.into_iter().map(DeltaItem::from).collect();
                    match (page.next_link, page.delta_link) {
                        (Some(next), _) => st.next = Some(rebase(&transport, &next)?),
                        (None, Some(delta)) => st.buffer.push_back(DeltaItem::DeltaLink(delta)),
                        (None, None) => {
                            return Err(Error::new(
                                Reason::InvalidResponse,
                                "a delta page had neither a nextLink nor a deltaLink",
                            ));
                        }
                    }
                }
            }
        })
        .boxed()
    }

    async fn subscribed_skus(&self, token: &dyn TokenSource) -> Result<Vec<SubscribedSku>> {
        require_audience(token, Audience::Graph)?;
        paging::collect(&self.transport, token, self.url(&["subscribedSkus"]), &[]).await
    }

    async fn subscriptions(&self, token: &dyn TokenSource) -> Result<Vec<CompanySubscription>> {
        require_audience(token, Audience::Graph)?;
        let url = self.url(&["directory", "subscriptions"]);
        paging::collect(&self.transport, token, url, &[]).await
    }

    async fn service_principal_by_app_id(
        &self,
        token: &dyn TokenSource,
        app_id: &str,
    ) -> Result<Option<ServicePrincipal>> {
        require_audience(token, Audience::Graph)?;
        let mut url = self.url(&["servicePrincipals"]);
        url.query_pairs_mut()
            .append_pair("$filter", &format!("appId eq {}", odata_quote(app_id)));
        let page: Page<ServicePrincipal> = fetch_page(&self.transport, token, url, &[]).await?;
        Ok(page.value.into_iter().next())
    }

    async fn service_principal(
        &self,
        token: &dyn TokenSource,
        id: &str,
    ) -> Result<ServicePrincipal> {
        require_audience(token, Audience::Graph)?;
        let call = Call::new(
            Method::GET,
            self.url(&["servicePrincipals", id]),
            Service::Graph,
            token,
        );
        self.transport.send(&call).await?.json()
    }

    async fn create_service_principal(
        &self,
        token: &DelegatedToken,
        app_id: &str,
    ) -> Result<ServicePrincipal> {
        require_audience(token, Audience::Graph)?;
        let call = Call::new(
            Method::POST,
            self.url(&["servicePrincipals"]),
            Service::Graph,
            token,
        )
        .json(serde_json::json!({ "appId": app_id }));
        self.transport
            .send(&call)
            .await
            .map_err(already_exists)?
            .json()
    }

    async fn app_role_assignments(
        &self,
        token: &dyn TokenSource,
        service_principal_id: &str,
    ) -> Result<Vec<AppRoleAssignment>> {
        require_audience(token, Audience::Graph)?;
        let url = self.url(&[
            "servicePrincipals",
            service_principal_id,
            "appRoleAssignments",
        ]);
        paging::collect(&self.transport, token, url, &[]).await
    }

    async fn app_role_assigned_to(
        &self,
        token: &dyn TokenSource,
        resource_service_principal_id: &str,
    ) -> Result<Vec<AppRoleAssignment>> {
        require_audience(token, Audience::Graph)?;
        let url = self.url(&[
            "servicePrincipals",
            resource_service_principal_id,
            "appRoleAssignedTo",
        ]);
        paging::collect(&self.transport, token, url, &[]).await
    }

    async fn create_app_role_assignment(
        &self,
        token: &DelegatedToken,
        assignment: &NewAppRoleAssignment,
    ) -> Result<AppRoleAssignment> {
        require_audience(token, Audience::Graph)?;
        let url = self.url(&[
            "servicePrincipals",
            &assignment.resource_id,
            "appRoleAssignedTo",
        ]);
        let body = serde_json::to_value(assignment).map_err(|e| {
            Error::new(
                Reason::InvalidRequest,
                format!("cannot encode app role assignment: {e}"),
            )
        })?;
        let call = Call::new(Method::POST, url, Service::Graph, token).json(body);
        self.transport
            .send(&call)
            .await
            .map_err(already_exists)?
            .json()
    }

    async fn delete_app_role_assignment(
        &self,
        token: &DelegatedToken,
        resource_service_principal_id: &str,
        assignment_id: &str,
    ) -> Result<()> {
        require_audience(token, Audience::Graph)?;
        let url = self.url(&[
            "servicePrincipals",
            resource_service_principal_id,
            "appRoleAssignedTo",
            assignment_id,
        ]);
        let call = Call::new(Method::DELETE, url, Service::Graph, token);
        self.transport.send(&call).await.map(drop)
    }

    async fn oauth2_permission_grants(
        &self,
        token: &dyn TokenSource,
        client_id: &str,
    ) -> Result<Vec<OAuth2PermissionGrant>> {
        require_audience(token, Audience::Graph)?;
        let mut url = self.url(&["oauth2PermissionGrants"]);
        url.query_pairs_mut().append_pair(
            "$filter",
            &format!("clientId eq {}", odata_quote(client_id)),
        );
        paging::collect(&self.transport, token, url, &[]).await
    }

    async fn my_memberships(&self, token: &DelegatedToken) -> Result<Vec<DirectoryObject>> {
        require_audience(token, Audience::Graph)?;
        let url = self.url(&["me", "memberOf"]);
        paging::collect(&self.transport, token, url, &[]).await
    }

    async fn group(&self, token: &dyn TokenSource, id: &str) -> Result<Option<Group>> {
        require_audience(token, Audience::Graph)?;
        let mut url = self.url(&["groups", id]);
        url.query_pairs_mut()
            .append_pair("$select", "id,displayName,securityEnabled");
        let call = Call::new(Method::GET, url, Service::Graph, token);
        match self.transport.send(&call).await {
            Ok(reply) => reply.json().map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn application_by_app_id(
        &self,
        token: &dyn TokenSource,
        app_id: &str,
    ) -> Result<Option<Application>> {
        require_audience(token, Audience::Graph)?;
        let mut url = self.url(&[&format!("applications(appId={})", odata_quote(app_id))]);
        url.query_pairs_mut().append_pair(
            "$select",
            "id,appId,displayName,passwordCredentials,keyCredentials",
        );
        let call = Call::new(Method::GET, url, Service::Graph, token);
        match self.transport.send(&call).await {
            Ok(reply) => reply.json().map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn batch(
        &self,
        token: &dyn TokenSource,
        requests: &[BatchRequest],
    ) -> Result<Vec<BatchResponse>> {
        require_audience(token, Audience::Graph)?;
        if requests.len() > MAX_BATCH {
            return Err(Error::new(
                Reason::InvalidRequest,
                format!(
                    "a $batch carries at most {MAX_BATCH} requests, got {}",
                    requests.len()
                ),
            ));
        }
        let by_id: BTreeMap<&str, &BatchRequest> =
            requests.iter().map(|r| (r.id.as_str(), r)).collect();
        let policy = self.transport.retry_policy().clone();
        let mut done: BTreeMap<String, BatchResponse> = BTreeMap::new();
        let mut pending: Vec<BatchRequest> = requests.to_vec();
        for attempt in 1..=policy.max_attempts {
            let answers = self.send_batch(token, &pending).await?;
            let mut wait = Duration::ZERO;
            let mut again = Vec::new();
            for resp in answers {
                let retryable = is_throttled(&resp) && attempt < policy.max_attempts;
                match by_id.get(resp.id.as_str()) {
                    Some(req) if retryable && req.method.eq_ignore_ascii_case("GET") => {
                        let event = inner_retry_event(&policy, &resp, attempt);
                        self.transport.report_retry(&event);
                        wait = wait.max(event.wait);
                        again.push((*req).clone());
                    }
                    _ => {
                        done.insert(resp.id.clone(), resp);
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            tracing::debug!(
                throttled = again.len(),
                wait_ms = wait.as_millis() as u64,
                "resubmitting throttled $batch requests"
            );
            tokio::time::sleep(wait).await;
            pending = again;
        }
        Ok(requests.iter().filter_map(|r| done.remove(&r.id)).collect())
    }
}

//! The Microsoft APIs the controllers use, as object-safe traits (use them as `Arc<dyn …>`), and
//! the queries they take. The clients (`GraphGdapClient`, `PartnerCenterClient`,
//! `GraphDirectoryClient`) implement them; tests run them against the sandbox.

use crate::microsoft::error::Result;
use crate::microsoft::models::directory::*;
use crate::microsoft::models::gdap::*;
use crate::microsoft::models::partner_center::{ApplicationConsent, CustomerPage, PartnerCustomer};
use crate::microsoft::token::{DelegatedToken, TokenSource};
use async_trait::async_trait;
use futures::stream::BoxStream;

/// The Graph GDAP API (partner tenant). Writes need the partner's delegated Graph token.
#[async_trait]
pub trait GdapApi: Send + Sync {
    /// `POST …/delegatedAdminRelationships`. Not idempotent: on `OutcomeUnknown`, list by display
    /// name before creating again.
    async fn create_relationship(
        &self,
        token: &DelegatedToken,
        new: &NewRelationship,
    ) -> Result<Relationship>;
    /// `GET …/delegatedAdminRelationships/{id}`.
    async fn get_relationship(&self, token: &dyn TokenSource, id: &str) -> Result<Relationship>;
    /// `GET …/delegatedAdminRelationships` with an optional customer and/or display-name filter.
    async fn list_relationships(
        &self,
        token: &dyn TokenSource,
        filter: &RelationshipFilter,
    ) -> Result<Vec<Relationship>>;
    /// `PATCH …/{id}` with `If-Match: etag`.
    async fn update_relationship(
        &self,
        token: &DelegatedToken,
        id: &str,
        etag: &str,
        patch: &RelationshipPatch,
    ) -> Result<Updated<Relationship>>;
    /// `DELETE …/{id}` with `If-Match: etag` (only while `created`).
    async fn delete_relationship(&self, token: &DelegatedToken, id: &str, etag: &str)
    -> Result<()>;
    /// `POST …/{id}/requests {"action":"lockForApproval"}`. Not idempotent: on `OutcomeUnknown`,
    /// read the relationship's status before locking again.
    async fn lock_for_approval(
        &self,
        token: &DelegatedToken,
        id: &str,
    ) -> Result<RelationshipRequest>;
    /// `POST …/{id}/requests {"action":"terminate"}`. Not idempotent: on `OutcomeUnknown`, read
    /// the relationship's status before terminating again.
    async fn terminate_relationship(
        &self,
        token: &DelegatedToken,
        id: &str,
    ) -> Result<RelationshipRequest>;
    /// `GET …/{id}/requests`.
    async fn list_requests(
        &self,
        token: &dyn TokenSource,
        id: &str,
    ) -> Result<Vec<RelationshipRequest>>;
    /// `POST …/{id}/accessAssignments` (relationship must be `active`). Not idempotent: on
    /// `OutcomeUnknown`, list the assignments and look for the group before creating again.
    async fn create_access_assignment(
        &self,
        token: &DelegatedToken,
        relationship_id: &str,
        new: &NewAccessAssignment,
    ) -> Result<AccessAssignment>;
    /// `GET …/{id}/accessAssignments/{assignmentId}`.
    async fn get_access_assignment(
        &self,
        token: &dyn TokenSource,
        relationship_id: &str,
        id: &str,
    ) -> Result<AccessAssignment>;
    /// `GET …/{id}/accessAssignments`.
    async fn list_access_assignments(
        &self,
        token: &dyn TokenSource,
        relationship_id: &str,
    ) -> Result<Vec<AccessAssignment>>;
    /// `PATCH …/{id}/accessAssignments/{assignmentId}` with `If-Match: etag`.
    async fn update_access_assignment(
        &self,
        token: &DelegatedToken,
        relationship_id: &str,
        id: &str,
        etag: &str,
        access_details: &AccessDetails,
    ) -> Result<Updated<AccessAssignment>>;
    /// `DELETE …/{id}/accessAssignments/{assignmentId}` with `If-Match: etag`.
    async fn delete_access_assignment(
        &self,
        token: &DelegatedToken,
        relationship_id: &str,
        id: &str,
        etag: &str,
    ) -> Result<()>;
    /// `GET …/{id}/operations`.
    async fn list_operations(
        &self,
        token: &dyn TokenSource,
        relationship_id: &str,
    ) -> Result<Vec<Operation>>;
    /// `GET …/{id}/operations/{operationId}`.
    async fn get_operation(
        &self,
        token: &dyn TokenSource,
        relationship_id: &str,
        operation_id: &str,
    ) -> Result<Operation>;
    /// `GET /tenantRelationships/delegatedAdminCustomers`, every page (`$top` 300).
    async fn list_customers(&self, token: &dyn TokenSource) -> Result<Vec<DelegatedAdminCustomer>>;
    /// `GET …/delegatedAdminRelationships?$top=N`: the first page only (a reachability probe
    /// that stays one request however many relationships the partner has).
    async fn relationships_first_page(
        &self,
        token: &dyn TokenSource,
        top: u32,
    ) -> Result<Vec<Relationship>>;
}

/// The Partner Center application-consent API. Needs the partner's delegated Partner Center
/// token.
#[async_trait]
pub trait PartnerCenterApi: Send + Sync {
    /// `POST /v1/customers/{tenant}/applicationconsents`. An existing consent answers
    /// [`Reason::AlreadyExists`]; a sign-in without MFA [`Reason::MfaRequired`].
    async fn create_application_consent(
        &self,
        token: &DelegatedToken,
        customer_tenant_id: &str,
        consent: &ApplicationConsent,
    ) -> Result<ApplicationConsent>;
    /// `DELETE /v1/customers/{tenant}/applicationconsents/{applicationId}`.
    async fn delete_application_consent(
        &self,
        token: &DelegatedToken,
        customer_tenant_id: &str,
        application_id: &str,
    ) -> Result<()>;
    /// `GET /v1/customers/{tenant}`: the customer, or `None` when it is not a customer of this
    /// partner (`404`). Accepts the delegated token only (App+User, MFA).
    async fn customer(
        &self,
        token: &DelegatedToken,
        customer_tenant_id: &str,
    ) -> Result<Option<PartnerCustomer>>;
    /// `GET /v1/customers?size=N`: the first page of the partner's customers and their total.
    async fn customers_first_page(&self, token: &DelegatedToken, size: u32)
    -> Result<CustomerPage>;
    /// `GET /v1/customers?size=500` (Partner Center's largest page), then each `links.next`
    /// with its `MS-ContinuationToken` header, to the last page: every customer of the partner.
    /// A continuation token seen twice, or more than 1,000 pages, is [`Reason::InvalidResponse`]
    /// (a looping server), never an endless list. Accepts the delegated token only (App+User,
    /// MFA).
    ///
    /// [`Reason::InvalidResponse`]: crate::microsoft::Reason::InvalidResponse
    async fn list_customers(&self, token: &DelegatedToken) -> Result<Vec<PartnerCustomer>>;
}

/// The Graph directory of a (customer) tenant. Reads accept any token source (background reads
/// use an [`AppToken`]; before consent, the delegated GDAP token can read where the app cannot);
/// writes — service principals and app role assignments — take `&DelegatedToken` only.
#[async_trait]
pub trait DirectoryApi: Send + Sync {
    /// `GET /users` as a stream of users, one page in memory at a time.
    fn users(&self, token: &dyn TokenSource, query: &UserQuery)
    -> BoxStream<'static, Result<User>>;
    /// `GET /users/delta` as a stream ending in [`DeltaItem::DeltaLink`].
    fn users_delta(
        &self,
        token: &dyn TokenSource,
        start: &DeltaStart,
    ) -> BoxStream<'static, Result<DeltaItem>>;
    /// `GET /subscribedSkus`.
    async fn subscribed_skus(&self, token: &dyn TokenSource) -> Result<Vec<SubscribedSku>>;
    /// `GET /directory/subscriptions`: the commercial subscriptions behind the SKUs (a few per
    /// SKU, so collected, across pages).
    async fn subscriptions(&self, token: &dyn TokenSource) -> Result<Vec<CompanySubscription>>;
    /// `GET /servicePrincipals?$filter=appId eq '…'`: `None` when the tenant lacks it.
    async fn service_principal_by_app_id(
        &self,
        token: &dyn TokenSource,
        app_id: &str,
    ) -> Result<Option<ServicePrincipal>>;
    /// `GET /servicePrincipals/{id}`, with its `appRoles` and `oauth2PermissionScopes` (to
    /// resolve permission names to ids).
    async fn service_principal(
        &self,
        token: &dyn TokenSource,
        id: &str,
    ) -> Result<ServicePrincipal>;
    /// `POST /servicePrincipals {"appId"}`: adds an application (a first-party resource such as
    /// Office 365 Management APIs, or the partner app) to the tenant. An existing one answers
    /// [`Reason::AlreadyExists`]. Not idempotent: on `OutcomeUnknown`, look it up by appId first.
    async fn create_service_principal(
        &self,
        token: &DelegatedToken,
        app_id: &str,
    ) -> Result<ServicePrincipal>;
    /// `GET /servicePrincipals/{id}/appRoleAssignments`: app roles granted to that principal.
    async fn app_role_assignments(
        &self,
        token: &dyn TokenSource,
        service_principal_id: &str,
    ) -> Result<Vec<AppRoleAssignment>>;
    /// `GET /servicePrincipals/{id}/appRoleAssignedTo`: app roles of that resource granted to
    /// any principal.
    async fn app_role_assigned_to(
        &self,
        token: &dyn TokenSource,
        resource_service_principal_id: &str,
    ) -> Result<Vec<AppRoleAssignment>>;
    /// `POST /servicePrincipals/{resourceId}/appRoleAssignedTo`: grants an application
    /// permission. An existing grant answers [`Reason::AlreadyExists`]. Not idempotent: on
    /// `OutcomeUnknown`, list the resource's assignments first.
    async fn create_app_role_assignment(
        &self,
        token: &DelegatedToken,
        assignment: &NewAppRoleAssignment,
    ) -> Result<AppRoleAssignment>;
    /// `DELETE /servicePrincipals/{resourceId}/appRoleAssignedTo/{id}`: removes a grant.
    async fn delete_app_role_assignment(
        &self,
        token: &DelegatedToken,
        resource_service_principal_id: &str,
        assignment_id: &str,
    ) -> Result<()>;
    /// `GET /oauth2PermissionGrants?$filter=clientId eq '…'`: delegated grants of a client SP.
    async fn oauth2_permission_grants(
        &self,
        token: &dyn TokenSource,
        client_id: &str,
    ) -> Result<Vec<OAuth2PermissionGrant>>;
    /// `GET /me/memberOf`: the groups (and other directory objects) the signed-in user of a
    /// delegated token is a direct member of — in the partner tenant, the security groups that
    /// GDAP access assignments name.
    async fn my_memberships(&self, token: &DelegatedToken) -> Result<Vec<DirectoryObject>>;
    /// `GET /groups/{id}` in the token's tenant (the partner's security groups): `None` when
    /// there is no such group (`404`).
    async fn group(&self, token: &dyn TokenSource, id: &str) -> Result<Option<Group>>;
    /// `GET /applications(appId='{appId}')?$select=…` in the app's home tenant, with its
    /// `passwordCredentials` and `keyCredentials`: `None` when it is not registered there.
    async fn application_by_app_id(
        &self,
        token: &dyn TokenSource,
        app_id: &str,
    ) -> Result<Option<Application>>;
    /// `POST /$batch` with at most 20 requests; answers in request order.
    async fn batch(
        &self,
        token: &dyn TokenSource,
        requests: &[BatchRequest],
    ) -> Result<Vec<BatchResponse>>;
}

/// What to read in a users listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Properties to `$select` (empty: Graph's default set).
    pub select: Vec<String>,
    /// Page size, 1–999 (Graph's default is 100).
    pub top: Option<u32>,
    /// An OData `$filter`.
    pub filter: Option<String>,
}

/// Which relationships to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationshipFilter {
    /// Only this customer's (`customer/tenantId eq …`).
    pub customer_tenant_id: Option<String>,
    /// Only the one with this display name.
    pub display_name: Option<String>,
    /// Page size (`$top`, at most 300); Graph's default when `None`.
    pub page_size: Option<u32>,
}

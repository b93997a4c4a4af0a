//! The observe step, reads only, all as the partner's GDAP user (delegated tokens):
//!
//! - the partner side: the security groups the user is in (`/me/memberOf`), the active GDAP
//!   relationships with the customer and the roles their active access assignments give those
//!   groups, and the GdapRelationship `spec.relationshipRef` names;
//! - the customer tenant: whether Entra issues the user a delegated Graph token there at all
//!   (it does not before the app is consented: AADSTS90099/65001), then the app's service
//!   principal, its delegated grants and application permissions, and the service principals
//!   (with their app roles) of the resources the consent needs.
//!
//! The customer's answers that belong to the consent's state (not consented, no GDAP access) are
//! observations, not errors; everything else is an [`ObserveError`]. The operator's own writes
//! that Microsoft did not show yet come from the object's annotation `gdap.io/pending-writes`
//! (see `pending`); an unreadable value counts as none (logged), so at worst a write is tried
//! again and answered "already exists".

use super::desired::Intent;
use super::observed::{Observed, PartnerSide, Reference, RemoteRelationship, Unreadable};
use super::pending::Pending;
use super::plan::removal_explains;
use super::tenant::{Remains, ResourcePrincipal, RoleAssignment, Tenant, TenantView};
use crate::api::conditions::{reasons, types};
use crate::api::consent_rules::{CONSENT_CAPABLE_ROLE_IDS, MICROSOFT_GRAPH_APP_ID};
use crate::api::{AppConsent, GdapRelationship};
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::failure::Failure;
use crate::microsoft::models::directory::{AppRoleAssignment, ServicePrincipal};
use crate::microsoft::models::gdap::{AccessAssignmentStatus, RelationshipStatus};
use crate::microsoft::{
    self, AppToken, Audience, DelegatedToken, DirectoryApi, MicrosoftClients, Reason,
    RelationshipFilter, TokenSource,
};
use chrono::{DateTime, Utc};
use kube::Api;
use std::collections::{BTreeMap, BTreeSet};

/// Why a side could not be observed: the observe stage's errors.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The credentials Secret is missing, incomplete, or could not be read.
    #[error("{}", .0.message)]
    Credentials(Failure),
    /// The referenced GdapRelationship could not be read.
    #[error("reading GdapRelationship {name}: {source}")]
    Kubernetes {
        /// Its name.
        name: String,
        /// The Kubernetes API's error.
        source: kube::Error,
    },
    /// Microsoft could not be read.
    #[error("reading {what} failed: {error}")]
    Microsoft {
        /// What was being read.
        what: &'static str,
        /// Microsoft's error.
        error: microsoft::Error,
    },
}

impl ObserveError {
    /// Retrying later can help without anybody acting.
    pub fn is_transient(&self) -> bool {
        match self {
            ObserveError::Credentials(f) => f.transient,
            ObserveError::Kubernetes { .. } => true,
            ObserveError::Microsoft { error, .. } => microsoft_is_transient(error),
        }
    }

    /// As a failure for the report.
    pub fn failure(&self) -> Failure {
        let reason = match self {
            ObserveError::Credentials(f) => return f.clone(),
            ObserveError::Kubernetes { .. } => reasons::KUBERNETES_ERROR,
            ObserveError::Microsoft { error, .. } => microsoft_reason(error),
        };
        Failure::new(reason, self.to_string(), self.is_transient())
    }
}

/// Whether retrying a failed Microsoft call later can help (a write whose outcome is unknown is
/// looked up again, which is safe to retry): `controllers::microsoft_failure`'s rule.
pub fn microsoft_is_transient(error: &microsoft::Error) -> bool {
    crate::controllers::microsoft_failure::is_transient(error)
}

/// The condition reason of a Microsoft error: the shared mapping of every controller
/// (`controllers::microsoft_failure`) for a call as the partner's GDAP user.
pub fn microsoft_reason(error: &microsoft::Error) -> &'static str {
    use crate::controllers::microsoft_failure::{Caller, reason};
    reason(error, Caller::PartnerUser)
}

/// Reads both sides for `object`. Microsoft is read only with usable credentials.
pub async fn observe(
    object: &AppConsent,
    intent: &Intent,
    credentials: Result<&Credentials, &CredentialsError>,
    references: &Api<GdapRelationship>,
) -> (Observed, Option<ObserveError>) {
    let status = object.status.clone().unwrap_or_default();
    let mut observed = Observed {
        deleting: object.metadata.deletion_timestamp.is_some(),
        verified_before: status.last_verified_at.is_some()
            && status.verified_generation.is_some()
            && status.verified_generation == object.metadata.generation,
        consented_before: status.consented_at.is_some(),
        partner: Err(Unreadable { transient: true }),
        tenant: Err(Unreadable { transient: true }),
        pending: pending_writes(object),
        remains: None,
    };
    let clients = match credentials {
        Ok(c) => &c.clients,
        Err(e) => {
            let transient = e.is_transient();
            observed.partner = Err(Unreadable { transient });
            observed.tenant = Err(Unreadable { transient });
            let error = ObserveError::Credentials(e.failure());
            return (observed, Some(error));
        }
    };
    let mut first_error = None;
    match read_partner(clients, intent, references).await {
        Ok(p) => observed.partner = Ok(p),
        Err(e) => {
            observed.partner = Err(Unreadable {
                transient: e.is_transient(),
            });
            first_error = Some(e);
        }
    }
    let tenant = match read_tenant(clients, intent).await {
        Ok(t) if observed.deleting && needs_remains(&t, &observed) => {
            read_remains(clients, intent).await.map(|r| (t, Some(r)))
        }
        other => other.map(|t| (t, None)),
    };
    match tenant {
        Ok((t, remains)) => {
            observed.tenant = Ok(t);
            observed.remains = remains;
        }
        Err(error) => {
            let e = ObserveError::Microsoft {
                what: "the customer tenant",
                error,
            };
            observed.tenant = Err(Unreadable {
                transient: e.is_transient(),
            });
            first_error = first_error.or(Some(e));
        }
    }
    (observed, first_error)
}

/// Deleting, the delegated path is closed and the operator's own consent removal does not
/// explain it: what is left must be read with the app-only token.
fn needs_remains(tenant: &Tenant, observed: &Observed) -> bool {
    tenant.refusal().is_some() && !removal_explains(tenant, &observed.pending)
}

/// What the app still holds in the customer tenant, read with its app-only token (reads only).
/// Entra refusing that token because the app has no service principal there means nothing is
/// left; a refused read leaves it unknown; a failure retrying can cure is an error.
async fn read_remains(
    clients: &MicrosoftClients,
    intent: &Intent,
) -> Result<Remains, microsoft::Error> {
    let token = clients.tokens.app_token(&intent.customer);
    let refused = |e: microsoft::Error| -> Result<Remains, microsoft::Error> {
        match e.reason() {
            _ if microsoft_is_transient(&e) => Err(e),
            Reason::AppNotInTenant => Ok(Remains::Nothing),
            Reason::NoPermissions => Ok(Remains::NoAppPermissions),
            _ => Ok(Remains::Unknown {
                detail: e.to_string(),
            }),
        }
    };
    if let Err(e) = token.bearer(None).await {
        return refused(e);
    }
    match read_holdings(clients, intent, &token).await {
        Ok(remains) => Ok(remains),
        Err(e) => refused(e),
    }
}

async fn read_holdings(
    clients: &MicrosoftClients,
    intent: &Intent,
    token: &AppToken,
) -> microsoft::Result<Remains> {
    let dir = clients.directory.as_ref();
    let Some(app) = dir
        .service_principal_by_app_id(token, &intent.application_id)
        .await?
    else {
        return Ok(Remains::Nothing);
    };
    let mut resources = Resources::default();
    let mut grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for grant in dir.oauth2_permission_grants(token, &app.id).await? {
        let resource = resources.app_id(dir, token, &grant.resource_id).await;
        grants
            .entry(resource)
            .or_default()
            .extend(scopes_of(&grant.scope));
    }
    let mut roles = Vec::new();
    for a in dir.app_role_assignments(token, &app.id).await? {
        if let Some(a) = resources.assignment(dir, token, a).await {
            roles.push(a);
        }
    }
    Ok(Remains::Holds { grants, roles })
}

/// The scopes of a grant's space-separated `scope`, lower case.
fn scopes_of(scope: &str) -> impl Iterator<Item = String> + '_ {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_ascii_lowercase())
}

/// A resource service principal as messages and role checks need it: its appId, and its app
/// roles' names by id.
type ResourceNames = (String, BTreeMap<String, String>);

/// Resource service principals looked up by id, for names in messages and role checks.
#[derive(Default)]
struct Resources {
    /// Service principal id → what it is; `None` when it could not be read.
    known: BTreeMap<String, Option<ResourceNames>>,
}

impl Resources {
    /// Remembers a resource read already.
    fn insert(&mut self, sp: &ServicePrincipal) {
        self.known.insert(sp.id.clone(), Some(Self::entry(sp)));
    }

    fn entry(sp: &ServicePrincipal) -> ResourceNames {
        let roles = sp
            .app_roles
            .iter()
            .filter_map(|r| Some((r.id.to_ascii_lowercase(), r.value.clone()?)))
            .collect();
        (sp.app_id.to_ascii_lowercase(), roles)
    }

    async fn lookup(
        &mut self,
        dir: &dyn DirectoryApi,
        token: &dyn TokenSource,
        sp_id: &str,
    ) -> Option<&ResourceNames> {
        if !self.known.contains_key(sp_id) {
            let read = dir
                .service_principal(token, sp_id)
                .await
                .ok()
                .map(|sp| Self::entry(&sp));
            self.known.insert(sp_id.to_string(), read);
        }
        self.known.get(sp_id)?.as_ref()
    }

    /// The appId of a resource service principal, else its id.
    async fn app_id(
        &mut self,
        dir: &dyn DirectoryApi,
        token: &dyn TokenSource,
        sp_id: &str,
    ) -> String {
        match self.lookup(dir, token, sp_id).await {
            Some((app_id, _)) => app_id.clone(),
            None => sp_id.to_string(),
        }
    }

    /// An assignment with its resource's appId and the role's name where they can be read.
    async fn assignment(
        &mut self,
        dir: &dyn DirectoryApi,
        token: &dyn TokenSource,
        a: AppRoleAssignment,
    ) -> Option<RoleAssignment> {
        let resource_id = a.resource_id?;
        let app_role_id = a.app_role_id.to_ascii_lowercase();
        let found = self.lookup(dir, token, &resource_id).await;
        let resource_app_id = found.map(|(app, _)| app.clone());
        let role = found.and_then(|(_, roles)| roles.get(&app_role_id).cloned());
        Some(RoleAssignment {
            id: a.id,
            resource_id,
            app_role_id,
            resource_app_id,
            role,
        })
    }
}

/// The pending writes the object's annotation records.
pub fn pending_writes(object: &AppConsent) -> Pending {
    crate::controllers::pending_writes::of(object)
}

fn partner_error(error: microsoft::Error) -> ObserveError {
    ObserveError::Microsoft {
        what: "the partner's GDAP relationships",
        error,
    }
}

/// The partner side: the user's groups, the active relationships with the customer and what
/// they give those groups, and the referenced GdapRelationship.
async fn read_partner(
    clients: &MicrosoftClients,
    intent: &Intent,
    references: &Api<GdapRelationship>,
) -> Result<PartnerSide, ObserveError> {
    let reference = match &intent.relationship_ref {
        Some(name) => Some(read_reference(references, name).await?),
        None => None,
    };
    let token = clients.tokens.partner_graph();
    let groups: BTreeSet<String> = clients
        .directory
        .my_memberships(&token)
        .await
        .map_err(partner_error)?
        .into_iter()
        .filter(|o| o.is_group())
        .map(|o| o.id.to_ascii_lowercase())
        .collect();
    let filter = RelationshipFilter {
        customer_tenant_id: Some(intent.customer.clone()),
        ..Default::default()
    };
    let all = clients
        .gdap
        .list_relationships(&token, &filter)
        .await
        .map_err(partner_error)?;
    let mut relationships = Vec::new();
    for r in all
        .iter()
        .filter(|r| r.status == Some(RelationshipStatus::Active))
    {
        relationships.push(remote_relationship(clients, &token, r, &groups).await?);
    }
    let customer_name = all
        .iter()
        .find_map(|r| r.customer.as_ref()?.display_name.clone());
    Ok(PartnerSide {
        reference,
        relationships,
        customer_name,
    })
}

async fn remote_relationship(
    clients: &MicrosoftClients,
    token: &DelegatedToken,
    r: &crate::microsoft::models::gdap::Relationship,
    groups: &BTreeSet<String>,
) -> Result<RemoteRelationship, ObserveError> {
    let assignments = clients
        .gdap
        .list_access_assignments(token, &r.id)
        .await
        .map_err(partner_error)?;
    let mut user_role_ids = BTreeSet::new();
    let mut consent_assignment_at: Option<DateTime<Utc>> = None;
    for a in assignments.iter().filter(|a| {
        a.status == Some(AccessAssignmentStatus::Active)
            && groups.contains(&a.access_container.access_container_id.to_ascii_lowercase())
    }) {
        let roles: BTreeSet<String> = a
            .access_details
            .role_ids()
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if CONSENT_CAPABLE_ROLE_IDS.iter().any(|c| roles.contains(*c)) {
            let at = a.created_date_time.or(r.activated_date_time);
            consent_assignment_at = match (consent_assignment_at, at) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
        }
        user_role_ids.extend(roles);
    }
    let gives = CONSENT_CAPABLE_ROLE_IDS
        .iter()
        .any(|c| user_role_ids.contains(*c));
    let since = match (r.activated_date_time, consent_assignment_at) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Ok(RemoteRelationship {
        id: r.id.clone(),
        display_name: r.display_name.clone(),
        role_ids: r
            .access_details
            .role_ids()
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        user_role_ids,
        consent_capable_since: since.filter(|_| gives),
    })
}

async fn read_reference(
    references: &Api<GdapRelationship>,
    name: &str,
) -> Result<Reference, ObserveError> {
    let object = references
        .get_opt(name)
        .await
        .map_err(|source| ObserveError::Kubernetes {
            name: name.to_string(),
            source,
        })?;
    let Some(object) = object else {
        return Ok(Reference::Missing);
    };
    let status = object.status.unwrap_or_default();
    let ready = status.conditions.iter().find(|c| c.type_ == types::READY);
    Ok(match ready {
        Some(c) if c.status == "True" => Reference::Ready {
            relationship_id: status.relationship_id,
        },
        Some(c) => Reference::NotReady {
            message: format!("{}: {}", c.reason, c.message),
        },
        None => Reference::NotReady {
            message: "not reconciled yet".into(),
        },
    })
}

/// The customer tenant, or why the user's delegated token does not reach it.
pub(super) async fn read_tenant(
    clients: &MicrosoftClients,
    intent: &Intent,
) -> Result<Tenant, microsoft::Error> {
    let token = clients
        .tokens
        .delegated_token(&intent.customer, Audience::Graph);
    if let Err(e) = token.bearer(None).await {
        return match e.reason() {
            Reason::ConsentMissing => Ok(Tenant::NotConsented {
                detail: e.to_string(),
            }),
            Reason::NoGdapAccess => Ok(Tenant::NoAccess {
                detail: e.to_string(),
            }),
            _ => Err(e),
        };
    }
    match read_view(clients, intent, &token).await {
        Ok(view) => Ok(Tenant::Read(view)),
        Err(e) if e.reason() == Reason::AccessDenied => Ok(Tenant::Denied {
            detail: e.to_string(),
        }),
        Err(e) => Err(e),
    }
}

/// The resources whose service principals the consent needs: the grants', and Microsoft Graph.
fn needed_resources(intent: &Intent) -> Vec<(String, bool)> {
    let mut out = vec![(MICROSOFT_GRAPH_APP_ID.to_string(), false)];
    if let Ok(grants) = &intent.grants {
        for g in grants {
            let roles = !g.app_roles.is_empty();
            match out.iter_mut().find(|(app, _)| *app == g.resource_app_id) {
                Some(entry) => entry.1 |= roles,
                None => out.push((g.resource_app_id.clone(), roles)),
            }
        }
    }
    out
}

async fn read_view(
    clients: &MicrosoftClients,
    intent: &Intent,
    token: &DelegatedToken,
) -> microsoft::Result<TenantView> {
    let dir = clients.directory.as_ref();
    let mut view = TenantView::default();
    let mut by_sp_id: BTreeMap<String, String> = BTreeMap::new();
    let mut resources = Resources::default();
    for (app_id, with_roles) in needed_resources(intent) {
        let found = dir.service_principal_by_app_id(token, &app_id).await?;
        let principal = match found {
            Some(mut sp) => {
                if with_roles && sp.app_roles.is_empty() {
                    sp = dir.service_principal(token, &sp.id).await?;
                }
                by_sp_id.insert(sp.id.clone(), app_id.clone());
                if !sp.app_roles.is_empty() {
                    resources.insert(&sp);
                }
                Some(ResourcePrincipal {
                    id: sp.id.clone(),
                    app_roles: sp
                        .app_roles
                        .iter()
                        .filter(|r| r.is_enabled != Some(false))
                        .filter_map(|r| {
                            Some((
                                r.value.as_ref()?.to_ascii_lowercase(),
                                r.id.to_ascii_lowercase(),
                            ))
                        })
                        .collect(),
                })
            }
            None => None,
        };
        view.resources.insert(app_id, principal);
    }
    let Some(app) = dir
        .service_principal_by_app_id(token, &intent.application_id)
        .await?
    else {
        return Ok(view);
    };
    for grant in dir.oauth2_permission_grants(token, &app.id).await? {
        let resource = by_sp_id
            .get(&grant.resource_id)
            .cloned()
            .unwrap_or_else(|| grant.resource_id.clone());
        view.grants
            .entry(resource)
            .or_default()
            .extend(scopes_of(&grant.scope));
    }
    for a in dir.app_role_assignments(token, &app.id).await? {
        if let Some(a) = resources.assignment(dir, token, a).await {
            view.assignments.push(a);
        }
    }
    view.app_principal = Some(app.id);
    Ok(view)
}

//! The sandbox's mutable world: tenants, apps, refresh tokens, GDAP relationships, consents.
//!
//! Contract: [`World`] is plain serialisable data (it is what `--state-file` persists and what
//! `GET /_sandbox/state` dumps, minus secrets). [`World::from_fixture`] builds it; the handlers
//! mutate it under one lock; [`World::tick`] (in `lifecycle.rs`) advances time-driven transitions
//! before every request. Generated users are never materialised: a tenant stores only the
//! generator parameters plus the ids removed from the population.

use super::consistency::{Consistency, Lagging};
use super::defaults::apps as first_party;
use super::fixture::{Fixture, ResourcePermissions, UsersFixture};
use super::generate::{self, GeneratedSku};
use super::ids::derived_id;
use super::quiet_list::QuietList;
use super::signin_state::SignIns;
use super::webhook_model::WebhookRegistration;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Display name that marks the Partner Center admin-agent group.
pub const ADMIN_AGENTS: &str = "AdminAgents";

/// The whole world.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct World {
    /// The partner tenant.
    pub partner: Partner,
    /// App registrations by client id.
    pub apps: BTreeMap<String, App>,
    /// Live refresh tokens by value.
    pub refresh_tokens: BTreeMap<String, RefreshToken>,
    /// Customer tenants by id.
    pub tenants: BTreeMap<String, Tenant>,
    /// GDAP relationships in creation order.
    pub relationships: QuietList<Relationship>,
    /// Monotonic counter for ids and ETags.
    pub counter: u64,
    /// How far reads lag and access takes to propagate (`consistency.rs`).
    #[serde(default)]
    pub consistency: Consistency,
    /// Delays drawn so far (the position in the seeded random stream).
    #[serde(default)]
    pub lag_draws: u64,
    /// What readers still see of relationships (and their access assignments) whose writes
    /// have not replicated yet.
    #[serde(default, skip_serializing_if = "Lagging::is_empty")]
    pub relationships_lag: Lagging<Relationship>,
    /// Pending interactive sign-ins and unredeemed codes (`signin.rs`): in memory only, never
    /// persisted or dumped.
    #[serde(skip)]
    pub sign_ins: SignIns,
    /// The partner's Partner Center webhook registration (`webhooks.rs`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_registration: Option<WebhookRegistration>,
}

/// The partner tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Partner {
    /// Tenant id.
    pub tenant_id: String,
    /// Display name.
    pub display_name: String,
    /// Primary domain.
    pub domain: String,
    /// Security groups: id → display name.
    pub groups: BTreeMap<String, String>,
    /// Users.
    pub users: Vec<PartnerUser>,
}

/// A partner user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerUser {
    /// Object id.
    pub id: String,
    /// UPN.
    pub user_principal_name: String,
    /// Display name.
    pub display_name: String,
    /// Group ids.
    pub groups: BTreeSet<String>,
    /// Sessions revoked at this instant: refresh tokens issued before fail with AADSTS50173.
    pub sessions_revoked_at: Option<DateTime<Utc>>,
}

/// A partner app registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    /// Client id.
    pub client_id: String,
    /// Display name.
    pub display_name: String,
    /// Client secrets (never dumped).
    pub secrets: Vec<String>,
    /// What Graph shows of the secrets (`passwordCredentials`: hint, validity), in the same order.
    #[serde(default)]
    pub password_credentials: Vec<PasswordCredential>,
    /// Registered certificates (PEM; public, so dumped).
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Delegated permissions by resource appId.
    pub delegated: BTreeMap<String, Vec<String>>,
    /// App roles granted in the partner tenant, by resource appId.
    pub partner_app_roles: BTreeMap<String, Vec<String>>,
}

/// A client secret as Graph shows it (`passwordCredential`, without its value).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    /// The credential's id.
    pub key_id: String,
    /// The first three characters of the value.
    pub hint: String,
    /// Its name.
    pub display_name: String,
    /// Valid from.
    pub start_date_time: DateTime<Utc>,
    /// Valid until.
    pub end_date_time: DateTime<Utc>,
}

/// A refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshToken {
    /// Object id of the partner user.
    pub user_id: String,
    /// The app it was issued to.
    pub client_id: String,
    /// When it was issued (its inactivity clock starts here).
    pub issued_at: DateTime<Utc>,
    /// Set when it was exchanged.
    pub redeemed_at: Option<DateTime<Utc>>,
    /// The token it was last exchanged for. A redeemed token stays valid until it expires, as on
    /// Entra; only with strict refresh tokens (`Consistency::strict_refresh_tokens`) is it dead
    /// once this successor is used.
    #[serde(default)]
    pub successor: Option<String>,
    /// Whether the sign-in it descends from used MFA (inherited by every rotated successor).
    #[serde(default = "signed_in_with_mfa")]
    pub mfa: bool,
}

fn signed_in_with_mfa() -> bool {
    true
}

/// A customer tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// Tenant id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Primary domain.
    pub primary_domain: String,
    /// Service principals.
    pub service_principals: Vec<ServicePrincipal>,
    /// Application permission grants (app role assignments).
    pub app_role_assignments: Vec<AppRoleAssignment>,
    /// Delegated permission grants.
    pub grants: Vec<PermissionGrant>,
    /// Subscribed SKUs.
    pub skus: Vec<Sku>,
    /// Users.
    pub users: Users,
    /// What readers still see of service principals whose writes have not replicated yet.
    #[serde(default, skip_serializing_if = "Lagging::is_empty")]
    pub principals_lag: Lagging<ServicePrincipal>,
    /// The same for delegated grants.
    #[serde(default, skip_serializing_if = "Lagging::is_empty")]
    pub grants_lag: Lagging<PermissionGrant>,
    /// The same for app role assignments.
    #[serde(default, skip_serializing_if = "Lagging::is_empty")]
    pub app_role_assignments_lag: Lagging<AppRoleAssignment>,
    /// User writes (control API) applied when they become visible, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_users: Vec<PendingUserWrite>,
}

/// A user write that readers do not see yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingUserWrite {
    /// When it becomes visible (and is applied).
    pub visible_at: DateTime<Utc>,
    /// The user to add or replace (`None`: remove `user_id`).
    pub user: Option<Map<String, Value>>,
    /// The user's id.
    pub user_id: String,
}

/// A service principal in a tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// Object id.
    pub id: String,
    /// The application it represents.
    pub app_id: String,
    /// Display name.
    pub display_name: String,
    /// When it was created.
    pub created: DateTime<Utc>,
}

/// An application permission granted to a service principal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    /// Id.
    pub id: String,
    /// Client service principal object id.
    pub principal_id: String,
    /// Resource service principal object id.
    pub resource_id: String,
    /// App role id.
    pub app_role_id: String,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// From when app-only tokens carry it (consent propagation; `None`: always).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<DateTime<Utc>>,
}

/// A tenant-wide delegated permission grant (`oauth2PermissionGrant`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionGrant {
    /// Id.
    pub id: String,
    /// Client service principal object id.
    pub client_id: String,
    /// Resource service principal object id.
    pub resource_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// From when delegated tokens carry its scopes (consent propagation; `None`: always).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<DateTime<Utc>>,
}

/// A subscribed SKU.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sku {
    /// SKU id.
    pub sku_id: String,
    /// Part number.
    pub sku_part_number: String,
    /// Purchased units.
    pub enabled: i32,
    /// Service plan names.
    pub service_plans: Vec<String>,
    /// Share of generated users holding it.
    pub generated_share: f64,
    /// Share of generated holders who inherit it from the licensing group.
    #[serde(default)]
    pub generated_group_share: f64,
    /// The commercial subscriptions behind it.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

/// A commercial subscription (`companySubscription`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Object id.
    pub id: String,
    /// Id in the commerce system.
    pub commerce_subscription_id: String,
    /// Licences.
    pub total_licenses: i32,
    /// `Enabled`, `Warning`, `Suspended`, `LockedOut` or `Deleted`.
    pub status: String,
    /// A free trial.
    pub is_trial: bool,
    /// The partner tenant that sold it.
    pub owner_tenant_id: String,
    /// Created.
    pub created: DateTime<Utc>,
    /// When it renews or ends.
    pub next_lifecycle: DateTime<Utc>,
}

/// The users of a tenant: listed ones, plus an optional generated population.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Users {
    /// Explicit users (each has an `id`).
    pub listed: Vec<Map<String, Value>>,
    /// Generated population, if any.
    pub generated: Option<Generated>,
    /// Change log for delta queries, oldest first.
    pub changes: Vec<UserChange>,
    /// Sequence number of the last change.
    pub seq: u64,
}

/// A generated population.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Generated {
    /// Number of generated users.
    pub count: u64,
    /// Seed.
    pub seed: u64,
    /// Indices removed through the control API.
    pub removed: BTreeSet<u64>,
}

/// One change to a tenant's users, for `/users/delta`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserChange {
    /// Sequence number.
    pub seq: u64,
    /// User id.
    pub user_id: String,
    /// Whether the user was deleted (else created or updated).
    pub deleted: bool,
}

/// A GDAP relationship.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    /// Id (`{uuid}-{partnerTenantId}`).
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Duration as sent (ISO-8601).
    pub duration: String,
    /// Duration in days.
    pub duration_days: i64,
    /// `PT0S`, `P0D` or `P180D`.
    pub auto_extend_duration: String,
    /// Customer participant (tenantId, displayName).
    pub customer: Option<Customer>,
    /// Role template ids.
    pub roles: Vec<String>,
    /// Status (Microsoft's enum name).
    pub status: String,
    /// When the current status began.
    pub status_since: DateTime<Utc>,
    /// Created.
    pub created: DateTime<Utc>,
    /// Last modified.
    pub last_modified: DateTime<Utc>,
    /// Activated.
    pub activated: Option<DateTime<Utc>>,
    /// End.
    pub end: Option<DateTime<Utc>>,
    /// When it was locked for approval (starts the 90-day window).
    pub locked_at: Option<DateTime<Utc>>,
    /// ETag version.
    pub version: u64,
    /// Requests.
    pub requests: Vec<RelRequest>,
    /// Access assignments.
    pub assignments: Vec<Assignment>,
    /// Long-running operations.
    pub operations: Vec<Operation>,
}

/// The customer participant of a relationship.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    /// Tenant id.
    pub tenant_id: String,
    /// Display name.
    pub display_name: Option<String>,
}

/// A relationship request (`lockForApproval`, `terminate`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelRequest {
    /// Id.
    pub id: String,
    /// Action.
    pub action: String,
    /// Status.
    pub status: String,
    /// Created.
    pub created: DateTime<Utc>,
    /// Last modified.
    pub last_modified: DateTime<Utc>,
    /// ETag version.
    pub version: u64,
}

/// An access assignment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// Id.
    pub id: String,
    /// Partner security group id.
    pub group_id: String,
    /// Role template ids.
    pub roles: Vec<String>,
    /// Status.
    pub status: String,
    /// When the current status began.
    pub status_since: DateTime<Utc>,
    /// Created.
    pub created: DateTime<Utc>,
    /// Last modified.
    pub last_modified: DateTime<Utc>,
    /// ETag version.
    pub version: u64,
    /// Roles of an accepted PATCH not applied yet, with the operation id.
    pub pending_update: Option<(Vec<String>, String)>,
    /// From when it gives its groups' members access in the customer (GDAP propagation after
    /// it became active; `None`: it never gave access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_from: Option<DateTime<Utc>>,
    /// Until when it gives access after it (or its relationship) ended (`None`: still live).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_until: Option<DateTime<Utc>>,
}

/// A long-running operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Id.
    pub id: String,
    /// `delegatedAdminAccessAssignmentUpdate` or `delegatedAdminRelationshipUpdate`.
    pub operation_type: String,
    /// `notStarted`, `running`, `succeeded`, `failed`.
    pub status: String,
    /// Target id (assignment id or relationship id).
    pub target: String,
    /// Roles to apply when it succeeds.
    pub roles: Vec<String>,
    /// Created.
    pub created: DateTime<Utc>,
    /// Last modified.
    pub last_modified: DateTime<Utc>,
    /// ETag version.
    pub version: u64,
}

/// Resolves the `graph` / `partnerCenter` shorthands of a fixture to appIds.
pub fn resource_app_id(name: &str) -> String {
    match name {
        "graph" | "microsoftGraph" => first_party::MICROSOFT_GRAPH.to_string(),
        "partnerCenter" => first_party::PARTNER_CENTER.to_string(),
        other => other.to_string(),
    }
}

fn by_resource(list: &[ResourcePermissions]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in list {
        map.entry(resource_app_id(&p.resource))
            .or_default()
            .extend(p.permissions.iter().cloned());
    }
    map
}

impl World {
    /// Builds the world from a fixture, at time `now`.
    pub fn from_fixture(fixture: &Fixture, now: DateTime<Utc>) -> World {
        let p = &fixture.partner;
        let groups: BTreeMap<String, String> = p
            .groups
            .iter()
            .map(|g| (g.id.clone(), g.display_name.clone()))
            .collect();
        let group_id = |r: &String| {
            groups
                .iter()
                .find(|(id, name)| *id == r || *name == r)
                .map(|(id, _)| id.clone())
                .unwrap_or_default()
        };
        let users = p
            .users
            .iter()
            .map(|u| PartnerUser {
                id: u.id.clone(),
                user_principal_name: u.user_principal_name.clone(),
                display_name: u.display_name.clone(),
                groups: u.groups.iter().map(group_id).collect(),
                sessions_revoked_at: None,
            })
            .collect::<Vec<_>>();
        let mut world = World {
            partner: Partner {
                tenant_id: p.tenant_id.clone(),
                display_name: p.display_name.clone(),
                domain: p.domain.clone(),
                groups: groups.clone(),
                users,
            },
            apps: BTreeMap::new(),
            refresh_tokens: BTreeMap::new(),
            tenants: BTreeMap::new(),
            relationships: QuietList::default(),
            counter: 0,
            consistency: Consistency::default(),
            lag_draws: 0,
            relationships_lag: Lagging::default(),
            sign_ins: SignIns::default(),
            webhook_registration: None,
        };
        for app in &fixture.apps {
            world.apps.insert(
                app.client_id.clone(),
                App {
                    client_id: app.client_id.clone(),
                    display_name: app.display_name.clone(),
                    secrets: app.secrets.clone(),
                    password_credentials: app
                        .secrets
                        .iter()
                        .map(|s| PasswordCredential {
                            key_id: derived_id(&format!("{}/secret/{s}", app.client_id)),
                            hint: s.chars().take(3).collect(),
                            display_name: String::new(),
                            start_date_time: now - chrono::TimeDelta::days(30),
                            end_date_time: now
                                + chrono::TimeDelta::days(
                                    app.secret_ends_in_days
                                        .get(s)
                                        .copied()
                                        .unwrap_or(super::fixture::SECRET_DEFAULT_DAYS),
                                ),
                        })
                        .collect(),
                    certificates: app.certificates.clone(),
                    delegated: by_resource(&app.delegated_permissions),
                    partner_app_roles: by_resource(&app.partner_app_roles),
                },
            );
            for rt in &app.refresh_tokens {
                let user_id = world
                    .partner_user_by_upn(&rt.user)
                    .map(|u| u.id.clone())
                    .unwrap_or_default();
                world.refresh_tokens.insert(
                    rt.token.clone(),
                    RefreshToken {
                        user_id,
                        client_id: app.client_id.clone(),
                        issued_at: now,
                        redeemed_at: None,
                        successor: None,
                        mfa: rt.mfa,
                    },
                );
            }
        }
        for c in &fixture.customers {
            let tenant = world.tenant_from_fixture(c, now);
            world.tenants.insert(c.tenant_id.clone(), tenant);
        }
        world.add_fixture_relationships(&fixture.relationships, now);
        world
    }

    /// Adds the customer tenant `c` (a customer the partner signs while the sandbox runs), built
    /// exactly as the fixture's customers are; refused when its tenant id or primary domain
    /// names a tenant already (the partner's included).
    pub fn sign_customer(
        &mut self,
        c: &super::fixture::CustomerFixture,
        now: DateTime<Utc>,
    ) -> Result<&Tenant, SignRefused> {
        let id = c.tenant_id.to_ascii_lowercase();
        if id == self.partner.tenant_id.to_ascii_lowercase() || self.tenants.contains_key(&id) {
            return Err(SignRefused::TenantExists);
        }
        if self.domain_taken(&c.primary_domain) {
            return Err(SignRefused::DomainTaken);
        }
        let tenant = self.tenant_from_fixture(c, now);
        Ok(self.tenants.entry(id).or_insert(tenant))
    }

    /// Whether `domain` is the primary domain of the partner or of a customer (any case).
    pub fn domain_taken(&self, domain: &str) -> bool {
        self.partner.domain.eq_ignore_ascii_case(domain)
            || self
                .tenants
                .values()
                .any(|t| t.primary_domain.eq_ignore_ascii_case(domain))
    }

    fn tenant_from_fixture(
        &self,
        c: &super::fixture::CustomerFixture,
        now: DateTime<Utc>,
    ) -> Tenant {
        let users = match &c.users {
            UsersFixture::Listed(list) => Users {
                listed: list.iter().map(|u| with_id(u, &c.tenant_id)).collect(),
                generated: None,
                changes: Vec::new(),
                seq: 0,
            },
            UsersFixture::Generated { generate, seed } => Users {
                listed: Vec::new(),
                generated: Some(Generated {
                    count: *generate,
                    seed: *seed,
                    removed: BTreeSet::new(),
                }),
                changes: Vec::new(),
                seq: 0,
            },
        };
        let mut tenant = Tenant {
            id: c.tenant_id.clone(),
            display_name: c.display_name.clone(),
            primary_domain: c.primary_domain.clone(),
            service_principals: Vec::new(),
            app_role_assignments: Vec::new(),
            grants: Vec::new(),
            skus: c
                .skus
                .iter()
                .map(|s| Sku {
                    sku_id: s.sku_id.clone(),
                    sku_part_number: s.sku_part_number.clone(),
                    enabled: s.enabled,
                    service_plans: s.service_plans.clone(),
                    generated_share: s.generated_share,
                    generated_group_share: s.generated_group_share,
                    subscriptions: subscriptions(s, &c.tenant_id, &self.partner.tenant_id, now),
                })
                .collect(),
            users,
            principals_lag: Lagging::default(),
            grants_lag: Lagging::default(),
            app_role_assignments_lag: Lagging::default(),
            pending_users: Vec::new(),
        };
        for app_id in &c.service_principals {
            tenant.ensure_service_principal(app_id, &self.app_display_name(app_id), now);
        }
        for consent in &c.consents {
            let name = self.app_display_name(&consent.app_id);
            let client = tenant.ensure_service_principal(&consent.app_id, &name, now);
            for (resource, roles) in by_resource(&consent.app_roles) {
                let res = tenant.ensure_service_principal(
                    &resource,
                    &self.app_display_name(&resource),
                    now,
                );
                for role in roles {
                    let role_id = super::catalog::app_role_id(&resource, &role)
                        .unwrap_or_else(|| derived_id(&role));
                    tenant.app_role_assignments.push(AppRoleAssignment {
                        id: derived_id(&format!("{}/{client}/{res}/{role_id}", c.tenant_id)),
                        principal_id: client.clone(),
                        resource_id: res.clone(),
                        app_role_id: role_id,
                        created: now,
                        effective_at: None,
                    });
                }
            }
            for (resource, scopes) in by_resource(&consent.delegated) {
                let res = tenant.ensure_service_principal(
                    &resource,
                    &self.app_display_name(&resource),
                    now,
                );
                tenant.grants.push(PermissionGrant {
                    id: derived_id(&format!("{}/grant/{client}/{res}", c.tenant_id)),
                    client_id: client.clone(),
                    resource_id: res,
                    scope: scopes.join(" "),
                    effective_at: None,
                });
            }
        }
        tenant
    }

    /// Display name of an app: a partner registration or a known first-party app.
    pub fn app_display_name(&self, app_id: &str) -> String {
        if let Some(app) = self.apps.get(app_id) {
            return app.display_name.clone();
        }
        super::catalog::first_party_name(app_id)
            .unwrap_or("Unknown application")
            .to_string()
    }

    /// A partner user by UPN (case-insensitive).
    pub fn partner_user_by_upn(&self, upn: &str) -> Option<&PartnerUser> {
        self.partner
            .users
            .iter()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
    }

    /// A partner user by object id.
    pub fn partner_user(&self, id: &str) -> Option<&PartnerUser> {
        self.partner.users.iter().find(|u| u.id == id)
    }

    /// Whether a partner user is in AdminAgents.
    pub fn is_admin_agent(&self, user_id: &str) -> bool {
        let Some(user) = self.partner_user(user_id) else {
            return false;
        };
        user.groups
            .iter()
            .any(|g| self.partner.groups.get(g).map(String::as_str) == Some(ADMIN_AGENTS))
    }

    /// Role template ids a partner user holds in a customer tenant at `now`: through access
    /// assignments of relationships with the customer whose access has propagated and not yet
    /// ended (see [`Assignment::gives_access`]).
    pub fn gdap_roles(
        &self,
        user_id: &str,
        customer: &str,
        now: DateTime<Utc>,
    ) -> BTreeSet<String> {
        let Some(user) = self.partner_user(user_id) else {
            return BTreeSet::new();
        };
        self.relationships
            .iter()
            .filter(|r| r.customer.as_ref().is_some_and(|c| c.tenant_id == customer))
            .flat_map(|r| r.assignments.iter())
            .filter(|a| a.gives_access(now) && user.groups.contains(&a.group_id))
            .flat_map(|a| a.roles.iter().cloned())
            .collect()
    }

    /// A fresh id, unique in this world.
    pub fn next_id(&mut self) -> String {
        self.counter += 1;
        let v = generate::mix(self.counter ^ 0x5A5A_0000);
        let w = generate::mix(v);
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            v >> 32,
            (v >> 16) & 0xffff,
            v & 0xfff,
            (w >> 52) & 0xfff,
            w & 0xffff_ffff_ffff
        )
    }

    /// A fresh ETag version.
    pub fn next_version(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }
}

/// Why [`World::sign_customer`] refused a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignRefused {
    /// A tenant with that id exists.
    TenantExists,
    /// A tenant has that primary domain.
    DomainTaken,
}

/// The subscriptions of a fixture SKU, with dates fixed relative to `now`; one `Enabled`
/// subscription of `enabled` licences sold by the partner when the fixture names none.
fn subscriptions(
    sku: &super::fixture::SkuFixture,
    tenant: &str,
    partner: &str,
    now: DateTime<Utc>,
) -> Vec<Subscription> {
    let default = [super::fixture::SubscriptionFixture {
        total_licenses: sku.enabled,
        status: "Enabled".into(),
        is_trial: false,
        owner_tenant_id: None,
        created_days_ago: 365,
        next_lifecycle_in_days: 365,
    }];
    let given = if sku.subscriptions.is_empty() {
        &default[..]
    } else {
        &sku.subscriptions[..]
    };
    given
        .iter()
        .enumerate()
        .map(|(i, f)| Subscription {
            id: derived_id(&format!("{tenant}/subscription/{}/{i}", sku.sku_id)),
            commerce_subscription_id: derived_id(&format!("{tenant}/commerce/{}/{i}", sku.sku_id)),
            total_licenses: f.total_licenses,
            status: f.status.clone(),
            is_trial: f.is_trial,
            owner_tenant_id: f
                .owner_tenant_id
                .clone()
                .unwrap_or_else(|| partner.to_string()),
            created: now - chrono::Duration::days(f.created_days_ago),
            next_lifecycle: now + chrono::Duration::days(f.next_lifecycle_in_days),
        })
        .collect()
}

fn with_id(user: &Map<String, Value>, tenant: &str) -> Map<String, Value> {
    let mut user = user.clone();
    if !user.contains_key("id") {
        let upn = user
            .get("userPrincipalName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        user.insert(
            "id".into(),
            Value::String(derived_id(&format!("{tenant}/{upn}"))),
        );
    }
    super::licences::with_licence_states(&mut user);
    user
}

impl Tenant {
    /// Returns the object id of the service principal for `app_id`, creating it if absent.
    pub fn ensure_service_principal(
        &mut self,
        app_id: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> String {
        if let Some(sp) = self.service_principal(app_id) {
            return sp.id.clone();
        }
        let id = derived_id(&format!(
            "{}/sp/{app_id}/{}",
            self.id,
            now.timestamp_nanos_opt().unwrap_or(0)
        ));
        self.service_principals.push(ServicePrincipal {
            id: id.clone(),
            app_id: app_id.to_string(),
            display_name: name.to_string(),
            created: now,
        });
        id
    }

    /// The service principal of an app, if present.
    pub fn service_principal(&self, app_id: &str) -> Option<&ServicePrincipal> {
        self.service_principals
            .iter()
            .find(|sp| sp.app_id.eq_ignore_ascii_case(app_id))
    }

    /// The service principal with this object id.
    pub fn service_principal_by_id(&self, id: &str) -> Option<&ServicePrincipal> {
        self.service_principals.iter().find(|sp| sp.id == id)
    }

    /// Deletes an app's service principal with its grants and assignments; false if absent.
    pub fn delete_service_principal(&mut self, app_id: &str) -> bool {
        let Some(id) = self.service_principal(app_id).map(|sp| sp.id.clone()) else {
            return false;
        };
        self.service_principals.retain(|sp| sp.id != id);
        self.app_role_assignments
            .retain(|a| a.principal_id != id && a.resource_id != id);
        self.grants
            .retain(|g| g.client_id != id && g.resource_id != id);
        true
    }

    /// App roles (names) granted to `client_app_id` on `resource_app_id` in this tenant and
    /// effective at `now` (consent propagation).
    pub fn granted_app_roles(
        &self,
        client_app_id: &str,
        resource_app_id: &str,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let (Some(client), Some(resource)) = (
            self.service_principal(client_app_id),
            self.service_principal(resource_app_id),
        ) else {
            return Vec::new();
        };
        self.app_role_assignments
            .iter()
            .filter(|a| a.principal_id == client.id && a.resource_id == resource.id)
            .filter(|a| super::consistency::reached(a.effective_at, now))
            .filter_map(|a| super::catalog::app_role_name(resource_app_id, &a.app_role_id))
            .map(str::to_string)
            .collect()
    }

    /// The SKUs of the generator (id, shares and licensing group).
    pub fn generated_skus(&self) -> Vec<GeneratedSku> {
        self.skus
            .iter()
            .map(|s| GeneratedSku {
                sku_id: s.sku_id.clone(),
                share: s.generated_share,
                group_share: s.generated_group_share,
                group_id: self.licensing_group(&s.sku_id),
            })
            .collect()
    }

    /// The id of the group that hands out `sku_id` in this tenant (group-based licensing).
    pub fn licensing_group(&self, sku_id: &str) -> String {
        derived_id(&format!("{}/group/licensing/{sku_id}", self.id))
    }

    /// Records a change for delta queries.
    pub fn record_change(&mut self, user_id: &str, deleted: bool) {
        self.users.seq += 1;
        let seq = self.users.seq;
        self.users.changes.push(UserChange {
            seq,
            user_id: user_id.to_string(),
            deleted,
        });
    }
}

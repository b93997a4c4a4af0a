//! The fixture: the initial state of the emulated partner cloud, read from YAML.
//!
//! Contract: [`Fixture::builtin`] is the default world described by [`super::defaults`];
//! [`Fixture::from_yaml`] reads the same shape from a file (unknown keys are errors, so typos are
//! caught). The format is documented in `docs/sandbox.md`. A fixture is only data: the sandbox
//! turns it into its mutable state in `state.rs`.

use super::defaults::{self as d, apps};
use super::fixture_gdap::MAX_FIXTURE_DAYS;
pub use super::fixture_gdap::{AssignmentFixture, RelationshipFixture};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The whole initial world.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    /// The partner (CSP) tenant.
    pub partner: PartnerFixture,
    /// The partner's app registrations (multi-tenant apps homed in the partner tenant).
    #[serde(default)]
    pub apps: Vec<AppFixture>,
    /// Customer tenants.
    #[serde(default)]
    pub customers: Vec<CustomerFixture>,
    /// GDAP relationships that exist at start (see `fixture_gdap.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relationships: Vec<RelationshipFixture>,
}

/// The partner tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerFixture {
    /// Tenant id (GUID).
    pub tenant_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Primary domain.
    #[serde(default)]
    pub domain: String,
    /// Security groups (AdminAgents is one of them, recognised by its display name).
    #[serde(default)]
    pub groups: Vec<GroupFixture>,
    /// Partner users.
    #[serde(default)]
    pub users: Vec<PartnerUserFixture>,
}

/// A partner security group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupFixture {
    /// Object id (GUID).
    pub id: String,
    /// Display name; `AdminAgents` marks the Partner Center admin-agent group.
    pub display_name: String,
}

/// A partner user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerUserFixture {
    /// Object id (GUID), the `oid` of the user's tokens.
    pub id: String,
    /// Sign-in name.
    pub user_principal_name: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Groups the user is a member of, by id or display name.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Permissions of an app on one resource API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcePermissions {
    /// The resource's appId, or `graph` / `partnerCenter` as shorthands.
    pub resource: String,
    /// Permission names (delegated scopes or application roles).
    pub permissions: Vec<String>,
}

/// A refresh token a partner user holds for an app.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshTokenFixture {
    /// The user's UPN.
    pub user: String,
    /// The token value.
    pub token: String,
    /// Whether the sign-in that produced it used multi-factor authentication (default true).
    /// Access tokens from it (and from its rotated successors) carry `amr` `["pwd", "mfa"]`, or
    /// `["pwd"]` without; Partner Center refuses the latter (401, code 900421).
    #[serde(default = "yes")]
    pub mfa: bool,
}

fn yes() -> bool {
    true
}

/// A partner app registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppFixture {
    /// Application (client) id.
    pub client_id: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Valid client secrets.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// When secrets end, by value: days after the sandbox's start (negative: ended), shown as
    /// `passwordCredentials[].endDateTime` by Graph. Unlisted secrets end
    /// [`SECRET_DEFAULT_DAYS`] after the start. Past its end (on the sandbox's clock) the token
    /// endpoint refuses the secret as Entra does (`401 invalid_client`, AADSTS7000222).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub secret_ends_in_days: std::collections::BTreeMap<String, i64>,
    /// Certificates registered on the app (PEM, RSA): client assertions signed with their keys
    /// are accepted (header `x5t#S256` or `x5t` names the certificate).
    #[serde(default)]
    pub certificates: Vec<String>,
    /// Delegated permissions the registration declares (the `scp` of app+user tokens).
    #[serde(default)]
    pub delegated_permissions: Vec<ResourcePermissions>,
    /// Application permissions granted in the partner tenant itself (app-only tokens there).
    #[serde(default)]
    pub partner_app_roles: Vec<ResourcePermissions>,
    /// Refresh tokens partner users hold for this app.
    #[serde(default)]
    pub refresh_tokens: Vec<RefreshTokenFixture>,
}

/// Days from the sandbox's start to the end of a client secret that names none (two years, the
/// longest the Entra admin center offers): far enough that nothing warns about it.
pub const SECRET_DEFAULT_DAYS: i64 = 730;

/// A customer tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerFixture {
    /// Tenant id (GUID).
    pub tenant_id: String,
    /// Display name (company name).
    pub display_name: String,
    /// Primary (default) domain.
    pub primary_domain: String,
    /// appIds of first-party service principals present in the tenant.
    #[serde(default)]
    pub service_principals: Vec<String>,
    /// Partner apps consented in the tenant.
    #[serde(default)]
    pub consents: Vec<ConsentFixture>,
    /// Subscribed SKUs.
    #[serde(default)]
    pub skus: Vec<SkuFixture>,
    /// Users: a list, or `{generate: N, seed: S}`.
    #[serde(default)]
    pub users: UsersFixture,
}

impl CustomerFixture {
    /// A customer the partner has just signed, as the scale fixture's customers are and as
    /// `POST /_sandbox/customers` adds one: its tenant has Microsoft Graph's service principal
    /// (every tenant has it), nothing consented, no SKUs, no users.
    pub fn signed(tenant_id: &str, display_name: &str, primary_domain: &str) -> CustomerFixture {
        CustomerFixture {
            tenant_id: tenant_id.to_string(),
            display_name: display_name.to_string(),
            primary_domain: primary_domain.to_string(),
            service_principals: vec![apps::MICROSOFT_GRAPH.into()],
            consents: Vec::new(),
            skus: Vec::new(),
            users: UsersFixture::Listed(Vec::new()),
        }
    }

    /// The `onmicrosoft.com` domain the sandbox gives a customer named `name` that is signed
    /// without one: the name's ASCII letters and digits in lower case (at most 63, one DNS label)
    /// under `onmicrosoft.com`, like a tenant's initial domain; `None` when it has none.
    pub fn initial_domain(name: &str) -> Option<String> {
        let label: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .take(63)
            .collect();
        (!label.is_empty()).then(|| format!("{label}.onmicrosoft.com"))
    }
}

/// A partner app consented in a customer tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentFixture {
    /// The partner app's client id.
    pub app_id: String,
    /// Application permissions (app roles) granted, per resource.
    #[serde(default)]
    pub app_roles: Vec<ResourcePermissions>,
    /// Delegated permissions granted tenant-wide, per resource.
    #[serde(default)]
    pub delegated: Vec<ResourcePermissions>,
}

/// A subscribed SKU.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkuFixture {
    /// SKU id (GUID).
    pub sku_id: String,
    /// Part number, e.g. `SPE_E3`.
    pub sku_part_number: String,
    /// Purchased (enabled) units.
    pub enabled: i32,
    /// Service plan names the SKU contains (ids are derived).
    #[serde(default)]
    pub service_plans: Vec<String>,
    /// Share of generated users holding this SKU, 0..=1 (ignored for listed users).
    #[serde(default)]
    pub generated_share: f64,
    /// Share of those generated holders who inherit it from the SKU's licensing group
    /// (group-based licensing), 0..=1; the others hold it directly.
    #[serde(default)]
    pub generated_group_share: f64,
    /// The commercial subscriptions behind the SKU (`/directory/subscriptions`). When given, the
    /// `totalLicenses` of the `Enabled` ones must add up to `enabled`; when absent, one `Enabled`
    /// subscription of `enabled` licences sold by the partner is assumed.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionFixture>,
}

/// A commercial subscription behind a SKU. Dates are relative to the sandbox's start, so a
/// fixture's "expires in 12 days" stays true whenever it is loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionFixture {
    /// Licences in the subscription.
    pub total_licenses: i32,
    /// `Enabled` (default), `Warning`, `Suspended`, `LockedOut` or `Deleted`.
    #[serde(default = "enabled_status")]
    pub status: String,
    /// A free trial.
    #[serde(default)]
    pub is_trial: bool,
    /// The partner tenant that sold it (default: the fixture's partner).
    #[serde(default)]
    pub owner_tenant_id: Option<String>,
    /// Days before the sandbox's start it was created (default 365).
    #[serde(default = "year")]
    pub created_days_ago: i64,
    /// Days after the sandbox's start it renews or ends (`nextLifecycleDateTime`; default 365).
    #[serde(default = "year")]
    pub next_lifecycle_in_days: i64,
}

fn enabled_status() -> String {
    "Enabled".to_string()
}

fn year() -> i64 {
    365
}

/// Subscription statuses Graph reports.
pub const SUBSCRIPTION_STATUSES: &[&str] =
    &["Enabled", "Warning", "Suspended", "LockedOut", "Deleted"];

/// Users of a customer tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UsersFixture {
    /// Explicit users: Graph user objects (`id` is derived from the UPN when absent).
    Listed(Vec<Map<String, Value>>),
    /// Users computed on demand from (seed, index).
    Generated {
        /// Number of users.
        generate: u64,
        /// Seed of the generator.
        seed: u64,
    },
}

impl Default for UsersFixture {
    fn default() -> Self {
        UsersFixture::Listed(Vec::new())
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::builtin()
    }
}

/// SKU ids used by the built-in fixture (real Microsoft SKU ids).
pub mod skus {
    /// Microsoft 365 E3 (`SPE_E3`).
    pub const SPE_E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
    /// Office 365 E1 (`STANDARDPACK`).
    pub const STANDARDPACK: &str = "18181a46-0d4e-45cd-891e-60aabd171b4e";
    /// Microsoft Entra ID P1 (`AAD_PREMIUM`).
    pub const AAD_PREMIUM: &str = "078d2b04-f1bd-4111-bbd4-b4b1b354cef4";
}

impl SkuFixture {
    /// Checks shares, statuses and that the `Enabled` subscriptions add up to `enabled`.
    pub fn check(&self, tenant: &str) -> anyhow::Result<()> {
        let what = format!("customer {tenant}, sku {}", self.sku_part_number);
        for (name, share) in [
            ("generatedShare", self.generated_share),
            ("generatedGroupShare", self.generated_group_share),
        ] {
            anyhow::ensure!(
                (0.0..=1.0).contains(&share),
                "{what}: {name} must be between 0 and 1, got {share}"
            );
        }
        for sub in &self.subscriptions {
            anyhow::ensure!(
                SUBSCRIPTION_STATUSES.contains(&sub.status.as_str()),
                "{what}: subscription status {:?} is not one of {}",
                sub.status,
                SUBSCRIPTION_STATUSES.join(", ")
            );
            for (name, days) in [
                ("createdDaysAgo", sub.created_days_ago),
                ("nextLifecycleInDays", sub.next_lifecycle_in_days),
            ] {
                anyhow::ensure!(
                    (-MAX_FIXTURE_DAYS..=MAX_FIXTURE_DAYS).contains(&days),
                    "{what}: subscription {name} must be within ±{MAX_FIXTURE_DAYS} days, got {days}"
                );
            }
        }
        let enabled: i64 = self
            .subscriptions
            .iter()
            .filter(|s| s.status == "Enabled")
            .map(|s| i64::from(s.total_licenses))
            .sum();
        anyhow::ensure!(
            self.subscriptions.is_empty() || enabled == i64::from(self.enabled),
            "{what}: enabled is {} but its Enabled subscriptions hold {enabled} licences; they must be equal",
            self.enabled
        );
        Ok(())
    }
}

impl Fixture {
    /// Reads a fixture from YAML text.
    pub fn from_yaml(text: &str) -> anyhow::Result<Fixture> {
        let fixture: Fixture = serde_yaml::from_str(text)?;
        fixture.check()?;
        Ok(fixture)
    }

    /// Reads a fixture from a YAML file.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Fixture> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read fixture {}: {e}", path.display()))?;
        Fixture::from_yaml(&text).map_err(|e| anyhow::anyhow!("fixture {}: {e}", path.display()))
    }

    /// Checks cross-references (groups of users, users of refresh tokens, unique tenant ids).
    pub fn check(&self) -> anyhow::Result<()> {
        let p = &self.partner;
        for user in &p.users {
            for g in &user.groups {
                anyhow::ensure!(
                    p.groups.iter().any(|x| &x.id == g || &x.display_name == g),
                    "user {} is in unknown group {g}",
                    user.user_principal_name
                );
            }
        }
        for app in &self.apps {
            for (secret, days) in &app.secret_ends_in_days {
                let days = *days;
                anyhow::ensure!(
                    app.secrets.contains(secret),
                    "app {}: secretEndsInDays names a value that is not among its secrets",
                    app.client_id
                );
                anyhow::ensure!(
                    (-MAX_FIXTURE_DAYS..=MAX_FIXTURE_DAYS).contains(&days),
                    "app {}: a secret's endsInDays must be within ±{MAX_FIXTURE_DAYS} days, got {days}",
                    app.client_id
                );
            }
            for (i, pem) in app.certificates.iter().enumerate() {
                crate::microsoft::certificate::ParsedCertificate::from_pem(pem)
                    .map_err(|e| anyhow::anyhow!("app {} certificates[{i}]: {e}", app.client_id))?;
            }
            for rt in &app.refresh_tokens {
                anyhow::ensure!(
                    p.users
                        .iter()
                        .any(|u| u.user_principal_name.eq_ignore_ascii_case(&rt.user)),
                    "refresh token of app {} names unknown partner user {}",
                    app.client_id,
                    rt.user
                );
            }
        }
        let mut ids: Vec<&str> = self
            .customers
            .iter()
            .map(|c| c.tenant_id.as_str())
            .collect();
        ids.push(&p.tenant_id);
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        anyhow::ensure!(ids.len() == n, "tenant ids must be unique");
        for c in &self.customers {
            for sku in &c.skus {
                sku.check(&c.tenant_id)?;
            }
        }
        self.check_relationships()
    }

    fn check_relationships(&self) -> anyhow::Result<()> {
        let customers: std::collections::HashSet<&str> = self
            .customers
            .iter()
            .map(|c| c.tenant_id.as_str())
            .collect();
        let groups: Vec<(&str, &str)> = self
            .partner
            .groups
            .iter()
            .map(|g| (g.id.as_str(), g.display_name.as_str()))
            .collect();
        for r in &self.relationships {
            r.check(&customers, &groups)?;
        }
        super::fixture_gdap::check_unique(&self.relationships, &self.partner.tenant_id)
    }

    /// The built-in world of [`super::defaults`].
    pub fn builtin() -> Fixture {
        Fixture {
            partner: builtin_partner(),
            apps: vec![builtin_app()],
            customers: vec![contoso(), fabrikam(), northwind()],
            relationships: Vec::new(),
        }
    }
}

fn perms(resource: &str, names: &[&str]) -> ResourcePermissions {
    ResourcePermissions {
        resource: resource.to_string(),
        permissions: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn builtin_partner() -> PartnerFixture {
    let group = |id: &str, name: &str| GroupFixture {
        id: id.into(),
        display_name: name.into(),
    };
    let user = |id: &str, upn: &str, name: &str, groups: &[&str]| PartnerUserFixture {
        id: id.into(),
        user_principal_name: upn.into(),
        display_name: name.into(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
    };
    PartnerFixture {
        tenant_id: d::PARTNER_TENANT_ID.into(),
        display_name: "Sandbox Partner".into(),
        domain: d::PARTNER_DOMAIN.into(),
        groups: vec![
            group(d::ADMIN_AGENTS_GROUP_ID, "AdminAgents"),
            group(d::HELPDESK_GROUP_ID, "Helpdesk"),
            group(d::APP_ADMINS_GROUP_ID, "App Admins"),
        ],
        users: vec![
            user(
                d::PARTNER_ADMIN_OID,
                d::PARTNER_ADMIN_UPN,
                "Partner Admin",
                &[
                    d::ADMIN_AGENTS_GROUP_ID,
                    d::HELPDESK_GROUP_ID,
                    d::APP_ADMINS_GROUP_ID,
                ],
            ),
            user(
                "592bafbc-a1be-491a-abe8-b4e45343e1d9",
                d::PARTNER_SUPPORT_UPN,
                "Support Agent",
                &[d::HELPDESK_GROUP_ID],
            ),
        ],
    }
}

fn builtin_app() -> AppFixture {
    AppFixture {
        client_id: d::PARTNER_CLIENT_ID.into(),
        display_name: "GDAP Operator (sandbox)".into(),
        secrets: vec![d::PARTNER_CLIENT_SECRET.into()],
        secret_ends_in_days: Default::default(),
        certificates: vec![d::PARTNER_CLIENT_CERTIFICATE_PEM.into()],
        delegated_permissions: vec![
            perms(
                "graph",
                &[
                    "DelegatedAdminRelationship.ReadWrite.All",
                    "Directory.Read.All",
                    "Application.ReadWrite.All",
                    "AppRoleAssignment.ReadWrite.All",
                    "DelegatedPermissionGrant.ReadWrite.All",
                    "User.Read",
                ],
            ),
            perms("partnerCenter", &["user_impersonation"]),
        ],
        partner_app_roles: vec![],
        refresh_tokens: vec![
            RefreshTokenFixture {
                user: d::PARTNER_ADMIN_UPN.into(),
                token: d::PARTNER_REFRESH_TOKEN.into(),
                mfa: true,
            },
            RefreshTokenFixture {
                user: d::PARTNER_ADMIN_UPN.into(),
                token: d::PARTNER_NO_MFA_REFRESH_TOKEN.into(),
                mfa: false,
            },
            RefreshTokenFixture {
                user: d::PARTNER_SUPPORT_UPN.into(),
                token: d::PARTNER_SUPPORT_REFRESH_TOKEN.into(),
                mfa: true,
            },
        ],
    }
}

/// The app consented the way an administrator's admin consent leaves it: its delegated Microsoft
/// Graph permissions (so the partner's GDAP user can use it in the tenant) and three application
/// permissions for background reads.
fn reader_consent() -> ConsentFixture {
    ConsentFixture {
        app_id: d::PARTNER_CLIENT_ID.into(),
        app_roles: vec![perms(
            "graph",
            &[
                "User.Read.All",
                "LicenseAssignment.Read.All",
                "Organization.Read.All",
            ],
        )],
        delegated: vec![perms(
            "graph",
            &[
                "Directory.Read.All",
                "Application.ReadWrite.All",
                "AppRoleAssignment.ReadWrite.All",
                "DelegatedPermissionGrant.ReadWrite.All",
                "User.Read",
            ],
        )],
    }
}

fn sku(id: &str, part: &str, enabled: i32, plans: &[&str], share: f64) -> SkuFixture {
    SkuFixture {
        sku_id: id.into(),
        sku_part_number: part.into(),
        enabled,
        service_plans: plans.iter().map(|s| s.to_string()).collect(),
        generated_share: share,
        generated_group_share: 0.0,
        subscriptions: Vec::new(),
    }
}

/// A subscription: licences, status, trial, seller (`None`: the partner), created and next
/// lifecycle (days relative to the sandbox's start).
fn sub(
    total: i32,
    status: &str,
    trial: bool,
    owner: Option<&str>,
    created_days_ago: i64,
    next_in_days: i64,
) -> SubscriptionFixture {
    SubscriptionFixture {
        total_licenses: total,
        status: status.into(),
        is_trial: trial,
        owner_tenant_id: owner.map(str::to_string),
        created_days_ago,
        next_lifecycle_in_days: next_in_days,
    }
}

impl SkuFixture {
    fn with_subscriptions(mut self, subscriptions: Vec<SubscriptionFixture>) -> Self {
        self.subscriptions = subscriptions;
        self
    }

    fn by_group(mut self, share: f64) -> Self {
        self.generated_group_share = share;
        self
    }
}

fn licensed_service_principals() -> Vec<String> {
    [
        apps::MICROSOFT_GRAPH,
        apps::AZURE_AD_GRAPH,
        apps::OFFICE365_MANAGEMENT,
        apps::EXCHANGE_ONLINE,
        apps::PARTNER_CENTER,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn contoso() -> CustomerFixture {
    const FIRST: [&str; 25] = [
        "Adele",
        "Alex",
        "Allan",
        "Bianca",
        "Brian",
        "Cameron",
        "Christie",
        "Debra",
        "Delia",
        "Diego",
        "Emily",
        "Enrico",
        "Gerhart",
        "Grady",
        "Henrietta",
        "Irvin",
        "Isaiah",
        "Johanna",
        "Joni",
        "Lee",
        "Lidia",
        "Lynne",
        "Megan",
        "Miriam",
        "Nestor",
    ];
    const LAST: [&str; 25] = [
        "Vance",
        "Wilber",
        "Deyoung",
        "Pila",
        "Johnson",
        "White",
        "Cline",
        "Berger",
        "Dunbar",
        "Siciliani",
        "Braun",
        "Rossi",
        "Mueller",
        "Archie",
        "Wilkins",
        "Sayers",
        "Galvan",
        "Lauer",
        "Sherman",
        "Gu",
        "Holloway",
        "Robbins",
        "Bowen",
        "Graham",
        "Wilke",
    ];
    let users = (0..d::CONTOSO_USER_COUNT)
        .map(|i| {
            let upn = format!("{}.{}@{}", FIRST[i], LAST[i], d::CONTOSO_DOMAIN).to_lowercase();
            const DEPARTMENTS: [&str; 5] = ["Sales", "Finance", "IT", "Operations", "Legal"];
            let licences = if i % 5 == 4 {
                json!([])
            } else {
                json!([{"skuId": skus::SPE_E3, "disabledPlans": []}])
            };
            // Even-numbered licensed users inherit E3 from the licensing group; the others hold
            // it directly (the sandbox derives their licenseAssignmentStates).
            let group = super::ids::derived_id(&format!("{}/group/licensing/{}", d::CONTOSO_TENANT_ID, skus::SPE_E3));
            let states = (i % 5 != 4 && i % 2 == 0).then(|| {
                json!([{"skuId": skus::SPE_E3, "assignedByGroup": group, "state": "Active",
                    "error": "None", "disabledPlans": [], "lastUpdatedDateTime": "2025-01-06T09:00:00Z"}])
            });
            let user = json!({
                "displayName": format!("{} {}", FIRST[i], LAST[i]),
                "givenName": FIRST[i], "surname": LAST[i],
                "userPrincipalName": upn, "mail": upn,
                "jobTitle": if i == 0 { "IT Director" } else { "Analyst" },
                "department": DEPARTMENTS[i % 5],
                "companyName": "Contoso Ltd", "city": "Seattle", "state": "WA",
                "country": "United States", "postalCode": "98101",
                "streetAddress": format!("{} Pine Street", 100 + i),
                "usageLocation": "US", "preferredLanguage": "en-US",
                "officeLocation": format!("{}/{}", 1 + i / 10, 100 + i),
                "userType": if i == 24 { "Guest" } else { "Member" },
                "accountEnabled": i != 23,
                "assignedLicenses": licences,
            });
            match user {
                Value::Object(mut m) => {
                    if let Some(states) = states {
                        m.insert("licenseAssignmentStates".into(), states);
                    }
                    m
                }
                _ => unreachable!("json! object"),
            }
        })
        .collect();
    CustomerFixture {
        tenant_id: d::CONTOSO_TENANT_ID.into(),
        display_name: "Contoso Ltd".into(),
        primary_domain: d::CONTOSO_DOMAIN.into(),
        service_principals: licensed_service_principals(),
        consents: vec![reader_consent()],
        skus: vec![
            sku(
                skus::SPE_E3,
                "SPE_E3",
                25,
                &["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"],
                0.0,
            )
            .with_subscriptions(vec![
                sub(20, "Enabled", false, None, 400, 330),
                sub(
                    5,
                    "Enabled",
                    false,
                    Some(d::OTHER_PARTNER_TENANT_ID),
                    30,
                    20,
                ),
            ]),
            sku(skus::AAD_PREMIUM, "AAD_PREMIUM", 10, &["AAD_PREMIUM"], 0.0)
                .with_subscriptions(vec![sub(10, "Enabled", true, None, 5, 25)]),
        ],
        users: UsersFixture::Listed(users),
    }
}

fn fabrikam() -> CustomerFixture {
    CustomerFixture {
        tenant_id: d::FABRIKAM_TENANT_ID.into(),
        display_name: "Fabrikam Inc".into(),
        primary_domain: d::FABRIKAM_DOMAIN.into(),
        service_principals: vec![apps::MICROSOFT_GRAPH.into(), apps::AZURE_AD_GRAPH.into()],
        consents: vec![],
        skus: vec![],
        users: UsersFixture::Listed(vec![]),
    }
}

fn northwind() -> CustomerFixture {
    CustomerFixture {
        tenant_id: d::NORTHWIND_TENANT_ID.into(),
        display_name: "Northwind Traders".into(),
        primary_domain: d::NORTHWIND_DOMAIN.into(),
        service_principals: licensed_service_principals(),
        consents: vec![reader_consent()],
        skus: vec![
            sku(
                skus::SPE_E3,
                "SPE_E3",
                80_000,
                &["EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "TEAMS1"],
                0.7,
            )
            .by_group(0.8)
            .with_subscriptions(vec![
                sub(60_000, "Enabled", false, None, 700, 300),
                sub(15_000, "Enabled", false, None, 353, 12),
                sub(
                    5_000,
                    "Enabled",
                    false,
                    Some(d::OTHER_PARTNER_TENANT_ID),
                    200,
                    165,
                ),
            ]),
            sku(
                skus::STANDARDPACK,
                "STANDARDPACK",
                20_000,
                &["EXCHANGE_S_STANDARD", "TEAMS1"],
                0.15,
            )
            .with_subscriptions(vec![
                sub(20_000, "Enabled", false, None, 185, 180),
                sub(500, "Warning", false, None, 370, 25),
            ]),
            sku(
                skus::AAD_PREMIUM,
                "AAD_PREMIUM",
                50_000,
                &["AAD_PREMIUM"],
                0.3,
            )
            .by_group(1.0)
            .with_subscriptions(vec![
                sub(49_000, "Enabled", false, None, 275, 90),
                sub(1_000, "Enabled", true, None, 20, 10),
            ]),
        ],
        users: UsersFixture::Generated {
            generate: d::NORTHWIND_USER_COUNT,
            seed: d::NORTHWIND_SEED,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fixture example of docs/sandbox.md.
    fn example() -> String {
        let doc = include_str!("../../docs/sandbox.md");
        let start = doc
            .find("<!-- fixture-example")
            .expect("the docs' fixture example");
        let block = &doc[start..];
        let open = block.find("```yaml\n").expect("a yaml block") + 8;
        let close = block[open..].find("```").expect("its end");
        block[open..open + close].to_string()
    }

    proptest! {
        /// A fixture file is outside data: with any of its numbers replaced by any number, it is
        /// refused on load or builds a world (dates, counts and shares included), never a panic.
        #[test]
        fn a_fixture_with_any_numbers_loads_or_is_refused_and_builds_a_world(
            numbers in prop::collection::vec(
                prop_oneof![
                    any::<i64>().prop_map(|n| n.to_string()),
                    any::<u64>().prop_map(|n| n.to_string()),
                    any::<f64>().prop_map(|f| f.to_string()),
                    Just("-1".to_string()),
                    Just("1e308".to_string()),
                ],
                1..8,
            ),
            at in prop::collection::vec(any::<prop::sample::Index>(), 1..8),
        ) {
            let text = example();
            let spots: Vec<(usize, usize)> = regex::Regex::new(r": -?[0-9][0-9.]*")
                .unwrap()
                .find_iter(&text)
                .map(|m| (m.start() + 2, m.end()))
                .collect();
            let mut chosen: Vec<(usize, usize, &String)> = at
                .iter()
                .zip(&numbers)
                .map(|(i, n)| {
                    let (a, b) = spots[i.index(spots.len())];
                    (a, b, n)
                })
                .collect();
            chosen.sort_by_key(|c| std::cmp::Reverse(c.0));
            chosen.dedup_by_key(|c| c.0);
            let mut mangled = text.clone();
            for (a, b, n) in chosen {
                mangled.replace_range(a..b, n);
            }
            if let Ok(fixture) = Fixture::from_yaml(&mangled) {
                let world = super::super::state::World::from_fixture(&fixture, chrono::Utc::now());
                let _ = super::super::control::redacted(&world);
            }
        }
    }
}

//! The GDAP role catalog: Microsoft Entra built-in roles that a GDAP relationship may request.
//!
//! The catalog is compiled into the binary from `gdap-roles.json` (a copy of
//! `shared/reference/gdap-roles.json`). Users name roles by display name (case-insensitive), by an
//! alias (Microsoft's API name, a former name, or a short form such as "Global Admin"), or by the
//! role template GUID. [`RoleCatalog::resolve`] turns any of these into a [`Role`].

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Template id of Global Administrator, which Microsoft does not allow to auto-extend.
pub const GLOBAL_ADMINISTRATOR_ID: &str = "62e90394-69f5-4237-9190-012177145e10";
/// Template id of Application Administrator (may consent applications through Partner Center).
pub const APPLICATION_ADMINISTRATOR_ID: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
/// Template id of Cloud Application Administrator (may consent applications through Partner Center).
pub const CLOUD_APPLICATION_ADMINISTRATOR_ID: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";

/// Short forms people use for roles, mapped to the catalog's display name.
const EXTRA_ALIASES: &[(&str, &str)] = &[
    ("global admin", "Global Administrator"),
    ("ga", "Global Administrator"),
    ("tenant admin", "Global Administrator"),
    ("helpdesk admin", "Helpdesk Administrator"),
    ("user admin", "User Administrator"),
    ("exchange admin", "Exchange Administrator"),
    ("sharepoint admin", "SharePoint Administrator"),
    ("teams admin", "Teams Administrator"),
    ("intune admin", "Intune Administrator"),
    ("security admin", "Security Administrator"),
    ("license admin", "License Administrator"),
    ("billing admin", "Billing Administrator"),
];

/// How far Microsoft supports a role in GDAP, as recorded in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum GdapSupport {
    /// A documented built-in role: assignable.
    #[serde(rename = "builtin-documented")]
    Documented,
    /// Microsoft marks it "not intended for general use" or service-only: refused.
    #[serde(rename = "do-not-use")]
    DoNotUse,
    /// A role seen in a live role dump but not yet in Microsoft's docs: accepted with a warning.
    #[serde(rename = "unverified-new-role")]
    Unverified,
}

/// One Entra built-in role as the catalog records it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    /// Display name, e.g. "Global Administrator".
    pub name: String,
    /// Role template GUID (the `roleDefinitionId` Graph expects), lower case.
    pub id: String,
    /// What the role may do, in a sentence.
    pub description: String,
    /// Whether Entra labels the role privileged (`None`: unknown).
    pub privileged: Option<bool>,
    /// How far GDAP supports the role.
    pub gdap_support: GdapSupport,
    /// Extra facts: `no-auto-extend`, `consent-capable`, `api-name:…`, `renamed:…`.
    #[serde(default)]
    pub flags: Vec<String>,
}

impl Role {
    /// Whether the role forbids auto-extension of the relationship that holds it.
    pub fn forbids_auto_extend(&self) -> bool {
        self.id == GLOBAL_ADMINISTRATOR_ID
    }

    /// Other names the role is known by (Microsoft's API name, former names).
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().filter_map(|f| {
            f.strip_prefix("api-name:")
                .or_else(|| f.strip_prefix("renamed:"))
        })
    }
}

/// Why a role reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// Neither a known name, alias nor template GUID.
    #[error(
        "unknown role {0:?}: not a GDAP built-in role name or template GUID (list them with `gdap-operator roles`){1}"
    )]
    Unknown(String, String),
    /// Known, but Microsoft says not to use it.
    #[error("role {0:?} is not intended for general use and cannot be requested through GDAP")]
    DoNotUse(String),
}

/// The compiled-in catalog with its lookup indexes.
pub struct RoleCatalog {
    roles: Vec<Role>,
    by_key: HashMap<String, usize>,
}

impl RoleCatalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> &'static RoleCatalog {
        static CATALOG: OnceLock<RoleCatalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            let roles: Vec<Role> = serde_json::from_str(include_str!("gdap-roles.json"))
                .expect("the compiled-in gdap-roles.json is valid");
            RoleCatalog::new(roles)
        })
    }

    fn new(mut roles: Vec<Role>) -> Self {
        for role in &mut roles {
            role.id = role.id.to_ascii_lowercase();
        }
        let mut by_key = HashMap::new();
        for (i, role) in roles.iter().enumerate() {
            by_key.insert(role.id.clone(), i);
            by_key.insert(normalize(&role.name), i);
            for alias in role.aliases() {
                by_key.entry(normalize(alias)).or_insert(i);
            }
        }
        for (alias, name) in EXTRA_ALIASES {
            if let Some(&i) = by_key.get(&normalize(name)) {
                by_key.entry(normalize(alias)).or_insert(i);
            }
        }
        RoleCatalog { roles, by_key }
    }

    /// All roles, in catalog order (alphabetical by name).
    pub fn all(&self) -> &[Role] {
        &self.roles
    }

    /// Looks a role up by name, alias or GUID without judging whether it may be used.
    pub fn find(&self, reference: &str) -> Option<&Role> {
        self.by_key
            .get(&normalize(reference))
            .map(|&i| &self.roles[i])
    }

    /// Resolves a role reference for use in a relationship: unknown and do-not-use roles are errors.
    pub fn resolve(&self, reference: &str) -> Result<&Role, RoleError> {
        let role = self
            .find(reference)
            .ok_or_else(|| RoleError::Unknown(reference.to_string(), self.suggest(reference)))?;
        if role.gdap_support == GdapSupport::DoNotUse {
            return Err(RoleError::DoNotUse(role.name.clone()));
        }
        Ok(role)
    }

    /// "; did you mean …?" for a near miss, or an empty string.
    fn suggest(&self, reference: &str) -> String {
        let wanted = normalize(reference);
        let best = self
            .roles
            .iter()
            .map(|r| (strsim_distance(&wanted, &normalize(&r.name)), r))
            .min_by_key(|(d, _)| *d);
        match best {
            Some((d, role)) if d <= 4 => format!("; did you mean {:?}?", role.name),
            _ => String::new(),
        }
    }
}

/// Case- and space-insensitive key for role lookups.
fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Levenshtein distance, small and sufficient for "did you mean".
fn strsim_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_all_136_roles_with_unique_guids() {
        let catalog = RoleCatalog::builtin();
        assert_eq!(catalog.all().len(), 136);
        let mut ids: Vec<_> = catalog.all().iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 136);
        assert!(ids.iter().all(|id| uuid::Uuid::parse_str(id).is_ok()));
    }

    #[test]
    fn names_are_case_and_space_insensitive() {
        let catalog = RoleCatalog::builtin();
        for reference in [
            "Global Administrator",
            "global administrator",
            "  GLOBAL   administrator ",
        ] {
            assert_eq!(
                catalog.resolve(reference).unwrap().id,
                GLOBAL_ADMINISTRATOR_ID
            );
        }
    }

    #[test]
    fn guids_and_aliases_resolve() {
        let catalog = RoleCatalog::builtin();
        assert_eq!(
            catalog
                .resolve("62E90394-69F5-4237-9190-012177145E10")
                .unwrap()
                .name,
            "Global Administrator"
        );
        assert_eq!(
            catalog.resolve("Company Administrator").unwrap().id,
            GLOBAL_ADMINISTRATOR_ID
        );
        assert_eq!(
            catalog.resolve("Global Admin").unwrap().id,
            GLOBAL_ADMINISTRATOR_ID
        );
        assert_eq!(
            catalog.resolve("Power BI Administrator").unwrap().name,
            "Fabric Administrator"
        );
    }

    #[test]
    fn unknown_roles_are_refused_with_a_suggestion() {
        let err = RoleCatalog::builtin()
            .resolve("Helpdesk Administator")
            .unwrap_err();
        assert!(matches!(err, RoleError::Unknown(..)));
        assert!(
            err.to_string()
                .contains("did you mean \"Helpdesk Administrator\""),
            "{err}"
        );
        // The Graph docs' example id matches no built-in role.
        assert!(
            RoleCatalog::builtin()
                .resolve("dd4db9a0-cc4a-4213-9f9f-70242232d97e")
                .is_err()
        );
    }

    #[test]
    fn do_not_use_roles_are_refused() {
        let err = RoleCatalog::builtin()
            .resolve("Directory Synchronization Accounts")
            .unwrap_err();
        assert_eq!(
            err,
            RoleError::DoNotUse("Directory Synchronization Accounts".into())
        );
    }

    #[test]
    fn only_global_administrator_forbids_auto_extend() {
        let forbidding: Vec<_> = RoleCatalog::builtin()
            .all()
            .iter()
            .filter(|r| r.forbids_auto_extend())
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(forbidding, ["Global Administrator"]);
    }
}

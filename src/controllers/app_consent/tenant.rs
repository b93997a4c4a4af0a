//! The customer tenant as the partner user's delegated token shows it (the app's service
//! principal, the resources' service principals, the delegated grants, the application
//! permissions), or why it cannot be read; and what the app-only token shows is left of a
//! consent while deleting. Plain data.

use std::collections::{BTreeMap, BTreeSet};

/// A resource's service principal in the customer tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePrincipal {
    /// Object id.
    pub id: String,
    /// Its application permissions: name (lower case) → app role id.
    pub app_roles: BTreeMap<String, String>,
}

/// An application permission granted to the app's service principal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleAssignment {
    /// The assignment's id.
    pub id: String,
    /// The resource service principal's id.
    pub resource_id: String,
    /// The app role's id.
    pub app_role_id: String,
    /// The resource's appId, when its service principal could be read.
    pub resource_app_id: Option<String>,
    /// The app role's name (its `value`), when the resource's service principal lists it.
    pub role: Option<String>,
}

impl RoleAssignment {
    /// The resource, as messages and role checks name it: its appId, else its service
    /// principal's id.
    pub fn resource(&self) -> &str {
        self.resource_app_id.as_deref().unwrap_or(&self.resource_id)
    }

    /// The permission's name, else the app role's id.
    pub fn role_name(&self) -> &str {
        self.role.as_deref().unwrap_or(&self.app_role_id)
    }
}

/// The customer tenant, as far as the consent goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantView {
    /// The app's service principal id.
    pub app_principal: Option<String>,
    /// Each resource the consent needs (the grants' and Microsoft Graph) → its service
    /// principal, or `None` when the tenant lacks it.
    pub resources: BTreeMap<String, Option<ResourcePrincipal>>,
    /// The app's delegated grants: resource appId → scopes (lower case).
    pub grants: BTreeMap<String, BTreeSet<String>>,
    /// The app's application permissions.
    pub assignments: Vec<RoleAssignment>,
}

/// What the partner user's delegated token in the customer tenant allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenant {
    /// Entra refused the token because the app is not consented there (AADSTS90099 / 65001), or
    /// Graph refused the reads the consent should allow.
    NotConsented {
        /// Microsoft's answer, for messages.
        detail: String,
    },
    /// Entra refused the token because the user has no GDAP access there (AADSTS50020).
    NoAccess {
        /// Microsoft's answer, for messages.
        detail: String,
    },
    /// Entra issued the token but Graph refused the reads (`403`): the consent lacks the scopes,
    /// the user lacks a role, or Microsoft still propagates either.
    Denied {
        /// Microsoft's answer, for messages.
        detail: String,
    },
    /// Read.
    Read(TenantView),
}

impl Tenant {
    /// Microsoft's answer when the partner user's delegated path into the tenant is closed.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Tenant::NotConsented { detail }
            | Tenant::NoAccess { detail }
            | Tenant::Denied { detail } => Some(detail),
            Tenant::Read(_) => None,
        }
    }
}

/// What the app still holds in the customer tenant, read with the app-only token when the
/// partner user's delegated path is closed during deletion (the app-only token keeps working
/// while the app's service principal exists there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remains {
    /// The app has no service principal in the tenant (Entra refuses the app-only token with
    /// AADSTS7000229/700016): nothing of the consent is left.
    Nothing,
    /// What the app's service principal holds.
    Holds {
        /// Delegated grants: resource (appId, else service principal id) → scopes.
        grants: BTreeMap<String, BTreeSet<String>>,
        /// Application permissions.
        roles: Vec<RoleAssignment>,
    },
    /// Graph refuses the app-only token because it carries no permission at all: the app holds
    /// no Microsoft Graph application permission there (whether delegated grants remain, Graph
    /// cannot tell this token).
    NoAppPermissions,
    /// The service principal is there, but what it holds could not be read (Microsoft's answer).
    Unknown {
        /// Microsoft's answer, for messages.
        detail: String,
    },
}

impl Remains {
    /// Nothing is left.
    pub fn is_nothing(&self) -> bool {
        match self {
            Remains::Nothing => true,
            Remains::Holds { grants, roles } => grants.is_empty() && roles.is_empty(),
            Remains::NoAppPermissions | Remains::Unknown { .. } => false,
        }
    }

    /// How many permissions are left (delegated grants per resource and application
    /// permissions; an unreadable service principal counts as one).
    pub fn count(&self) -> usize {
        match self {
            Remains::Nothing => 0,
            Remains::Holds { grants, roles } => grants.len() + roles.len(),
            Remains::NoAppPermissions | Remains::Unknown { .. } => 1,
        }
    }
}

//! Types shared by the three custom resources: references, policies and validated strings.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// CEL rule for a GUID string (the API server and `validate` both run it).
pub const GUID_RULE: &str =
    "self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')";
/// CEL rule for a day duration `P<n>D` with 1 ≤ n ≤ 730.
pub const DAY_DURATION_RULE: &str = "self.matches('^P[0-9]{1,4}D$') && int(self.substring(1, size(self) - 1)) >= 1 && int(self.substring(1, size(self) - 1)) <= 730";

/// A GUID such as a tenant, group or application id, e.g. `11111111-2222-3333-4444-555555555555`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(transparent)]
pub struct Guid(pub String);

impl JsonSchema for Guid {
    fn schema_name() -> Cow<'static, str> {
        "Guid".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 36,
            "x-kubernetes-validations": [{
                "rule": GUID_RULE,
                "message": "must be a GUID like 11111111-2222-3333-4444-555555555555",
            }],
        })
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Guid {
    fn from(s: &str) -> Self {
        Guid(s.to_string())
    }
}

/// An ISO-8601 day duration `P<n>D` with 1 ≤ n ≤ 730, e.g. `P730D` (two years).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(transparent)]
pub struct DayDuration(pub String);

impl JsonSchema for DayDuration {
    fn schema_name() -> Cow<'static, str> {
        "DayDuration".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 6,
            "x-kubernetes-validations": [{
                "rule": DAY_DURATION_RULE,
                "message": "must be P<n>D with 1 <= n <= 730, e.g. P730D (Microsoft allows 1 to 730 days)",
            }],
        })
    }
}

impl DayDuration {
    /// The parsed number of days, if the text is well formed.
    pub fn parse(&self) -> Result<super::IsoDays, super::duration::DurationError> {
        self.0.parse()
    }
}

/// The customer whose Microsoft tenant this object manages.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRef {
    /// The customer's Microsoft Entra tenant id (a GUID). Find it in Partner Center under
    /// Customers, or as `tid` in any token issued for that tenant.
    pub tenant_id: Guid,
}

/// A reference to a Secret in the same namespace as the object (never another namespace).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretRef {
    /// Name of the Secret in this object's namespace. It holds the keys `partnerTenantId`,
    /// `clientId`, either `clientSecret` or `clientCertificate` + `clientKey` (PEM), and
    /// `refreshToken`; the operator rotates `refreshToken` on use.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A reference to another custom resource in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectRef {
    /// Name of the object in this namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What happens in Microsoft's cloud when the Kubernetes object is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Terminate or revoke the Microsoft-side object (the default).
    #[default]
    Delete,
    /// Leave the Microsoft-side object as it is.
    Orphan,
}

/// Whether the operator may change Microsoft-side state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ManagementPolicy {
    /// Create, update and delete as the spec says (the default).
    #[default]
    Manage,
    /// Never write: adopt an existing object and report its state.
    Observe,
}

/// A kind's spec reads its terms (the fields a GdapFleet's template shares, `#[serde(flatten)]`
/// as `terms`) as its own: `spec.roles` for `spec.terms.roles`.
macro_rules! spec_terms {
    ($spec:ty, $terms:ty) => {
        impl std::ops::Deref for $spec {
            type Target = $terms;
            fn deref(&self) -> &$terms {
                &self.terms
            }
        }

        impl std::ops::DerefMut for $spec {
            fn deref_mut(&mut self) -> &mut $terms {
                &mut self.terms
            }
        }
    };
}
pub(crate) use spec_terms;

//! What observe found for one AppConsent: the partner side (the relationships that give the
//! partner user a role in the customer, the referenced GdapRelationship), the customer tenant
//! (`tenant`) and the object's own records. Plain data; `plan` decides on it.

use super::pending::Pending;
use super::tenant::{Remains, Tenant, TenantView};
use crate::api::consent_rules::CONSENT_CAPABLE_ROLE_IDS;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// One active relationship with the customer, as the partner user benefits from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRelationship {
    /// Microsoft's id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// The relationship's roles (template ids, lower case).
    pub role_ids: BTreeSet<String>,
    /// The roles its active access assignments give security groups the partner user is in.
    pub user_role_ids: BTreeSet<String>,
    /// Since when it gives the user a consent-capable role: the later of its activation and the
    /// creation of the earliest such access assignment (`None`: it does not, or Microsoft gave no
    /// times).
    pub consent_capable_since: Option<DateTime<Utc>>,
}

impl RemoteRelationship {
    /// It gives the partner user a consent-capable role.
    pub fn gives_consent_role(&self) -> bool {
        CONSENT_CAPABLE_ROLE_IDS
            .iter()
            .any(|r| self.user_role_ids.contains(*r))
    }
}

/// The GdapRelationship object `spec.relationshipRef` names, as Kubernetes has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// No such object in the namespace.
    Missing,
    /// It exists but is not Ready; the message is its Ready condition's.
    NotReady {
        /// Why, in the GdapRelationship's words.
        message: String,
    },
    /// Ready, with its relationship id.
    Ready {
        /// Microsoft's relationship id (`status.relationshipId`).
        relationship_id: Option<String>,
    },
}

/// The partner side: what gives the partner user access to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartnerSide {
    /// The referenced GdapRelationship (when `spec.relationshipRef` is set).
    pub reference: Option<Reference>,
    /// The active relationships with the customer.
    pub relationships: Vec<RemoteRelationship>,
    /// The customer's name, as the partner's relationships with it show it.
    pub customer_name: Option<String>,
}

impl PartnerSide {
    /// Every role the partner user holds in the customer, over all active relationships.
    pub fn held_roles(&self) -> BTreeSet<String> {
        self.relationships
            .iter()
            .flat_map(|r| r.user_role_ids.iter().cloned())
            .collect()
    }
}

pub use crate::controllers::failure::Unreadable;

/// Everything observed for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The object is being deleted.
    pub deleting: bool,
    /// The status records a complete consent verified before at the current generation
    /// (`status.lastVerifiedAt`, `status.verifiedGeneration`).
    pub verified_before: bool,
    /// The status records a consent the operator made (`status.consentedAt`).
    pub consented_before: bool,
    /// The partner side.
    pub partner: Result<PartnerSide, Unreadable>,
    /// The customer tenant.
    pub tenant: Result<Tenant, Unreadable>,
    /// The operator's writes that Microsoft did not show yet (annotation
    /// `gdap.io/pending-writes`).
    pub pending: Pending,
    /// While deleting with the delegated path closed: what the app still holds, read with the
    /// app-only token (`None`: not read).
    pub remains: Option<Remains>,
}

impl Observed {
    /// The tenant view, when it was read.
    pub fn view(&self) -> Option<&TenantView> {
        match &self.tenant {
            Ok(Tenant::Read(v)) => Some(v),
            _ => None,
        }
    }
}

//! The user contract: the custom resource types (group `gdap.io`, version `v1alpha1`), the types
//! they share, the GDAP role catalog, day durations and condition vocabulary.
//!
//! Every field carries a doc comment: it becomes the text of `kubectl explain`.

pub mod app_consent;
pub mod conditions;
pub mod consent_rules;
pub mod duration;
pub mod field_problem;
pub mod gdap_fleet;
pub mod gdap_relationship;
pub mod naming;
pub mod roles;
pub mod rules;
pub mod shared;
pub mod tenant_sync;

pub use app_consent::{
    AppConsent, AppConsentSpec, AppConsentStatus, ConsentRelationship, ConsentTerms, GrantSpec,
    ReconsentPolicy,
};
pub use duration::IsoDays;
pub use gdap_fleet::{
    CustomerFilter, FleetCustomer, FleetCustomers, FleetOverrides, FleetTemplate, GdapFleet,
    GdapFleetSpec, GdapFleetStatus, PendingApproval, RolloutSpec,
};
pub use gdap_relationship::{
    AccessAssignmentSpec, AccessAssignmentStatus, GdapRelationship, GdapRelationshipSpec,
    GdapRelationshipStatus, PendingAssignmentUpdate, PreviousRelationship, RelationshipTerms,
    RenewalPolicy, RenewalSpec, SuccessorStatus,
};
pub use roles::{Role, RoleCatalog, RoleError};
pub use shared::{
    CustomerRef, DayDuration, DeletionPolicy, Guid, LocalObjectRef, ManagementPolicy, SecretRef,
};
pub use tenant_sync::{
    SinkSpec, SyncMode, SyncTerms, TenantSync, TenantSyncSpec, TenantSyncStatus, UserField,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every custom resource.
pub const GROUP: &str = "gdap.io";

/// All CRDs the operator owns, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        GdapRelationship::crd(),
        AppConsent::crd(),
        TenantSync::crd(),
        GdapFleet::crd(),
    ]
}

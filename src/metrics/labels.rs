//! The label sets of the operator's metrics. Their own module so that the metrics a controller
//! keeps (e.g. `controllers::tenant_sync::metrics`) can label by object without depending on
//! [`crate::metrics::Metrics`], which registers them.

use prometheus_client::encoding::EncodeLabelSet;

/// Labels of reconcile counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `GdapRelationship`, `AppConsent` or `TenantSync`.
    pub kind: String,
    /// `success` or the error's reason.
    pub result: String,
}

/// Labels naming one kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The custom resource kind.
    pub kind: String,
}

/// Labels naming one object.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// Customer tenant id.
    pub customer: String,
}

/// Labels of a fleet's count of customers in one state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FleetLabels {
    /// Namespace of the fleet.
    pub namespace: String,
    /// Name of the fleet.
    pub name: String,
    /// `active`, `awaiting_approval`, `failed`, `waiting`, `excluded`, `filtered_out`,
    /// `managed_elsewhere`, `access_refused` or `pruning`.
    pub state: String,
}

/// Labels naming one credentials Secret.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecretLabels {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub secret: String,
}

/// Labels of calls to Microsoft.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `login`, `graph` or `partner_center`.
    pub service: String,
    /// HTTP method.
    pub method: String,
    /// HTTP status, or `error` when no response came.
    pub status: String,
}

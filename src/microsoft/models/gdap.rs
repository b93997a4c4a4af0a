//! Graph GDAP models: relationships, requests, access assignments, operations (§1 of the
//! reference). Field names follow Graph's camelCase JSON exactly.

use super::{lenient_time, open_enum};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

open_enum!(
    /// `delegatedAdminRelationshipStatus`.
    RelationshipStatus {
        /// System is provisioning.
        Activating = "activating",
        /// Usable; access assignments can be created.
        Active = "active",
        /// Locked and waiting for the customer.
        ApprovalPending = "approvalPending",
        /// Customer approved.
        Approved = "approved",
        /// Created, still editable.
        Created = "created",
        /// De-provisioned after the end date.
        Expired = "expired",
        /// Past its end date, de-provisioning soon.
        Expiring = "expiring",
        /// Terminated.
        Terminated = "terminated",
        /// Being de-provisioned after termination.
        Terminating = "terminating",
        /// Termination requested.
        TerminationRequested = "terminationRequested",
        /// Evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
);

open_enum!(
    /// `delegatedAdminRelationshipRequestAction`.
    RequestAction {
        /// Finalise and send for customer approval.
        LockForApproval = "lockForApproval",
        /// Indirect reseller approves.
        Approve = "approve",
        /// Terminate an active relationship.
        Terminate = "terminate",
        /// Indirect reseller rejects.
        Reject = "reject",
        /// Evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
);

open_enum!(
    /// `delegatedAdminRelationshipRequestStatus`.
    RequestStatus {
        /// Accepted.
        Created = "created",
        /// In progress.
        Pending = "pending",
        /// Done.
        Succeeded = "succeeded",
        /// Failed.
        Failed = "failed",
        /// Evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
);

open_enum!(
    /// `delegatedAdminAccessAssignmentStatus`.
    AccessAssignmentStatus {
        /// Being provisioned.
        Pending = "pending",
        /// In effect.
        Active = "active",
        /// Being removed.
        Deleting = "deleting",
        /// Removed.
        Deleted = "deleted",
        /// Provisioning failed.
        Error = "error",
        /// Evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
);

open_enum!(
    /// `delegatedAdminAccessContainerType`.
    AccessContainerType {
        /// A partner-tenant security group.
        SecurityGroup = "securityGroup",
        /// Evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
);

open_enum!(
    /// `delegatedAdminRelationshipOperationType`.
    OperationType {
        /// An access assignment update.
        AccessAssignmentUpdate = "delegatedAdminAccessAssignmentUpdate",
        /// A relationship update (Global Administrator removal).
        RelationshipUpdate = "delegatedAdminRelationshipUpdate",
        /// Evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
);

open_enum!(
    /// `longRunningOperationStatus`.
    OperationStatus {
        /// Queued.
        NotStarted = "notStarted",
        /// Running.
        Running = "running",
        /// Finished successfully.
        Succeeded = "succeeded",
        /// Failed.
        Failed = "failed",
        /// Evolvable-enum sentinel.
        UnknownFutureValue = "unknownFutureValue",
    }
);

/// `unifiedRole`: one Entra built-in role template id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnifiedRole {
    /// The role template GUID.
    pub role_definition_id: String,
}

/// `delegatedAdminAccessDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccessDetails {
    /// The roles.
    #[serde(default)]
    pub unified_roles: Vec<UnifiedRole>,
}

impl AccessDetails {
    /// Access details from role template ids.
    pub fn from_role_ids<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Self {
        AccessDetails {
            unified_roles: ids
                .into_iter()
                .map(|id| UnifiedRole {
                    role_definition_id: id.into(),
                })
                .collect(),
        }
    }

    /// The role template ids.
    pub fn role_ids(&self) -> Vec<&str> {
        self.unified_roles
            .iter()
            .map(|r| r.role_definition_id.as_str())
            .collect()
    }
}

/// `delegatedAdminRelationshipCustomerParticipant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerParticipant {
    /// The customer's tenant id.
    pub tenant_id: String,
    /// The customer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `delegatedAdminCustomer`: a customer the partner holds GDAP relationships with
/// (`GET /tenantRelationships/delegatedAdminCustomers`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DelegatedAdminCustomer {
    /// Id (the customer's tenant id in Microsoft's examples).
    pub id: String,
    /// The customer's tenant id.
    pub tenant_id: String,
    /// The customer's name.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// `delegatedAdminRelationship` (and its reseller subtype).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    /// `@odata.type`, e.g. `#microsoft.graph.resellerDelegatedAdminRelationship`.
    #[serde(rename = "@odata.type", default)]
    pub odata_type: Option<String>,
    /// `@odata.etag`: echo verbatim in `If-Match`.
    #[serde(rename = "@odata.etag", default)]
    pub etag: Option<String>,
    /// Opaque id.
    pub id: String,
    /// Unique per partner, ≤ 50 characters.
    pub display_name: String,
    /// ISO-8601 duration, e.g. `P730D`.
    #[serde(default)]
    pub duration: String,
    /// `PT0S`, `P0D` or `P180D`.
    #[serde(default)]
    pub auto_extend_duration: Option<String>,
    /// The customer, once known.
    #[serde(default)]
    pub customer: Option<CustomerParticipant>,
    /// The roles.
    #[serde(default)]
    pub access_details: AccessDetails,
    /// The lifecycle status.
    #[serde(default)]
    pub status: Option<RelationshipStatus>,
    /// Created at.
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_date_time: Option<DateTime<Utc>>,
    /// Last modified at.
    #[serde(default, deserialize_with = "lenient_time")]
    pub last_modified_date_time: Option<DateTime<Utc>>,
    /// Activated at.
    #[serde(default, deserialize_with = "lenient_time")]
    pub activated_date_time: Option<DateTime<Utc>>,
    /// Ends at.
    #[serde(default, deserialize_with = "lenient_time")]
    pub end_date_time: Option<DateTime<Utc>>,
    /// Reseller subtype: the indirect provider's tenant.
    #[serde(default)]
    pub indirect_provider_tenant_id: Option<String>,
    /// Reseller subtype: partner consent pending.
    #[serde(default)]
    pub is_partner_consent_pending: Option<bool>,
}

/// Body of a relationship create.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRelationship {
    /// Unique per partner, ≤ 50 characters: the idempotency key.
    pub display_name: String,
    /// ISO-8601 days, `P1D`..`P730D`.
    pub duration: String,
    /// The customer; `None` lets any customer approve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerParticipant>,
    /// The roles.
    pub access_details: AccessDetails,
    /// `PT0S` or `P180D`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_extend_duration: Option<String>,
}

/// Body of a relationship PATCH: only the fields to change.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipPatch {
    /// New display name (only while `created`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// New duration (only while `created`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// New customer (only while `created`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerParticipant>,
    /// New roles (while `created`; while `active` only dropping Global Administrator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_details: Option<AccessDetails>,
    /// New auto-extend (while `created` or `active`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_extend_duration: Option<String>,
}

/// `delegatedAdminRelationshipRequest`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationshipRequest {
    /// `@odata.etag`.
    #[serde(rename = "@odata.etag", default)]
    pub etag: Option<String>,
    /// Id.
    pub id: String,
    /// The action.
    pub action: RequestAction,
    /// The status.
    #[serde(default)]
    pub status: Option<RequestStatus>,
    /// Created at.
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_date_time: Option<DateTime<Utc>>,
    /// Last modified at.
    #[serde(default, deserialize_with = "lenient_time")]
    pub last_modified_date_time: Option<DateTime<Utc>>,
}

/// `delegatedAdminAccessContainer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessContainer {
    /// The partner-tenant security group's object id.
    pub access_container_id: String,
    /// Always `securityGroup` today.
    pub access_container_type: AccessContainerType,
}

impl AccessContainer {
    /// A security-group container.
    pub fn security_group(group_id: &str) -> Self {
        AccessContainer {
            access_container_id: group_id.to_string(),
            access_container_type: AccessContainerType::SecurityGroup,
        }
    }
}

/// `delegatedAdminAccessAssignment`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessAssignment {
    /// `@odata.etag`: echo verbatim in `If-Match`.
    #[serde(rename = "@odata.etag", default)]
    pub etag: Option<String>,
    /// Id.
    pub id: String,
    /// The security group.
    pub access_container: AccessContainer,
    /// The roles (a subset of the relationship's).
    #[serde(default)]
    pub access_details: AccessDetails,
    /// The status.
    #[serde(default)]
    pub status: Option<AccessAssignmentStatus>,
    /// Created at.
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_date_time: Option<DateTime<Utc>>,
    /// Last modified at.
    #[serde(default, deserialize_with = "lenient_time")]
    pub last_modified_date_time: Option<DateTime<Utc>>,
}

/// Body of an access-assignment create.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccessAssignment {
    /// The security group.
    pub access_container: AccessContainer,
    /// The roles.
    pub access_details: AccessDetails,
}

/// `delegatedAdminRelationshipOperation`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// `@odata.etag`.
    #[serde(rename = "@odata.etag", default)]
    pub etag: Option<String>,
    /// Id.
    pub id: String,
    /// What it changes.
    pub operation_type: OperationType,
    /// Progress.
    pub status: OperationStatus,
    /// The target object's JSON, as a string.
    #[serde(default)]
    pub data: String,
    /// Created at.
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_date_time: Option<DateTime<Utc>>,
    /// Last modified at.
    #[serde(default, deserialize_with = "lenient_time")]
    pub last_modified_date_time: Option<DateTime<Utc>>,
}

/// Result of a PATCH: applied now, or accepted as a long-running operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Updated<T> {
    /// `200`: the object after the change.
    Done(T),
    /// `202`: poll the operation.
    Accepted {
        /// The operation's id (last segment of `Location`), if given.
        operation_id: Option<String>,
        /// The suggested polling delay.
        retry_after: Option<Duration>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relationship_parses_every_field_and_keeps_unknown_status() {
        let json = r##"{
          "@odata.type": "#microsoft.graph.resellerDelegatedAdminRelationship",
          "@odata.etag": "W/\"abc\"",
          "id": "r-1", "displayName": "ACME", "duration": "P730D", "autoExtendDuration": "P180D",
          "customer": {"tenantId": "t-1", "displayName": "ACME Ltd"},
          "accessDetails": {"unifiedRoles": [{"roleDefinitionId": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"}]},
          "status": "somethingNew",
          "createdDateTime": "2025-01-06T09:00:00.0000000Z",
          "lastModifiedDateTime": "2025-01-07T10:15:00.0000000Z",
          "activatedDateTime": "", "endDateTime": null,
          "indirectProviderTenantId": "ip-1", "isPartnerConsentPending": true
        }"##;
        let r: Relationship = serde_json::from_str(json).unwrap();
        assert_eq!(r.etag.as_deref(), Some("W/\"abc\""));
        assert_eq!(
            r.status,
            Some(RelationshipStatus::Unknown("somethingNew".into()))
        );
        assert_eq!(
            r.access_details.role_ids(),
            ["88d8e3e3-8f55-4a1e-953a-9b9898b8876b"]
        );
        assert!(r.activated_date_time.is_none() && r.created_date_time.is_some());
        assert_eq!(r.is_partner_consent_pending, Some(true));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["status"], "somethingNew");
    }

    #[test]
    fn known_enum_values_round_trip() {
        for s in [
            "approvalPending",
            "terminationRequested",
            "unknownFutureValue",
        ] {
            let v: RelationshipStatus = serde_json::from_value(serde_json::json!(s)).unwrap();
            assert!(!matches!(v, RelationshipStatus::Unknown(_)), "{s}");
            assert_eq!(serde_json::to_value(&v).unwrap(), s);
        }
        let op: OperationType =
            serde_json::from_value(serde_json::json!("delegatedAdminRelationshipUpdate")).unwrap();
        assert_eq!(op, OperationType::RelationshipUpdate);
    }

    #[test]
    fn create_body_skips_absent_fields() {
        let body = NewRelationship {
            display_name: "x".into(),
            duration: "P30D".into(),
            customer: None,
            access_details: AccessDetails::from_role_ids(["r"]),
            auto_extend_duration: None,
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"displayName":"x","duration":"P30D","accessDetails":{"unifiedRoles":[{"roleDefinitionId":"r"}]}})
        );
    }
}

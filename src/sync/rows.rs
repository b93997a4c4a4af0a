//! The rows an import writes: users (with their deletion mark), SKUs and subscriptions.
//!
//! Contract: a [`UserRow`] carries the Graph properties that were selected, under Graph's own
//! names (camelCase), plus `deleted`, `deletedAt` and `deletedReason` once the user is gone —
//! users are marked deleted, never dropped. Absent properties are left out of its JSON. SKU and
//! subscription rows are Graph's own objects; a subscription row adds `soldByPartner`.

use crate::microsoft::models::directory::{
    AssignedLicense, CompanySubscription, ExtensionAttributes, LicenseAssignmentState,
    RemovedReason, User,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why a user row is marked deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeletedReason {
    /// Graph's delta said `@removed` with reason `deleted`: permanently deleted.
    Deleted,
    /// Graph's delta said `@removed` with reason `changed`: in the recycle bin, restorable.
    SoftDeleted,
    /// A full pass no longer listed the user.
    NotListed,
}

impl DeletedReason {
    /// The reason of a delta `@removed` entry.
    pub fn from_removed(reason: &RemovedReason) -> Self {
        match reason {
            RemovedReason::Changed => DeletedReason::SoftDeleted,
            _ => DeletedReason::Deleted,
        }
    }

    /// `deleted`, `softDeleted` or `notListed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeletedReason::Deleted => "deleted",
            DeletedReason::SoftDeleted => "softDeleted",
            DeletedReason::NotListed => "notListed",
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One user as the sinks store it.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserRow {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default)]
    pub assigned_licenses: Vec<AssignedLicense>,
    #[serde(default)]
    pub license_assignment_states: Vec<LicenseAssignmentState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises_extension_attributes: Option<ExtensionAttributes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_phones: Option<Vec<String>>,
    /// The user is gone from the tenant (the row is kept).
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// When the import noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// How it noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_reason: Option<DeletedReason>,
}

impl From<User> for UserRow {
    fn from(u: User) -> Self {
        UserRow {
            id: u.id,
            display_name: u.display_name,
            user_principal_name: u.user_principal_name,
            mail: u.mail,
            given_name: u.given_name,
            surname: u.surname,
            job_title: u.job_title,
            department: u.department,
            company_name: u.company_name,
            office_location: u.office_location,
            street_address: u.street_address,
            city: u.city,
            state: u.state,
            postal_code: u.postal_code,
            country: u.country,
            preferred_language: u.preferred_language,
            usage_location: u.usage_location,
            account_enabled: u.account_enabled,
            user_type: u.user_type,
            assigned_licenses: u.assigned_licenses.unwrap_or_default(),
            license_assignment_states: u.license_assignment_states.unwrap_or_default(),
            on_premises_extension_attributes: u.on_premises_extension_attributes,
            created_date_time: u.created_date_time,
            employee_id: u.employee_id,
            mobile_phone: u.mobile_phone,
            business_phones: u.business_phones,
            deleted: false,
            deleted_at: None,
            deleted_reason: None,
        }
    }
}

impl UserRow {
    /// A row for a user known only by id, already deleted (a removal of a user never imported).
    pub fn tombstone(id: &str, reason: DeletedReason, at: DateTime<Utc>) -> Self {
        UserRow {
            id: id.to_string(),
            ..UserRow::default()
        }
        .mark_deleted(reason, at)
    }

    /// The same row marked deleted (keeping the first deletion time of a row already deleted).
    pub fn mark_deleted(mut self, reason: DeletedReason, at: DateTime<Utc>) -> Self {
        if !self.deleted {
            self.deleted_at = Some(at);
        }
        self.deleted = true;
        self.deleted_reason = Some(reason);
        self
    }
}

/// What the engine hands a sink for one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserRecord {
    /// A user as listed (full pass) or as changed (delta).
    User(Box<UserRow>),
    /// A delta `@removed` entry.
    Removed {
        /// The user's id.
        id: String,
        /// How it was removed.
        reason: DeletedReason,
    },
}

impl UserRecord {
    /// The user's id.
    pub fn id(&self) -> &str {
        match self {
            UserRecord::User(u) => &u.id,
            UserRecord::Removed { id, .. } => id,
        }
    }
}

/// A subscription as the sinks store it: Graph's object plus whether this partner sold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRow {
    /// Graph's `companySubscription`.
    #[serde(flatten)]
    pub subscription: CompanySubscription,
    /// `ownerTenantId` is the partner's tenant (unknown when the partner's id was not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sold_by_partner: Option<bool>,
}

impl SubscriptionRow {
    /// The row of a subscription, judged against the partner's tenant id.
    pub fn new(subscription: CompanySubscription, partner_tenant_id: Option<&str>) -> Self {
        let sold_by_partner = partner_tenant_id.map(|p| {
            subscription
                .owner_tenant_id
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case(p))
        });
        SubscriptionRow {
            subscription,
            sold_by_partner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_graph_names_leave_out_absent_fields_and_round_trip() {
        let user: User = serde_json::from_str(
            r#"{"id":"u1","displayName":"Ann","accountEnabled":false,"assignedLicenses":[{"skuId":"s","disabledPlans":[]}],"department":null}"#,
        )
        .unwrap();
        let row = UserRow::from(user);
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["displayName"], "Ann");
        assert_eq!(json["accountEnabled"], false);
        assert!(json.get("department").is_none() && json.get("deleted").is_none());
        assert_eq!(json["licenseAssignmentStates"], serde_json::json!([]));
        let back: UserRow = serde_json::from_value(json).unwrap();
        assert_eq!(back, row);
    }

    #[test]
    fn deletion_keeps_the_first_time_and_the_data() {
        let t1 = DateTime::from_timestamp(1_000, 0).unwrap();
        let t2 = DateTime::from_timestamp(2_000, 0).unwrap();
        let row = UserRow {
            id: "u".into(),
            display_name: Some("Ann".into()),
            ..UserRow::default()
        };
        let gone = row.mark_deleted(DeletedReason::SoftDeleted, t1);
        let again = gone.clone().mark_deleted(DeletedReason::Deleted, t2);
        assert_eq!(again.deleted_at, Some(t1));
        assert_eq!(again.deleted_reason, Some(DeletedReason::Deleted));
        assert_eq!(again.display_name.as_deref(), Some("Ann"));
        let json = serde_json::to_value(&again).unwrap();
        assert_eq!(json["deleted"], true);
        assert_eq!(json["deletedReason"], "deleted");
        let tomb = UserRow::tombstone("x", DeletedReason::Deleted, t2);
        assert!(tomb.deleted && tomb.display_name.is_none());
    }

    #[test]
    fn subscriptions_know_their_seller() {
        let sub = CompanySubscription {
            id: "s".into(),
            owner_tenant_id: Some("PARTNER".into()),
            ..Default::default()
        };
        assert_eq!(
            SubscriptionRow::new(sub.clone(), Some("partner")).sold_by_partner,
            Some(true)
        );
        assert_eq!(
            SubscriptionRow::new(sub.clone(), Some("other")).sold_by_partner,
            Some(false)
        );
        assert_eq!(SubscriptionRow::new(sub, None).sold_by_partner, None);
    }
}

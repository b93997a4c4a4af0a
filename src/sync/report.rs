//! What an import reports: user counts, licences per SKU (with expiry and seller), rows written,
//! full or delta, and timing — the figures a controller turns into `TenantSync` status.
//!
//! Contract: [`UserCounts`] count the users that are not deleted: `enabled` are those with
//! `accountEnabled: true`, `licensed` those with at least one assigned licence,
//! `disabledLicensed` those with `accountEnabled: false` and a licence, `guests` those with
//! `userType: Guest`. [`sku_reports`] is pure: `purchased` is Graph's `prepaidUnits.enabled`,
//! `assigned` its `consumedUnits`, `available` the difference (negative when over-assigned);
//! `nextExpiry` the earliest `nextLifecycleDateTime` of the SKU's `Enabled` or `Warning`
//! subscriptions; `partnerLicenses` the licences of those sold by this partner.

use super::plan::{FullReason, RunKind};
use super::rows::{SubscriptionRow, UserRow};
use crate::api::tenant_sync::{SkuSummary, UserSummary};
use crate::microsoft::models::directory::SubscribedSku;
use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// User counts of a tenant after an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserCounts {
    /// Users not deleted.
    pub total: i64,
    /// With `accountEnabled: true`.
    pub enabled: i64,
    /// With at least one licence.
    pub licensed: i64,
    /// Disabled but holding a licence (licences to reclaim).
    pub disabled_licensed: i64,
    /// `userType: Guest`.
    pub guests: i64,
}

impl UserCounts {
    /// Counts one row (deleted rows count for nothing).
    pub fn add(&mut self, row: &UserRow) {
        self.add_facts(
            row.deleted,
            row.account_enabled,
            !row.assigned_licenses.is_empty(),
            row.user_type.as_deref(),
        );
    }

    /// Counts one user from its facts.
    pub fn add_facts(
        &mut self,
        deleted: bool,
        account_enabled: Option<bool>,
        licensed: bool,
        user_type: Option<&str>,
    ) {
        if deleted {
            return;
        }
        self.total += 1;
        self.enabled += i64::from(account_enabled == Some(true));
        self.licensed += i64::from(licensed);
        self.disabled_licensed += i64::from(account_enabled == Some(false) && licensed);
        self.guests += i64::from(user_type == Some("Guest"));
    }
}

impl From<UserCounts> for UserSummary {
    fn from(c: UserCounts) -> Self {
        UserSummary {
            total: c.total,
            enabled: c.enabled,
            licensed: c.licensed,
            disabled_licensed: c.disabled_licensed,
            guests: c.guests,
        }
    }
}

/// Licence figures of one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuReport {
    /// The SKU's id.
    pub sku_id: String,
    /// Microsoft's part number, e.g. `SPE_E3`.
    pub sku_part_number: String,
    /// Licences in `Enabled` subscriptions (`prepaidUnits.enabled`).
    pub purchased: i64,
    /// Licences assigned (`consumedUnits`).
    pub assigned: i64,
    /// `purchased - assigned`.
    pub available: i64,
    /// Licences in subscriptions past their end, in their grace period (`prepaidUnits.warning`).
    pub warning: i64,
    /// Licences in suspended subscriptions (`prepaidUnits.suspended`).
    pub suspended: i64,
    /// The earliest renewal or end of an `Enabled` or `Warning` subscription.
    pub next_expiry: Option<DateTime<Utc>>,
    /// How many subscriptions back the SKU.
    pub subscriptions: usize,
    /// Licences of `Enabled` subscriptions sold by this partner.
    pub partner_licenses: i64,
    /// Whether any subscription of the SKU is a trial.
    pub trial: bool,
}

/// The licence figures per SKU, in the order Graph listed the SKUs (see the module docs).
pub fn sku_reports(skus: &[SubscribedSku], subscriptions: &[SubscriptionRow]) -> Vec<SkuReport> {
    skus.iter()
        .map(|sku| {
            let own: Vec<_> = subscriptions
                .iter()
                .filter(|s| s.subscription.sku_id.as_deref() == Some(sku.sku_id.as_str()))
                .collect();
            let active = |s: &&&SubscriptionRow| {
                matches!(
                    s.subscription.status.as_deref(),
                    Some("Enabled" | "Warning")
                )
            };
            let purchased = i64::from(sku.prepaid_units.enabled);
            let assigned = i64::from(sku.consumed_units);
            SkuReport {
                sku_id: sku.sku_id.clone(),
                sku_part_number: sku.sku_part_number.clone().unwrap_or_default(),
                purchased,
                assigned,
                available: purchased - assigned,
                warning: i64::from(sku.prepaid_units.warning),
                suspended: i64::from(sku.prepaid_units.suspended),
                next_expiry: own
                    .iter()
                    .filter(active)
                    .filter_map(|s| s.subscription.next_lifecycle_date_time)
                    .min(),
                subscriptions: own.len(),
                partner_licenses: own
                    .iter()
                    .filter(|s| s.subscription.status.as_deref() == Some("Enabled"))
                    .filter(|s| s.sold_by_partner == Some(true))
                    .map(|s| i64::from(s.subscription.total_licenses))
                    .sum(),
                trial: own.iter().any(|s| s.subscription.is_trial == Some(true)),
            }
        })
        .collect()
}

impl From<&SkuReport> for SkuSummary {
    fn from(r: &SkuReport) -> Self {
        SkuSummary {
            sku_part_number: r.sku_part_number.clone(),
            purchased: r.purchased,
            assigned: r.assigned,
            available: r.available,
            next_expiry: r.next_expiry.map(to_time),
        }
    }
}

/// A chrono time as a Kubernetes `Time` (whole seconds).
pub fn to_time(t: DateTime<Utc>) -> Time {
    Time(
        k8s_openapi::jiff::Timestamp::from_second(t.timestamp())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

/// Rows an import received and handed to the sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowCounts {
    /// Users listed (full) or changed (delta).
    pub users: u64,
    /// Users removed (delta `@removed`).
    pub removed: u64,
    /// Subscribed SKUs.
    pub skus: u64,
    /// Subscriptions.
    pub subscriptions: u64,
}

/// The outcome of a successful import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// The run's id (sortable by start time).
    pub run_id: String,
    /// The customer tenant.
    pub tenant_id: String,
    /// Full pass or delta round.
    pub kind: RunKind,
    /// Why it was a full pass.
    pub full_reason: Option<FullReason>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When the sink switched to it.
    pub finished_at: DateTime<Utc>,
    /// How long it took.
    #[serde(with = "humantime_serde_compat")]
    pub duration: Duration,
    /// User counts of the tenant after the import.
    pub users: UserCounts,
    /// Licences per SKU.
    pub skus: Vec<SkuReport>,
    /// Rows received per table.
    pub rows: RowCounts,
}

impl ImportReport {
    /// The users part of `TenantSync` status.
    pub fn user_summary(&self) -> UserSummary {
        self.users.into()
    }

    /// The SKUs part of `TenantSync` status.
    pub fn sku_summaries(&self) -> Vec<SkuSummary> {
        self.skus.iter().map(SkuSummary::from).collect()
    }

    /// The duration as `TenantSync` status writes it, e.g. `12.4s`.
    pub fn duration_text(&self) -> String {
        format!("{:.1}s", self.duration.as_secs_f64())
    }
}

/// Serialises a duration as seconds with fractions (e.g. `12.345`).
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64(secs.max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microsoft::models::directory::{CompanySubscription, LicenseUnitsDetail};

    fn sku(id: &str, enabled: i32, warning: i32, consumed: i32) -> SubscribedSku {
        SubscribedSku {
            id: format!("t_{id}"),
            account_id: None,
            account_name: None,
            applies_to: Some("User".into()),
            capability_status: Some("Enabled".into()),
            consumed_units: consumed,
            prepaid_units: LicenseUnitsDetail {
                enabled,
                warning,
                ..Default::default()
            },
            service_plans: vec![],
            sku_id: id.into(),
            sku_part_number: Some(id.to_uppercase()),
            subscription_ids: vec![],
        }
    }

    fn sub(
        sku: &str,
        total: i32,
        status: &str,
        days: i64,
        ours: bool,
        trial: bool,
    ) -> SubscriptionRow {
        SubscriptionRow {
            subscription: CompanySubscription {
                id: format!("{sku}-{total}"),
                sku_id: Some(sku.into()),
                status: Some(status.into()),
                total_licenses: total,
                is_trial: Some(trial),
                next_lifecycle_date_time: DateTime::from_timestamp(days * 86_400, 0),
                ..Default::default()
            },
            sold_by_partner: Some(ours),
        }
    }

    #[test]
    fn sku_figures_combine_skus_and_subscriptions() {
        let skus = [
            sku("e3", 25, 0, 30),
            sku("p1", 10, 5, 3),
            sku("none", 0, 0, 0),
        ];
        let subs = [
            sub("e3", 20, "Enabled", 300, true, false),
            sub("e3", 5, "Enabled", 20, false, false),
            sub("e3", 7, "Deleted", 2, true, false),
            sub("p1", 10, "Enabled", 90, true, true),
            sub("p1", 5, "Warning", 15, true, false),
        ];
        let r = sku_reports(&skus, &subs);
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].purchased, r[0].assigned, r[0].available),
            (25, 30, -5)
        );
        assert_eq!(
            r[0].next_expiry,
            DateTime::from_timestamp(20 * 86_400, 0),
            "deleted ones do not count"
        );
        assert_eq!(
            (r[0].subscriptions, r[0].partner_licenses, r[0].trial),
            (3, 20, false)
        );
        assert_eq!(
            (r[1].warning, r[1].partner_licenses, r[1].trial),
            (5, 10, true)
        );
        assert_eq!(
            r[1].next_expiry,
            DateTime::from_timestamp(15 * 86_400, 0),
            "warning ones count"
        );
        assert_eq!((r[2].subscriptions, r[2].next_expiry), (0, None));
        let status = SkuSummary::from(&r[0]);
        assert_eq!(status.sku_part_number, "E3");
        assert!(status.next_expiry.is_some());
    }

    #[test]
    fn user_counts_follow_the_definitions() {
        let mut c = UserCounts::default();
        c.add_facts(false, Some(true), true, Some("Member"));
        c.add_facts(false, Some(false), true, Some("Member"));
        c.add_facts(false, Some(false), false, Some("Member"));
        c.add_facts(false, None, false, Some("Guest"));
        c.add_facts(true, Some(true), true, Some("Member"));
        assert_eq!(
            c,
            UserCounts {
                total: 4,
                enabled: 1,
                licensed: 2,
                disabled_licensed: 1,
                guests: 1
            }
        );
    }
}

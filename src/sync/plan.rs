//! What one import does: its options and the pure choice between a full pass and a delta round.
//!
//! Contract: [`plan_run`] decides from the options, the state the sink kept from the last good
//! run, and `now` — no I/O, no clock. `Full` mode always lists `/users`. `Delta` mode reads
//! `/users/delta` from the stored deltaLink, and makes a full pass (a whole delta round, which
//! also yields a new deltaLink) when there is no usable state: the first run, a last run made in
//! `Full` mode, a changed field list (a deltaLink keeps the `$select` it was made with), or a
//! last full pass `fullSyncEvery` or longer ago. A deltaLink Microsoft no longer accepts turns
//! into a full pass at run time (see the engine).

use super::sink::state::SyncState;
use crate::api::UserField;
use crate::api::tenant_sync::{ALWAYS_IMPORTED, DEFAULT_USER_FIELDS, SyncMode, TenantSyncSpec};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The default `fullSyncEvery`: the lifetime of a Graph delta token.
pub const DEFAULT_FULL_SYNC_EVERY: Duration = Duration::days(7);
/// Users per `/users` page (Graph's maximum).
pub const PAGE_SIZE: u32 = 999;
/// Users handed to the sink at once; at most two such batches wait between Graph and the sink.
pub const BATCH_ROWS: usize = 1_000;

/// What an import reads and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// `Delta` (with periodic full passes) or `Full`.
    pub mode: SyncMode,
    /// User properties besides the always-imported ones; empty means [`DEFAULT_USER_FIELDS`].
    pub user_fields: Vec<UserField>,
    /// In `Delta` mode, the longest time between full passes.
    pub full_sync_every: Duration,
    /// The partner's tenant id: subscriptions it owns are marked as sold by this partner.
    pub partner_tenant_id: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            mode: SyncMode::Delta,
            user_fields: Vec::new(),
            full_sync_every: DEFAULT_FULL_SYNC_EVERY,
            partner_tenant_id: None,
        }
    }
}

impl ImportOptions {
    /// The options a TenantSync spec asks for (an unparsable `fullSyncEvery`, which the API
    /// server refuses anyway, falls back to 7 days).
    pub fn from_spec(spec: &TenantSyncSpec, partner_tenant_id: Option<String>) -> Self {
        let full_sync_every = spec
            .full_sync_every
            .as_ref()
            .and_then(|d| d.parse().ok())
            .map(crate::api::IsoDays::as_chrono)
            .unwrap_or(DEFAULT_FULL_SYNC_EVERY);
        ImportOptions {
            mode: spec.mode,
            user_fields: spec.user_fields.clone(),
            full_sync_every,
            partner_tenant_id,
        }
    }

    /// The Graph `$select`: `id`, the always-imported fields, then the chosen ones, each once.
    pub fn select(&self) -> Vec<String> {
        let chosen = if self.user_fields.is_empty() {
            DEFAULT_USER_FIELDS
        } else {
            &self.user_fields[..]
        };
        let mut select = vec!["id".to_string()];
        for field in ALWAYS_IMPORTED.iter().chain(chosen) {
            let name = field.graph_name().to_string();
            if !select.contains(&name) {
                select.push(name);
            }
        }
        select
    }

    /// The field list as the sink records it, to notice a change: the sorted `$select`.
    pub fn fields_fingerprint(&self) -> String {
        let mut select = self.select();
        select.sort();
        select.join(",")
    }
}

/// Whether a run reads everything or only changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunKind {
    /// Every user: users no longer listed are marked deleted.
    Full,
    /// Only changes since the last run.
    Delta,
}

impl RunKind {
    /// `full` or `delta`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Full => "full",
            RunKind::Delta => "delta",
        }
    }
}

/// Why a run is a full pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FullReason {
    /// `mode: Full`.
    ModeFull,
    /// The sink has no state for this tenant.
    FirstRun,
    /// The last run was made in `Full` mode, so there is no deltaLink.
    NoDeltaLink,
    /// `userFields` changed since the last run.
    FieldsChanged,
    /// The last full pass is `fullSyncEvery` or longer ago.
    FullSyncDue,
    /// Microsoft no longer accepted the stored deltaLink.
    DeltaExpired,
}

/// Which listing a full pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `GET /users` (999 a page); no deltaLink results.
    Users,
    /// A whole `/users/delta` round, which ends with a new deltaLink.
    Delta,
}

/// The plan of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunPlan {
    /// Read every user.
    Full {
        /// Through which endpoint.
        listing: Listing,
        /// Why.
        reason: FullReason,
    },
    /// Read the changes since this deltaLink.
    Incremental {
        /// The stored deltaLink.
        delta_link: String,
    },
}

impl RunPlan {
    /// Full or delta.
    pub fn kind(&self) -> RunKind {
        match self {
            RunPlan::Full { .. } => RunKind::Full,
            RunPlan::Incremental { .. } => RunKind::Delta,
        }
    }
}

/// Decides the next run (see the module docs).
pub fn plan_run(options: &ImportOptions, state: Option<&SyncState>, now: DateTime<Utc>) -> RunPlan {
    let full = |reason| RunPlan::Full {
        listing: Listing::Delta,
        reason,
    };
    if options.mode == SyncMode::Full {
        return RunPlan::Full {
            listing: Listing::Users,
            reason: FullReason::ModeFull,
        };
    }
    let Some(state) = state else {
        return full(FullReason::FirstRun);
    };
    let Some(link) = state.delta_link.as_ref() else {
        return full(FullReason::NoDeltaLink);
    };
    if state.fields != options.fields_fingerprint() {
        return full(FullReason::FieldsChanged);
    }
    if now - state.last_full_sync >= options.full_sync_every {
        return full(FullReason::FullSyncDue);
    }
    RunPlan::Incremental {
        delta_link: link.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + day * 86_400, 0).unwrap()
    }

    fn state(delta_link: Option<&str>, fields: &str, last_full_day: i64) -> SyncState {
        SyncState {
            run_id: "r1".into(),
            delta_link: delta_link.map(str::to_string),
            fields: fields.into(),
            last_full_sync: at(last_full_day),
        }
    }

    #[test]
    fn the_plan_follows_mode_state_fields_and_age() {
        let delta = ImportOptions::default();
        let fp = delta.fields_fingerprint();
        let full_mode = ImportOptions {
            mode: SyncMode::Full,
            ..ImportOptions::default()
        };
        let incremental = RunPlan::Incremental {
            delta_link: "L".into(),
        };
        let full = |reason| RunPlan::Full {
            listing: Listing::Delta,
            reason,
        };
        let table: Vec<(&ImportOptions, Option<SyncState>, i64, RunPlan)> = vec![
            (
                &full_mode,
                Some(state(Some("L"), &fp, 0)),
                1,
                RunPlan::Full {
                    listing: Listing::Users,
                    reason: FullReason::ModeFull,
                },
            ),
            (&delta, None, 0, full(FullReason::FirstRun)),
            (
                &delta,
                Some(state(None, &fp, 0)),
                1,
                full(FullReason::NoDeltaLink),
            ),
            (
                &delta,
                Some(state(Some("L"), "id", 0)),
                1,
                full(FullReason::FieldsChanged),
            ),
            (
                &delta,
                Some(state(Some("L"), &fp, 0)),
                6,
                incremental.clone(),
            ),
            (
                &delta,
                Some(state(Some("L"), &fp, 0)),
                7,
                full(FullReason::FullSyncDue),
            ),
            (
                &delta,
                Some(state(Some("L"), &fp, 0)),
                30,
                full(FullReason::FullSyncDue),
            ),
        ];
        for (i, (options, st, day, want)) in table.into_iter().enumerate() {
            assert_eq!(plan_run(options, st.as_ref(), at(day)), want, "row {i}");
        }
        let daily = ImportOptions {
            full_sync_every: Duration::days(1),
            ..ImportOptions::default()
        };
        assert_eq!(
            plan_run(&daily, Some(&state(Some("L"), &fp, 0)), at(1)),
            full(FullReason::FullSyncDue)
        );
    }

    #[test]
    fn select_starts_with_the_always_imported_fields_and_has_no_duplicates() {
        let default = ImportOptions::default().select();
        assert_eq!(
            &default[..5],
            [
                "id",
                "accountEnabled",
                "userType",
                "assignedLicenses",
                "licenseAssignmentStates"
            ]
        );
        assert!(default.contains(&"onPremisesExtensionAttributes".to_string()));
        assert_eq!(default.len(), 5 + DEFAULT_USER_FIELDS.len());
        let chosen = ImportOptions {
            user_fields: vec![UserField::Department, UserField::AccountEnabled],
            ..ImportOptions::default()
        };
        assert_eq!(chosen.select().len(), 6);
        assert_ne!(
            chosen.fields_fingerprint(),
            ImportOptions::default().fields_fingerprint()
        );
    }

    #[test]
    fn options_come_from_the_spec() {
        let spec: TenantSyncSpec = serde_json::from_value(serde_json::json!({
            "customer": {"tenantId": "11111111-2222-3333-4444-555555555555"},
            "appConsentRef": {"name": "c"},
            "mode": "Full", "fullSyncEvery": "P3D", "userFields": ["department"],
            "sink": {"file": {"path": "/x"}},
        }))
        .unwrap();
        let o = ImportOptions::from_spec(&spec, Some("p".into()));
        assert_eq!(o.mode, SyncMode::Full);
        assert_eq!(o.full_sync_every, Duration::days(3));
        assert_eq!(o.user_fields, vec![UserField::Department]);
        assert_eq!(o.partner_tenant_id.as_deref(), Some("p"));
    }

    #[test]
    fn the_postgres_url_key_defaults_to_url() {
        let mut r = crate::api::tenant_sync::ConnectionSecretRef {
            name: "db".into(),
            key: None,
            ca_key: None,
        };
        assert_eq!(r.url_key(), "url");
        r.key = Some("dsn".into());
        assert_eq!(r.url_key(), "dsn");
    }
}

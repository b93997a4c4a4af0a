//! The TenantSync metrics (registered by `crate::metrics::Metrics` under the `gdap_` prefix):
//!
//! - `gdap_sync_runs_total{result}`: imports by result (`success` or the failure's condition
//!   reason, e.g. `AccessDenied`, `TransientError`, `SinkFailed`);
//! - `gdap_sync_run_duration_seconds`: how long imports take;
//! - `gdap_sync_rows_total{table}`: rows imports received (`users`, `removed`, `skus`,
//!   `subscriptions`);
//! - `gdap_sync_runs_running`, `gdap_sync_runs_waiting`: imports running now, and waiting for a
//!   slot of `--sync-concurrency`;
//! - per object (`namespace`, `name`, `customer`), from its status, removed when the object goes
//!   away: `gdap_sync_last_success_timestamp_seconds` (not published while suspended, so a paused
//!   import does not page anybody), `gdap_sync_disabled_licensed_users`, and
//!   `gdap_sync_licenses_available{…, sku}` (paid licences nobody holds, per SKU part number).

use crate::api::tenant_sync::TenantSyncStatus;
use crate::controllers::failure::Failure;
use crate::metrics::ObjectLabels;
use crate::sync::ImportReport;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Labels of import results.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or the failure's condition reason.
    pub result: String,
}

/// Labels of row counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    /// `users`, `removed`, `skus` or `subscriptions`.
    pub table: String,
}

/// Labels of one object's SKU.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkuLabels {
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// Customer tenant id.
    pub customer: String,
    /// The SKU part number, e.g. `SPE_E3`.
    pub sku: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The TenantSync metrics (see the module docs).
pub struct SyncMetrics {
    runs: Family<ResultLabels, Counter>,
    duration: Histogram,
    rows: Family<TableLabels, Counter>,
    /// Imports running now.
    pub runs_running: Gauge,
    /// Imports waiting for a slot.
    pub runs_waiting: Gauge,
    last_success: Family<ObjectLabels, FloatGauge>,
    disabled_licensed: Family<ObjectLabels, Gauge>,
    available: Family<SkuLabels, Gauge>,
    skus: Mutex<HashMap<ObjectLabels, Vec<String>>>,
}

impl SyncMetrics {
    /// Creates the metrics and registers them in `registry` (already prefixed `gdap`).
    pub fn register(registry: &mut Registry) -> SyncMetrics {
        let metrics = SyncMetrics {
            runs: Family::default(),
            duration: Histogram::new([
                0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
            ]),
            rows: Family::default(),
            runs_running: Gauge::default(),
            runs_waiting: Gauge::default(),
            last_success: Family::default(),
            disabled_licensed: Family::default(),
            available: Family::default(),
            skus: Mutex::new(HashMap::new()),
        };
        registry.register(
            "sync_runs",
            "Tenant imports by result",
            metrics.runs.clone(),
        );
        registry.register(
            "sync_run_duration_seconds",
            "Tenant import duration",
            metrics.duration.clone(),
        );
        registry.register(
            "sync_rows",
            "Rows tenant imports received, by table",
            metrics.rows.clone(),
        );
        registry.register(
            "sync_runs_running",
            "Tenant imports running now",
            metrics.runs_running.clone(),
        );
        registry.register(
            "sync_runs_waiting",
            "Tenant imports waiting for a slot of --sync-concurrency",
            metrics.runs_waiting.clone(),
        );
        registry.register(
            "sync_last_success_timestamp_seconds",
            "Unix time of the last successful import",
            metrics.last_success.clone(),
        );
        registry.register(
            "sync_disabled_licensed_users",
            "Disabled users that still hold a licence",
            metrics.disabled_licensed.clone(),
        );
        registry.register(
            "sync_licenses_available",
            "Paid licences nobody holds, per SKU",
            metrics.available.clone(),
        );
        metrics
    }

    /// Counts one import: its result, duration and rows.
    pub fn record_run(&self, outcome: &Result<ImportReport, Failure>, duration: Duration) {
        let result = match outcome {
            Ok(_) => "success",
            Err(f) => f.reason,
        };
        self.runs
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
        self.duration.observe(duration.as_secs_f64());
        if let Ok(report) = outcome {
            let rows = report.rows;
            for (table, n) in [
                ("users", rows.users),
                ("removed", rows.removed),
                ("skus", rows.skus),
                ("subscriptions", rows.subscriptions),
            ] {
                self.rows
                    .get_or_create(&TableLabels {
                        table: table.into(),
                    })
                    .inc_by(n);
            }
        }
    }

    /// Publishes one object's figures from its status; `None` removes them (object deleted).
    pub fn object(
        &self,
        object: &ObjectLabels,
        status: Option<&TenantSyncStatus>,
        suspended: bool,
    ) {
        let last_success = status.and_then(|s| s.last_successful_sync_time.as_ref());
        match last_success.filter(|_| !suspended) {
            Some(t) => {
                self.last_success
                    .get_or_create(object)
                    .set(t.0.as_second() as f64);
            }
            None => {
                self.last_success.remove(object);
            }
        }
        match status.and_then(|s| s.users.as_ref()) {
            Some(users) => {
                self.disabled_licensed
                    .get_or_create(object)
                    .set(users.disabled_licensed);
            }
            None => {
                self.disabled_licensed.remove(object);
            }
        }
        let skus: Vec<(String, i64)> = status
            .map(|s| {
                s.skus
                    .iter()
                    .map(|k| (k.sku_part_number.clone(), k.available))
                    .collect()
            })
            .unwrap_or_default();
        let mut known = self.skus.lock().expect("metrics lock");
        let sku_labels = |sku: &str| SkuLabels {
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            customer: object.customer.clone(),
            sku: sku.to_string(),
        };
        for old in known.remove(object).unwrap_or_default() {
            if !skus.iter().any(|(sku, _)| *sku == old) {
                self.available.remove(&sku_labels(&old));
            }
        }
        for (sku, available) in &skus {
            self.available
                .get_or_create(&sku_labels(sku))
                .set(*available);
        }
        if !skus.is_empty() {
            known.insert(object.clone(), skus.into_iter().map(|(s, _)| s).collect());
        }
    }
}

//! Prometheus metrics of the operator, served on `/metrics` (see `server`).
//!
//! Names are prefixed `gdap_`. Per-object gauges are removed when the object goes away, so a
//! deleted relationship does not linger in dashboards.

pub mod labels;
pub mod relationships;

pub use labels::{
    CallLabels, FleetLabels, KindLabels, ObjectLabels, ReconcileLabels, SecretLabels,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A gauge raised by one while this value lives: lowered when it is dropped, also when the task
/// holding it is aborted or cancelled.
pub struct Held(Gauge);

impl Held {
    /// Raises `gauge` until the value is dropped.
    pub fn new(gauge: &Gauge) -> Held {
        gauge.inc();
        Held(gauge.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The states of `gdap_fleet_customers`.
pub const FLEET_STATES: [&str; 9] = [
    "active",
    "awaiting_approval",
    "failed",
    "waiting",
    "excluded",
    "filtered_out",
    "managed_elsewhere",
    "access_refused",
    "pruning",
];

/// All operator metrics and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by kind and result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile durations by kind.
    pub reconcile_seconds: Family<KindLabels, Histogram>,
    /// Reconciles waiting for a slot of `--reconcile-concurrency`, by kind.
    pub reconciles_waiting: Family<KindLabels, Gauge>,
    /// The GdapRelationship caches the relationship metrics are read from at each scrape
    /// (`relationships`).
    pub relationship_caches: relationships::RelationshipCaches,
    /// Calls to Microsoft by service, method and status.
    pub microsoft_calls: Family<CallLabels, Counter>,
    /// 1 while a credentials Secret's credentials work, 0 when Entra refuses them.
    credentials_valid: Family<SecretLabels, Gauge>,
    /// A fleet's customers by state.
    fleet_customers: Family<FleetLabels, Gauge>,
    /// 1 while this process leads (runs the controllers), 0 while it stands by.
    pub leader: Gauge,
    /// 1 while an application consent is verified in place, 0 otherwise.
    consent_healthy: Family<ObjectLabels, Gauge>,
    /// 1 while an application consent reads as revoked by the customer, 0 otherwise.
    consent_revoked: Family<ObjectLabels, Gauge>,
    /// Permissions a deleted application consent leaves in the customer tenant that the
    /// operator cannot remove.
    consent_permissions_left: Family<ObjectLabels, Gauge>,
    /// The TenantSync controller's metrics (imports, rows, freshness and licences per object).
    pub sync: crate::controllers::tenant_sync::metrics::SyncMetrics,
    /// The Partner Center webhook receiver's counters (`crate::webhook::metrics`).
    pub webhooks: crate::webhook::metrics::WebhookMetrics,
}

/// An application consent's health, as its three gauges show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsentHealth {
    /// The consent is verified in place (`gdap_consent_healthy`).
    pub healthy: bool,
    /// The customer revoked (part of) it (`gdap_consent_revoked`).
    pub revoked: bool,
    /// Permissions its deletion leaves behind (`gdap_consent_permissions_left`).
    pub permissions_left: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        Self::with_extra(|_| {})
    }

    /// Creates every metric and lets `extra` register more (e.g. the token provider's).
    pub fn with_extra(extra: impl FnOnce(&mut Registry)) -> Self {
        let mut root = Registry::default();
        extra(&mut root);
        let registry = root.sub_registry_with_prefix("gdap");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_seconds = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
        });
        let reconciles_waiting = Family::<KindLabels, Gauge>::default();
        registry.register(
            "reconciles_waiting",
            "Reconciles waiting for a slot of --reconcile-concurrency, by kind",
            reconciles_waiting.clone(),
        );
        let relationship_caches = relationships::RelationshipCaches::default();
        registry.register_collector(Box::new(relationships::RelationshipCollector::new(
            relationship_caches.clone(),
        )));
        let microsoft_calls = Family::<CallLabels, Counter>::default();
        let credentials_valid = Family::<SecretLabels, Gauge>::default();
        registry.register(
            "credentials_valid",
            "1 while the credentials Secret's credentials work, 0 when Entra refuses them or a key is missing",
            credentials_valid.clone(),
        );
        let fleet_customers = Family::<FleetLabels, Gauge>::default();
        registry.register(
            "fleet_customers",
            "A GdapFleet's customers by state (its status counts)",
            fleet_customers.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process leads and runs the controllers, 0 while it stands by",
            leader.clone(),
        );
        let consent_healthy = Family::<ObjectLabels, Gauge>::default();
        let consent_revoked = Family::<ObjectLabels, Gauge>::default();
        let consent_permissions_left = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "consent_revoked",
            "1 while the customer revoked (part of) a verified application consent (Consented=False, reason Revoked), else 0",
            consent_revoked.clone(),
        );
        registry.register(
            "consent_permissions_left",
            "Permissions (delegated grants per resource and application permissions; 1 when unreadable) a deleted AppConsent leaves in the customer tenant because the partner user can no longer remove them (reason PermissionsRemain)",
            consent_permissions_left.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            reconcile_seconds.clone(),
        );
        registry.register(
            "microsoft_calls",
            "Calls to Microsoft by service, method and status",
            microsoft_calls.clone(),
        );
        registry.register(
            "consent_healthy",
            "1 while the application consent is verified in the customer tenant, 0 when it is not (revoked, incomplete, or not consented yet)",
            consent_healthy.clone(),
        );
        let sync = crate::controllers::tenant_sync::metrics::SyncMetrics::register(registry);
        let webhooks = crate::webhook::metrics::WebhookMetrics::register(registry);
        Metrics {
            webhooks,
            registry: root,
            credentials_valid,
            fleet_customers,
            reconciles,
            reconcile_seconds,
            reconciles_waiting,
            relationship_caches,
            microsoft_calls,
            leader,
            consent_healthy,
            consent_revoked,
            consent_permissions_left,
            sync,
        }
    }

    /// Counts one reconcile and its duration.
    pub fn reconciled(&self, kind: &str, result: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.into(),
                result: result.into(),
            })
            .inc();
        self.reconcile_seconds
            .get_or_create(&KindLabels { kind: kind.into() })
            .observe(seconds);
    }

    /// Records an application consent's health; `None` removes its series (object released).
    pub fn consent(&self, object: &ObjectLabels, health: Option<ConsentHealth>) {
        match health {
            Some(h) => {
                let left = i64::try_from(h.permissions_left).unwrap_or(i64::MAX);
                self.consent_healthy
                    .get_or_create(object)
                    .set(i64::from(h.healthy));
                self.consent_revoked
                    .get_or_create(object)
                    .set(i64::from(h.revoked));
                self.consent_permissions_left
                    .get_or_create(object)
                    .set(left);
            }
            None => {
                self.consent_healthy.remove(object);
                self.consent_revoked.remove(object);
                self.consent_permissions_left.remove(object);
            }
        }
    }

    /// Records a fleet's customers by state (`counts`: state and number); `None` removes its
    /// series (the fleet released).
    pub fn fleet_customers(&self, namespace: &str, name: &str, counts: Option<&[(&str, u32)]>) {
        let labels = |state: &str| FleetLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
            state: state.to_string(),
        };
        match counts {
            Some(counts) => {
                for (state, n) in counts {
                    self.fleet_customers
                        .get_or_create(&labels(state))
                        .set(i64::from(*n));
                }
            }
            None => {
                for state in FLEET_STATES {
                    self.fleet_customers.remove(&labels(state));
                }
            }
        }
    }

    /// Records whether Secret `namespace/secret` worked; `None` removes the series (the Secret is
    /// no longer in use).
    pub fn credentials_valid(&self, namespace: &str, secret: &str, valid: Option<bool>) {
        let labels = SecretLabels {
            namespace: namespace.to_string(),
            secret: secret.to_string(),
        };
        match valid {
            Some(v) => {
                self.credentials_valid
                    .get_or_create(&labels)
                    .set(i64::from(v));
            }
            None => {
                self.credentials_valid.remove(&labels);
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("encoding to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str) -> ObjectLabels {
        ObjectLabels {
            namespace: "ns".into(),
            name: name.into(),
            customer: "c".into(),
        }
    }

    #[test]
    fn consent_health_is_a_gauge_per_object_removed_with_it() {
        let metrics = Metrics::new();
        let healthy = ConsentHealth {
            healthy: true,
            ..Default::default()
        };
        let revoked = ConsentHealth {
            revoked: true,
            ..Default::default()
        };
        let left = ConsentHealth {
            permissions_left: 3,
            ..Default::default()
        };
        metrics.consent(&object("a"), Some(healthy));
        metrics.consent(&object("b"), Some(revoked));
        metrics.consent(&object("d"), Some(left));
        let text = metrics.encode();
        for line in [
            "gdap_consent_healthy{namespace=\"ns\",name=\"a\",customer=\"c\"} 1",
            "gdap_consent_revoked{namespace=\"ns\",name=\"a\",customer=\"c\"} 0",
            "gdap_consent_healthy{namespace=\"ns\",name=\"b\",customer=\"c\"} 0",
            "gdap_consent_revoked{namespace=\"ns\",name=\"b\",customer=\"c\"} 1",
            "gdap_consent_permissions_left{namespace=\"ns\",name=\"d\",customer=\"c\"} 3",
            "gdap_consent_permissions_left{namespace=\"ns\",name=\"a\",customer=\"c\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing in {text}");
        }
        metrics.consent(&object("a"), None);
        assert!(!metrics.encode().contains("name=\"a\""));
    }

    #[test]
    fn credentials_validity_is_a_gauge_per_secret() {
        let metrics = Metrics::new();
        metrics.credentials_valid("ns", "creds", Some(false));
        let text = metrics.encode();
        assert!(
            text.contains("gdap_credentials_valid{namespace=\"ns\",secret=\"creds\"} 0"),
            "{text}"
        );
        metrics.credentials_valid("ns", "creds", None);
        assert!(!metrics.encode().contains("secret=\"creds\""));
    }

    #[test]
    fn reconciles_are_counted_by_result() {
        let metrics = Metrics::new();
        metrics.reconciled("GdapRelationship", "success", 0.2);
        metrics.reconciled("GdapRelationship", "success", 0.3);
        let text = metrics.encode();
        assert!(
            text.contains("gdap_reconciles_total{kind=\"GdapRelationship\",result=\"success\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("gdap_reconcile_duration_seconds_count{kind=\"GdapRelationship\"} 2"),
            "{text}"
        );
    }
}

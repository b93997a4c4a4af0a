//! The webhook receiver's metrics (registered by `crate::metrics::Metrics` under `gdap_`):
//!
//! - `gdap_webhook_events_received_total`: every POST to the receiver's path;
//! - `gdap_webhook_events_verified_total{event}`: events whose signature, certificate and age
//!   passed, by Partner Center's event name (each counted once, duplicates are not);
//! - `gdap_webhook_events_rejected_total{reason}`: refused events, by [`Rejection::reason`]
//!   (`oversized`, `unsigned`, `malformed`, `certificate_url`, `certificate_unavailable`,
//!   `certificate_untrusted`, `signature`, `stale`, `not_leading`);
//! - `gdap_webhook_events_deduplicated_total`: verified events seen before (a redelivery or a
//!   replay), which trigger nothing;
//! - `gdap_webhook_reconciles_triggered_total{kind}`: reconciles asked for by events.
//!
//! [`Rejection::reason`]: super::receiver::Rejection::reason

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels naming a Partner Center event.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// Partner Center's `EventName` (e.g. `granular-admin-relationship-approved`).
    pub event: String,
}

/// Labels naming why an event was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The refusal's reason.
    pub reason: String,
}

/// Labels naming a custom resource kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggeredLabels {
    /// `GdapRelationship`, `AppConsent` or `GdapFleet`.
    pub kind: String,
}

/// The receiver's counters.
#[derive(Clone, Default)]
pub struct WebhookMetrics {
    /// Every POST to the receiver.
    pub received: Counter,
    /// Verified events by name.
    pub verified: Family<EventLabels, Counter>,
    /// Refused events by reason.
    pub rejected: Family<ReasonLabels, Counter>,
    /// Verified events seen before.
    pub deduplicated: Counter,
    /// Reconciles triggered, by kind.
    pub triggered: Family<TriggeredLabels, Counter>,
}

impl WebhookMetrics {
    /// Registers the counters in `registry` (already prefixed `gdap`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = WebhookMetrics::default();
        registry.register(
            "webhook_events_received",
            "Partner Center webhook deliveries received (every POST to the receiver's path)",
            metrics.received.clone(),
        );
        registry.register(
            "webhook_events_verified",
            "Partner Center webhook events verified (signature, certificate, age), by event name",
            metrics.verified.clone(),
        );
        registry.register(
            "webhook_events_rejected",
            "Partner Center webhook deliveries refused, by reason",
            metrics.rejected.clone(),
        );
        registry.register(
            "webhook_events_deduplicated",
            "Verified Partner Center webhook events seen before (redelivered or replayed); they trigger nothing",
            metrics.deduplicated.clone(),
        );
        registry.register(
            "webhook_reconciles_triggered",
            "Reconciles asked for by Partner Center webhook events, by kind",
            metrics.triggered.clone(),
        );
        metrics
    }

    /// Counts a refusal.
    pub fn reject(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }
}

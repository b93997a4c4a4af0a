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

use super::event::{GDAP_EVENTS, TEST_EVENT};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Every reason a delivery is refused for (each series exists from the start, at 0).
pub const REJECTION_REASONS: [&str; 9] = [
    "oversized",
    "unsigned",
    "malformed",
    "certificate_url",
    "certificate_unavailable",
    "certificate_untrusted",
    "signature",
    "stale",
    "not_leading",
];

/// The kinds events ask to reconcile.
pub const TRIGGERED_KINDS: [&str; 3] = ["GdapRelationship", "AppConsent", "GdapFleet"];

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
        metrics.start_known_series_at_zero();
        metrics
    }

    /// Every known label value starts at 0, so dashboards and `rate()` see the series before
    /// the first event.
    fn start_known_series_at_zero(&self) {
        for event in GDAP_EVENTS.iter().chain([&TEST_EVENT]) {
            let _ = self.verified.get_or_create(&EventLabels {
                event: event.to_string(),
            });
        }
        for reason in REJECTION_REASONS {
            let _ = self.rejected.get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            });
        }
        for kind in TRIGGERED_KINDS {
            let _ = self.triggered.get_or_create(&TriggeredLabels {
                kind: kind.to_string(),
            });
        }
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

//! The GdapRelationship metrics, read from the controllers' watch caches when Prometheus scrapes
//! (the way kube-state-metrics reads objects), not kept per object between scrapes: the count by
//! state, and per object the seconds until it ends, whether its successor waits for approval and
//! whether Microsoft refuses the partner user's access.
//!
//! Kept per object, these series cost every relationship about 750 bytes in the operator (three
//! label sets of three strings, three gauges, and a map of states), and recounting the states on
//! every report cost each reconcile a pass over all relationships. Read from the caches, a
//! scrape costs one pass over the cached objects and a relationship costs nothing more than its
//! cache entry; the expiry is as of the scrape, not of the last reconcile, and an object is gone
//! from the metrics as soon as it is gone from the cache.

use super::ObjectLabels;
use crate::api::GdapRelationship;
use crate::api::conditions::types;
use crate::api::gdap_relationship::FINALIZER;
use chrono::{DateTime, Utc};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The state counted for a relationship whose status has no state yet.
pub const UNKNOWN_STATE: &str = "unknown";

/// The watch caches of GdapRelationships, one per watched scope; the collector reads them.
#[derive(Debug, Clone, Default)]
pub struct RelationshipCaches(Arc<Mutex<Vec<Store<GdapRelationship>>>>);

impl RelationshipCaches {
    /// Adds a scope's cache.
    pub fn add(&self, store: Store<GdapRelationship>) {
        self.lock().push(store);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Store<GdapRelationship>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every cached relationship now, but those released (being deleted, the operator's
    /// finalizer already removed).
    fn objects(&self) -> Vec<Arc<GdapRelationship>> {
        self.lock()
            .iter()
            .flat_map(|store| store.state())
            .filter(|object| !released(object))
            .collect()
    }
}

fn released(object: &GdapRelationship) -> bool {
    object.meta().deletion_timestamp.is_some()
        && !object.finalizers().iter().any(|f| f == FINALIZER)
}

/// What the metrics show of one relationship.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipFigures {
    /// Its labels.
    pub labels: ObjectLabels,
    /// Microsoft's state, or [`UNKNOWN_STATE`].
    pub state: String,
    /// Seconds from `now` until it ends, when the end is known.
    pub expiry_seconds: Option<f64>,
    /// Its successor waits for the customer's approval.
    pub successor_pending: bool,
    /// Microsoft refuses the partner user's delegated access (`AccessVerified=False`).
    pub access_refused: bool,
}

/// The figures of `object` at `now`.
pub fn figures(object: &GdapRelationship, now: DateTime<Utc>) -> RelationshipFigures {
    let status = object.status.as_ref();
    RelationshipFigures {
        labels: ObjectLabels {
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
            customer: object.spec.customer.tenant_id.0.clone(),
        },
        state: status
            .and_then(|s| s.state.clone())
            .unwrap_or_else(|| UNKNOWN_STATE.to_string()),
        expiry_seconds: status
            .and_then(|s| s.ends_at.as_ref())
            .map(|end| (end.0.as_second() - now.timestamp()) as f64),
        successor_pending: status
            .and_then(|s| s.successor.as_ref())
            .is_some_and(|s| s.state.as_deref() == Some("approvalPending")),
        access_refused: status.is_some_and(|s| {
            let verified = s
                .conditions
                .iter()
                .find(|c| c.type_ == types::ACCESS_VERIFIED);
            verified.is_some_and(|c| c.status == "False")
        }),
    }
}

/// Relationships by state, in the order of the states' names.
pub fn count_by_state(figures: &[RelationshipFigures]) -> BTreeMap<&str, i64> {
    let mut counts = BTreeMap::new();
    for f in figures {
        *counts.entry(f.state.as_str()).or_default() += 1;
    }
    counts
}

/// Encodes the relationship metrics from the caches at each scrape.
#[derive(Debug)]
pub struct RelationshipCollector {
    caches: RelationshipCaches,
}

impl RelationshipCollector {
    /// A collector reading `caches`.
    pub fn new(caches: RelationshipCaches) -> Self {
        RelationshipCollector { caches }
    }
}

impl Collector for RelationshipCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = Utc::now();
        let all: Vec<RelationshipFigures> = self
            .caches
            .objects()
            .iter()
            .map(|object| figures(object, now))
            .collect();
        if !all.is_empty() {
            let mut family = encoder.encode_descriptor(
                "relationships",
                "GDAP relationships by Microsoft state",
                None,
                MetricType::Gauge,
            )?;
            for (state, n) in count_by_state(&all) {
                ConstGauge::new(n).encode(family.encode_family(&[("state", state)])?)?;
            }
        }
        per_object(
            &mut encoder,
            "relationship_expiry_seconds",
            "Seconds until the relationship ends",
            &all,
            |f| f.expiry_seconds,
        )?;
        per_object(
            &mut encoder,
            "successor_approval_pending",
            "1 while a successor relationship waits for the customer's approval",
            &all,
            |f| Some(i64::from(f.successor_pending)),
        )?;
        per_object(
            &mut encoder,
            "relationship_access_refused",
            "1 while Microsoft refuses the partner user's delegated access to the customer (AccessVerified=False), else 0",
            &all,
            |f| Some(i64::from(f.access_refused)),
        )
    }
}

/// One gauge per relationship that has a `value`, labelled by namespace, name and customer; no
/// family at all without one (like an empty `Family`).
fn per_object<N: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    all: &[RelationshipFigures],
    value: impl Fn(&RelationshipFigures) -> Option<N>,
) -> Result<(), std::fmt::Error> {
    let mut samples = all
        .iter()
        .filter_map(|f| Some((&f.labels, value(f)?)))
        .peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in samples {
        ConstGauge::new(v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use kube::runtime::{reflector, watcher};

    fn relationship(name: &str, status: serde_json::Value) -> GdapRelationship {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "gdap.io/v1alpha1",
            "kind": "GdapRelationship",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"customer": {"tenantId": "11111111-2222-3333-4444-555555555555"},
                     "roles": ["Directory Readers"], "duration": "P30D"},
            "status": status,
        }))
        .unwrap()
    }

    /// Metrics reading one cache, and the cache's writer.
    fn metrics_with_cache() -> (Metrics, reflector::store::Writer<GdapRelationship>) {
        let (store, writer) = reflector::store();
        let metrics = Metrics::new();
        metrics.relationship_caches.add(store);
        (metrics, writer)
    }

    fn series(text: &str, name: &str, labels: &str) -> Option<String> {
        let prefix = format!("{name}{{{labels}}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
    }

    const A: &str = r#"namespace="ns",name="a",customer="11111111-2222-3333-4444-555555555555""#;

    #[test]
    fn states_are_counted_from_the_cache_and_an_object_leaves_with_it() {
        let (metrics, mut writer) = metrics_with_cache();
        let ends = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
        let a = relationship("a", serde_json::json!({"state": "active", "endsAt": ends}));
        writer.apply_watcher_event(&watcher::Event::Apply(a.clone()));
        for (name, state) in [("b", "active"), ("c", "approvalPending")] {
            let object = relationship(name, serde_json::json!({"state": state}));
            writer.apply_watcher_event(&watcher::Event::Apply(object));
        }
        writer.apply_watcher_event(&watcher::Event::Apply(relationship(
            "d",
            serde_json::json!({}),
        )));
        let text = metrics.encode();
        assert_eq!(
            series(&text, "gdap_relationships", r#"state="active""#).as_deref(),
            Some("2"),
            "{text}"
        );
        assert_eq!(
            series(&text, "gdap_relationships", r#"state="approvalPending""#).as_deref(),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            series(&text, "gdap_relationships", r#"state="unknown""#).as_deref(),
            Some("1"),
            "{text}"
        );
        let expiry: f64 = series(&text, "gdap_relationship_expiry_seconds", A)
            .expect("a's expiry")
            .parse()
            .unwrap();
        assert!(
            (172_700.0..=172_800.0).contains(&expiry),
            "as of the scrape: {expiry}"
        );
        assert!(
            !text.contains(r#"gdap_relationship_expiry_seconds{namespace="ns",name="b""#),
            "no end, no expiry: {text}"
        );
        let mut released = relationship("e", serde_json::json!({"state": "terminated"}));
        released.metadata.deletion_timestamp =
            Some(serde_json::from_value(serde_json::json!("2026-12-06T00:00:00Z")).unwrap());
        writer.apply_watcher_event(&watcher::Event::Apply(released.clone()));
        assert!(
            !metrics.encode().contains(r#"name="e""#),
            "released: {text}"
        );
        released.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
        writer.apply_watcher_event(&watcher::Event::Apply(released));
        assert!(
            metrics.encode().contains(r#"name="e""#),
            "being deleted, not released"
        );
        writer.apply_watcher_event(&watcher::Event::Delete(a));
        let text = metrics.encode();
        assert_eq!(
            series(&text, "gdap_relationships", r#"state="active""#).as_deref(),
            Some("1"),
            "{text}"
        );
        assert!(!text.contains(r#"name="a""#), "{text}");
    }

    #[test]
    fn no_relationship_no_family() {
        let (metrics, _writer) = metrics_with_cache();
        let text = metrics.encode();
        assert!(!text.contains("gdap_relationship"), "{text}");
        assert!(!text.contains("gdap_successor"), "{text}");
    }

    #[test]
    fn a_pending_successor_and_refused_access_are_gauges_per_object() {
        let (metrics, mut writer) = metrics_with_cache();
        let a = relationship(
            "a",
            serde_json::json!({
                "state": "active",
                "successor": {"displayName": "next", "state": "approvalPending", "reason": "renewal"},
                "conditions": [{"type": "AccessVerified", "status": "False", "reason": "AccessRefused",
                                "message": "refused", "lastTransitionTime": "2026-12-06T00:00:00Z"}],
            }),
        );
        writer.apply_watcher_event(&watcher::Event::Apply(a));
        let text = metrics.encode();
        assert_eq!(
            series(&text, "gdap_successor_approval_pending", A).as_deref(),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            series(&text, "gdap_relationship_access_refused", A).as_deref(),
            Some("1"),
            "{text}"
        );
        let a = relationship("a", serde_json::json!({"state": "active"}));
        writer.apply_watcher_event(&watcher::Event::Apply(a));
        let text = metrics.encode();
        assert_eq!(
            series(&text, "gdap_successor_approval_pending", A).as_deref(),
            Some("0"),
            "{text}"
        );
        assert_eq!(
            series(&text, "gdap_relationship_access_refused", A).as_deref(),
            Some("0"),
            "{text}"
        );
    }
}

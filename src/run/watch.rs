//! The watches behind the controllers: caches trimmed of what the operator never reads, lists
//! in pages, reconciles only on spec or lifecycle changes, and the wait for a cache's first list.

use kube::runtime::reflector;
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use std::time::Duration;

/// What the operator never reads of a watched object, dropped before it is cached: the field
/// managers' records and kubectl's copy of the last applied manifest (together larger than the
/// rest of the object).
pub(super) fn trim_for_cache<K: kube::Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
    if let Some(annotations) = &mut object.meta_mut().annotations {
        annotations.remove(LAST_APPLIED);
    }
}

/// The annotation `kubectl apply` keeps its last manifest in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

pub(super) fn list_in_pages() -> watcher::Config {
    watcher::Config::default().page_size(crate::controllers::LIST_PAGE)
}

/// What of a kind's objects, beyond the spec and the lifecycle, starts a reconcile when it
/// changes.
pub trait Triggers {
    /// The operator's own record that the next pass must read before it acts — a
    /// GdapRelationship's `status.pendingWrites`, written with the status after a write in
    /// Microsoft: the reconcile that follows it starts once the cache holds it, at once, not a
    /// poll interval later. `None` (the default): status writes start nothing.
    fn bookkeeping(&self) -> Option<&str> {
        None
    }
}

impl Triggers for crate::api::GdapRelationship {
    fn bookkeeping(&self) -> Option<&str> {
        self.status.as_ref()?.pending_writes.as_deref()
    }
}

impl Triggers for crate::api::AppConsent {}
impl Triggers for crate::api::TenantSync {}
impl Triggers for crate::api::GdapFleet {}

/// A kind's cache (trimmed, listed in pages) and the stream of its objects whose spec,
/// lifecycle or bookkeeping ([`Triggers`]) changed, for `Controller::for_stream`.
pub(super) fn watched_specs<K>(
    api: Api<K>,
) -> (
    reflector::Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: kube::Resource
        + Triggers
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store::<K>();
    let stream = watcher(api, list_in_pages())
        .default_backoff()
        .modify(trim_for_cache)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, PredicateConfig::default());
    (reader, stream)
}

/// Reconciles on changes of the spec, the finalizers, the annotations, deletion or the kind's
/// bookkeeping — not on the rest of the operator's own status writes, which would otherwise
/// re-trigger every reconcile at once.
fn spec_or_lifecycle<K: kube::Resource + Triggers>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.uid.hash(&mut hasher);
    object.bookkeeping().hash(&mut hasher);
    Some(hasher.finish())
}

/// Resolves once `store` has its first list. kube's readiness signal keeps only one waiter's
/// wake-up (the controller's own runner also waits on it), so it is polled again every 100 ms.
pub(super) async fn listed<K>(store: reflector::Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready()).await {
            Ok(result) => return result.is_ok(),
            Err(_) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relationships_pending_writes_start_a_reconcile_and_the_rest_of_its_status_does_not() {
        let mut object: crate::api::GdapRelationship = serde_json::from_value(serde_json::json!({
            "apiVersion": "gdap.io/v1alpha1",
            "kind": "GdapRelationship",
            "metadata": {"name": "r", "namespace": "n", "generation": 1},
            "spec": {"customer": {"tenantId": "11111111-2222-3333-4444-555555555555"},
                     "roles": ["Directory Readers"], "duration": "P30D"},
        }))
        .unwrap();
        let before = spec_or_lifecycle(&object);
        let status = object.status.get_or_insert_with(Default::default);
        status.state = Some("approvalPending".into());
        assert_eq!(spec_or_lifecycle(&object), before, "a status write alone");
        let status = object.status.as_mut().unwrap();
        status.pending_writes =
            Some(r#"[{"kind":"lock","id":"x","at":"2026-12-06T00:00:00Z"}]"#.into());
        let recorded = spec_or_lifecycle(&object);
        assert_ne!(recorded, before, "a write recorded");
        object.status.as_mut().unwrap().pending_writes = None;
        assert_ne!(spec_or_lifecycle(&object), recorded, "the record emptied");
    }
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    #[test]
    fn the_cache_drops_managed_fields_and_the_last_applied_manifest_only() {
        let mut object = k8s_openapi::api::core::v1::ConfigMap::default();
        object.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        object.metadata.annotations = Some(
            [
                (
                    LAST_APPLIED.to_string(),
                    "{\"kind\":\"GdapRelationship\"}".to_string(),
                ),
                ("gdap.io/sync-now".to_string(), "1".to_string()),
            ]
            .into(),
        );
        trim_for_cache(&mut object);
        assert_eq!(object.metadata.managed_fields, Some(vec![]));
        let annotations = object.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations.keys().collect::<Vec<_>>(), ["gdap.io/sync-now"]);
    }
}

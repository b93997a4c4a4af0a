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

/// A kind's cache (trimmed, listed in pages) and the stream of its objects whose spec or
/// lifecycle changed, for `Controller::for_stream`.
pub(super) fn watched_specs<K>(
    api: Api<K>,
) -> (
    reflector::Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: kube::Resource
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

/// Reconciles on changes of the spec, the finalizers, the annotations or deletion — not on the
/// operator's own status writes, which would otherwise re-trigger every reconcile at once.
fn spec_or_lifecycle<K: kube::Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    meta.uid.hash(&mut hasher);
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

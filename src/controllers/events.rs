//! Publishing Kubernetes events (`events.k8s.io/v1`) with kube-runtime's `Event` and
//! `Reporter`, at a cost that does not grow with the number of events.
//!
//! kube-runtime's `Recorder` keeps every event it published for six minutes and scans that whole
//! cache, under one write lock, on every publish; its key holds the object's `resourceVersion`,
//! so the cache grows by one entry per event and almost never folds one. With thousands of
//! objects the operator spent more time scanning than publishing.
//!
//! Contract: the same event — type, reason, action and note about the same object (kind,
//! namespace, name, uid; not its resourceVersion) from the same reporter — published again within
//! [`SERIES_TTL`] of the last time becomes a series on the first one (a merge patch of
//! `series.count` and `series.lastObservedTime`, as kube-runtime does); anything else creates a
//! new event named `<object>.<nanoseconds, hex>`. Only a 64-bit digest of the key, the event's
//! name and the count are remembered, and entries older than [`SERIES_TTL`] are dropped as later
//! publishes pass them (amortised constant time). The lock is never held across a request.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an event can still become a series (kube-runtime's value).
pub const SERIES_TTL: Duration = Duration::from_secs(360);

/// Publishes events.
pub struct EventRecorder {
    client: Client,
    reporter: Reporter,
    series: Mutex<SeriesCache>,
}

impl EventRecorder {
    /// A recorder reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventRecorder {
            client,
            reporter,
            series: Mutex::new(SeriesCache::default()),
        }
    }

    /// Publishes `event` about `regarding`: a new event, or the next of its series.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let key = self.key(event, regarding);
        let earlier = self.cache().seen(key, Instant::now());
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let continued = match earlier {
            Some((name, count)) => {
                let patch = serde_json::json!({"series": EventSeries {
                    count,
                    last_observed_time: MicroTime(Timestamp::now()),
                }});
                match events
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => Some(name),
                    // The event is gone (its TTL in the API server ran out): start anew.
                    Err(kube::Error::Api(e)) if e.code == 404 => None,
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        let name = match continued {
            Some(name) => name,
            None => {
                let created = events
                    .create(&PostParams::default(), &self.new_event(event, regarding))
                    .await?;
                created.metadata.name.unwrap_or_default()
            }
        };
        self.cache().published(key, name, Instant::now());
        Ok(())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, SeriesCache> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(&self, event: &Event, regarding: &ObjectReference) -> u64 {
        let mut h = DefaultHasher::new();
        (
            matches!(event.type_, EventType::Warning),
            &event.reason,
            &event.action,
            &event.note,
        )
            .hash(&mut h);
        (
            &regarding.api_version,
            &regarding.kind,
            &regarding.namespace,
            &regarding.name,
            &regarding.uid,
        )
            .hash(&mut h);
        (&self.reporter.controller, &self.reporter.instance).hash(&mut h);
        h.finish()
    }

    fn new_event(&self, event: &Event, regarding: &ObjectReference) -> K8sEvent {
        let now = Timestamp::now();
        let controller = &self.reporter.controller;
        let object = regarding.name.as_ref().unwrap_or(controller);
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            note: event.note.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                ..Default::default()
            },
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            type_: Some(match event.type_ {
                EventType::Normal => "Normal".into(),
                EventType::Warning => "Warning".into(),
            }),
            ..Default::default()
        }
    }
}

/// The events that may still become series: digest → (name, count, last publish), and the
/// publishes in time order for expiry.
#[derive(Debug, Default)]
struct SeriesCache {
    entries: HashMap<u64, Series>,
    by_time: VecDeque<(Instant, u64)>,
}

#[derive(Debug)]
struct Series {
    name: String,
    count: i32,
    last: Instant,
}

impl SeriesCache {
    /// The name and next count of the series `key` continues at `now`, if any (after dropping
    /// what expired).
    fn seen(&mut self, key: u64, now: Instant) -> Option<(String, i32)> {
        self.expire(now);
        self.entries
            .get(&key)
            .map(|s| (s.name.clone(), s.count.saturating_add(1)))
    }

    /// Records a publish of `key` as event `name` at `now`.
    fn published(&mut self, key: u64, name: String, now: Instant) {
        let entry = self.entries.entry(key).or_insert(Series {
            name: String::new(),
            count: 0,
            last: now,
        });
        if entry.name != name {
            *entry = Series {
                name,
                count: 1,
                last: now,
            };
        } else {
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
        }
        self.by_time.push_back((now, key));
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.by_time.front() {
            if now.duration_since(at) < SERIES_TTL {
                break;
            }
            self.by_time.pop_front();
            if self.entries.get(&key).is_some_and(|s| s.last == at) {
                self.entries.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_event_within_the_ttl_continues_its_series() {
        let mut cache = SeriesCache::default();
        let t0 = Instant::now();
        assert_eq!(cache.seen(1, t0), None);
        cache.published(1, "obj.a".into(), t0);
        assert_eq!(
            cache.seen(1, t0 + Duration::from_secs(10)),
            Some(("obj.a".into(), 2))
        );
        cache.published(1, "obj.a".into(), t0 + Duration::from_secs(10));
        let later = t0 + Duration::from_secs(10) + SERIES_TTL - Duration::from_secs(1);
        assert_eq!(
            cache.seen(1, later),
            Some(("obj.a".into(), 3)),
            "the TTL runs from the last"
        );
        assert_eq!(cache.seen(2, later), None, "another event is new");
    }

    #[test]
    fn an_event_past_the_ttl_is_new_and_its_entry_is_gone() {
        let mut cache = SeriesCache::default();
        let t0 = Instant::now();
        for key in 0..1000 {
            cache.published(key, format!("obj.{key}"), t0);
        }
        assert_eq!(cache.len(), 1000);
        assert_eq!(cache.seen(5, t0 + SERIES_TTL), None);
        assert_eq!(cache.len(), 0, "every entry expired");
        assert!(cache.by_time.is_empty());
    }

    #[test]
    fn a_publish_costs_the_same_with_many_entries() {
        // Expiry pops only what is due: a cache of 100,000 live entries is not scanned.
        let mut cache = SeriesCache::default();
        let t0 = Instant::now();
        for key in 0..100_000 {
            cache.published(key, "o".into(), t0);
        }
        for key in 100_000..101_000 {
            assert_eq!(cache.seen(key, t0 + Duration::from_secs(1)), None);
            cache.published(key, "o".into(), t0 + Duration::from_secs(1));
        }
        assert_eq!(
            cache.by_time.len(),
            101_000,
            "nothing was due, nothing popped"
        );
    }
}

//! Reading the operator's own last write to an object (read-your-writes over the watch cache).
//!
//! A pass reads its object from the watch cache. After a write that records something done in
//! Microsoft (the status carrying the pending writes, the relationship id; an annotation record),
//! the next pass must see it: a pass on an older copy would not know of the write, send it again
//! and then write a status built on that older copy over the newer one. The watch normally shows
//! the write within milliseconds, and its event starts the next pass; but while the watch is
//! down or catching up (the API server restarted, etcd returned, the watch backs off before it
//! reconnects) a requeue reads the copy the cache still has.
//!
//! So the resourceVersion each such write answered is remembered per object (by uid). A pass
//! whose cached copy has another resourceVersion reads the object from the API server first (a
//! quorum read, which shows every write acknowledged); a copy with that version, or the fresh
//! read, ends the entry. Another version in the cache may also be a newer one (someone else wrote
//! since): the read is then one GET more, never a wrong decision. Entries exist only between a
//! write and the first pass that sees it, so the memory is a few bytes per object in flight.

use kube::{Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::Mutex;

/// The resourceVersion of the operator's last recording write, per object uid.
#[derive(Debug, Default)]
pub struct OwnWrites(Mutex<HashMap<String, String>>);

/// Whether a cached copy shows the operator's last recording write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// It shows it, or nothing was written since the last pass that saw it.
    Current,
    /// It has another resourceVersion: read the object from the API server.
    Behind,
}

impl OwnWrites {
    /// Remembers `written`, the object as a write of the operator answered it.
    pub fn wrote<K: Resource>(&self, written: &K) {
        let (Some(uid), Some(version)) = (written.uid(), written.resource_version()) else {
            return;
        };
        self.lock().insert(uid, version);
    }

    /// Whether `cached` shows the last recording write; a copy that does ends the entry.
    pub fn check<K: Resource>(&self, cached: &K) -> Cached {
        let Some(uid) = cached.uid() else {
            return Cached::Current;
        };
        let mut entries = self.lock();
        match entries.get(&uid) {
            None => Cached::Current,
            Some(version) if cached.resource_version().as_ref() == Some(version) => {
                entries.remove(&uid);
                Cached::Current
            }
            Some(_) => Cached::Behind,
        }
    }

    /// Ends the entry of `uid`: a quorum read showed the object, or it is gone.
    pub fn seen(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// How many objects have a write the cache has not shown yet.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether every write was seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().expect("own writes lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn copy(uid: &str, version: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.uid = Some(uid.into());
        object.metadata.resource_version = Some(version.into());
        object
    }

    #[test]
    fn a_copy_older_or_newer_than_the_last_write_is_read_again_until_one_shows_it() {
        let writes = OwnWrites::default();
        assert_eq!(
            writes.check(&copy("a", "5")),
            Cached::Current,
            "nothing written"
        );
        writes.wrote(&copy("a", "7"));
        assert_eq!(
            writes.check(&copy("a", "5")),
            Cached::Behind,
            "the cache is behind"
        );
        assert_eq!(
            writes.check(&copy("a", "5")),
            Cached::Behind,
            "still behind"
        );
        assert_eq!(
            writes.check(&copy("b", "5")),
            Cached::Current,
            "another object"
        );
        assert_eq!(
            writes.check(&copy("a", "9")),
            Cached::Behind,
            "another version may be newer: one read more, never a wrong decision"
        );
        assert_eq!(writes.check(&copy("a", "7")), Cached::Current);
        assert!(
            writes.is_empty(),
            "a copy that shows the write ends the entry"
        );
        assert_eq!(writes.check(&copy("a", "5")), Cached::Current);
    }

    #[test]
    fn a_fresh_read_ends_the_entry() {
        let writes = OwnWrites::default();
        writes.wrote(&copy("a", "7"));
        writes.wrote(&copy("b", "3"));
        assert_eq!(writes.len(), 2);
        writes.seen("a");
        assert_eq!(writes.check(&copy("a", "5")), Cached::Current);
        assert_eq!(writes.check(&copy("b", "2")), Cached::Behind);
    }

    #[test]
    fn an_object_without_uid_or_version_is_not_remembered() {
        let writes = OwnWrites::default();
        writes.wrote(&ConfigMap::default());
        assert!(writes.is_empty());
    }
}

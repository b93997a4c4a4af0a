//! Controllers, one folder per kind. Each reconcile is observe → plan → act → report, where plan
//! is a pure function tested from tables (see ARCHITECTURE.md §3). Shared pieces: the context,
//! condition merging, failures and backoff, the one Microsoft-error → condition-reason mapping,
//! credentials (and the finalizer that keeps them while
//! in use), withdrawal records, and JSON-patch finalizer edits for objects we do not reconcile.

pub mod app_consent;
pub mod conditions;
pub mod context;
pub mod credentials;
pub mod credentials_hold;
pub mod credentials_in_use;
pub mod events;
pub mod failure;
pub mod finalizers;
pub mod gdap_fleet;
pub mod gdap_relationship;
pub mod lifecycle;
pub mod limit;
pub mod microsoft_failure;
pub mod own_writes;
pub mod pending_writes;
pub mod pipeline;
#[cfg(all(test, feature = "sandbox"))]
pub mod sandbox_world;
pub mod secret_watch;
pub mod secrets_by_name;
pub mod tenant_sync;
pub mod timing;
pub mod withdrawals;

/// How many objects one list request returns (watches and the Secret controller's count of
/// users). A page is read and parsed whole, managed fields included, before anything is dropped;
/// kube's default of 500 makes each a burst of several MiB, which glibc's malloc then keeps for
/// the life of the process.
pub const LIST_PAGE: u32 = 50;

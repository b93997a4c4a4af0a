//! Concurrency limits: at most N requests in flight per tenant and M in total.
//!
//! Contract: [`ConcurrencyLimits::acquire`] waits for a tenant slot first and a global slot
//! second (so a busy tenant never holds global slots while it waits), and returns a guard that
//! frees both when dropped. Slots are held for one HTTP exchange, never across a whole stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per-tenant and global in-flight request limits.
#[derive(Debug)]
pub struct ConcurrencyLimits {
    global: Arc<Semaphore>,
    per_tenant: usize,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Both slots of one request; dropping it frees them.
#[derive(Debug)]
pub struct Slot {
    _tenant: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl ConcurrencyLimits {
    /// Limits of `global` requests in total and `per_tenant` per tenant (each at least 1).
    pub fn new(global: usize, per_tenant: usize) -> Self {
        ConcurrencyLimits {
            global: Arc::new(Semaphore::new(global.max(1))),
            per_tenant: per_tenant.max(1),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a slot for `tenant_id`.
    pub async fn acquire(&self, tenant_id: &str) -> Slot {
        let tenant = {
            let mut map = self.tenants.lock().expect("limits lock");
            map.entry(tenant_id.to_ascii_lowercase())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        let tenant = tenant
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        let global = self
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        Slot {
            _tenant: tenant,
            _global: global,
        }
    }
}

impl Default for ConcurrencyLimits {
    fn default() -> Self {
        ConcurrencyLimits::new(64, 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    async fn peak(limits: Arc<ConcurrencyLimits>, tenants: &[&str]) -> usize {
        let now = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for t in tenants {
            let (l, n, m, t) = (limits.clone(), now.clone(), max.clone(), t.to_string());
            tasks.push(tokio::spawn(async move {
                let _slot = l.acquire(&t).await;
                let v = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(v, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                n.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        max.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn per_tenant_limit_holds() {
        let limits = Arc::new(ConcurrencyLimits::new(100, 2));
        assert_eq!(peak(limits, &["a"; 10]).await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn global_limit_holds_across_tenants() {
        let limits = Arc::new(ConcurrencyLimits::new(3, 2));
        let tenants = ["a", "b", "c", "d", "e", "a", "b", "c", "d", "e"];
        assert_eq!(peak(limits, &tenants).await, 3);
    }
}

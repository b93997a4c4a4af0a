//! What `/readyz` answers: the caches-synced flag and, with leader election, this replica's
//! [`Role`]. Its own module because both sides meet here: `leader` reports the role, `server`
//! answers with it, and neither needs the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// What this replica is doing in the election; `/readyz` reports on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// It has not looked at the Lease yet.
    Starting,
    /// Another replica holds the Lease; this one takes over when it is released or runs out.
    StandingBy,
    /// This replica holds the Lease and runs the controllers.
    Leading,
    /// The Lease cannot be read or written (the error, for `/readyz` and the log).
    Failing(String),
}

/// `/readyz`: without leader election, ready once every controller's first list is complete;
/// with it, ready when leading with the caches synced, or when standing by healthily (the
/// Lease can be read).
#[derive(Clone)]
pub struct Readiness {
    caches_synced: Arc<AtomicBool>,
    election: Option<watch::Receiver<Role>>,
}

impl Readiness {
    /// Readiness from the caches-synced flag and, with leader election, this replica's role.
    pub fn new(caches_synced: Arc<AtomicBool>, election: Option<watch::Receiver<Role>>) -> Self {
        Readiness {
            caches_synced,
            election,
        }
    }

    /// Whether the controllers run in this replica with their caches listed (without leader
    /// election: once listed; with it: while leading, once listed).
    pub fn acting(&self) -> bool {
        let synced = self.caches_synced.load(Ordering::SeqCst);
        let leading = self
            .election
            .as_ref()
            .is_none_or(|r| *r.borrow() == Role::Leading);
        synced && leading
    }

    /// `Ok(what)` when ready, `Err(why not)` otherwise.
    pub fn check(&self) -> Result<&'static str, String> {
        let synced = self.caches_synced.load(Ordering::SeqCst);
        let role = self.election.as_ref().map(|r| r.borrow().clone());
        match role {
            None if synced => Ok("ready"),
            None => Err("controllers are listing their resources".into()),
            Some(Role::Leading) if synced => Ok("ready: leading, caches synced"),
            Some(Role::Leading) => Err("leading; controllers are listing their resources".into()),
            Some(Role::StandingBy) => Ok("ready: standing by, another replica holds the Lease"),
            Some(Role::Starting) => Err("has not looked at the Lease yet".into()),
            Some(Role::Failing(error)) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readiness(synced: bool, role: Option<Role>) -> Result<&'static str, String> {
        let flag = Arc::new(AtomicBool::new(synced));
        let election = role.map(|r| watch::channel(r).1);
        Readiness::new(flag, election).check()
    }

    fn acting(synced: bool, role: Option<Role>) -> bool {
        let flag = Arc::new(AtomicBool::new(synced));
        let election = role.map(|r| watch::channel(r).1);
        Readiness::new(flag, election).acting()
    }

    #[test]
    fn only_a_synced_leader_or_a_synced_replica_without_election_acts() {
        assert!(acting(true, None));
        assert!(!acting(false, None));
        assert!(acting(true, Some(Role::Leading)));
        assert!(!acting(false, Some(Role::Leading)));
        assert!(!acting(true, Some(Role::StandingBy)));
        assert!(!acting(true, Some(Role::Starting)));
    }

    #[test]
    fn without_election_ready_means_caches_synced() {
        assert!(readiness(true, None).is_ok());
        assert!(readiness(false, None).unwrap_err().contains("listing"));
    }

    #[test]
    fn a_leader_is_ready_once_synced_and_a_healthy_standby_is_ready_without_caches() {
        assert!(readiness(true, Some(Role::Leading)).is_ok());
        assert!(readiness(false, Some(Role::Leading)).is_err());
        assert!(
            readiness(false, Some(Role::StandingBy))
                .unwrap()
                .contains("standing by")
        );
        assert!(readiness(false, Some(Role::Starting)).is_err());
        let failing = Role::Failing("cannot read the Lease ns/l: connection refused".into());
        assert!(
            readiness(true, Some(failing))
                .unwrap_err()
                .contains("connection refused")
        );
    }
}

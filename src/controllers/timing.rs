//! The operator's timing knobs (from the command line), shared by every controller.

use std::time::Duration;

/// Timing knobs (from the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How soon to look again while Microsoft is working (approval, activation, assignments).
    pub poll: Duration,
    /// How often to re-read a steady relationship (detects out-of-band changes).
    pub resync: Duration,
    /// How long deletion waits for `terminated` before reporting it overdue.
    pub termination_timeout: Duration,
    /// How long a permanently failed assignment waits before it is tried again.
    pub failed_retry: Duration,
    /// How long the operator waits for Microsoft to show one of its own writes (or to propagate
    /// access) before it reports the wait as a failure (`--propagation-timeout`).
    pub propagation_timeout: Duration,
    /// How often the partner user's delegated access to the customer of an active relationship
    /// is verified (a token for the customer tenant and one read there;
    /// `--access-verify-interval`); zero turns the check off.
    pub access_verify: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: Duration::from_secs(30),
            resync: Duration::from_secs(600),
            termination_timeout: Duration::from_secs(600),
            failed_retry: Duration::from_secs(3600),
            propagation_timeout: Duration::from_secs(3600),
            access_verify: Duration::from_secs(3600),
        }
    }
}

impl Timing {
    /// How long a credentials Secret's watch lives without being used: twice the longest pause
    /// between two reconciles of an object in steady state (resync, or poll if longer), so the
    /// Secret of any object still there stays watched.
    pub fn secret_watch_idle(&self) -> Duration {
        self.resync.max(self.poll).saturating_mul(2)
    }
}

/// The consent controller's own intervals (`--consent-verify-interval`,
/// `--consent-settle-time`); poll and resync are shared with the other controllers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentIntervals {
    /// How often a complete consent is verified.
    pub verify: Duration,
    /// How long a relationship must have given the consent-capable role before the first consent.
    pub settle: Duration,
}

impl Default for ConsentIntervals {
    fn default() -> Self {
        ConsentIntervals {
            verify: Duration::from_secs(3600),
            settle: Duration::from_secs(900),
        }
    }
}

//! SIGTERM and Ctrl-C, caught from the moment the process starts.
//!
//! A signal listener sees only signals that arrive after it was created. kube's
//! `Controller::shutdown_on_signal` creates its listeners when the controller is first polled,
//! so a SIGTERM that arrived between the leader election and that first poll — after the
//! election's own listener was gone, before the controllers' existed — was lost, and the
//! process never stopped. Here one listener is installed at start-up and every part that stops
//! on a signal (the election, the controllers, the reconcile limits) asks it.
//!
//! The first signal asks for a graceful shutdown (reconciles in flight finish, no new ones
//! start); a second one forces it.

use futures::FutureExt;
use std::future::Future;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// How many shutdown signals the process has received; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    signals: watch::Receiver<u32>,
}

impl Shutdown {
    /// Starts listening for SIGTERM and SIGINT now. Call it first thing, inside the runtime.
    pub fn listen() -> anyhow::Result<Self> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let (count, signals) = watch::channel(0);
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = terminate.recv() => "SIGTERM",
                    _ = interrupt.recv() => "SIGINT",
                };
                count.send_modify(|n| *n += 1);
                match *count.borrow() {
                    1 => tracing::info!(
                        signal = name,
                        "shutting down: reconciles in flight finish, no new ones start"
                    ),
                    _ => tracing::warn!(
                        signal = name,
                        "shutting down at once: reconciles in flight are abandoned"
                    ),
                }
            }
        });
        Ok(Shutdown { signals })
    }

    /// Resolves once a graceful shutdown was asked for (the first signal).
    pub async fn requested(&self) {
        self.at_least(1).await
    }

    /// Resolves once a forced shutdown was asked for (the second signal).
    pub async fn forced(&self) {
        self.at_least(2).await
    }

    /// [`Shutdown::requested`] as the `Send + Sync` future `Controller::graceful_shutdown_on`
    /// takes.
    pub fn trigger(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let (fire, fired) = futures::channel::oneshot::channel::<()>();
        let this = self.clone();
        tokio::spawn(async move {
            this.requested().await;
            let _ = fire.send(());
        });
        fired.map(|_| ())
    }

    /// A shutdown that no signal moves, and what asks for it (each call counts as one signal):
    /// for tests that must not send a signal to the whole test process.
    #[cfg(test)]
    pub(crate) fn asked_by_hand() -> (Self, impl Fn()) {
        let (count, signals) = watch::channel(0);
        (Shutdown { signals }, move || count.send_modify(|n| *n += 1))
    }

    async fn at_least(&self, signals: u32) {
        let mut receiver = self.signals.clone();
        if receiver.wait_for(|n| *n >= signals).await.is_err() {
            // The listener is gone only when the runtime shuts down: so does everything else.
            futures::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_signal_sent_before_anyone_waits_is_not_lost() {
        let shutdown = Shutdown::listen().unwrap();
        let trigger = shutdown.trigger();
        let pid = std::process::id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        // Nobody waited while the signal arrived; the waits started afterwards still see it.
        tokio::time::timeout(Duration::from_secs(10), shutdown.requested())
            .await
            .expect("the graceful shutdown is seen");
        tokio::time::timeout(Duration::from_secs(10), trigger)
            .await
            .expect("the controllers' trigger fires");
        let forced = tokio::time::timeout(Duration::from_millis(200), shutdown.forced()).await;
        assert!(forced.is_err(), "one signal does not force the shutdown");
    }
}

//! Credentials Secrets kept current by Kubernetes: one watch per credentials Secret in use, of
//! that Secret alone (`fieldSelector=metadata.name=NAME` in its namespace), so a reconcile reads
//! its Secret from memory instead of asking the API server each time.
//!
//! Contract:
//! - [`SecretWatches::cached`] answers what the watch of Secret `namespace/name` shows:
//!   [`Cached::Known`] (the Secret, or `None` when it does not exist), or [`Cached::Unknown`]
//!   until the watch has delivered its first state and while it is failing — the caller then
//!   reads the Secret with a GET, as it did before there were watches. The first ask starts the
//!   watch.
//! - The API server authorizes a list or watch whose field selector names one object against
//!   the role's `resourceNames`, so a role that names the Secret with `list` and `watch` allows
//!   it, and the operator still cannot list or watch any other Secret. A role without them (an
//!   older chart) refuses the watch: that is logged once, with the permission and the chart value
//!   that grants it, and the Secret is read with a GET each time.
//! - A watch that fails is dropped and started afresh (a new list, then a watch) after a pause
//!   that grows from [`FIRST_PAUSE`] to [`LONGEST_PAUSE`] and starts over once a watch delivers
//!   its state; meanwhile the Secret is [`Cached::Unknown`].
//! - A watch stops once nobody asked for its Secret for the idle time given to
//!   [`SecretWatches::new`] (objects ask at least once per resync interval; the operator gives
//!   twice that), so a Secret nothing uses any more is not watched for ever; the next ask starts
//!   it again.
//! - It does not read the operator's own writes: right after the operator writes the Secret, the
//!   watch may show the version before for a moment. The readers tolerate that: the Microsoft
//!   clients keep the versions they wrote (`credentials::KnownVersions`), so a stale copy never
//!   rebuilds them from a spent refresh token; a finalizer patch built on a stale copy fails its
//!   test and is read again (`credentials_hold`); a withdrawal record written twice is written
//!   once. The Secret controller, which releases Secrets and must see every record, reads with a
//!   GET.

use super::secrets_by_name::{CREDENTIALS_VALUE, forbidden_hint};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::watcher;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// The first pause before a failed watch is started again.
pub const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause before a failed watch is started again.
pub const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// What the watch of a Secret shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// The Secret as the watch delivered it last; `None`: it does not exist.
    Known(Option<Arc<Secret>>),
    /// Not delivered yet, or the watch is failing: read the Secret with a GET.
    Unknown,
}

/// How the watch of one Secret stands (for diagnostics and tests; asking does not start it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStatus {
    /// Not watched: never asked for, or idle for too long.
    NotWatched,
    /// Watched, but its state is not known: the watch has not delivered it yet, or is failing.
    Pending,
    /// Watched and current.
    Current,
}

type Key = (String, String);
type Registry = Mutex<HashMap<Key, Watched>>;

/// One watch per credentials Secret asked for (see the module docs).
pub struct SecretWatches {
    client: kube::Client,
    idle: Duration,
    watched: Arc<Registry>,
}

/// A running watch: what it shows, and the task that feeds it (ended when this is dropped).
struct Watched {
    view: Arc<View>,
    task: tokio::task::AbortHandle,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a watch shows, and when its Secret was last asked for.
struct View {
    state: Mutex<State>,
    asked: Mutex<Instant>,
}

impl SecretWatches {
    /// Watches of Secrets through `client`, each stopped once its Secret was not asked for
    /// during `idle`.
    pub fn new(client: kube::Client, idle: Duration) -> Self {
        SecretWatches {
            client,
            idle,
            watched: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// What the watch of Secret `namespace/name` shows; starts the watch when there is none.
    /// Must be called within a Tokio runtime.
    pub fn cached(&self, namespace: &str, name: &str) -> Cached {
        let key = (namespace.to_string(), name.to_string());
        let view = {
            let mut watched = self.watched.lock().expect("watch registry lock");
            let entry = watched.entry(key).or_insert_with_key(|key| self.start(key));
            entry.view.clone()
        };
        *view.asked.lock().expect("watch clock lock") = Instant::now();
        view.state.lock().expect("watch state lock").cached()
    }

    /// How the watch of Secret `namespace/name` stands, without asking for the Secret.
    pub fn status(&self, namespace: &str, name: &str) -> WatchStatus {
        let key = (namespace.to_string(), name.to_string());
        let watched = self.watched.lock().expect("watch registry lock");
        match watched.get(&key) {
            None => WatchStatus::NotWatched,
            Some(w) => match w.view.state.lock().expect("watch state lock").cached() {
                Cached::Known(_) => WatchStatus::Current,
                Cached::Unknown => WatchStatus::Pending,
            },
        }
    }

    /// Starts the watch of the Secret `key` names.
    fn start(&self, key: &Key) -> Watched {
        let view = Arc::new(View {
            state: Mutex::new(State::default()),
            asked: Mutex::new(Instant::now()),
        });
        let feed = Feed {
            api: Api::namespaced(self.client.clone(), &key.0),
            key: key.clone(),
            view: view.clone(),
            idle: self.idle,
            registry: Arc::downgrade(&self.watched),
        };
        let task = tokio::spawn(feed.run()).abort_handle();
        Watched { view, task }
    }
}

/// The task that keeps one [`View`] current.
struct Feed {
    api: Api<Secret>,
    key: Key,
    view: Arc<View>,
    idle: Duration,
    registry: Weak<Registry>,
}

impl Feed {
    /// Watches until the Secret was not asked for during the idle time, then leaves the
    /// registry.
    async fn run(self) {
        let mut pause = Pause::default();
        while self.watch_once(&mut pause).await.is_some()
            && self
                .until_idle(tokio::time::sleep(pause.next()))
                .await
                .is_some()
        {}
        self.leave();
    }

    /// One watch, from its list to its first failure; `None` when the Secret went idle.
    async fn watch_once(&self, pause: &mut Pause) -> Option<()> {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.key.1));
        let mut events = watcher(self.api.clone(), config).boxed();
        loop {
            let event = self.until_idle(events.next()).await?;
            let mut state = self.view.state.lock().expect("watch state lock");
            match event {
                Some(Ok(event)) => {
                    if state.apply(event) {
                        pause.reset();
                    }
                }
                Some(Err(error)) => {
                    if state.fail() {
                        self.log_failure(&error);
                    }
                    return Some(());
                }
                // kube's watcher does not end; if it did, start a new one.
                None => {
                    state.fail();
                    return Some(());
                }
            }
        }
    }

    /// Runs `work` unless the Secret goes idle first (`None` then).
    async fn until_idle<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        loop {
            let asked = *self.view.asked.lock().expect("watch clock lock");
            let deadline = asked + self.idle;
            if deadline <= Instant::now() {
                return None;
            }
            tokio::select! {
                done = &mut work => return Some(done),
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Removes this watch from the registry (unless a new one took its place meanwhile).
    fn leave(&self) {
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        let mut watched = registry.lock().expect("watch registry lock");
        if watched
            .get(&self.key)
            .is_some_and(|w| Arc::ptr_eq(&w.view, &self.view))
        {
            let ended = watched.remove(&self.key);
            drop(watched);
            tracing::debug!(namespace = %self.key.0, secret = %self.key.1, "credentials Secret not used lately; watch stopped");
            drop(ended);
        }
    }

    /// The first failure after a working watch (or of the first watch): a refusal says what to
    /// grant; other failures (the API server restarting, a watch too old) are routine.
    fn log_failure(&self, error: &watcher::Error) {
        let (namespace, name) = (&self.key.0, &self.key.1);
        if is_forbidden(error) {
            tracing::warn!(secret = %name, %namespace, "cannot watch the credentials Secret, so it is read with a GET each time it is used: {}", forbidden_hint(namespace, name, "list and watch", CREDENTIALS_VALUE));
        } else {
            tracing::debug!(secret = %name, %namespace, %error, "watch of the credentials Secret failed; it is read with a GET each time until a new watch delivers it");
        }
    }
}

/// Whether the API server refused the watch (RBAC).
fn is_forbidden(error: &watcher::Error) -> bool {
    let refused = |code: u16| code == 401 || code == 403;
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => {
            matches!(e, kube::Error::Api(status) if refused(status.code))
        }
        watcher::Error::WatchError(status) => refused(status.code),
        watcher::Error::NoResourceVersion => false,
    }
}

/// What one watch delivered: the state of its last complete list and the events since.
#[derive(Debug, Default)]
struct State {
    /// The Secret as known (`Some(None)`: it does not exist); `None`: not known.
    known: Option<Option<Arc<Secret>>>,
    /// A list in progress: the Secret it returned so far.
    listing: Option<Option<Arc<Secret>>>,
    /// The watch failed since it last delivered a state.
    failing: bool,
}

impl State {
    /// Applies one event; true when it completed a list (the state is known from now on).
    fn apply(&mut self, event: watcher::Event<Secret>) -> bool {
        match event {
            watcher::Event::Init => self.listing = Some(None),
            watcher::Event::InitApply(secret) => self.listing = Some(Some(Arc::new(secret))),
            watcher::Event::InitDone => {
                self.known = Some(self.listing.take().flatten());
                self.failing = false;
                return true;
            }
            watcher::Event::Apply(secret) => self.known = Some(Some(Arc::new(secret))),
            watcher::Event::Delete(_) => self.known = Some(None),
        }
        false
    }

    /// The watch failed: nothing is known until a new list completes. True for the first
    /// failure since the state was last known (the one worth logging).
    fn fail(&mut self) -> bool {
        self.known = None;
        self.listing = None;
        !std::mem::replace(&mut self.failing, true)
    }

    fn cached(&self) -> Cached {
        match &self.known {
            Some(secret) => Cached::Known(secret.clone()),
            None => Cached::Unknown,
        }
    }
}

/// The pause before a failed watch starts again: [`FIRST_PAUSE`], doubling up to
/// [`LONGEST_PAUSE`], from the start again after a watch delivered its state.
#[derive(Debug, Default)]
struct Pause {
    failures: u32,
}

impl Pause {
    fn next(&mut self) -> Duration {
        let pause = FIRST_PAUSE.saturating_mul(1 << self.failures.min(16));
        self.failures += 1;
        pause.min(LONGEST_PAUSE)
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, token: &str) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some(name.into());
        s.string_data = Some([("refreshToken".to_string(), token.to_string())].into());
        s
    }

    #[test]
    fn the_state_is_known_from_a_complete_list_and_follows_the_events() {
        use watcher::Event::*;
        let (v1, v2) = (secret("creds", "rt-1"), secret("creds", "rt-2"));
        let known = |s: &Secret| Cached::Known(Some(Arc::new(s.clone())));
        let mut state = State::default();
        let steps: Vec<(watcher::Event<Secret>, bool, Cached)> = vec![
            (Init, false, Cached::Unknown),
            (InitApply(v1.clone()), false, Cached::Unknown),
            (InitDone, true, known(&v1)),
            (Apply(v2.clone()), false, known(&v2)),
            (Delete(v2.clone()), false, Cached::Known(None)),
            (Apply(v1.clone()), false, known(&v1)),
            // A new list keeps showing the old state until it completes.
            (Init, false, known(&v1)),
            (InitDone, true, Cached::Known(None)),
        ];
        for (i, (event, completed, expected)) in steps.into_iter().enumerate() {
            assert_eq!(state.apply(event), completed, "step {i}");
            assert_eq!(state.cached(), expected, "step {i}");
        }
    }

    #[test]
    fn a_failure_forgets_the_state_and_only_the_first_in_a_row_is_worth_logging() {
        let mut state = State::default();
        assert!(state.fail(), "the first watch fails");
        assert!(!state.fail(), "and again");
        state.apply(watcher::Event::Init);
        state.apply(watcher::Event::InitApply(secret("creds", "rt-1")));
        assert!(!state.fail(), "a list that did not complete");
        state.apply(watcher::Event::Init);
        state.apply(watcher::Event::InitDone);
        assert_eq!(state.cached(), Cached::Known(None));
        assert!(state.fail(), "a failure after a known state");
        assert_eq!(state.cached(), Cached::Unknown);
    }

    #[test]
    fn the_pause_doubles_up_to_a_minute_and_starts_over_after_a_delivered_state() {
        let mut pause = Pause::default();
        let seconds: Vec<u64> = (0..9).map(|_| pause.next().as_secs()).collect();
        assert_eq!(seconds, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        for _ in 0..100 {
            pause.next();
        }
        assert_eq!(pause.next(), LONGEST_PAUSE);
        pause.reset();
        assert_eq!(pause.next(), FIRST_PAUSE);
    }

    #[test]
    fn a_refusal_is_told_from_other_failures() {
        let status = |code: u16| kube::core::Status {
            code,
            ..Default::default()
        };
        let api = |code| kube::Error::Api(status(code).boxed());
        assert!(is_forbidden(&watcher::Error::InitialListFailed(api(403))));
        assert!(is_forbidden(&watcher::Error::WatchStartFailed(api(401))));
        assert!(is_forbidden(&watcher::Error::WatchError(
            status(403).boxed()
        )));
        assert!(!is_forbidden(&watcher::Error::WatchError(
            status(410).boxed()
        )));
        assert!(!is_forbidden(&watcher::Error::WatchFailed(api(500))));
        assert!(!is_forbidden(&watcher::Error::NoResourceVersion));
    }
}

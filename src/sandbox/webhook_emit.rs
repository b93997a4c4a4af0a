//! Webhook emission: the background task that turns what readers see change into events, and
//! the registration's changes that emission depends on.
//!
//! Contract: [`spawn`] starts a task (stopped with the sandbox: abort its handle) that every
//! [`EMIT_INTERVAL`], while a registration exists, takes the world (which applies the
//! time-driven transitions), builds the readers' [`View`] and compares it with the last one; the
//! changes the registration names are signed and queued, and the task starts their deliveries
//! (which end with it). [`register`] makes the current view the baseline when a registration
//! is created, so the past sends nothing; [`unregister`] drops it.

use super::context::Shared;
use super::state::World;
use super::webhook_model::WebhookRegistration;
use super::webhook_view::View;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// How often emission compares views.
pub const EMIT_INTERVAL: Duration = Duration::from_millis(200);

/// Starts the emission task.
pub fn spawn(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut deliveries = JoinSet::new();
        let mut tick = tokio::time::interval(EMIT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => emit(&shared),
                _ = shared.webhooks.queued() => {}
                Some(_) = deliveries.join_next(), if !deliveries.is_empty() => {}
            }
            for id in shared.webhooks.take_queued() {
                deliveries.spawn(shared.webhooks.clone().deliver(id));
            }
        }
    })
}

/// One comparison: queues the events of what changed since the last view.
fn emit(shared: &Shared) {
    let world = shared.world();
    let Some(registration) = world.webhook_registration.clone() else {
        shared.webhooks.state().baseline = None;
        return;
    };
    let now = shared.now();
    let mut state = shared.webhooks.state();
    let changes = match state.baseline.as_mut() {
        Some(view) => view.update(&world, now),
        None => {
            state.baseline = Some(View::of(&world, now));
            Vec::new()
        }
    };
    drop(state);
    drop(world);
    for change in changes {
        if registration.wants(change.name) {
            shared.webhooks.enqueue(&change, &registration, None);
        }
    }
}

/// Sets the registration in `world`; a new one starts from what readers see now.
pub fn register(shared: &Shared, world: &mut World, registration: WebhookRegistration) {
    if world.webhook_registration.is_none() {
        shared.webhooks.state().baseline = Some(View::of(world, shared.now()));
    }
    world.webhook_registration = Some(registration);
}

/// Removes the registration from `world`; whether there was one.
pub fn unregister(shared: &Shared, world: &mut World) -> bool {
    shared.webhooks.state().baseline = None;
    world.webhook_registration.take().is_some()
}

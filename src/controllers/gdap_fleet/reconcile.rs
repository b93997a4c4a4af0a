//! The GdapFleet's part of the reconcile pipeline (`controllers::pipeline`): its intent, observe,
//! plan, act and report.
//!
//! The fleet writes only Kubernetes objects; each customer's objects are reconciled by their own
//! controllers. Its finalizer (`gdap.io/fleet`) keeps a deleted fleet until every customer's
//! objects are pruned (`spec.prune`) or let go: without it, Kubernetes' garbage collector would
//! delete every owned object — and terminate every relationship — with the fleet.

use super::act::{Done, act};
use super::decide::{FleetPlan, decide};
use super::desired::{FleetIntent, resolve};
use super::observe::{CustomerLists, Observed, observe};
use super::plan::Owner;
use super::status::{self, Inputs};
use crate::api::conditions::events;
use crate::api::{GdapFleet, GdapFleetStatus, GdapRelationship};
use crate::controllers::conditions::from_time;
use crate::controllers::context::Context;
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::lifecycle::ReconcileError;
use crate::controllers::pipeline::{Change, Next, Pass, Pipeline, Release, next_after};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;
use std::collections::HashSet;
use std::sync::Arc;

/// The finalizer that keeps a deleted fleet until its customers are pruned or let go.
pub const FINALIZER: &str = "gdap.io/fleet";
/// The kind, as metrics name it.
pub const KIND: &str = "GdapFleet";

/// What the GdapFleet controller works with.
pub struct FleetContext {
    /// What every controller shares.
    pub ctx: Arc<Context>,
    /// Partner Center's customer lists, read at most once per poll interval.
    pub lists: CustomerLists,
}

impl AsRef<Context> for FleetContext {
    fn as_ref(&self) -> &Context {
        &self.ctx
    }
}

impl crate::controllers::lifecycle::Reconciled for GdapFleet {
    const KIND: &'static str = KIND;
    const FINALIZER: &'static str = FINALIZER;
    fn failed_attempts(&self) -> u32 {
        self.status.as_ref().map_or(0, |s| s.failed_attempts)
    }
    /// A fleet has many customers; its log span names none.
    fn customer(&self) -> &str {
        ""
    }
    /// The Secret the fleet reads Partner Center's customer list with: its relationships'.
    fn credentials_ref(&self) -> Option<&crate::api::SecretRef> {
        self.spec.template.relationship.credentials_ref.as_ref()
    }
}

impl GdapFleet {
    fn inputs<'a>(&self, pass: &'a Pass<'_, Self>, done: &'a Done) -> Inputs<'a> {
        Inputs {
            observed: pass.observed,
            plan: pass.plan,
            done,
            paused: pass.intent.plan.rollout.paused,
            generation: self.metadata.generation,
            now: pass.now,
        }
    }
}

#[async_trait]
impl Pipeline for GdapFleet {
    type Shared = FleetContext;
    type Intent = FleetIntent;
    type Observed = Observed;
    type Plan = FleetPlan;
    type Outcome = Done;

    fn resolve(&self, _: &FleetContext) -> FleetIntent {
        resolve(self)
    }

    /// Only Partner Center's customer list needs the credentials.
    fn holds_credentials(intent: &FleetIntent, deleting: bool) -> bool {
        intent.plan.selection.partner_center && !deleting
    }

    async fn observe(
        &self,
        shared: &FleetContext,
        intent: &FleetIntent,
        credentials: Result<&Credentials, &CredentialsError>,
    ) -> Observed {
        let namespace = self.namespace().unwrap_or_default();
        let api: Api<GdapRelationship> = Api::namespaced(shared.ctx.client.clone(), &namespace);
        let pruned = self
            .status
            .as_ref()
            .map(|s| s.pruned_at.iter().map(from_time).collect())
            .unwrap_or_default();
        let poll = shared.ctx.settings.timing.poll;
        observe(
            Some(&api),
            pruned,
            &shared.lists,
            intent,
            credentials,
            poll,
            Utc::now(),
        )
        .await
    }

    fn credentials_failure(observed: &Observed) -> Option<&'static str> {
        observed.credentials_failure.as_ref().map(|f| f.reason)
    }

    fn plan(
        _: &FleetContext,
        intent: &FleetIntent,
        observed: &Observed,
        now: DateTime<Utc>,
    ) -> FleetPlan {
        decide(intent, observed, now)
    }

    fn release(&self, plan: &FleetPlan) -> Option<Release> {
        plan.done.then(|| Release {
            warning: false,
            note: "every customer's objects were pruned or let go".into(),
        })
    }

    fn released(&self, shared: &FleetContext) {
        shared.lists.forget(&self.uid().unwrap_or_default());
        let namespace = self.namespace().unwrap_or_default();
        shared
            .ctx
            .metrics
            .fleet_customers(&namespace, &self.name_any(), None);
    }

    async fn act(&self, shared: &FleetContext, pass: &Pass<'_, Self>) -> Done {
        let namespace = self.namespace().unwrap_or_default();
        let existing: HashSet<String> = pass
            .observed
            .seen
            .iter()
            .filter(|s| s.child.owner == Owner::ThisFleet)
            .map(|s| s.child.name.clone())
            .collect();
        act(
            &shared.ctx.client,
            &namespace,
            pass.plan,
            &existing,
            pass.now,
        )
        .await
    }

    fn new_status(
        &self,
        _: &FleetContext,
        pass: &Pass<'_, Self>,
        done: &Done,
        previous: &GdapFleetStatus,
    ) -> GdapFleetStatus {
        status::build(&self.inputs(pass, done), previous)
    }

    async fn tell(
        &self,
        shared: &FleetContext,
        _: &Api<Self>,
        pass: &Pass<'_, Self>,
        done: &Done,
        status: Change<'_, GdapFleetStatus>,
    ) -> Result<Next, ReconcileError> {
        let ctx = shared.ctx.as_ref();
        announce(ctx, self, done).await;
        let s = status.new;
        let counts = [
            ("active", s.active),
            ("awaiting_approval", s.awaiting_approval),
            ("failed", s.failed),
            ("waiting", s.waiting),
            ("excluded", s.excluded),
            ("filtered_out", s.filtered_out),
            ("managed_elsewhere", s.managed_elsewhere),
            ("access_refused", s.access_refused),
            ("pruning", s.pruning),
        ];
        let namespace = self.namespace().unwrap_or_default();
        ctx.metrics
            .fleet_customers(&namespace, &self.name_any(), Some(&counts));
        let failure = status::failure(&self.inputs(pass, done));
        Ok(next_after(
            ctx,
            ctx.settings.timing.poll,
            failure.as_ref(),
            status.new.failed_attempts,
        ))
    }
}

/// Events for what the pass wrote, pruned and let go.
async fn announce(ctx: &Context, fleet: &GdapFleet, done: &Done) {
    if done.written > 0 {
        let note = format!(
            "created the objects of {} new customers and brought {} up to date",
            done.created,
            done.written - done.created
        );
        ctx.publish(
            fleet,
            EventType::Normal,
            events::CUSTOMERS_APPLIED,
            "Apply",
            note,
        )
        .await;
    }
    if !done.pruned.is_empty() {
        let names: Vec<&str> = done.pruned.iter().map(|(n, _)| n.as_str()).collect();
        let note = format!(
            "deleted the objects of {} customers no longer covered (spec.prune): {}",
            names.len(),
            names.join(", ")
        );
        ctx.publish(
            fleet,
            EventType::Normal,
            events::CUSTOMERS_PRUNED,
            "Prune",
            note,
        )
        .await;
    }
    if done.released > 0 {
        let note = format!(
            "{} customers are no longer covered: their objects keep running without the fleet (spec.prune is false)",
            done.released
        );
        ctx.publish(
            fleet,
            EventType::Normal,
            events::CUSTOMERS_LET_GO,
            "LetGo",
            note,
        )
        .await;
    }
}

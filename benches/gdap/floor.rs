//! The reconcile floor: a minimal program that does, for every GdapRelationship that appears in
//! a namespace, the Kubernetes writes and the sandbox calls the operator makes for it on the way
//! to Ready — in the operator's order, with the operator's concurrency (at most
//! `--concurrency` objects in flight, first come first served, by default the operator's default
//! `--reconcile-concurrency`; 0 for every object at once; the Microsoft calls through
//! the crate's own clients, so under the same transport limits) — and
//! nothing else: no reads of the object or the Secret, no requeues, no plan, no status built
//! from observations (the bodies are fixed, of the operator's size), no event cache.
//!
//! It is the reference of the `reconcile` benchmark, not an operator: it knows the sandbox
//! approves and activates at once, so it never waits. It prints [`READY_LINE`] once it watches,
//! then one [`Summary`] line when every object is done, and runs until it is stopped.

use futures::TryStreamExt;
use gdap_operator::api::{GdapRelationship, naming};
use gdap_operator::controllers::limit::DEFAULT_RECONCILE_CONCURRENCY;
use gdap_operator::microsoft::models::gdap::{
    AccessContainer, AccessDetails, CustomerParticipant, NewAccessAssignment, NewRelationship,
};
use gdap_operator::microsoft::transport::CallRecord;
use gdap_operator::microsoft::{
    DelegatedToken, Endpoints, MicrosoftClients, PartnerCredentials, RelationshipFilter,
    TokenOptions, TransportConfig, rotation_fn,
};
use gdap_operator::sandbox::defaults;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Printed once the watch is established.
pub const READY_LINE: &str = "floor: watching";
/// The finalizer the operator adds.
const FINALIZER: &str = "gdap.io/relationship";
/// The field manager of the status writes.
const MANAGER: &str = "gdap-operator";
/// Directory Readers and Helpdesk Administrator, the roles of the benchmark's objects.
const ROLES: [&str; 2] = [
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",
];

/// Options of `floor-reconcile`.
#[derive(clap::Args)]
pub struct FloorArgs {
    /// Kubeconfig of the API server.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The namespace to watch.
    #[arg(long)]
    namespace: String,
    /// The sandbox's base URL.
    #[arg(long)]
    sandbox: String,
    /// How many objects to finish.
    #[arg(long)]
    objects: usize,
    /// How many objects are in flight at once (0: all): the operator's `--reconcile-concurrency`.
    #[arg(long, default_value_t = usize::from(DEFAULT_RECONCILE_CONCURRENCY))]
    concurrency: usize,
}

/// What the floor did.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Objects finished.
    pub objects: usize,
    /// Graph calls made (tokens excluded), as the operator's `gdap_microsoft_calls_total`.
    pub graph_calls: u64,
}

/// Shared by every object's task.
struct Floor {
    client: kube::Client,
    namespace: String,
    clients: MicrosoftClients,
    token: DelegatedToken,
    in_flight: tokio::sync::Semaphore,
}

/// Runs the floor until it is stopped.
pub async fn run(args: FloorArgs) -> anyhow::Result<()> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let graph_calls = Arc::new(AtomicU64::new(0));
    let clients = microsoft(&client, &args.namespace, &args.sandbox, graph_calls.clone())?;
    let token = clients.tokens.partner_graph();
    let floor = Arc::new(Floor {
        client: client.clone(),
        namespace: args.namespace.clone(),
        clients,
        token,
        in_flight: tokio::sync::Semaphore::new(match args.concurrency {
            0 => tokio::sync::Semaphore::MAX_PERMITS,
            n => n,
        }),
    });
    let done = Arc::new(AtomicUsize::new(0));
    let (finished, mut all_done) = tokio::sync::mpsc::unbounded_channel::<()>();
    let api: Api<GdapRelationship> = Api::namespaced(client, &args.namespace);
    let mut seen = HashSet::new();
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
    let objects = args.objects;
    loop {
        tokio::select! {
            event = events.try_next() => {
                let Some(event) = event? else { anyhow::bail!("the watch ended") };
                match event {
                    watcher::Event::InitDone => println!("{READY_LINE}"),
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                        let uid = o.metadata.uid.clone().unwrap_or_default();
                        if seen.insert(uid) {
                            let (floor, done, finished) = (floor.clone(), done.clone(), finished.clone());
                            tokio::spawn(async move {
                                let _slot = floor.in_flight.acquire().await;
                                if let Err(e) = floor.reconcile(&o).await {
                                    eprintln!("floor: {}: {e:#}", o.metadata.name.clone().unwrap_or_default());
                                } else if done.fetch_add(1, Ordering::SeqCst) + 1 == objects {
                                    let _ = finished.send(());
                                }
                            });
                        }
                    }
                    _ => {}
                }
            }
            Some(()) = all_done.recv() => break,
        }
    }
    let summary = Summary {
        objects,
        graph_calls: graph_calls.load(Ordering::SeqCst),
    };
    println!("{}", serde_json::to_string(&summary)?);
    // Stay alive (and measurable) until stopped.
    std::future::pending::<()>().await;
    Ok(())
}

/// The crate's Microsoft clients, as the operator builds them; a rotated refresh token is written
/// back to the Secret as the operator does.
fn microsoft(
    client: &kube::Client,
    namespace: &str,
    sandbox: &str,
    graph_calls: Arc<AtomicU64>,
) -> anyhow::Result<MicrosoftClients> {
    let mut config = TransportConfig::new(Endpoints::local(sandbox, None)?);
    config.call_observer = Some(Arc::new(move |call: &CallRecord| {
        if call.service == "graph" {
            graph_calls.fetch_add(1, Ordering::Relaxed);
        }
    }));
    let credentials = PartnerCredentials {
        partner_tenant_id: defaults::PARTNER_TENANT_ID.into(),
        client_id: defaults::PARTNER_CLIENT_ID.into(),
        client_credential: defaults::PARTNER_CLIENT_SECRET.into(),
        refresh_token: defaults::PARTNER_REFRESH_TOKEN.into(),
        refresh_token_issued_at: Some(chrono::Utc::now()),
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let rotation = rotation_fn(move |rotated| {
        let secrets = secrets.clone();
        async move {
            let patch = json!({"stringData": {"refreshToken": rotated.refresh_token.expose()}});
            secrets
                .patch(
                    "partner-credentials",
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map(drop)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        }
    });
    Ok(MicrosoftClients::new(
        config,
        credentials,
        rotation,
        TokenOptions::default(),
    )?)
}

impl Floor {
    fn objects(&self) -> Api<GdapRelationship> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The operator's writes and calls for one object, in its order, without a pause: its four
    /// reconciles on the way to Ready, as the API server and the sandbox count them (the
    /// finalizer patch; 3 status writes, each carrying the pending writes; 2 events: approval
    /// requested, Ready; 9 Graph calls).
    async fn reconcile(&self, object: &GdapRelationship) -> anyhow::Result<()> {
        let name = object.metadata.name.clone().unwrap_or_default();
        let uid = object.metadata.uid.clone().unwrap_or_default();
        let display_name = naming::display_name(None, &name, &uid);
        let gdap = self.clients.gdap.as_ref();
        let token = &self.token;
        let api = self.objects();
        // 1. The finalizer (kube's helper: a JSON patch, test and add).
        let finalizer = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}
        ]);
        let finalizer: json_patch::Patch = serde_json::from_value(finalizer)?;
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::<()>::Json(finalizer),
        )
        .await?;
        // 2. Looked up by display name (the default name carries the uid: no create intent),
        //    created and locked for approval.
        let by_name = RelationshipFilter {
            display_name: Some(display_name.clone()),
            ..Default::default()
        };
        gdap.list_relationships(token, &by_name).await?;
        let body = NewRelationship {
            display_name: display_name.clone(),
            duration: "P730D".into(),
            customer: Some(CustomerParticipant {
                tenant_id: defaults::CONTOSO_TENANT_ID.into(),
                display_name: None,
            }),
            access_details: AccessDetails::from_role_ids(ROLES),
            auto_extend_duration: Some("PT0S".into()),
        };
        let created = gdap.create_relationship(token, &body).await?;
        gdap.lock_for_approval(token, &created.id).await?;
        let mut status = Status::new(&display_name);
        status.id = Some(created.id.clone());
        status.state = "approvalPending";
        status.pending = 2;
        self.status(&name, status.body("ApprovalPending")).await?;
        let note = format!(
            "created relationship {} ({display_name}) and locked for approval; send the customer's Global Administrator this link: {}",
            created.id,
            gdap_operator::microsoft::approval_url(&created.id)
        );
        self.event(object, "ApprovalRequested", "LockForApproval", &note)
            .await?;
        // 3. Active (the sandbox approves and activates at once): the group is assigned.
        gdap.get_relationship(token, &created.id).await?;
        gdap.list_access_assignments(token, &created.id).await?;
        let assignment = NewAccessAssignment {
            access_container: AccessContainer::security_group(defaults::HELPDESK_GROUP_ID),
            access_details: AccessDetails::from_role_ids(ROLES),
        };
        gdap.create_access_assignment(token, &created.id, &assignment)
            .await?;
        status.state = "active";
        status.assignment = Some("pending");
        status.pending = 1;
        self.status(&name, status.body("AssignmentsPending"))
            .await?;
        // 4. Everything active: Ready.
        gdap.get_relationship(token, &created.id).await?;
        gdap.list_access_assignments(token, &created.id).await?;
        status.assignment = Some("active");
        status.pending = 0;
        self.status(&name, status.body("Active")).await?;
        let note = "Ready: active, and every access assignment is active";
        self.event(object, "Active", "ReadyTrue", note).await?;
        Ok(())
    }

    /// A status write as the operator makes it: server-side apply on /status, forced.
    async fn status(&self, name: &str, status: Value) -> anyhow::Result<()> {
        let patch =
            json!({"apiVersion": "gdap.io/v1alpha1", "kind": "GdapRelationship", "status": status});
        self.objects()
            .patch_status(
                name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        Ok(())
    }

    /// An event as kube's recorder creates it (no cache, no series).
    async fn event(
        &self,
        object: &GdapRelationship,
        reason: &str,
        action: &str,
        note: &str,
    ) -> anyhow::Result<()> {
        use kube::Resource;
        let now = k8s_openapi::jiff::Timestamp::now();
        let reference = object.object_ref(&());
        let name = reference.name.clone().unwrap_or_default();
        let event = Event {
            action: Some(action.chars().take(128).collect()),
            reason: Some(reason.into()),
            note: Some(note.into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(reference.clone()),
            reporting_controller: Some(MANAGER.into()),
            reporting_instance: Some(MANAGER.into()),
            type_: Some("Normal".into()),
            metadata: kube::api::ObjectMeta {
                namespace: reference.namespace.clone(),
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                ..Default::default()
            },
            ..Default::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        events.create(&PostParams::default(), &event).await?;
        Ok(())
    }
}

/// The status the floor writes: the operator's fields and six conditions, filled in as the
/// object progresses, so each write is the operator's size.
struct Status {
    display_name: String,
    id: Option<String>,
    state: &'static str,
    assignment: Option<&'static str>,
    /// How many writes `status.pendingWrites` records (about the operator's size each).
    pending: usize,
}

impl Status {
    fn new(display_name: &str) -> Status {
        Status {
            display_name: display_name.into(),
            id: None,
            state: "",
            assignment: None,
            pending: 0,
        }
    }

    fn body(&self, reason: &str) -> Value {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let ready = reason == "Active";
        let condition = |type_: &str, ok: bool, reason: &str, message: &str| {
            json!({"type": type_, "status": if ok { "True" } else { "False" }, "reason": reason,
                   "message": message, "lastTransitionTime": now, "observedGeneration": 1})
        };
        let active = self.state == "active";
        let assignments: Vec<Value> = self
            .assignment
            .map(|state| {
                json!({"securityGroupId": defaults::HELPDESK_GROUP_ID, "roles": ROLES,
                       "id": "41e388c3-c728-4573-aaad-2bfc3e928e1d", "state": state})
            })
            .into_iter()
            .collect();
        json!({
            "displayName": self.display_name,
            "relationshipId": self.id,
            "state": (!self.state.is_empty()).then_some(self.state),
            "observedGeneration": 1,
            "approvalUrl": self.id.as_deref().map(gdap_operator::microsoft::approval_url),
            "approvalExpiresAt": self.id.as_ref().map(|_| now.clone()),
            "activatedAt": active.then(|| now.clone()),
            "endsAt": active.then(|| now.clone()),
            "accessAssignments": assignments,
            "pendingWrites": (self.pending > 0).then(|| {
                let write = json!({"kind": "assign", "relationshipId": self.id, "groupId": defaults::HELPDESK_GROUP_ID,
                                   "id": "41e388c3-c728-4573-aaad-2bfc3e928e1d", "roleIds": ROLES, "at": now});
                serde_json::to_string(&vec![write; self.pending]).unwrap_or_default()
            }),
            "conditions": [
                condition("AccessAssigned", ready, reason, "1 security group(s) assigned"),
                condition("Approved", active, reason, "the customer approved the relationship"),
                condition("Expiring", false, "NotExpiring", "ends at 2028-11-30T06:01:41.208424300+00:00 (729 days left)"),
                condition("Ready", ready, reason, "active, and every access assignment is active"),
                condition("Renewing", false, "NotRenewing", "spec.renewal.policy is None: no successor is requested"),
                condition("Synced", true, "Reconciled", "the spec is applied"),
            ],
        })
    }
}

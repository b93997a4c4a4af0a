//! `gdap-operator plan FILE|DIR…`: what the operator would do for these manifests, read-only.
//!
//! Contract: each GdapRelationship is checked by the same rules as `validate`, then Microsoft is
//! read through the controller's own `observe` and the steps come from the controller's own pure
//! `plan`, run forward by `simulate` — so the plan cannot disagree with the operator. Nothing is
//! written anywhere (the rotated refresh token only with `--write-back`). A manifest that cannot
//! be observed is an error in the plan, never "nothing exists"; and objects are only ever planned
//! from manifests that are present: a missing file is never read as "delete this".
//!
//! Without `--from-cluster` every object is planned as the manifest says, as if applied fresh;
//! with it, each object's uid, annotations and status are read from the cluster first (kubeconfig),
//! so the plan continues from where the operator is (a recorded relationship id, a successor in
//! progress, a derived display name).
//!
//! Exit status: 0 nothing to do, 2 changes, 1 an error (an invalid manifest, a read that failed,
//! or a change the operator refuses).

use super::credentials::CredentialArgs;
use super::describe::{describe, what_follows};
pub use super::report::{ObjectPlan, PlanReport, SCHEMA_VERSION, Summary, Verdict};
use super::simulate::{End, simulate};
use crate::api::{GdapFleet, GdapRelationship, ManagementPolicy};
use crate::controllers::credentials::Credentials;
use crate::controllers::gdap_relationship::desired::{self, Intent};
use crate::controllers::gdap_relationship::observe::observe;
use crate::controllers::gdap_relationship::plan::{Action, Observed, Timing};
use crate::validate::{self, ManifestValidator, Outcome};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use kube::ResourceExt;
use std::path::PathBuf;

/// Options of `gdap-operator plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Manifest files or directories (searched recursively for .yaml/.yml).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// `text` (for people) or `json` (for machines; schema in docs/adopting.md).
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Read each object's uid, annotations and status from the cluster first, so the plan
    /// continues from where the operator is.
    #[arg(long)]
    pub from_cluster: bool,
    /// Kubeconfig for --from-cluster (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "GDAP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of manifests that set none (--from-cluster; default: the kubeconfig's).
    #[arg(long, short)]
    pub namespace: Option<String>,
    /// Partner credentials and Microsoft endpoints.
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Lines for people, like `terraform plan`.
    Text,
    /// One JSON document.
    Json,
}

/// One manifest as read from a file.
#[derive(Debug, Clone)]
pub enum Loaded {
    /// A GdapRelationship to plan.
    Relationship(Box<GdapRelationship>, ObjectPlan),
    /// A GdapFleet to plan (its next pass).
    Fleet(Box<GdapFleet>, ObjectPlan),
    /// Reported as it is (invalid, or a kind without a controller).
    Reported(ObjectPlan),
}

fn blank(kind: &str, namespace: Option<String>, name: &str, file: &std::path::Path) -> ObjectPlan {
    ObjectPlan {
        kind: kind.into(),
        namespace,
        name: name.into(),
        file: file.display().to_string(),
        customer: None,
        relationship_id: None,
        state: None,
        management_policy: None,
        result: Verdict::NoChanges,
        steps: Vec::new(),
        then: None,
        drift: Vec::new(),
        error: None,
        notes: Vec::new(),
    }
}

/// Reads and validates the manifests; returns them and the count of other documents.
pub fn load(
    paths: &[PathBuf],
    default_namespace: Option<&str>,
) -> anyhow::Result<(Vec<Loaded>, usize)> {
    let validator = ManifestValidator::new();
    let mut loaded = Vec::new();
    let mut others = 0;
    for file in validate::collect_files(paths)? {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let value = match serde::Deserialize::deserialize(document) {
                Ok(serde_yaml::Value::Null) => continue,
                Ok(v) => validate::yaml_to_json(v),
                Err(e) => anyhow::bail!(
                    "{}: document {}: not valid YAML: {e}",
                    file.display(),
                    index + 1
                ),
            };
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or("(no name)")
                .to_string();
            let namespace = value["metadata"]["namespace"]
                .as_str()
                .or(default_namespace)
                .map(str::to_string);
            let mut entry = blank(&kind, namespace.clone(), &name, &file);
            match validator.validate_object(&value) {
                Outcome::Skipped => others += 1,
                Outcome::Checked(problems) if !problems.is_empty() => {
                    let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                    entry.result = Verdict::Error;
                    entry.error = Some(format!("invalid manifest: {}", lines.join("; ")));
                    loaded.push(Loaded::Reported(entry));
                }
                Outcome::Checked(_) if kind == "GdapRelationship" => {
                    let mut object: GdapRelationship = serde_json::from_value(value)?;
                    object.metadata.namespace = namespace;
                    loaded.push(Loaded::Relationship(Box::new(object), entry));
                }
                Outcome::Checked(_) if kind == "GdapFleet" => {
                    let mut object: GdapFleet = serde_json::from_value(value)?;
                    object.metadata.namespace = namespace;
                    loaded.push(Loaded::Fleet(Box::new(object), entry));
                }
                Outcome::Checked(_) => {
                    entry.result = Verdict::Skipped;
                    entry.notes.push(format!(
                        "plan covers GdapRelationship and GdapFleet only; {kind} is not planned"
                    ));
                    loaded.push(Loaded::Reported(entry));
                }
            }
        }
    }
    Ok((loaded, others))
}

/// The placeholder uid of objects planned from a file alone (their display name may derive from it).
pub const PLACEHOLDER_UID: &str = "xxxxxxxx";

/// Plans one relationship: observe (reads only), then the simulated steps.
pub async fn plan_relationship(
    object: &GdapRelationship,
    mut entry: ObjectPlan,
    credentials: &Credentials,
    timing: &Timing,
    now: DateTime<Utc>,
) -> ObjectPlan {
    let mut object = object.clone();
    if object.metadata.uid.is_none() {
        object.metadata.uid = Some(PLACEHOLDER_UID.into());
        if object.spec.display_name.is_none() && object.spec.relationship_id.is_none() {
            entry.notes.push(format!(
                "spec.displayName is not set: the relationship will be named {}-<the first 8 characters of the object's uid> when the object is applied; for an object already applied, plan with --from-cluster",
                object.name_any()
            ));
        }
    }
    let intent = desired::resolve(&object);
    entry.customer = Some(intent.customer.clone());
    entry.management_policy = Some(format!("{:?}", intent.management));
    let (observed, error) = observe(&object, &intent, Ok(credentials)).await;
    if let Some(error) = error {
        entry.result = Verdict::Error;
        entry.error = Some(error.to_string());
        return entry;
    }
    decide(entry, &intent, &observed, timing, now)
}

/// The verdict for an observed object (pure).
pub fn decide(
    mut entry: ObjectPlan,
    intent: &Intent,
    observed: &Observed,
    timing: &Timing,
    now: DateTime<Utc>,
) -> ObjectPlan {
    if let Some(rel) = observed.relationship() {
        entry.relationship_id = Some(rel.id.clone());
        entry.state = Some(rel.status.to_string());
    }
    let current = observed.relationship().map(|r| r.id.clone());
    let describe = |a: &Action| describe(a, current.as_deref());
    let simulation = simulate(intent, observed, timing, now);
    entry.steps = simulation.steps.iter().filter_map(describe).collect();
    let pending_groups = match (&intent.spec, observed.relationship()) {
        (Ok(d), Some(r)) if r.status.as_str() != "active" => d.assignments.len(),
        (Ok(d), None) => d.assignments.len(),
        _ => 0,
    };
    entry.then = what_follows(&simulation.end, pending_groups);
    entry.result = match (&simulation.end, entry.steps.is_empty()) {
        (End::Refuse(_), _) | (End::StepLimit, _) => {
            entry.error = entry.then.take();
            Verdict::Error
        }
        (_, false) => Verdict::Changes,
        (_, true) => Verdict::NoChanges,
    };
    if intent.management == ManagementPolicy::Observe && entry.result != Verdict::Error {
        let manage = Intent {
            management: ManagementPolicy::Manage,
            ..intent.clone()
        };
        entry.drift = simulate(&manage, observed, timing, now)
            .steps
            .iter()
            .filter_map(describe)
            .filter(|s| s.target == "microsoft")
            .collect();
    }
    entry
}

/// With `--from-cluster`: the live object's uid, annotations and status under the file's spec.
async fn merge_live(
    client: &kube::Client,
    object: &mut GdapRelationship,
    default_namespace: &str,
) -> anyhow::Result<bool> {
    let namespace = object
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| default_namespace.to_string());
    let api: kube::Api<GdapRelationship> = kube::Api::namespaced(client.clone(), &namespace);
    let Some(live) = api.get_opt(&object.name_any()).await? else {
        return Ok(false);
    };
    object.metadata.namespace = Some(namespace);
    object.metadata.uid = live.metadata.uid;
    object.metadata.annotations = live.metadata.annotations;
    object.metadata.generation = live.metadata.generation;
    object.metadata.deletion_timestamp = live.metadata.deletion_timestamp;
    object.status = live.status;
    Ok(true)
}

/// Plans every loaded manifest (observing up to `concurrency` objects at once).
pub async fn plan_all(
    loaded: Vec<Loaded>,
    others: usize,
    credentials: &Credentials,
    cluster: Option<(&kube::Client, &str)>,
    concurrency: usize,
) -> PlanReport {
    let timing = Timing::default();
    let now = Utc::now();
    let objects: Vec<ObjectPlan> = futures::stream::iter(loaded)
        .map(|item| {
            let timing = &timing;
            async move {
                match item {
                    Loaded::Reported(entry) => entry,
                    Loaded::Fleet(object, entry) => {
                        super::fleet_plan::plan_fleet(*object, entry, credentials, cluster).await
                    }
                    Loaded::Relationship(mut object, mut entry) => {
                        if let Some((client, namespace)) = cluster {
                            match merge_live(client, &mut object, namespace).await {
                                Ok(true) => entry.namespace = object.metadata.namespace.clone(),
                                Ok(false) => entry
                                    .notes
                                    .push("not in the cluster yet: planned as new".into()),
                                Err(e) => {
                                    entry.result = Verdict::Error;
                                    entry.error = Some(format!(
                                        "reading the object from the cluster failed: {e}"
                                    ));
                                    return entry;
                                }
                            }
                        }
                        plan_relationship(&object, entry, credentials, timing, now).await
                    }
                }
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    PlanReport::new(objects, others)
}

/// Runs `gdap-operator plan`; returns the exit code.
pub async fn run(args: PlanArgs) -> anyhow::Result<u8> {
    let (loaded, others) = load(&args.paths, args.namespace.as_deref())?;
    let credentials = args.credentials.credentials()?;
    let client = match args.from_cluster {
        true => {
            let config = crate::run::kube_config(args.kubeconfig.as_deref()).await?;
            let namespace = args
                .namespace
                .clone()
                .unwrap_or_else(|| config.default_namespace.clone());
            Some((kube::Client::try_from(config)?, namespace))
        }
        false => None,
    };
    let cluster = client.as_ref().map(|(c, n)| (c, n.as_str()));
    let report = plan_all(
        loaded,
        others,
        &credentials,
        cluster,
        args.credentials.concurrency,
    )
    .await;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print!("{}", super::render::text(&report)),
    }
    Ok(report.exit_code())
}

//! Approval to Ready, with and without Partner Center webhooks: relationships awaiting approval,
//! the operator at its default `--poll-interval` (30 s), every customer approving at once, and the
//! time from each approval to its relationship's Ready. With webhooks the sandbox's signed events
//! reach the operator's receiver; without, only polling sees the approval. Both on the sandbox's
//! default, Microsoft-like timing (activation after 1 s, reads lagging 1–5 s after writes).
//!
//! The relationships are brought to `approvalPending` by an operator polling every second, which
//! is then replaced by the measured one (so both start from the same state, each object seen
//! once), alternating which goes first.

use crate::fleet::poll;
use crate::reconcile::{self, namespace_with_credentials};
use crate::report::{Bound, Bounded, Divide, Figure};
use crate::{AllArgs, Outcome, procs, support};
use gdap_operator::api::GdapRelationship;
use kube::api::Api;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The benchmark's section title.
const BENCHMARK: &str = "Approval to Ready: webhooks and polling";
/// Relationships approved at once in each run.
const RELATIONSHIPS: usize = 20;
/// The measured operator's `--poll-interval` (its default).
const POLL: &str = "30s";
/// Longest wait for a phase.
const TIMEOUT: Duration = Duration::from_secs(300);
/// The receiver's path.
const PATH: &str = "/webhooks/partner-center";

/// Seconds from approval to Ready, per relationship, of one run.
type Run = Vec<f64>;

/// The benchmark.
pub async fn run(args: &AllArgs) -> anyhow::Result<Outcome> {
    let cp = support::controlplane::get();
    let client = cp.client().await;
    let work = tempfile::tempdir()?;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        for webhooks in [run % 2 == 0, run % 2 != 0] {
            let seconds = one_run(cp, &client, work.path(), webhooks).await?;
            println!(
                "bench: approval run {} ({}): median {:.1} s, slowest {:.1} s to Ready",
                run + 1,
                if webhooks { "webhooks" } else { "polling" },
                median(&seconds),
                max(&seconds)
            );
            match webhooks {
                true => with.push(seconds),
                false => without.push(seconds),
            }
        }
    }
    Ok(outcome(&with, &without))
}

fn outcome(with: &[Run], without: &[Run]) -> Outcome {
    let reference = "the same operator without webhooks (polling every 30 s)";
    let figure = |id: &str, what: &str, f: fn(&Run) -> f64| {
        Figure::new(id, BENCHMARK, what, "s", with.iter().map(f).collect()).against(
            reference,
            without.iter().map(f).collect(),
            Divide::FigureByReference,
            "webhooks ÷ polling",
        )
    };
    let figures =
        vec![
        figure(
            "webhooks.medianApprovalToReady",
            "a customer's approval to Ready, median of 20 approved at once, --poll-interval 30s",
            |r| median(r),
        )
        .target("within 10 s with webhooks", Bounded::Value, Bound::AtMost(10.0)),
        figure(
            "webhooks.slowestApprovalToReady",
            "a customer's approval to Ready, slowest of 20",
            |r| max(r),
        ),
    ];
    let mut out = Outcome {
        figures,
        ..Outcome::default()
    };
    out.details.insert(
        BENCHMARK.into(),
        serde_json::json!({"how": "a fresh release sandbox per run with its default timing (activation 1 s, read lag 1–5 s) and throttling off; 20 relationships brought to approvalPending by an operator polling every second, which is then stopped; the measured operator (--poll-interval 30s, with or without --webhook-listen and the sandbox's webhook registration) is ready and has reconciled each relationship once before the 20 approvals are sent; Ready is read from the API server every 250 ms"}),
    );
    out
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

async fn one_run(
    cp: &support::controlplane::ControlPlane,
    client: &kube::Client,
    work: &Path,
    webhooks: bool,
) -> anyhow::Result<Run> {
    let sandbox = procs::sandbox(&["--throttle-budget", "0"], work)?;
    let namespace = namespace_with_credentials(cp, client, "bench-hooks").await?;
    let log = work.join(format!("{namespace}.log"));
    let api: Api<GdapRelationship> = Api::namespaced(client.clone(), &namespace);
    let ids = bring_to_approval(cp, &api, &namespace, &sandbox, &log).await?;
    let mut flags: Vec<String> = ["--poll-interval", POLL].map(String::from).to_vec();
    if webhooks {
        flags.extend(receiver(&sandbox, work).await?);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let op = procs::operator(&cp.kubeconfig, &namespace, &sandbox, &flags, &log)?;
    op.wait_ready(Duration::from_secs(60)).await?;
    poll(TIMEOUT, || async {
        let seen = op
            .metric_sum("gdap_reconciles_total{kind=\"GdapRelationship\"")
            .await;
        (seen >= RELATIONSHIPS as f64).then_some(())
    })
    .await?;
    let approved = approve_all(&sandbox, &ids).await?;
    let ready = ready_times(&api, RELATIONSHIPS).await?;
    op.proc.stop();
    sandbox.proc.stop();
    reconcile::clean_up(client, &namespace).await;
    Ok(ready
        .iter()
        .filter_map(|(name, at)| Some((*at - *approved.get(name)?).as_secs_f64()))
        .collect())
}

/// Applies the relationships, lets a fast-polling operator bring them to approvalPending, stops
/// it; the relationship ids by object name.
async fn bring_to_approval(
    cp: &support::controlplane::ControlPlane,
    api: &Api<GdapRelationship>,
    namespace: &str,
    sandbox: &procs::SandboxProc,
    log: &Path,
) -> anyhow::Result<BTreeMap<String, String>> {
    let op = procs::operator(
        &cp.kubeconfig,
        namespace,
        sandbox,
        &["--poll-interval", "1s"],
        log,
    )?;
    let docs: Vec<String> = (0..RELATIONSHIPS)
        .map(|i| {
            let customer = gdap_operator::sandbox::defaults::CONTOSO_TENANT_ID;
            reconcile::relationship(&format!("approve-{i:02}"), customer)
        })
        .collect();
    let file = log.with_extension("yaml");
    std::fs::write(&file, docs.join("---\n"))?;
    cp.kubectl_ok(&["apply", "-n", namespace, "-f", file.to_str().unwrap()]);
    let ids = poll(TIMEOUT, || async {
        let list = api.list(&Default::default()).await.ok()?;
        let pending: BTreeMap<String, String> = list
            .items
            .iter()
            .filter_map(|o| {
                let s = o.status.as_ref()?;
                (s.state.as_deref() == Some("approvalPending") && s.approval_url.is_some())
                    .then(|| Some((o.metadata.name.clone()?, s.relationship_id.clone()?)))?
            })
            .collect();
        (pending.len() == RELATIONSHIPS).then_some(pending)
    })
    .await?;
    op.proc.stop();
    Ok(ids)
}

/// The receiver's flags, with the sandbox's CA as trust anchor and the sandbox registered to
/// deliver to it.
async fn receiver(sandbox: &procs::SandboxProc, work: &Path) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let base = &sandbox.base_url;
    let ca = http
        .get(format!("{base}/_sandbox/webhooks/certificate-authority"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let anchors = work.join("webhook-ca.pem");
    std::fs::write(&anchors, ca)?;
    let port = procs::free_port();
    let registration = serde_json::json!({
        "webhookUrl": format!("http://127.0.0.1:{port}{PATH}"),
        "webhookEvents": [
            "granular-admin-relationship-approved", "granular-admin-relationship-activated",
            "granular-admin-access-assignment-created", "granular-admin-access-assignment-activated"
        ]
    });
    http.put(format!("{base}/_sandbox/webhooks/registration"))
        .json(&registration)
        .send()
        .await?
        .error_for_status()?;
    Ok(vec![
        "--webhook-listen".into(),
        format!("127.0.0.1:{port}"),
        "--webhook-trust-anchors".into(),
        anchors.display().to_string(),
        "--webhook-certificate-url-prefix".into(),
        format!("{base}/cert/"),
    ])
}

/// Approves every relationship as its customer; when each approval was sent, by object name.
async fn approve_all(
    sandbox: &procs::SandboxProc,
    ids: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, Instant>> {
    let http = reqwest::Client::new();
    let mut sent = BTreeMap::new();
    for (name, id) in ids {
        let url = format!("{}/_sandbox/relationships/{id}/approve", sandbox.base_url);
        sent.insert(name.clone(), Instant::now());
        http.post(url)
            .json(&serde_json::json!({}))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(sent)
}

/// When each relationship was first seen Ready (read every 250 ms), until `objects` are.
async fn ready_times(
    api: &Api<GdapRelationship>,
    objects: usize,
) -> anyhow::Result<BTreeMap<String, Instant>> {
    let deadline = Instant::now() + TIMEOUT;
    let mut ready = BTreeMap::new();
    while ready.len() < objects {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every relationship Ready within {TIMEOUT:?}"
        );
        for o in api.list(&Default::default()).await?.items {
            if reconcile::is_ready(&o) {
                let name = o.metadata.name.clone().unwrap_or_default();
                ready.entry(name).or_insert_with(Instant::now);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(ready)
}

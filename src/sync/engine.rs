//! The import engine: Graph pages → rows → sink, with bounded buffers.
//!
//! See [`crate::sync`] for the contract of [`run_import`].

use super::error::{ImportError, SinkError};
use super::plan::{BATCH_ROWS, FullReason, ImportOptions, Listing, PAGE_SIZE, RunPlan, plan_run};
use super::report::{ImportReport, RowCounts, sku_reports};
use super::rows::{DeletedReason, SubscriptionRow, UserRecord};
use super::sink::{Commit, RunInfo, RunWriter, Sink, SyncState, new_run_id};
use crate::microsoft::models::directory::{DeltaItem, DeltaStart, SubscribedSku};
use crate::microsoft::{AppToken, DirectoryApi, Reason, TokenSource, UserQuery};
use chrono::{DateTime, Utc};
use futures::SinkExt;
use futures::channel::mpsc;
use futures::stream::{BoxStream, StreamExt};
use tracing::Instrument;

/// Imports one customer tenant into a sink and reports what it found.
///
/// `token` must be the partner app's app-only token *for this tenant*. See the module docs of
/// [`crate::sync`] for what happens, what is guaranteed on failure, and how errors are classed.
pub async fn run_import(
    directory: &dyn DirectoryApi,
    token: &AppToken,
    tenant_id: &str,
    options: &ImportOptions,
    sink: &mut dyn Sink,
) -> Result<ImportReport, ImportError> {
    if !token.tenant_id().eq_ignore_ascii_case(tenant_id) {
        return Err(ImportError::Options(format!(
            "the app token is for tenant {} but the import is for tenant {tenant_id}; ask the token provider for an app token of the customer tenant",
            token.tenant_id()
        )));
    }
    let span = tracing::info_span!("import", tenant = tenant_id, sink = %sink.describe());
    async {
        let job = Job {
            directory,
            token,
            tenant_id: tenant_id.to_ascii_lowercase(),
            options,
            started_at: now(),
            clock: std::time::Instant::now(),
        };
        let state = sink.state(&job.tenant_id).await?;
        let plan = plan_run(options, state.as_ref(), job.started_at);
        match job.run(&plan, state.as_ref(), sink).await {
            Err(ImportError::Directory { source, .. })
                if source.reason() == Reason::DeltaExpired
                    && matches!(plan, RunPlan::Incremental { .. }) =>
            {
                tracing::warn!("the stored deltaLink expired; making a full pass instead");
                let full = RunPlan::Full {
                    listing: Listing::Delta,
                    reason: FullReason::DeltaExpired,
                };
                job.run(&full, state.as_ref(), sink).await
            }
            other => other,
        }
    }
    .instrument(span)
    .await
}

/// One import's inputs.
struct Job<'a> {
    directory: &'a dyn DirectoryApi,
    token: &'a AppToken,
    tenant_id: String,
    options: &'a ImportOptions,
    started_at: DateTime<Utc>,
    clock: std::time::Instant,
}

/// What reading the users produced.
#[derive(Default)]
struct ReadOutcome {
    delta_link: Option<String>,
    rows: RowCounts,
}

/// An item of the users stream.
enum Item {
    Record(UserRecord),
    DeltaLink(String),
}

impl Job<'_> {
    fn directory_error(
        &self,
        what: &'static str,
    ) -> impl Fn(crate::microsoft::Error) -> ImportError + '_ {
        move |source| ImportError::Directory {
            tenant: self.tenant_id.clone(),
            what,
            source,
        }
    }

    async fn run(
        &self,
        plan: &RunPlan,
        previous: Option<&SyncState>,
        sink: &mut dyn Sink,
    ) -> Result<ImportReport, ImportError> {
        let (skus, subscriptions) = self.read_licences().await?;
        let run = RunInfo {
            run_id: new_run_id(self.started_at),
            tenant_id: self.tenant_id.clone(),
            kind: plan.kind(),
            started_at: self.started_at,
        };
        tracing::info!(run = %run.run_id, kind = run.kind.as_str(), plan = ?plan_reason(plan), "import started");
        let mut writer = sink.begin(&run).await?;
        let outcome = match self.read_users(plan, &mut *writer).await {
            Ok(outcome) => outcome,
            Err(e) => {
                writer.abort(&e.to_string()).await;
                return Err(e);
            }
        };
        if matches!(plan, RunPlan::Full { .. }) && outcome.rows.users == 0 {
            let e = ImportError::EmptyListing {
                tenant: self.tenant_id.clone(),
            };
            writer.abort(&e.to_string()).await;
            return Err(e);
        }
        let state = SyncState {
            run_id: run.run_id.clone(),
            delta_link: outcome.delta_link,
            fields: self.options.fields_fingerprint(),
            last_full_sync: match (plan, previous) {
                (RunPlan::Incremental { .. }, Some(p)) => p.last_full_sync,
                _ => self.started_at,
            },
        };
        let reports = sku_reports(&skus, &subscriptions);
        let rows = RowCounts {
            skus: skus.len() as u64,
            subscriptions: subscriptions.len() as u64,
            ..outcome.rows
        };
        let finished_at = now();
        let users = writer
            .commit(Commit {
                skus: &skus,
                subscriptions: &subscriptions,
                sku_reports: &reports,
                state: &state,
                rows,
                finished_at,
            })
            .await?;
        let report = ImportReport {
            run_id: run.run_id,
            tenant_id: self.tenant_id.clone(),
            kind: run.kind,
            full_reason: plan_reason(plan),
            started_at: self.started_at,
            finished_at,
            duration: self.clock.elapsed(),
            users,
            skus: reports,
            rows,
        };
        tracing::info!(run = %report.run_id, users = report.users.total, rows = ?report.rows, seconds = report.duration.as_secs_f64(), "import finished");
        Ok(report)
    }

    async fn read_licences(
        &self,
    ) -> Result<(Vec<SubscribedSku>, Vec<SubscriptionRow>), ImportError> {
        let skus = self
            .directory
            .subscribed_skus(self.token)
            .await
            .map_err(self.directory_error("subscribed SKUs"))?;
        let partner = self.options.partner_tenant_id.as_deref();
        let subscriptions = self
            .directory
            .subscriptions(self.token)
            .await
            .map_err(self.directory_error("subscriptions"))?
            .into_iter()
            .map(|s| SubscriptionRow::new(s, partner))
            .collect();
        Ok((skus, subscriptions))
    }

    fn users_stream(
        &self,
        plan: &RunPlan,
    ) -> (
        BoxStream<'static, crate::microsoft::Result<Item>>,
        &'static str,
    ) {
        let select = self.options.select();
        let delta = |start: DeltaStart| {
            self.directory
                .users_delta(self.token, &start)
                .map(|r| r.map(delta_item))
                .boxed()
        };
        match plan {
            RunPlan::Full {
                listing: Listing::Users,
                ..
            } => {
                let query = UserQuery {
                    select,
                    top: Some(PAGE_SIZE),
                    filter: None,
                };
                let users = self
                    .directory
                    .users(self.token, &query)
                    .map(|r| r.map(|u| Item::Record(UserRecord::User(Box::new(u.into())))))
                    .boxed();
                (users, "users")
            }
            RunPlan::Full {
                listing: Listing::Delta,
                ..
            } => (delta(DeltaStart::Initial { select }), "the users delta"),
            RunPlan::Incremental { delta_link } => (
                delta(DeltaStart::Link(delta_link.clone())),
                "the users delta",
            ),
        }
    }

    /// Streams the users into the writer: a reader fills batches of [`BATCH_ROWS`], at most
    /// two of which wait for the writer, so memory stays flat whatever the tenant's size.
    async fn read_users(
        &self,
        plan: &RunPlan,
        writer: &mut dyn RunWriter,
    ) -> Result<ReadOutcome, ImportError> {
        let (stream, what) = self.users_stream(plan);
        let (mut tx, mut rx) = mpsc::channel::<Vec<UserRecord>>(1);
        let read = async move {
            let mut stream = stream;
            let mut outcome = ReadOutcome::default();
            let mut batch = Vec::with_capacity(BATCH_ROWS);
            while let Some(item) = stream.next().await {
                match item.map_err(self.directory_error(what))? {
                    Item::DeltaLink(link) => outcome.delta_link = Some(link),
                    Item::Record(record) => {
                        match record {
                            UserRecord::User(_) => outcome.rows.users += 1,
                            UserRecord::Removed { .. } => outcome.rows.removed += 1,
                        }
                        batch.push(record);
                        if batch.len() == BATCH_ROWS {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                            tx.send(full).await.map_err(|_| writer_gone())?;
                        }
                    }
                }
            }
            if !batch.is_empty() {
                tx.send(batch).await.map_err(|_| writer_gone())?;
            }
            Ok::<_, ImportError>(outcome)
        };
        let write = async {
            while let Some(batch) = rx.next().await {
                writer.users(&batch).await?;
            }
            Ok::<_, ImportError>(())
        };
        let (outcome, ()) = futures::try_join!(read, write)?;
        Ok(outcome)
    }
}

/// The current time to the microsecond, the precision PostgreSQL keeps, so a time stored and
/// read back compares equal.
fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

fn writer_gone() -> ImportError {
    ImportError::Sink(SinkError::Config(
        "the sink stopped taking users in the middle of a run".into(),
    ))
}

fn delta_item(item: DeltaItem) -> Item {
    match item {
        DeltaItem::Changed(user) => Item::Record(UserRecord::User(Box::new((*user).into()))),
        DeltaItem::Removed { id, reason } => Item::Record(UserRecord::Removed {
            id,
            reason: DeletedReason::from_removed(&reason),
        }),
        DeltaItem::DeltaLink(link) => Item::DeltaLink(link),
    }
}

fn plan_reason(plan: &RunPlan) -> Option<FullReason> {
    match plan {
        RunPlan::Full { reason, .. } => Some(*reason),
        RunPlan::Incremental { .. } => None,
    }
}

//! One run of the `postgres` sink: staging with binary `COPY`, then one switch transaction (see
//! the parent module).

use super::schema::{STAGING_KEYS, USER_COLUMNS, quote};
use crate::microsoft::models::directory::SubscribedSku;
use crate::sync::error::SinkError;
use crate::sync::plan::RunKind;
use crate::sync::report::UserCounts;
use crate::sync::rows::{UserRecord, UserRow};
use crate::sync::sink::contract::{Commit, RunInfo, RunWriter};
use async_trait::async_trait;
use std::pin::pin;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql, Type};
use tokio_postgres::{Client, Transaction};

/// A run being written.
pub(super) struct PgRun<'s> {
    client: &'s mut Client,
    s: String,
    run: RunInfo,
    tenant: String,
    lock_key: i64,
    seq: i64,
    copy: String,
    types: Vec<Type>,
    finished: bool,
}

fn pg(action: &'static str) -> impl Fn(tokio_postgres::Error) -> SinkError {
    move |e| SinkError::postgres(action, e)
}

/// The advisory-lock key of a tenant in a schema.
fn lock_key(schema: &str, tenant: &str) -> i64 {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("gdap-sync/{schema}/{tenant}").as_bytes(),
    );
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(first)
}

fn sql_type(name: &str) -> Type {
    match name {
        "bigint" => Type::INT8,
        "boolean" => Type::BOOL,
        "timestamptz" => Type::TIMESTAMPTZ,
        "jsonb" => Type::JSONB,
        _ => Type::TEXT,
    }
}

impl<'s> PgRun<'s> {
    pub(super) async fn start(
        client: &'s mut Client,
        schema: &str,
        run: &RunInfo,
    ) -> Result<PgRun<'s>, SinkError> {
        let tenant = run.tenant_id.to_ascii_lowercase();
        let key = lock_key(schema, &tenant);
        // This connection runs one import at a time: locks an earlier, cancelled run kept are
        // stale.
        client
            .batch_execute("SELECT pg_advisory_unlock_all()")
            .await
            .map_err(pg("release stale locks"))?;
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(pg("lock the tenant"))?
            .get(0);
        if !locked {
            return Err(SinkError::Busy {
                tenant,
                target: format!("PostgreSQL schema {schema}"),
            });
        }
        let columns: Vec<&str> = STAGING_KEYS
            .iter()
            .chain(USER_COLUMNS)
            .map(|(n, _)| *n)
            .collect();
        let s = quote(schema);
        let mut writer = PgRun {
            client,
            copy: format!(
                "COPY {s}.users_staging ({}) FROM STDIN BINARY",
                columns.join(", ")
            ),
            types: STAGING_KEYS
                .iter()
                .chain(USER_COLUMNS)
                .map(|(_, t)| sql_type(t))
                .collect(),
            s,
            run: run.clone(),
            tenant,
            lock_key: key,
            seq: 0,
            finished: false,
        };
        writer.clear_abandoned().await?;
        writer.record_start().await?;
        Ok(writer)
    }

    /// Marks runs of the tenant still `running` as abandoned (we hold the tenant's lock, so
    /// nobody runs them) and drops their staging rows.
    async fn clear_abandoned(&mut self) -> Result<(), SinkError> {
        let s = &self.s;
        let abandoned = self
            .client
            .query(
                &format!(
                    "UPDATE {s}.sync_runs SET status = 'abandoned', finished_at = now(),
                        error = 'interrupted before it finished (operator stopped or run cancelled)'
                     WHERE tenant_id = $1 AND status = 'running' RETURNING run_id"
                ),
                &[&self.tenant],
            )
            .await
            .map_err(pg("clear interrupted runs"))?;
        let ids: Vec<String> = abandoned.iter().map(|r| r.get(0)).collect();
        if !ids.is_empty() {
            tracing::info!(tenant = %self.tenant, runs = ?ids, "cleared interrupted imports");
            self.client
                .execute(
                    &format!("DELETE FROM {s}.users_staging WHERE run_id = ANY($1)"),
                    &[&ids],
                )
                .await
                .map_err(pg("clear interrupted runs"))?;
        }
        Ok(())
    }

    async fn record_start(&mut self) -> Result<(), SinkError> {
        let s = &self.s;
        self.client
            .execute(
                &format!(
                    "INSERT INTO {s}.sync_runs (run_id, tenant_id, kind, status, started_at)
                     VALUES ($1, $2, $3, 'running', $4)"
                ),
                &[
                    &self.run.run_id,
                    &self.tenant,
                    &self.run.kind.as_str(),
                    &self.run.started_at,
                ],
            )
            .await
            .map_err(pg("record the run"))?;
        Ok(())
    }

    async fn unlock(&mut self) {
        let _ = self
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&self.lock_key])
            .await;
    }

    async fn switch(&mut self, commit: &Commit<'_>) -> Result<UserCounts, SinkError> {
        let tx = self
            .client
            .transaction()
            .await
            .map_err(pg("start the switch transaction"))?;
        let ctx = Switch {
            tx: &tx,
            s: &self.s,
            run: &self.run,
            tenant: &self.tenant,
            commit,
        };
        ctx.upsert_users().await?;
        ctx.mark_removed().await?;
        if self.run.kind == RunKind::Full {
            ctx.mark_not_listed().await?;
        }
        ctx.replace_skus().await?;
        ctx.replace_subscriptions().await?;
        ctx.store_state().await?;
        let counts = ctx.counts().await?;
        ctx.finish_run(&counts).await?;
        tx.commit().await.map_err(pg("commit the switch"))?;
        Ok(counts)
    }
}

/// Writes one staging row.
async fn copy_record(
    writer: std::pin::Pin<&mut BinaryCopyInWriter>,
    keys: (&str, i64, &str),
    record: &UserRecord,
) -> Result<(), tokio_postgres::Error> {
    let blank;
    let (row, removed) = match record {
        UserRecord::User(row) => (&**row, None),
        UserRecord::Removed { id, reason } => {
            blank = UserRow {
                id: id.clone(),
                ..UserRow::default()
            };
            (&blank, Some(reason.as_str()))
        }
    };
    let (run_id, seq, tenant) = keys;
    let licences = Json(&row.assigned_licenses);
    let states = Json(&row.license_assignment_states);
    let extension = row.on_premises_extension_attributes.as_ref().map(Json);
    let phones = row.business_phones.as_ref().map(Json);
    let values: [&(dyn ToSql + Sync); 30] = [
        &run_id,
        &seq,
        &tenant,
        &row.id,
        &removed,
        &row.display_name,
        &row.user_principal_name,
        &row.mail,
        &row.given_name,
        &row.surname,
        &row.job_title,
        &row.department,
        &row.company_name,
        &row.office_location,
        &row.street_address,
        &row.city,
        &row.state,
        &row.postal_code,
        &row.country,
        &row.preferred_language,
        &row.usage_location,
        &row.employee_id,
        &row.mobile_phone,
        &row.user_type,
        &row.account_enabled,
        &row.created_date_time,
        &licences,
        &states,
        &extension,
        &phones,
    ];
    debug_assert_eq!(values.len(), STAGING_KEYS.len() + USER_COLUMNS.len());
    writer.write(&values).await
}

#[async_trait]
impl RunWriter for PgRun<'_> {
    async fn users(&mut self, batch: &[UserRecord]) -> Result<(), SinkError> {
        let sink = self
            .client
            .copy_in(&self.copy)
            .await
            .map_err(pg("start a bulk load"))?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &self.types));
        for record in batch {
            self.seq += 1;
            copy_record(
                writer.as_mut(),
                (&self.run.run_id, self.seq, &self.tenant),
                record,
            )
            .await
            .map_err(pg("bulk-load users"))?;
        }
        writer.finish().await.map_err(pg("bulk-load users"))?;
        Ok(())
    }

    async fn commit(mut self: Box<Self>, commit: Commit<'_>) -> Result<UserCounts, SinkError> {
        let result = self.switch(&commit).await;
        if let Err(e) = &result {
            self.fail(&e.to_string()).await;
        }
        self.finished = true;
        self.unlock().await;
        result
    }

    async fn abort(mut self: Box<Self>, error: &str) {
        self.fail(error).await;
        self.finished = true;
        self.unlock().await;
    }
}

impl PgRun<'_> {
    /// Marks the run failed and drops its staging rows (best effort: the next run of the
    /// tenant cleans up what this leaves).
    async fn fail(&mut self, error: &str) {
        let s = &self.s;
        let error: String = error.chars().take(2000).collect();
        let _ = self
            .client
            .execute(
                &format!(
                    "UPDATE {s}.sync_runs SET status = 'failed', finished_at = now(), error = $2 WHERE run_id = $1"
                ),
                &[&self.run.run_id, &error],
            )
            .await;
        let _ = self
            .client
            .execute(
                &format!("DELETE FROM {s}.users_staging WHERE run_id = $1"),
                &[&self.run.run_id],
            )
            .await;
    }
}

impl Drop for PgRun<'_> {
    fn drop(&mut self) {
        if !self.finished {
            tracing::info!(run = %self.run.run_id, "import cancelled; the tenant's next run clears what it wrote");
        }
    }
}

/// The statements of the switch transaction.
struct Switch<'a, 't> {
    tx: &'a Transaction<'t>,
    s: &'a str,
    run: &'a RunInfo,
    tenant: &'a str,
    commit: &'a Commit<'a>,
}

impl Switch<'_, '_> {
    fn user_columns() -> String {
        USER_COLUMNS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The last staged record of each user of the run.
    fn latest(&self) -> String {
        format!(
            "WITH latest AS (SELECT DISTINCT ON (id) * FROM {}.users_staging
                             WHERE run_id = $1 ORDER BY id, seq DESC)",
            self.s
        )
    }

    async fn upsert_users(&self) -> Result<(), SinkError> {
        let columns = Self::user_columns();
        let updates = USER_COLUMNS
            .iter()
            .map(|(n, _)| format!("{n} = EXCLUDED.{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "{latest}
             INSERT INTO {s}.users (tenant_id, id, {columns}, deleted, first_seen_run, last_seen_run)
             SELECT tenant_id, id, {columns}, false, run_id, run_id FROM latest
              WHERE removed_reason IS NULL
             ON CONFLICT (tenant_id, id) DO UPDATE SET {updates}, deleted = false,
                deleted_at = NULL, deleted_reason = NULL, last_seen_run = EXCLUDED.last_seen_run",
            latest = self.latest(),
            s = self.s
        );
        self.tx
            .execute(&sql, &[&self.run.run_id])
            .await
            .map_err(pg("upsert users"))?;
        Ok(())
    }

    async fn mark_removed(&self) -> Result<(), SinkError> {
        let sql = format!(
            "{latest}
             INSERT INTO {s}.users (tenant_id, id, deleted, deleted_at, deleted_reason,
                                    first_seen_run, last_seen_run)
             SELECT tenant_id, id, true, $2, removed_reason, run_id, run_id FROM latest
              WHERE removed_reason IS NOT NULL
             ON CONFLICT (tenant_id, id) DO UPDATE SET deleted = true,
                deleted_at = CASE WHEN {s}.users.deleted THEN {s}.users.deleted_at
                                  ELSE EXCLUDED.deleted_at END,
                deleted_reason = EXCLUDED.deleted_reason, last_seen_run = EXCLUDED.last_seen_run",
            latest = self.latest(),
            s = self.s
        );
        self.tx
            .execute(&sql, &[&self.run.run_id, &self.commit.finished_at])
            .await
            .map_err(pg("mark removed users"))?;
        Ok(())
    }

    async fn mark_not_listed(&self) -> Result<(), SinkError> {
        let sql = format!(
            "UPDATE {}.users SET deleted = true, deleted_at = $3, deleted_reason = 'notListed'
              WHERE tenant_id = $1 AND NOT deleted AND last_seen_run <> $2",
            self.s
        );
        self.tx
            .execute(
                &sql,
                &[&self.tenant, &self.run.run_id, &self.commit.finished_at],
            )
            .await
            .map_err(pg("mark users no longer listed"))?;
        Ok(())
    }

    async fn replace_skus(&self) -> Result<(), SinkError> {
        let s = self.s;
        self.tx
            .execute(
                &format!("DELETE FROM {s}.skus WHERE tenant_id = $1"),
                &[&self.tenant],
            )
            .await
            .map_err(pg("replace SKUs"))?;
        let insert = self
            .tx
            .prepare(&format!(
                "INSERT INTO {s}.skus (tenant_id, sku_id, sku_part_number, applies_to,
                    capability_status, consumed_units, prepaid_enabled, prepaid_suspended,
                    prepaid_warning, prepaid_locked_out, service_plans, subscription_ids, run_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ))
            .await
            .map_err(pg("replace SKUs"))?;
        for sku in self.commit.skus {
            self.tx
                .execute(
                    &insert,
                    &sku_values(self.tenant, sku, &self.run.run_id).as_params(),
                )
                .await
                .map_err(pg("replace SKUs"))?;
        }
        Ok(())
    }

    async fn replace_subscriptions(&self) -> Result<(), SinkError> {
        let s = self.s;
        self.tx
            .execute(
                &format!("DELETE FROM {s}.subscriptions WHERE tenant_id = $1"),
                &[&self.tenant],
            )
            .await
            .map_err(pg("replace subscriptions"))?;
        let insert = self
            .tx
            .prepare(&format!(
                "INSERT INTO {s}.subscriptions (tenant_id, id, commerce_subscription_id, sku_id,
                    sku_part_number, status, total_licenses, is_trial, created_date_time,
                    next_lifecycle_date_time, owner_id, owner_tenant_id, owner_type,
                    sold_by_partner, service_status, run_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                 ON CONFLICT (tenant_id, id) DO NOTHING"
            ))
            .await
            .map_err(pg("replace subscriptions"))?;
        for row in self.commit.subscriptions {
            let x = &row.subscription;
            let total = i64::from(x.total_licenses);
            let plans = Json(&x.service_status);
            let params: [&(dyn ToSql + Sync); 16] = [
                &self.tenant,
                &x.id,
                &x.commerce_subscription_id,
                &x.sku_id,
                &x.sku_part_number,
                &x.status,
                &total,
                &x.is_trial,
                &x.created_date_time,
                &x.next_lifecycle_date_time,
                &x.owner_id,
                &x.owner_tenant_id,
                &x.owner_type,
                &row.sold_by_partner,
                &plans,
                &self.run.run_id,
            ];
            self.tx
                .execute(&insert, &params)
                .await
                .map_err(pg("replace subscriptions"))?;
        }
        Ok(())
    }

    async fn store_state(&self) -> Result<(), SinkError> {
        let state = self.commit.state;
        let sql = format!(
            "INSERT INTO {}.sync_state (tenant_id, run_id, delta_link, fields, last_full_sync)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id) DO UPDATE SET run_id = EXCLUDED.run_id,
                delta_link = EXCLUDED.delta_link, fields = EXCLUDED.fields,
                last_full_sync = EXCLUDED.last_full_sync",
            self.s
        );
        self.tx
            .execute(
                &sql,
                &[
                    &self.tenant,
                    &state.run_id,
                    &state.delta_link,
                    &state.fields,
                    &state.last_full_sync,
                ],
            )
            .await
            .map_err(pg("store the sync state"))?;
        Ok(())
    }

    async fn counts(&self) -> Result<UserCounts, SinkError> {
        let sql = format!(
            "SELECT count(*),
                    count(*) FILTER (WHERE account_enabled),
                    count(*) FILTER (WHERE jsonb_array_length(assigned_licenses) > 0),
                    count(*) FILTER (WHERE account_enabled IS FALSE
                                       AND jsonb_array_length(assigned_licenses) > 0),
                    count(*) FILTER (WHERE user_type = 'Guest')
               FROM {}.users WHERE tenant_id = $1 AND NOT deleted",
            self.s
        );
        let row = self
            .tx
            .query_one(&sql, &[&self.tenant])
            .await
            .map_err(pg("count users"))?;
        Ok(UserCounts {
            total: row.get(0),
            enabled: row.get(1),
            licensed: row.get(2),
            disabled_licensed: row.get(3),
            guests: row.get(4),
        })
    }

    async fn finish_run(&self, counts: &UserCounts) -> Result<(), SinkError> {
        let rows = self.commit.rows;
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let sql = format!(
            "UPDATE {s}.sync_runs SET status = 'succeeded', finished_at = $2,
                users_total = $3, users_enabled = $4, users_licensed = $5,
                users_disabled_licensed = $6, users_guests = $7, rows_users = $8,
                rows_removed = $9, rows_skus = $10, rows_subscriptions = $11
              WHERE run_id = $1;
             ",
            s = self.s
        );
        self.tx
            .execute(
                &sql,
                &[
                    &self.run.run_id,
                    &self.commit.finished_at,
                    &counts.total,
                    &counts.enabled,
                    &counts.licensed,
                    &counts.disabled_licensed,
                    &counts.guests,
                    &as_i64(rows.users),
                    &as_i64(rows.removed),
                    &as_i64(rows.skus),
                    &as_i64(rows.subscriptions),
                ],
            )
            .await
            .map_err(pg("finish the run"))?;
        self.tx
            .execute(
                &format!("DELETE FROM {}.users_staging WHERE run_id = $1", self.s),
                &[&self.run.run_id],
            )
            .await
            .map_err(pg("drop staged rows"))?;
        Ok(())
    }
}

/// The parameters of one SKU row.
struct SkuValues<'a> {
    tenant: &'a str,
    sku: &'a SubscribedSku,
    run_id: &'a str,
    units: [i64; 5],
    plans: Json<&'a Vec<crate::microsoft::models::directory::ServicePlanInfo>>,
    subscriptions: Json<&'a Vec<String>>,
}

fn sku_values<'a>(tenant: &'a str, sku: &'a SubscribedSku, run_id: &'a str) -> SkuValues<'a> {
    let p = &sku.prepaid_units;
    SkuValues {
        tenant,
        sku,
        run_id,
        units: [
            i64::from(sku.consumed_units),
            i64::from(p.enabled),
            i64::from(p.suspended),
            i64::from(p.warning),
            i64::from(p.locked_out),
        ],
        plans: Json(&sku.service_plans),
        subscriptions: Json(&sku.subscription_ids),
    }
}

impl SkuValues<'_> {
    fn as_params(&self) -> [&(dyn ToSql + Sync); 13] {
        [
            &self.tenant,
            &self.sku.sku_id,
            &self.sku.sku_part_number,
            &self.sku.applies_to,
            &self.sku.capability_status,
            &self.units[0],
            &self.units[1],
            &self.units[2],
            &self.units[3],
            &self.units[4],
            &self.plans,
            &self.subscriptions,
            &self.run_id,
        ]
    }
}

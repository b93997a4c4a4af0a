//! The `postgres` sink: one database schema holding every tenant's users, SKUs, subscriptions,
//! run history and report views.
//!
//! Tables (schema `gdap_sync` unless configured): `users` (one row per tenant and user; Graph's
//! properties as columns, licences as JSON; `deleted`, `deleted_at`, `deleted_reason` once gone;
//! `first_seen_run`, `last_seen_run`), `skus`, `subscriptions` (with `sold_by_partner`),
//! `sync_runs` (every run: kind, status `running`/`succeeded`/`failed`/`abandoned`, times, error,
//! counts), `sync_state` (per tenant: the deltaLink, fields and last full pass of its last good
//! run), `users_staging` (unlogged; rows of runs in progress) and `schema_migrations`. Views:
//! `license_use_per_sku`, `license_use_per_department`, `licensed_disabled_accounts`,
//! `license_assignments` (one row per user, SKU and source), `license_direct_vs_group` and
//! `subscriptions_expiring_soon` (within 30 days).
//!
//! How a run is written: a `sync_runs` row (`running`); users are bulk-loaded into
//! `users_staging` with binary `COPY`, a batch at a time; then one transaction upserts them
//! into `users` (the last record of a user wins), marks removed users — and, in a full pass,
//! users not listed — deleted, replaces the tenant's SKUs and subscriptions, stores the new
//! state, marks the run `succeeded` and drops its staging rows. A failed run is marked `failed`
//! and its staging rows dropped; a run whose future was dropped is marked `abandoned` and
//! cleaned by the tenant's next run. One run per tenant at a time, across operators: a
//! session-level advisory lock per schema and tenant. The sink reconnects when its connection
//! was lost. TLS is not supported yet (`sslmode=disable` or `prefer`).

mod run;
pub mod schema;

use super::{RunInfo, RunWriter, Sink, SyncState, valid_tenant_id};
use crate::microsoft::Secret;
use crate::sync::error::SinkError;
use async_trait::async_trait;
use tokio_postgres::{Client, NoTls};

/// The schema used when none is configured.
pub const DEFAULT_SCHEMA: &str = "gdap_sync";

/// A PostgreSQL database as a sink (see the module docs).
pub struct PostgresSink {
    url: Secret,
    schema: String,
    client: Client,
}

impl std::fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSink")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresSink {
    /// Connects with a `postgres://` URL and creates or migrates the schema.
    pub async fn connect(url: &str, schema: &str) -> Result<PostgresSink, SinkError> {
        if !schema::valid_schema(schema) {
            return Err(SinkError::Config(format!(
                "schema {schema:?} must be a lower-case SQL identifier (letters, digits and _, not starting with a digit, at most 63)"
            )));
        }
        let client = open(url).await?;
        let sink = PostgresSink {
            url: Secret::new(url.to_string()),
            schema: schema.to_string(),
            client,
        };
        sink.migrate().await?;
        Ok(sink)
    }

    /// The schema in use.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The connection (for tests and tools that read the tables).
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn migrate(&self) -> Result<(), SinkError> {
        let pg = |action| move |e| SinkError::postgres(action, e);
        let s = schema::quote(&self.schema);
        let setup = format!(
            "SELECT pg_advisory_lock(hashtext('gdap-sync-migrate'));
             CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now());"
        );
        self.client
            .batch_execute(&setup)
            .await
            .map_err(pg("create the schema"))?;
        let result = self.apply_missing().await;
        let _ = self
            .client
            .batch_execute("SELECT pg_advisory_unlock(hashtext('gdap-sync-migrate'))")
            .await;
        result
    }

    async fn apply_missing(&self) -> Result<(), SinkError> {
        let s = schema::quote(&self.schema);
        let row = self
            .client
            .query_one(
                &format!("SELECT coalesce(max(version), 0) FROM {s}.schema_migrations"),
                &[],
            )
            .await
            .map_err(|e| SinkError::postgres("read the schema version", e))?;
        let current: i32 = row.get(0);
        for (version, sql) in schema::migrations() {
            if version <= current {
                continue;
            }
            let script = format!(
                "BEGIN;\n{}\nINSERT INTO {s}.schema_migrations (version) VALUES ({version});\nCOMMIT;",
                schema::render(&sql, &self.schema)
            );
            if let Err(e) = self.client.batch_execute(&script).await {
                let _ = self.client.batch_execute("ROLLBACK").await;
                return Err(SinkError::postgres("migrate the schema", e));
            }
            tracing::info!(schema = %self.schema, version, "migrated the import schema");
        }
        Ok(())
    }

    /// Opens a new connection when the current one was lost.
    async fn ensure_connected(&mut self) -> Result<(), SinkError> {
        if self.client.is_closed() {
            tracing::info!(schema = %self.schema, "reconnecting to PostgreSQL");
            self.client = open(self.url.expose()).await?;
        }
        Ok(())
    }
}

/// Connects and drives the connection in a background task.
async fn open(url: &str) -> Result<Client, SinkError> {
    let config: tokio_postgres::Config = url.parse().map_err(|_| {
        SinkError::Config(
            "the connection URL is not a valid postgres:// URL or key=value string".into(),
        )
    })?;
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| SinkError::postgres("connect", e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "the PostgreSQL connection of an import sink ended");
        }
    });
    Ok(client)
}

#[async_trait]
impl Sink for PostgresSink {
    fn describe(&self) -> String {
        format!("postgres sink (schema {})", self.schema)
    }

    async fn state(&mut self, tenant_id: &str) -> Result<Option<SyncState>, SinkError> {
        self.ensure_connected().await?;
        let s = schema::quote(&self.schema);
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT run_id, delta_link, fields, last_full_sync FROM {s}.sync_state WHERE tenant_id = $1"
                ),
                &[&tenant_id.to_ascii_lowercase()],
            )
            .await
            .map_err(|e| SinkError::postgres("read the sync state", e))?;
        Ok(row.map(|r| SyncState {
            run_id: r.get(0),
            delta_link: r.get(1),
            fields: r.get(2),
            last_full_sync: r.get(3),
        }))
    }

    async fn begin<'s>(&'s mut self, run: &RunInfo) -> Result<Box<dyn RunWriter + 's>, SinkError> {
        if !valid_tenant_id(&run.tenant_id) {
            return Err(SinkError::Config(format!(
                "{:?} is not a tenant id",
                run.tenant_id
            )));
        }
        self.ensure_connected().await?;
        let writer = run::PgRun::start(&mut self.client, &self.schema, run).await?;
        Ok(Box::new(writer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_urls_and_schemas_are_refused_without_echoing_the_url() {
        let err = PostgresSink::connect("postgres://u:hunter2@127.0.0.1:notaport/db", "x")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(matches!(err, SinkError::Config(_)), "{text}");
        let err = PostgresSink::connect("postgres://127.0.0.1/db", "Bad-Schema")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("lower-case SQL identifier"));
    }
}

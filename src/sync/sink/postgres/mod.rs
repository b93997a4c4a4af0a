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
//! was lost.
//!
//! TLS: libpq's `sslmode` (`disable`, `prefer` — the default —, `require`, `verify-ca`,
//! `verify-full`) and `sslrootcert` from the URL, and a CA bundle from the caller
//! ([`Connection::ca`], the connection Secret's `caKey`); see [`tls`].

mod run;
pub mod schema;
pub mod ssl_mode;
pub mod tls;
pub mod tls_error;

use super::contract::{RunInfo, RunWriter, Sink, valid_tenant_id};
use super::state::SyncState;
use crate::microsoft::Secret;
use crate::sync::error::SinkError;
use async_trait::async_trait;
use tokio_postgres::Client;

pub use ssl_mode::SslMode;
pub use tls::CaBundle;
pub use tls_error::TlsError;

/// How to reach the database: the connection URL (with its password) and, optionally, the CA
/// bundle to trust.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `postgres://user:password@host:5432/database?sslmode=…`, or libpq's `key=value` form.
    pub url: Secret,
    /// The CAs to check the server's certificate against; without it, `sslrootcert` from the
    /// URL, else the system's roots (when the `sslmode` checks certificates at all).
    pub ca: Option<CaBundle>,
}

impl Connection {
    /// A connection by URL alone.
    pub fn url(url: impl Into<String>) -> Connection {
        Connection {
            url: Secret::new(url.into()),
            ca: None,
        }
    }
}

/// The schema used when none is configured.
pub const DEFAULT_SCHEMA: &str = "gdap_sync";

/// A PostgreSQL database as a sink (see the module docs).
pub struct PostgresSink {
    connection: Connection,
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
        PostgresSink::connect_to(&Connection::url(url), schema).await
    }

    /// Connects (URL and CA bundle) and creates or migrates the schema.
    pub async fn connect_to(
        connection: &Connection,
        schema: &str,
    ) -> Result<PostgresSink, SinkError> {
        if !schema::valid_schema(schema) {
            return Err(SinkError::Config(format!(
                "schema {schema:?} must be a lower-case SQL identifier (letters, digits and _, not starting with a digit, at most 63)"
            )));
        }
        let client = open(connection).await?;
        let sink = PostgresSink {
            connection: connection.clone(),
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
            self.client = open(&self.connection).await?;
        }
        Ok(())
    }
}

/// A connection to the database as the sink makes them (TLS as the URL and the CA say), driven
/// in a background task; for tests and tools that read the tables.
pub async fn connect(connection: &Connection) -> Result<Client, SinkError> {
    open(connection).await
}

/// Connects and drives the connection in a background task.
async fn open(target: &Connection) -> Result<Client, SinkError> {
    let prepared = tls::prepare(target.url.expose(), target.ca.as_ref())?;
    let (client, connection) = prepared
        .config
        .connect(prepared.tls)
        .await
        .map_err(|e| prepared.context.connect_error(e))?;
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

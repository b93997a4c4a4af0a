//! The PostgreSQL schema of the `postgres` sink: versioned migrations, tables and views.
//!
//! Contract: [`migrations`] lists every version in order; the sink applies the ones a database
//! lacks, inside one transaction under an advisory lock, and records them in
//! `<schema>.schema_migrations`. A released version is never edited: changes come as a new one.
//! `{s}` in the SQL is the schema name, quoted.

/// The user properties stored in columns, in `COPY` order, with their SQL types.
pub const USER_COLUMNS: &[(&str, &str)] = &[
    ("display_name", "text"),
    ("user_principal_name", "text"),
    ("mail", "text"),
    ("given_name", "text"),
    ("surname", "text"),
    ("job_title", "text"),
    ("department", "text"),
    ("company_name", "text"),
    ("office_location", "text"),
    ("street_address", "text"),
    ("city", "text"),
    ("state", "text"),
    ("postal_code", "text"),
    ("country", "text"),
    ("preferred_language", "text"),
    ("usage_location", "text"),
    ("employee_id", "text"),
    ("mobile_phone", "text"),
    ("user_type", "text"),
    ("account_enabled", "boolean"),
    ("created_date_time", "timestamptz"),
    ("assigned_licenses", "jsonb"),
    ("license_assignment_states", "jsonb"),
    ("on_premises_extension_attributes", "jsonb"),
    ("business_phones", "jsonb"),
];

/// Staging columns before the user columns, in `COPY` order.
pub const STAGING_KEYS: &[(&str, &str)] = &[
    ("run_id", "text"),
    ("seq", "bigint"),
    ("tenant_id", "text"),
    ("id", "text"),
    ("removed_reason", "text"),
];

fn column_definitions(columns: &[(&str, &str)]) -> String {
    columns
        .iter()
        .map(|(name, ty)| match *name {
            "assigned_licenses" | "license_assignment_states" => {
                format!("    {name} {ty} NOT NULL DEFAULT '[]'")
            }
            _ => format!("    {name} {ty}"),
        })
        .collect::<Vec<_>>()
        .join(",\n")
}

/// Version 1: runs, state, users (+ staging), SKUs, subscriptions and the report views.
fn v1() -> String {
    let users = column_definitions(USER_COLUMNS);
    let staging_keys = column_definitions(STAGING_KEYS);
    format!(
        r#"
CREATE TABLE {{s}}.sync_runs (
    run_id text PRIMARY KEY,
    tenant_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('full', 'delta')),
    status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    error text,
    users_total bigint,
    users_enabled bigint,
    users_licensed bigint,
    users_disabled_licensed bigint,
    users_guests bigint,
    rows_users bigint,
    rows_removed bigint,
    rows_skus bigint,
    rows_subscriptions bigint
);
CREATE INDEX sync_runs_by_tenant ON {{s}}.sync_runs (tenant_id, started_at DESC);

CREATE TABLE {{s}}.sync_state (
    tenant_id text PRIMARY KEY,
    run_id text NOT NULL REFERENCES {{s}}.sync_runs (run_id),
    delta_link text,
    fields text NOT NULL,
    last_full_sync timestamptz NOT NULL
);

CREATE TABLE {{s}}.users (
    tenant_id text NOT NULL,
    id text NOT NULL,
{users},
    deleted boolean NOT NULL DEFAULT false,
    deleted_at timestamptz,
    deleted_reason text,
    first_seen_run text NOT NULL,
    last_seen_run text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX users_by_licence ON {{s}}.users USING gin (assigned_licenses jsonb_path_ops);

CREATE UNLOGGED TABLE {{s}}.users_staging (
{staging_keys},
{users}
);
CREATE INDEX users_staging_by_run ON {{s}}.users_staging (run_id, id, seq);

CREATE TABLE {{s}}.skus (
    tenant_id text NOT NULL,
    sku_id text NOT NULL,
    sku_part_number text,
    applies_to text,
    capability_status text,
    consumed_units bigint NOT NULL,
    prepaid_enabled bigint NOT NULL,
    prepaid_suspended bigint NOT NULL,
    prepaid_warning bigint NOT NULL,
    prepaid_locked_out bigint NOT NULL,
    service_plans jsonb NOT NULL,
    subscription_ids jsonb NOT NULL,
    run_id text NOT NULL,
    PRIMARY KEY (tenant_id, sku_id)
);

CREATE TABLE {{s}}.subscriptions (
    tenant_id text NOT NULL,
    id text NOT NULL,
    commerce_subscription_id text,
    sku_id text,
    sku_part_number text,
    status text,
    total_licenses bigint NOT NULL,
    is_trial boolean,
    created_date_time timestamptz,
    next_lifecycle_date_time timestamptz,
    owner_id text,
    owner_tenant_id text,
    owner_type text,
    sold_by_partner boolean,
    service_status jsonb NOT NULL,
    run_id text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE VIEW {{s}}.license_assignments AS
SELECT u.tenant_id, u.id AS user_id, u.user_principal_name, u.display_name, u.department,
       u.account_enabled, a->>'skuId' AS sku_id, k.sku_part_number,
       a->>'assignedByGroup' AS assigned_by_group,
       CASE WHEN a->>'assignedByGroup' IS NULL THEN 'direct' ELSE 'group' END AS source,
       a->>'state' AS state
FROM {{s}}.users u
CROSS JOIN LATERAL jsonb_array_elements(u.license_assignment_states) a
LEFT JOIN {{s}}.skus k ON k.tenant_id = u.tenant_id AND k.sku_id = a->>'skuId'
WHERE NOT u.deleted;

CREATE VIEW {{s}}.license_use_per_sku AS
SELECT k.tenant_id, k.sku_id, k.sku_part_number,
       k.prepaid_enabled AS purchased, k.consumed_units AS assigned,
       k.prepaid_enabled - k.consumed_units AS available,
       k.prepaid_warning AS warning, k.prepaid_suspended AS suspended,
       (SELECT count(*) FROM {{s}}.users u
         WHERE u.tenant_id = k.tenant_id AND NOT u.deleted
           AND u.assigned_licenses @> jsonb_build_array(jsonb_build_object('skuId', k.sku_id))
       ) AS assigned_users,
       (SELECT min(x.next_lifecycle_date_time) FROM {{s}}.subscriptions x
         WHERE x.tenant_id = k.tenant_id AND x.sku_id = k.sku_id
           AND x.status IN ('Enabled', 'Warning')) AS next_expiry,
       (SELECT coalesce(sum(x.total_licenses), 0)::bigint FROM {{s}}.subscriptions x
         WHERE x.tenant_id = k.tenant_id AND x.sku_id = k.sku_id
           AND x.status = 'Enabled' AND x.sold_by_partner) AS partner_licenses
FROM {{s}}.skus k;

CREATE VIEW {{s}}.license_use_per_department AS
SELECT u.tenant_id, coalesce(u.department, '') AS department, l->>'skuId' AS sku_id,
       k.sku_part_number, count(*) AS assigned,
       count(*) FILTER (WHERE u.account_enabled IS FALSE) AS assigned_to_disabled
FROM {{s}}.users u
CROSS JOIN LATERAL jsonb_array_elements(u.assigned_licenses) l
LEFT JOIN {{s}}.skus k ON k.tenant_id = u.tenant_id AND k.sku_id = l->>'skuId'
WHERE NOT u.deleted
GROUP BY u.tenant_id, coalesce(u.department, ''), l->>'skuId', k.sku_part_number;

CREATE VIEW {{s}}.licensed_disabled_accounts AS
SELECT u.tenant_id, u.id AS user_id, u.user_principal_name, u.display_name, u.department,
       jsonb_array_length(u.assigned_licenses) AS licences,
       ARRAY(SELECT l->>'skuId' FROM jsonb_array_elements(u.assigned_licenses) l) AS sku_ids
FROM {{s}}.users u
WHERE NOT u.deleted AND u.account_enabled IS FALSE
  AND jsonb_array_length(u.assigned_licenses) > 0;

CREATE VIEW {{s}}.license_direct_vs_group AS
SELECT tenant_id, sku_id, sku_part_number,
       count(*) FILTER (WHERE direct AND NOT by_group) AS direct_only,
       count(*) FILTER (WHERE by_group AND NOT direct) AS group_only,
       count(*) FILTER (WHERE direct AND by_group) AS both_direct_and_group
FROM (SELECT tenant_id, user_id, sku_id, sku_part_number,
             bool_or(source = 'direct') AS direct, bool_or(source = 'group') AS by_group
        FROM {{s}}.license_assignments
       GROUP BY tenant_id, user_id, sku_id, sku_part_number) per_user
GROUP BY tenant_id, sku_id, sku_part_number;

CREATE VIEW {{s}}.subscriptions_expiring_soon AS
SELECT x.tenant_id, x.id AS subscription_id, x.sku_id, x.sku_part_number, x.status,
       x.total_licenses, x.is_trial, x.next_lifecycle_date_time, x.owner_tenant_id,
       x.sold_by_partner,
       ceil(extract(epoch FROM x.next_lifecycle_date_time - now()) / 86400)::int AS days_left
FROM {{s}}.subscriptions x
WHERE x.status IN ('Enabled', 'Warning')
  AND x.next_lifecycle_date_time >= now()
  AND x.next_lifecycle_date_time < now() + interval '30 days';
"#
    )
}

/// Every migration, oldest first: (version, SQL with `{s}` for the quoted schema).
pub fn migrations() -> Vec<(i32, String)> {
    vec![(1, v1())]
}

/// The SQL of a migration for a schema.
pub fn render(sql: &str, schema: &str) -> String {
    sql.replace("{s}", &quote(schema))
}

/// A quoted SQL identifier.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Whether a schema name is a plain lower-case SQL identifier.
pub fn valid_schema(schema: &str) -> bool {
    let mut bytes = schema.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && schema.len() <= 63
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["gdap_sync", "_x", "a1"] {
            assert!(valid_schema(good), "{good}");
        }
        for bad in ["", "1a", "Upper", "a-b", "a;drop", &"a".repeat(64)] {
            assert!(!valid_schema(bad), "{bad}");
        }
        assert_eq!(render("{s}.users", "gdap_sync"), "\"gdap_sync\".users");
    }

    #[test]
    fn migrations_are_ordered_and_name_every_view() {
        let all = migrations();
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        let sql = &all[0].1;
        for view in [
            "license_use_per_sku",
            "license_use_per_department",
            "licensed_disabled_accounts",
            "license_direct_vs_group",
            "license_assignments",
            "subscriptions_expiring_soon",
        ] {
            assert!(
                sql.contains(&format!("CREATE VIEW {{s}}.{view} ")),
                "{view}"
            );
        }
    }
}

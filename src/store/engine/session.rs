//! One-off PostgreSQL sessions at start: the state schema, and which schema the sync log is
//! pinned to ([`pin`]).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::store::{DatabaseUrl, Result, StoreError};

/// One connection of its own, bounded by `timeout` like every other.
async fn connect_once(url: &DatabaseUrl, timeout: Duration) -> Result<sqlx::PgConnection> {
    use sqlx::Connection;
    let options = PgConnectOptions::from_str(url.expose())
        .map_err(|e| StoreError::invalid_url(url, e))?
        .application_name("syncwatch");
    match tokio::time::timeout(timeout, sqlx::PgConnection::connect_with(&options)).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
    }
}

/// Whether `schema` exists in the database and this role may create tables in it.
pub async fn schema_exists(url: &DatabaseUrl, schema: &str, timeout: Duration) -> Result<bool> {
    let mut conn = connect_once(url, timeout).await?;
    let found: Option<bool> = sqlx::query_scalar(
        "select has_schema_privilege(oid, 'create') from pg_namespace where nspname = $1",
    )
    .bind(schema)
    .fetch_optional(&mut conn)
    .await?;
    Ok(found == Some(true))
}

/// `create schema if not exists` (the name is a constant of syncwatch's, quoted).
pub async fn create_schema(url: &DatabaseUrl, schema: &str, timeout: Duration) -> Result<()> {
    let mut conn = connect_once(url, timeout).await?;
    sqlx::query(&format!("create schema if not exists \"{schema}\""))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Where a store's sessions find their tables, resolved once at start from the role's own
/// `search_path` and then set on every session syncwatch opens, so no schema created (or
/// granted) later can put another table of the same name first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// The schemas, in order, as the `search_path` every session gets.
    pub search_path: Vec<String>,
    /// The schema the sync log was found in (`None`: not there yet, on an owned table
    /// before its first migration).
    pub table_schema: Option<String>,
}

impl Pinned {
    /// The `search_path` setting, every schema double-quoted.
    pub fn setting(&self) -> String {
        self.search_path
            .iter()
            .map(|s| format!("\"{}\"", s.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Which schemas hold a relation (table, partitioned table, view, materialized view or
/// foreign table) named `$1`, in the order of the role's search path.
const SCHEMAS_HOLDING: &str = "select s.nspname::text from unnest(current_schemas(false)) \
     with ordinality as s(nspname, pos) join pg_namespace n on n.nspname = s.nspname \
     join pg_class c on c.relnamespace = n.oid \
     where c.relname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f') order by s.pos";

/// Pin `table` (unqualified, or `schema.name`) to one schema on the role's search path.
///
/// An observed table: the role's search path without `exclude` (syncwatch's own state
/// schema, whose tables are never the observed one even when the role's name puts it
/// first); the table must be found on it exactly once. syncwatch's own table: the one
/// schema that holds syncwatch's migrations (or, before the first, the schema a `create
/// table` would use), and no other schema on the path may hold a table of that name.
/// Either way a second table of the name is an error naming both.
pub async fn pin(
    url: &DatabaseUrl,
    table: &str,
    table_schema: Option<&str>,
    observed: bool,
    exclude: Option<&str>,
    timeout: Duration,
) -> Result<Pinned> {
    let mut conn = connect_once(url, timeout).await?;
    let path: Vec<String> = sqlx::query_scalar("select unnest(current_schemas(false))::text")
        .fetch_all(&mut conn)
        .await?;
    let path: Vec<String> = path
        .into_iter()
        .filter(|s| Some(s.as_str()) != exclude)
        .collect();
    let holding: Vec<String> = sqlx::query_scalar(SCHEMAS_HOLDING)
        .bind(table)
        .fetch_all(&mut conn)
        .await?;
    let holding: Vec<String> = holding
        .into_iter()
        .filter(|s| Some(s.as_str()) != exclude)
        .collect();
    let both = |a: &str, b: &str| {
        StoreError::Config(format!(
            "two tables named {table} are visible on this role's search_path: \"{a}\".\"{table}\" \
             and \"{b}\".\"{table}\"; syncwatch would read one and an operator's psql \
             maybe the other. Name the table with its schema (--table {a}.{table}), or drop \
             or move the other one"
        ))
    };
    if observed {
        if let Some(schema) = table_schema {
            // Named with its schema: nothing to resolve, but the lookups still resolve on
            // the path without the state schema.
            return Ok(Pinned {
                search_path: path,
                table_schema: Some(schema.to_owned()),
            });
        }
        if let [a, b, ..] = holding.as_slice() {
            return Err(both(a, b));
        }
        return Ok(Pinned {
            search_path: path,
            table_schema: holding.into_iter().next(),
        });
    }
    let migrations: Option<String> = sqlx::query_scalar(
        "select n.nspname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where c.oid = to_regclass('_sqlx_migrations')",
    )
    .fetch_optional(&mut conn)
    .await?
    .flatten();
    let home = match migrations.or_else(|| path.first().cloned()) {
        Some(home) => home,
        None => {
            return Err(StoreError::Config(
                "no schema on this role's search_path exists (or may be used): syncwatch has \
                 nowhere to create its tables; create one or set the role's search_path"
                    .into(),
            ))
        }
    };
    if let Some(other) = holding.iter().find(|s| **s != home) {
        return Err(both(&home, other));
    }
    Ok(Pinned {
        table_schema: holding.first().cloned(),
        search_path: vec![home],
    })
}

//! What differs between PostgreSQL's and SQLite's SQL: placeholders with types, the clock
//! expression, JSON access and the like, as one [`Dialect`] value per database.

/// The SQL text in which PostgreSQL and SQLite differ. Parameters are written `$n` in both
/// (SQLite accepts the `$NNN` form).
pub struct Dialect {
    /// The database clock as a timestamp value in the stored form. Evaluated once per
    /// statement in both databases, so every use in one statement sees the same instant.
    pub now: &'static str,
    /// `started_at - created_at` in seconds, as a float rounded to milliseconds (the
    /// stores' common precision, so both give the same figures).
    pub delay_seconds: &'static str,
    /// `metadata.records_synced` when it is a number from 0 to 2^53 (a larger one is no
    /// count of records, and would freeze the counter it is added to), as a float, else
    /// null.
    pub records_synced: &'static str,
    /// Whole milliseconds from `started_at` to the clock (`{now}`), clamped to
    /// `0..=i32::MAX`.
    pub elapsed_ms: &'static str,
    /// `metadata` merged with the JSON object in the parameter named by `{p}` (RFC 7396).
    pub merge_patch: &'static str,
    /// The latest completion time a terminal run is read with: a day ahead of the database
    /// clock. A later one (another writer's clock, or a year 9999) is no completion yet.
    pub horizon: &'static str,
    /// The size in bytes of the JSON document `{e}` as the database stores and prints it.
    pub json_bytes: &'static str,
    /// A parameter used where the database must know its type (`{p}` is the placeholder,
    /// `{t}` the type); SQLite needs no cast.
    pub typed_param: fn(usize, &str) -> String,
    /// 1 when the migrations table exists, else 0.
    pub migrations_table_exists: &'static str,
    /// The text value of key `{1}` of the JSON object column `{0}` (null when absent); the
    /// key is a checked configuration value ([`ConnectorSource`](crate::store::ConnectorSource)).
    pub metadata_text: fn(&str, &str) -> String,
    /// On a hot standby, the commit time up to which the primary's transactions are
    /// visible (its clock once it has replayed all it received; the epoch before it has
    /// replayed any); null on a primary. `None` where there are no standbys (SQLite).
    pub replay_point: Option<&'static str>,
}

pub const POSTGRES: Dialect = Dialect {
    now: "now()",
    // date_part returns a double; extract() returns numeric, whose arithmetic made the
    // build aggregate several times slower.
    // Null for an infinite timestamp (the subtraction would fail the whole statement).
    delay_seconds: "case when isfinite(started_at) and isfinite(created_at) then \
        (round(date_part('epoch', started_at - created_at) * 1000::float8) / 1000::float8) end",
    records_synced: "case when jsonb_typeof(metadata -> 'records_synced') = 'number' \
        and (metadata ->> 'records_synced')::float8 between 0 and 9007199254740992 \
        then (metadata ->> 'records_synced')::float8 end",
    elapsed_ms: "least(greatest(round(extract(epoch from ({now} - started_at)) * 1000), 0), \
        2147483647)::integer",
    merge_patch: "syncwatch_merge_patch(metadata, {p}::jsonb)",
    json_bytes: "octet_length(({e})::text)",
    horizon: "(now() + interval '1 day')",
    typed_param: |n, t| format!("${n}::{t}"),
    migrations_table_exists:
        "select case when to_regclass('_sqlx_migrations') is null then 0 else 1 end",
    metadata_text: |column, key| format!("{column} ->> '{key}'"),
    replay_point: Some(
        "case when pg_is_in_recovery() then \
           case when pg_last_wal_receive_lsn() is not distinct from pg_last_wal_replay_lsn() \
             then now() \
             else least(now(), coalesce(pg_last_xact_replay_timestamp(), to_timestamp(0))) end \
         end",
    ),
};

pub const SQLITE: Dialect = Dialect {
    now: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    // Only text timestamps: `julianday` would read an integer as a Julian day number.
    delay_seconds: "(round((julianday(case when typeof(started_at) = 'text' then started_at end) \
        - julianday(case when typeof(created_at) = 'text' then created_at end)) * 86400000.0) \
        / 1000.0)",
    // Only valid JSON: the JSON functions fail the whole statement on a malformed document.
    records_synced: "case when json_valid(metadata) then \
        case when json_type(metadata, '$.records_synced') in ('integer', 'real') \
        and json_extract(metadata, '$.records_synced') between 0 and 9007199254740992 \
        then cast(json_extract(metadata, '$.records_synced') as real) end end",
    elapsed_ms: "max(0, min(2147483647, cast(round((julianday({now}) - julianday(started_at)) \
        * 86400000.0) as integer)))",
    merge_patch: "json_patch(coalesce(metadata, '{}'), {p})",
    json_bytes: "length(cast(({e}) as blob))",
    horizon: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+1 day')",
    typed_param: |n, _| format!("${n}"),
    migrations_table_exists: "select count(*) from sqlite_master \
        where type = 'table' and name = '_sqlx_migrations'",
    metadata_text: |column, key| {
        format!("case when json_valid({column}) then json_extract({column}, '$.\"{key}\"') end")
    },
    replay_point: None,
};

impl Dialect {
    /// Whole milliseconds from `started_at` to the clock.
    pub fn elapsed_ms(&self) -> String {
        self.elapsed_ms.replace("{now}", self.now)
    }

    /// The merge-patch expression for parameter `n`.
    pub fn merge_patch(&self, n: usize) -> String {
        self.merge_patch.replace("{p}", &format!("${n}"))
    }

    /// The stored size in bytes of `metadata` merged with parameter `n`.
    pub fn merged_bytes(&self, n: usize) -> String {
        self.json_bytes.replace("{e}", &self.merge_patch(n))
    }

    /// Parameter `n`, cast to `sql_type` where the dialect needs it.
    pub fn typed(&self, n: usize, sql_type: &str) -> String {
        (self.typed_param)(n, sql_type)
    }
}

//! Observing a table another service owns (`--observe-only`): a fixture written the way an
//! orchestrator's own migrations would write it (enum types for status and trigger,
//! `timestamp without time zone`, a `workspace_connector` table holding the slug behind a
//! foreign key, an extra column, none of syncwatch's indexes), runs taken through their
//! lifecycle by plain SQL, and the real binary watching it with a role that may only
//! `SELECT`. Every domain metric is compared with the same aggregate computed in SQL.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use common::{
    family_samples as family, free_port, service_bin, sql_family as expected, wait_until,
};
use common::{Backend, Server, TestDb};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const FIXTURE: &str = "
create type connector_sync_status as enum ('scheduled', 'in_progress', 'success', 'error');
create type sync_trigger_type as enum ('cloud_task', 'manual', 'oauth_callback');
create table workspace_connector (
    id uuid primary key,
    slug varchar(100) not null,
    display_name text
);
create table workspace_connector_sync_log (
    id bigserial primary key,
    workspace_connector_sync_log_id uuid not null unique default gen_random_uuid(),
    workspace_connector_id uuid not null references workspace_connector (id),
    status connector_sync_status not null default 'scheduled',
    trigger_type sync_trigger_type,
    cloud_task_id varchar(255),
    started_at timestamp without time zone,
    completed_at timestamp without time zone,
    duration_ms integer,
    error text,
    metadata jsonb,
    created_at timestamp without time zone not null,
    updated_at timestamp without time zone not null,
    deleted_at timestamp without time zone,
    billing_units integer
);
";

/// The connector label as syncwatch derives it, in SQL: the lookup table's slug, or
/// `unknown` when it is not a valid label.
const LOOKUP_CONNECTOR: &str = "(select case when w.slug ~ '^[a-z0-9][a-z0-9_-]{0,63}$' \
     then w.slug else 'unknown' end from workspace_connector w where w.id = t.workspace_connector_id)";
const METADATA_CONNECTOR: &str = "(case when t.metadata ->> 'connector_slug' ~ \
     '^[a-z0-9][a-z0-9_-]{0,63}$' then t.metadata ->> 'connector_slug' else 'unknown' end)";

/// The observed database, the fixture in it, and a role that may only read it.
struct Observed {
    db: TestDb,
    reader: String,
    reader_url: String,
}

impl Observed {
    async fn new() -> Option<Self> {
        let mut db = TestDb::unmigrated(Backend::Postgres).await?;
        let mut conn = admin(&db).await;
        sqlx::raw_sql(FIXTURE).execute(&mut conn).await.unwrap();
        let (reader, reader_url) = db
            .select_only_role(&["workspace_connector_sync_log", "workspace_connector"])
            .await;
        Some(Self {
            db,
            reader,
            reader_url,
        })
    }
}

async fn admin(db: &TestDb) -> PgConnection {
    PgConnection::connect(db.url.expose()).await.unwrap()
}

async fn exec(conn: &mut PgConnection, sql: String) {
    sqlx::query(&sql).execute(conn).await.unwrap();
}

fn ts(at: DateTime<Utc>) -> String {
    format!("'{}'::timestamp", at.naive_utc())
}

/// Connections (one whose slug is not a valid label) and runs taken through their
/// lifecycle by plain SQL: insert scheduled, start, finish with `completed_at` and
/// `duration_ms` as the orchestrator's helpers compute them; some fail before starting,
/// some are soft-deleted, some stay active (a few of them stuck).
async fn fill(db: &TestDb, seed: u64) {
    let mut conn = admin(db).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let slugs = ["hubspot", "salesforce", "stripe", "Not A Label"];
    let mut connections = Vec::new();
    for i in 0..12u128 {
        let id = Uuid::from_u128(0x5eed_0000 + i);
        let slug = slugs[i as usize % slugs.len()];
        sqlx::query(
            "insert into workspace_connector (id, slug, display_name) values ($1, $2, 'x')",
        )
        .bind(id)
        .bind(slug)
        .execute(&mut conn)
        .await
        .unwrap();
        connections.push((id, slug));
    }
    // Milliseconds, as the orchestrator's clock writes them (and the exposition shows).
    let now = Utc::now().trunc_subsecs(3);
    let triggers = ["'cloud_task'", "'manual'", "'oauth_callback'", "null"];
    for n in 0..300i64 {
        let (connection, slug) = connections[rng.random_range(0..connections.len())];
        let created = now - chrono::Duration::minutes(3 * 24 * 60 - n * 10);
        let meta_slug = if rng.random_range(0..10) == 0 {
            "null".to_owned()
        } else {
            format!("'{slug}'")
        };
        let id: i64 = sqlx::query_scalar(&format!(
            "insert into workspace_connector_sync_log (workspace_connector_id, trigger_type, \
               metadata, created_at, updated_at) \
             values ($1, {}, jsonb_build_object('connector_slug', {meta_slug}, 'records_synced', {}), \
               {c}, {c}) returning id",
            triggers[rng.random_range(0..triggers.len())],
            rng.random_range(0..500),
            c = ts(created),
        ))
        .bind(connection)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let fate = rng.random_range(0..10);
        let started = created + chrono::Duration::seconds(rng.random_range(1..30));
        let completed = started + chrono::Duration::milliseconds(rng.random_range(500..4_000_000));
        if fate == 0 {
            // Failed before it started.
            exec(&mut conn, format!(
                "update workspace_connector_sync_log set status = 'error', error = 'enqueue failed', \
                 completed_at = {c}, updated_at = {c} where id = {id}",
                c = ts(started)
            )).await;
            continue;
        }
        exec(
            &mut conn,
            format!(
            "update workspace_connector_sync_log set status = 'in_progress', started_at = {s}, \
             updated_at = {s} where id = {id}",
            s = ts(started)
        ),
        )
        .await;
        let status = if fate < 4 { "error" } else { "success" };
        exec(
            &mut conn,
            format!(
                "update workspace_connector_sync_log set status = '{status}', completed_at = {c}, \
             duration_ms = (extract(epoch from ({c} - started_at)) * 1000)::integer, \
             error = case when '{status}' = 'error' then 'HTTP 429 from provider' end, \
             updated_at = {c} where id = {id}",
                c = ts(completed)
            ),
        )
        .await;
        if fate == 9 {
            exec(
                &mut conn,
                format!(
                    "update workspace_connector_sync_log set deleted_at = {c}, updated_at = {c} \
                 where id = {id}",
                    c = ts(completed)
                ),
            )
            .await;
        }
    }
    // Active runs: fresh ones, a scheduled run never picked up, an in-progress run whose
    // heartbeats stopped, and a soft-deleted active run (not counted).
    let (c0, _) = connections[0];
    let (c1, _) = connections[1];
    let minutes = |m: i64| ts(now - chrono::Duration::minutes(m));
    for (connection, status, created, updated, deleted) in [
        (c0, "scheduled", minutes(1), minutes(1), "null".to_owned()),
        (c1, "in_progress", minutes(5), minutes(1), "null".to_owned()),
        (
            c0,
            "scheduled",
            minutes(120),
            minutes(120),
            "null".to_owned(),
        ),
        (
            c1,
            "in_progress",
            minutes(120),
            minutes(90),
            "null".to_owned(),
        ),
        (c0, "in_progress", minutes(3), minutes(2), minutes(1)),
    ] {
        sqlx::query(&format!(
            "insert into workspace_connector_sync_log (workspace_connector_id, status, trigger_type, \
               started_at, created_at, updated_at, deleted_at) \
             values ($1, '{status}', 'cloud_task', \
               case when '{status}' = 'in_progress' then {created} end, {created}, {updated}, {deleted})"
        ))
        .bind(connection)
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

/// Every domain family the scanner exports, checked against SQL over the fixture.
async fn assert_metrics_match_sql(db: &TestDb, text: &str, connector: &str) {
    let mut conn = admin(db).await;
    let runs = format!(
        "select {connector}, coalesce(t.trigger_type::text, 'none'), t.status::text, count(*)::float8 \
         from workspace_connector_sync_log t where t.completed_at is not null group by 1, 2, 3"
    );
    assert_eq!(
        family(text, "connector_sync_runs_total"),
        expected(&mut conn, &["connector", "trigger", "status"], &runs).await,
        "connector_sync_runs_total"
    );
    let durations = format!(
        "select {connector}, coalesce(t.trigger_type::text, 'none'), t.status::text, count(*)::float8 \
         from workspace_connector_sync_log t where t.completed_at is not null \
           and t.duration_ms is not null group by 1, 2, 3"
    );
    assert_eq!(
        family(text, "connector_sync_duration_seconds_count"),
        expected(&mut conn, &["connector", "trigger", "status"], &durations).await,
        "connector_sync_duration_seconds_count"
    );
    let le_300 = format!(
        "select {connector}, coalesce(t.trigger_type::text, 'none'), t.status::text, '300', count(*)::float8 \
         from workspace_connector_sync_log t where t.completed_at is not null \
           and t.duration_ms <= 300000 group by 1, 2, 3"
    );
    let buckets: BTreeMap<_, _> = family(text, "connector_sync_duration_seconds_bucket")
        .into_iter()
        .filter(|(labels, _)| labels.iter().any(|(k, v)| k == "le" && v == "300"))
        .collect();
    assert_eq!(
        buckets,
        expected(
            &mut conn,
            &["connector", "trigger", "status", "le"],
            &le_300
        )
        .await,
        "connector_sync_duration_seconds_bucket{{le=\"300\"}}"
    );
    let records = format!(
        "select {connector}, sum((t.metadata ->> 'records_synced')::float8) \
         from workspace_connector_sync_log t where t.completed_at is not null group by 1"
    );
    assert_eq!(
        family(text, "connector_sync_records_synced_total"),
        expected(&mut conn, &["connector"], &records).await,
        "connector_sync_records_synced_total"
    );
    let last_success = format!(
        "select {connector}, max(extract(epoch from t.completed_at))::float8 \
         from workspace_connector_sync_log t where t.status = 'success' group by 1"
    );
    assert_eq!(
        family(text, "connector_sync_last_success_timestamp_seconds"),
        expected(&mut conn, &["connector"], &last_success).await,
        "connector_sync_last_success_timestamp_seconds (naive timestamps read as UTC)"
    );
    let failing = format!(
        "select connector, count(*)::float8 from ( \
           select distinct on (t.workspace_connector_id) {connector} as connector, t.status \
           from workspace_connector_sync_log t where t.completed_at is not null \
           order by t.workspace_connector_id, t.completed_at desc, t.id desc) latest \
         where status = 'error' group by 1"
    );
    // The connection's connector is the one of its latest terminal run.
    assert_eq!(
        family(text, "connector_sync_failing_connections"),
        expected(&mut conn, &["connector"], &failing).await,
        "connector_sync_failing_connections"
    );
    let active = format!(
        "select {connector}, t.status::text, count(*)::float8 from workspace_connector_sync_log t \
         where t.deleted_at is null and t.status in ('scheduled', 'in_progress') group by 1, 2"
    );
    assert_eq!(
        family(text, "connector_sync_runs_active"),
        expected(&mut conn, &["connector", "status"], &active).await,
        "connector_sync_runs_active"
    );
    let stuck = format!(
        "select {connector}, t.status::text, count(*)::float8 from workspace_connector_sync_log t \
         where t.deleted_at is null and ( \
           (t.status = 'scheduled' and t.created_at < (now() at time zone 'utc') - interval '15 minutes') \
           or (t.status = 'in_progress' and (t.updated_at < (now() at time zone 'utc') - interval '30 minutes' \
               or coalesce(t.started_at, t.created_at) < (now() at time zone 'utc') - interval '6 hours'))) \
         group by 1, 2"
    );
    let stuck_expected = expected(&mut conn, &["connector", "status"], &stuck).await;
    assert_eq!(
        stuck_expected.values().sum::<f64>(),
        2.0,
        "the fixture has two stuck runs"
    );
    assert_eq!(
        family(text, "connector_sync_runs_stuck"),
        stuck_expected,
        "connector_sync_runs_stuck"
    );
}

/// The table's definition, indexes and rows, to show syncwatch changed none of them.
async fn table_fingerprint(db: &TestDb) -> (String, String, String) {
    let mut conn = admin(db).await;
    let definition: String = sqlx::query_scalar(
        "select string_agg(column_name || ' ' || data_type || ' ' || coalesce(column_default, '') \
           || ' ' || is_nullable, ', ' order by ordinal_position) \
         from information_schema.columns where table_schema = 'public' \
           and table_name = 'workspace_connector_sync_log'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let indexes: String = sqlx::query_scalar(
        "select coalesce(string_agg(indexdef, '; ' order by indexname), '') from pg_indexes \
         where schemaname = 'public' \
           and tablename in ('workspace_connector_sync_log', 'workspace_connector')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let rows: String = sqlx::query_scalar(
        "select md5(string_agg(t::text, '|' order by t.id)) from workspace_connector_sync_log t",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    (definition, indexes, rows)
}

/// Waits until the server exports its domain metrics (leader, caught up).
/// The status page over the observed table (enum statuses, naive timestamps, labels from
/// the lookup): the failing connections with their latest error as the table has it, and
/// the links on to a connection's runs and a run.
async fn assert_status_page_reads_the_observed_table(db: &TestDb, api: &str) {
    let client = reqwest::Client::new();
    let page = |path: String| {
        let client = client.clone();
        async move {
            let response = client.get(format!("{api}{path}")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.text().await.unwrap()
        }
    };
    let overview = page("/ui".into()).await;
    assert!(overview.contains(">unknown</a>"), "{overview}");
    let failing = page("/ui/failing".into()).await;
    let href = |body: &str, prefix: &str| -> Vec<String> {
        body.split("href=\"")
            .filter_map(|rest| rest.split('"').next())
            .filter(|h| h.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    };
    let connections = href(&failing, "/ui/connections/");
    assert!(!connections.is_empty(), "{failing}");
    let id = connections[0].trim_start_matches("/ui/connections/");
    let latest: Option<String> = sqlx::query_scalar(&format!(
        "select error from workspace_connector_sync_log where workspace_connector_id = '{id}' \
         and status = 'error' order by completed_at desc, id desc limit 1"
    ))
    .fetch_one(&mut admin(db).await)
    .await
    .unwrap();
    let latest = latest.expect("a failing connection's latest failure has its error text");
    assert!(failing.contains(&format!("<pre class=\"error\">{latest}</pre>")));
    let connection = page(connections[0].clone()).await;
    let runs = href(&connection, "/ui/runs/");
    assert!(!runs.is_empty(), "{connection}");
    let run = page(runs[0].clone()).await;
    assert!(run.contains(id), "the run page links its connection");
}

async fn scrape_when_built(server: &Server) -> String {
    let mut text = String::new();
    wait_until(
        "the first build to catch up",
        Duration::from_secs(60),
        async || {
            text = server.scrape().await;
            common::sample(&text, "syncwatch_scanner_leader") == Some(1.0)
                && common::sample(&text, "syncwatch_build_progress_ratio") == Some(1.0)
                && text.contains("connector_sync_runs_total{")
        },
    )
    .await;
    text
}

#[tokio::test]
async fn a_select_only_role_observes_the_orchestrators_table_with_lookup_labels() {
    let Some(observed) = Observed::new().await else {
        return;
    };
    fill(&observed.db, 7).await;
    let before = table_fingerprint(&observed.db).await;
    let state_dir = tempfile::tempdir().unwrap();
    let state = format!("sqlite://{}", state_dir.path().join("state.db").display());
    let flags = [
        "--observe-only",
        "--connector-from",
        "lookup:workspace_connector.slug",
        "--state-database-url",
        &state,
        "--scan-interval",
        "200ms",
        "--checkpoint-interval",
        "200ms",
    ];
    let (api_port, metrics_port) = (free_port(), free_port());
    let server = Server::start_on(&observed.reader_url, api_port, metrics_port, &flags).await;
    let text = scrape_when_built(&server).await;
    assert_metrics_match_sql(&observed.db, &text, LOOKUP_CONNECTOR).await;
    assert!(
        family(&text, "connector_sync_runs_total")
            .keys()
            .any(|labels| labels.contains(&("connector".into(), "unknown".into()))),
        "a slug outside the label pattern is counted as unknown"
    );

    // Reads work over the observed table; writes answer 403 and change nothing.
    let client = reqwest::Client::new();
    let list = common::get_json(&format!("{}/v1/sync-logs?limit=5", server.api)).await;
    let first = &list["items"][0];
    assert!(first["connector_slug"].is_string(), "{list}");
    let id = first["workspace_connector_sync_log_id"].as_str().unwrap();
    let one = client
        .get(format!("{}/v1/sync-logs/{id}", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    let status = client
        .get(format!("{}/v1/connector-status", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), StatusCode::OK);
    assert_eq!(
        status.json::<serde_json::Value>().await.unwrap()["items"]
            .as_array()
            .map(Vec::len),
        Some(12),
        "one entry per connection"
    );
    assert_status_page_reads_the_observed_table(&observed.db, &server.api).await;
    for (method, path) in [
        (reqwest::Method::POST, "/v1/sync-logs".to_owned()),
        (reqwest::Method::POST, format!("/v1/sync-logs/{id}/fail")),
        (reqwest::Method::DELETE, format!("/v1/sync-logs/{id}")),
    ] {
        let response = client
            .request(method.clone(), format!("{}{path}", server.api))
            .json(&serde_json::json!({"workspace_connector_id": Uuid::nil(), "connector_slug": "x", "error": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "observe_only", "{body}");
    }

    // A restart continues from the checkpoint in the state store, with equal totals.
    wait_until(
        "a checkpoint in the state store",
        Duration::from_secs(20),
        async || std::fs::metadata(state_dir.path().join("state.db")).is_ok(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.kill_9();
    let server = Server::start_on(&observed.reader_url, api_port, metrics_port, &flags).await;
    let text = scrape_when_built(&server).await;
    assert_metrics_match_sql(&observed.db, &text, LOOKUP_CONNECTOR).await;
    drop(server);
    let mut state_conn = sqlx::SqliteConnection::connect(&state).await.unwrap();
    let saved: i64 = sqlx::query_scalar("select count(*) from syncwatch_connection_state")
        .fetch_one(&mut state_conn)
        .await
        .unwrap();
    assert_eq!(
        saved, 12,
        "every connection's state is saved in the state store"
    );

    assert_eq!(
        table_fingerprint(&observed.db).await,
        before,
        "the observed table's definition, indexes and rows are unchanged"
    );
}

#[tokio::test]
async fn metadata_labels_a_state_schema_and_failover() {
    let Some(observed) = Observed::new().await else {
        return;
    };
    fill(&observed.db, 11).await;
    let before = table_fingerprint(&observed.db).await;
    // A role that may write the table: proof that syncwatch does not, rather than that it
    // cannot. It may create the `syncwatch` schema, which holds the state.
    let url = observed.db.url.expose().to_owned();
    let flags = [
        "--observe-only",
        "--connector-from",
        "metadata:connector_slug",
        "--scan-interval",
        "200ms",
        "--checkpoint-interval",
        "200ms",
    ];
    let first = Server::start(&url, &flags).await;
    let text = scrape_when_built(&first).await;
    assert_metrics_match_sql(&observed.db, &text, METADATA_CONNECTOR).await;
    let second = Server::start(&url, &flags).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        common::sample(&second.scrape().await, "syncwatch_scanner_leader"),
        Some(0.0),
        "one leader at a time"
    );
    first.kill_9();
    let text = scrape_when_built(&second).await;
    assert_metrics_match_sql(&observed.db, &text, METADATA_CONNECTOR).await;
    drop(second);
    let mut conn = admin(&observed.db).await;
    let saved: i64 =
        sqlx::query_scalar("select count(*) from syncwatch.syncwatch_scanner_checkpoint")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(saved, 1, "the state lives in the syncwatch schema");
    assert_eq!(table_fingerprint(&observed.db).await, before);
}

/// A checkpoint is keyed by the table and the whole mapping: restarted on the same state
/// store with another `--connector-from`, the scanner builds anew from the table instead of
/// continuing under the old labels, and keeps its connection states apart from the ones
/// saved under them; two deployments with two mappings can share the state store at once.
#[tokio::test]
async fn a_mapping_change_rebuilds_and_never_mixes() {
    let Some(observed) = Observed::new().await else {
        return;
    };
    fill(&observed.db, 13).await;
    let state_dir = tempfile::tempdir().unwrap();
    let state = format!("sqlite://{}", state_dir.path().join("state.db").display());
    let flags = |connector: &'static str| {
        vec![
            "--observe-only".to_owned(),
            "--connector-from".into(),
            connector.into(),
            "--state-database-url".into(),
            state.clone(),
            "--scan-interval".into(),
            "200ms".into(),
            "--checkpoint-interval".into(),
            "200ms".into(),
        ]
    };
    let lookup = flags("lookup:workspace_connector.slug");
    let lookup: Vec<&str> = lookup.iter().map(String::as_str).collect();
    let server = Server::start(&observed.reader_url, &lookup).await;
    let text = scrape_when_built(&server).await;
    assert_metrics_match_sql(&observed.db, &text, LOOKUP_CONNECTOR).await;
    // Until a checkpoint with the connection states is saved.
    let mut state_conn = sqlx::SqliteConnection::connect(&state).await.unwrap();
    common::wait_until("a saved checkpoint", Duration::from_secs(20), async || {
        sqlx::query_scalar::<_, i64>("select count(*) from syncwatch_connection_state")
            .fetch_one(&mut state_conn)
            .await
            .is_ok_and(|n| n > 0)
    })
    .await;
    drop(server);

    let metadata = flags("metadata:connector_slug");
    let metadata: Vec<&str> = metadata.iter().map(String::as_str).collect();
    let server = Server::start(&observed.reader_url, &metadata).await;
    let text = scrape_when_built(&server).await;
    // Exactly the new labels: nothing carried over from the lookup's.
    assert_metrics_match_sql(&observed.db, &text, METADATA_CONNECTOR).await;
    let mut conn = admin(&observed.db).await;
    let terminal: i64 = sqlx::query_scalar(
        "select count(*) from workspace_connector_sync_log where completed_at is not null",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        family(&text, "connector_sync_runs_total")
            .values()
            .sum::<f64>(),
        terminal as f64,
        "every terminal run counted once"
    );
    // Once more under the new mapping: it continues from its own checkpoint, and the
    // connection states it loads are the new mapping's alone.
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(server);
    let server = Server::start(&observed.reader_url, &metadata).await;
    let text = scrape_when_built(&server).await;
    assert_metrics_match_sql(&observed.db, &text, METADATA_CONNECTOR).await;

    // Both mappings at once on one database and one state store: each has its own lease
    // (both lead), its own checkpoint and its own connection states.
    let beside = Server::start(&observed.reader_url, &lookup).await;
    let text = scrape_when_built(&beside).await;
    assert_metrics_match_sql(&observed.db, &text, LOOKUP_CONNECTOR).await;
    let text = scrape_when_built(&server).await;
    assert_metrics_match_sql(&observed.db, &text, METADATA_CONNECTOR).await;
    common::wait_until(
        "two checkpoints, one per mapping",
        Duration::from_secs(20),
        async || {
            let checkpoints: i64 =
                sqlx::query_scalar("select count(*) from syncwatch_scanner_checkpoint")
                    .fetch_one(&mut state_conn)
                    .await
                    .unwrap_or(0);
            let scopes: i64 =
                sqlx::query_scalar("select count(distinct scope) from syncwatch_connection_state")
                    .fetch_one(&mut state_conn)
                    .await
                    .unwrap_or(0);
            checkpoints == 2 && scopes == 2
        },
    )
    .await;
}

/// The statements `check` printed for the table's owner.
fn printed<'a>(out: &'a str, starting: &str) -> Vec<&'a str> {
    out.lines()
        .map(str::trim)
        .filter(|l| l.starts_with(starting))
        .collect()
}

fn check(url: &str, extra: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(service_bin())
        .args(["check", "--observe-only", "--database-url", url])
        .args(extra)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run syncwatch check");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn check_lists_the_missing_indexes_until_they_exist() {
    let Some(observed) = Observed::new().await else {
        return;
    };
    let lookup = ["--connector-from", "lookup:workspace_connector.slug"];
    let (ok, out) = check(&observed.reader_url, &lookup);
    assert!(ok, "{out}");
    assert!(
        out.contains("column status (read): ok, connector_sync_status (enum)"),
        "{out}"
    );
    assert!(
        out.contains("column completed_at (read): ok, timestamp without time zone (taken as UTC)"),
        "{out}"
    );
    assert!(
        out.contains("index for API: a run by its public id: ok"),
        "{out}"
    );
    let statements = printed(&out, "create index concurrently");
    assert_eq!(statements.len(), 6, "{out}");
    // The statements are what the table's owner runs, as printed.
    let mut conn = admin(&observed.db).await;
    for statement in &statements {
        sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
    }
    let (ok, out) = check(&observed.reader_url, &lookup);
    assert!(ok, "{out}");
    assert!(!out.contains("missing"), "{out}");

    // What cannot work says why and exits non-zero.
    let (ok, out) = check(
        &observed.reader_url,
        &["--connection-column", "connection_id"],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("column connection_id (the connection): FAILED: missing"),
        "{out}"
    );
    let (ok, out) = check(&observed.reader_url, &["--table", "sync_runs"]);
    assert!(!ok, "{out}");
    assert!(out.contains("table sync_runs: FAILED: not found"), "{out}");
    sqlx::raw_sql(&format!(
        "revoke select on workspace_connector from {}",
        observed.reader
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let (ok, out) = check(&observed.reader_url, &lookup);
    assert!(!ok, "{out}");
    assert!(
        out.contains("lookup table workspace_connector: FAILED: this role may not SELECT it"),
        "{out}"
    );
}

/// The same mapping on SQLite: another service's table with its own names, the connector
/// from `metadata`, read by `scan --once`, with rows no contract allows among them.
#[tokio::test]
async fn sqlite_table_with_other_names_is_observed_through_the_same_reads() {
    let db = TestDb::unmigrated(Backend::Sqlite).await.unwrap();
    db.execute(
        "create table sync_runs (id integer primary key, workspace_connector_sync_log_id text \
           not null unique, connection_id text not null, status text not null, trigger_type text, \
           cloud_task_id text, started_at text, completed_at text, duration_ms integer, error text, \
           metadata text, created_at text not null, updated_at text not null, deleted_at text)",
    )
    .await;
    for (n, (status, slug, duration)) in [
        ("success", "hubspot", 1_000),
        ("success", "hubspot", 400_000),
        ("error", "hubspot", 2_000),
        ("error", "BAD SLUG", 3_000),
        ("success", "stripe", 5_000),
    ]
    .into_iter()
    .enumerate()
    {
        db.execute(&format!(
            "insert into sync_runs values ({n}, '{}', '{}', '{status}', 'manual', null, \
             '2026-01-01T00:00:00.000Z', '2026-01-01T00:10:00.000Z', {duration}, null, \
             '{{\"connector_slug\": \"{slug}\", \"records_synced\": 3}}', \
             '2026-01-01T00:00:00.000Z', '2026-01-01T00:10:00.000Z', null)",
            Uuid::new_v4(),
            Uuid::from_u128(n as u128 % 3),
        ))
        .await;
    }
    // Rows written outside the contract: a status the orchestrator added, a `metadata`
    // that is not JSON (no connector in it, so `unknown`), a creation time in epoch
    // seconds. The first is left out, the others counted; none fails the scan.
    for (n, status, metadata, created) in [
        (
            5,
            "cancelled",
            "'{\"connector_slug\": \"hubspot\"}'",
            "'2026-01-01T00:00:00.000Z'",
        ),
        (6, "success", "'not json'", "'2026-01-01T00:00:00.000Z'"),
        (
            7,
            "success",
            "'{\"connector_slug\": \"stripe\"}'",
            "1767225600",
        ),
    ] {
        db.execute(&format!(
            "insert into sync_runs values ({n}, '{}', '{}', '{status}', 'manual', null, \
             '2026-01-01T00:00:00.000Z', '2026-01-01T00:10:00.000Z', 1000, null, {metadata}, \
             {created}, '2026-01-01T00:10:00.000Z', null)",
            Uuid::new_v4(),
            Uuid::from_u128(n as u128 % 3),
        ))
        .await;
    }
    let output = std::process::Command::new(service_bin())
        .args(["scan", "--once", "--observe-only", "--table", "sync_runs"])
        .args(["--connection-column", "connection_id"])
        .args(["--connector-from", "metadata:connector_slug"])
        .args(["--database-url", db.url.expose()])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let runs = family(&text, "connector_sync_runs_total");
    let key = |connector: &str, status: &str| {
        vec![
            ("connector".to_owned(), connector.to_owned()),
            ("status".to_owned(), status.to_owned()),
            ("trigger".to_owned(), "manual".to_owned()),
        ]
    };
    let want: BTreeMap<_, _> = [
        (key("hubspot", "success"), 2.0),
        (key("hubspot", "error"), 1.0),
        (key("unknown", "error"), 1.0),
        (key("unknown", "success"), 1.0),
        (key("stripe", "success"), 2.0),
    ]
    .into_iter()
    .collect();
    assert_eq!(runs, want, "{text}");
    // check reads SQLite's catalogue the same way: every column found, the wanted indexes
    // as statements (no CONCURRENTLY on SQLite), the unique public id index found.
    let flags = [
        "--table",
        "sync_runs",
        "--connection-column",
        "connection_id",
        "--connector-from",
        "metadata:connector_slug",
    ];
    let (ok, out) = check(db.url.expose(), &flags);
    assert!(ok, "{out}");
    assert!(
        out.contains("column connection_id (the connection): ok, TEXT"),
        "{out}"
    );
    assert!(
        out.contains("index for API: a run by its public id: ok"),
        "{out}"
    );
    let statements = printed(&out, "create index if not exists");
    assert_eq!(statements.len(), 6, "{out}");
    for statement in &statements {
        db.execute(statement).await;
    }
    let (ok, out) = check(db.url.expose(), &flags);
    assert!(ok && !out.contains("missing"), "{out}");
    let schema = db
        .scalar_i64(
            "select count(*) from sqlite_master where type = 'table' \
             and (name like 'syncwatch%' or name = '_sqlx_migrations')",
        )
        .await;
    assert_eq!(
        schema, 0,
        "nothing of syncwatch's was created in the observed file"
    );
}

/// Runs written by an orchestrator whose sessions are in `America/New_York`, storing
/// `now()` in `timestamp without time zone` columns (local times, five hours behind UTC in
/// winter, four in summer). Taken as UTC they complete hours before the window and new ones
/// are not counted; with `--naive-timezone America/New_York` they are counted at once, none
/// looks stuck, and the last success is now.
#[tokio::test]
async fn naive_local_times_are_read_in_the_zone_they_were_written_in() {
    let Some(observed) = Observed::new().await else {
        return;
    };
    let url = observed.reader_url.clone();
    let mut conn = admin(&observed.db).await;
    let connection = Uuid::new_v4();
    exec(
        &mut conn,
        format!("insert into workspace_connector (id, slug) values ('{connection}', 'hubspot')"),
    )
    .await;
    let write = async |conn: &mut PgConnection, n: usize| {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("set local timezone = 'America/New_York'")
            .execute(&mut *tx)
            .await
            .unwrap();
        for _ in 0..n {
            sqlx::query(
                "insert into workspace_connector_sync_log (workspace_connector_id, status, \
                   started_at, completed_at, duration_ms, created_at, updated_at) \
                 values ($1, 'success', now() - interval '30 seconds', now(), 30000, \
                   now() - interval '40 seconds', now())",
            )
            .bind(connection)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        // One just started, heartbeating.
        sqlx::query(
            "insert into workspace_connector_sync_log (workspace_connector_id, status, \
               started_at, created_at, updated_at) \
             values ($1, 'in_progress', now(), now(), now())",
        )
        .bind(connection)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    };
    let mut flags = vec![
        "--observe-only",
        "--connector-from",
        "lookup:workspace_connector.slug",
        "--scan-interval",
        "200ms",
        "--checkpoint-interval",
        "200ms",
    ];
    // Taken as UTC: the new runs fall hours before the window.
    let server = Server::start(&url, &flags).await;
    wait_until("the first build", Duration::from_secs(30), async || {
        common::sample(&server.scrape().await, "syncwatch_build_progress_ratio") == Some(1.0)
    })
    .await;
    write(&mut conn, 10).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = server.scrape().await;
    assert_eq!(
        common::family_sum(&text, "connector_sync_runs_total"),
        0.0,
        "{text}"
    );
    drop(server);

    flags.extend(["--naive-timezone", "America/New_York"]);
    let (ok, said) = crate::observe_orm::check(&url, &flags[..3]);
    assert!(ok, "{said}");
    assert!(said.contains("(taken as UTC)"), "{said}");
    let mut with_zone = flags[..3].to_vec();
    with_zone.extend(["--naive-timezone", "America/New_York"]);
    let (ok, said) = crate::observe_orm::check(&url, &with_zone);
    assert!(ok, "{said}");
    assert!(
        said.contains("(taken as America/New_York, --naive-timezone)"),
        "{said}"
    );
    let server = Server::start(&url, &flags).await;
    write(&mut conn, 5).await;
    let mut text = String::new();
    wait_until("every run counted", Duration::from_secs(30), async || {
        text = server.scrape().await;
        common::family_sum(&text, "connector_sync_runs_total") == 15.0
    })
    .await;
    assert_eq!(
        common::family_sum(&text, "connector_sync_runs_stuck"),
        0.0,
        "{text}"
    );
    let last = common::sample(
        &text,
        "connector_sync_last_success_timestamp_seconds{connector=\"hubspot\"}",
    )
    .unwrap();
    let now = Utc::now().timestamp() as f64;
    assert!((now - last).abs() < 120.0, "last success {last}, now {now}");
    assert!(
        common::sample(
            &text,
            "connector_sync_runs_active{connector=\"hubspot\",status=\"in_progress\"}"
        ) == Some(2.0),
        "{text}"
    );
}

//! The sync log is pinned to one schema at start (docs/operations.md, "Which table is
//! read"): a role named like syncwatch's state schema, whose default `search_path`
//! (`"$user", public`) would put the state schema's own sync log table first, still reads
//! the observed table; on syncwatch's own table a second table of the name on the role's
//! path stops the start, naming both; `check` says which table it judged.

use crate::common;

use std::time::Duration;

use common::{Backend, Server, TestDb};
use sqlx::{Connection, PgConnection};

use crate::observe_orm::{check, differences, drive_runs, MAPPING, SCHEMA};

/// The role whose name is the state schema's: server-wide, so made once and kept (it owns
/// nothing outside the test's database, which is dropped with everything in it).
const ROLE: &str = "syncwatch";

#[tokio::test]
async fn a_role_named_like_the_state_schema_observes_the_table_not_its_own_state() {
    let Some(db) = TestDb::unmigrated(Backend::Postgres).await else {
        return;
    };
    let mut conn = PgConnection::connect(db.url.expose()).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    drive_runs(&mut conn, 0).await;
    let name = db.url.expose().rsplit('/').next().unwrap().to_owned();
    sqlx::raw_sql(&format!(
        "do $$ begin
           if not exists (select from pg_roles where rolname = '{ROLE}') then
             create role {ROLE} login;
           end if;
         end $$;
         grant connect, create on database {name} to {ROLE};
         grant usage on schema public to {ROLE};
         grant select on workspace_connector_sync_log, workspace_connector to {ROLE};"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let mut url = url::Url::parse(db.url.expose()).unwrap();
    url.set_username(ROLE).unwrap();
    let url = url.to_string();

    let mut flags = MAPPING.to_vec();
    flags.extend(["--scan-interval", "200ms"]);
    let server = Server::start(&url, &flags).await;
    // The state schema and its tables exist now, first on the role's default path.
    let shadow: i64 = sqlx::query_scalar(
        "select count(*) from pg_tables where schemaname = 'syncwatch' \
         and tablename = 'workspace_connector_sync_log'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        shadow, 1,
        "the state schema holds a sync log table of its own"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = server.scrape().await;
        let Some(diff) = differences(&mut conn, &text).await else {
            break;
        };
        assert!(
            std::time::Instant::now() < deadline,
            "the exported numbers never equalled SQL over public.workspace_connector_sync_log: \
             {diff}\n{}",
            server.stderr_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = common::get_json(&format!("{}/v1/sync-logs?limit=5", server.api)).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(5),
        "the API lists the observed runs: {listed}"
    );
    drop(server);

    let (ok, said) = check(&url, MAPPING);
    assert!(ok, "{said}");
    assert!(
        said.contains("table: \"public\".\"workspace_connector_sync_log\""),
        "check names the table it judged: {said}"
    );
    assert!(said.contains("search_path: \"public\""), "{said}");
    let _ = conn.close().await;
}

async fn create_one(client: &reqwest::Client, api: &str) {
    let created = client
        .post(format!("{api}/v1/sync-logs"))
        .json(&serde_json::json!({
            "workspace_connector_id": uuid::Uuid::new_v4(),
            "connector_slug": "hubspot"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
}

#[tokio::test]
async fn a_second_sync_log_on_the_search_path_stops_the_start_naming_both() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let mut conn = PgConnection::connect(db.url.expose()).await.unwrap();
    let name = db.url.expose().rsplit('/').next().unwrap().to_owned();
    // A schema another tool made, first on the path for this database, holding a table of
    // the sync log's name: syncwatch's writes would have gone there.
    sqlx::raw_sql(&format!(
        "create schema shadow;
         create table shadow.workspace_connector_sync_log (id bigint);
         alter database {name} set search_path = shadow, public;"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let out = std::process::Command::new(common::service_bin())
        .args(["check", "--database-url", db.url.expose()])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("\"public\".\"workspace_connector_sync_log\"")
            && said.contains("\"shadow\".\"workspace_connector_sync_log\""),
        "check names both tables: {said}"
    );
    let serve = std::process::Command::new(common::service_bin())
        .args(["serve", "--database-url", db.url.expose()])
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env_remove("SYNCWATCH_API_TOKENS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(!serve.status.success(), "serve started: {stderr}");
    assert!(stderr.contains("two tables named"), "{stderr}");

    // With the other table gone, the same path serves, and every session's writes land in
    // syncwatch's table even though the path still names `shadow` first.
    sqlx::raw_sql("drop table shadow.workspace_connector_sync_log")
        .execute(&mut conn)
        .await
        .unwrap();
    let server = Server::start(db.url.expose(), &[]).await;
    let client = reqwest::Client::new();
    create_one(&client, &server.api).await;
    sqlx::raw_sql("create table shadow.workspace_connector_sync_log (id bigint)")
        .execute(&mut conn)
        .await
        .unwrap();
    // A table created on the path after the start changes nothing for this process.
    create_one(&client, &server.api).await;
    let in_public: i64 =
        sqlx::query_scalar("select count(*) from public.workspace_connector_sync_log")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(in_public, 2);
    let _ = conn.close().await;
}

//! PostgreSQL's generic plans of the API's writes. A session plans a prepared statement
//! once and keeps the plan until the table's statistics change, so the plan must not
//! depend on how many runs were live when it was made.

use sqlx::{Connection, PgConnection};
use syncwatch::domain::Action;
use syncwatch::test_support::postgres_transition;

use crate::common::{Backend, TestDb};

/// 20,000 finished runs analyzed while none was live (a quiet hour, or a history loaded in
/// one go), then 5 runs live: the statistics say the partial active-runs index is empty,
/// so it is the cheapest guess for any statement whose conditions imply its predicate
/// (scheduled or in progress, live), and a plan made then and kept while thousands of runs
/// go live would read every one of them per transition. Each action's transition, planned
/// generically, must find its run by the public id's unique index instead.
#[tokio::test]
async fn a_transitions_generic_plan_finds_the_run_by_its_public_id() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    db.execute(
        "insert into workspace_connector_sync_log \
           (workspace_connector_id, connector_slug, status, started_at, completed_at, \
            duration_ms, created_at, updated_at) \
         select gen_random_uuid(), 'plans', 'success', t, t + interval '1 second', 1000, t, t \
         from (select now() - i * interval '1 minute' as t from generate_series(1, 20000) i) s",
    )
    .await;
    db.execute("analyze workspace_connector_sync_log").await;
    db.execute(
        "insert into workspace_connector_sync_log \
           (workspace_connector_id, connector_slug, status, started_at) \
         select gen_random_uuid(), 'plans', \
                case when i <= 3 then 'in_progress' else 'scheduled' end, \
                case when i <= 3 then now() end \
         from generate_series(1, 5) i",
    )
    .await;

    let mut conn = PgConnection::connect(db.url.expose()).await.unwrap();
    sqlx::query("set plan_cache_mode = force_generic_plan")
        .execute(&mut conn)
        .await
        .unwrap();
    for action in [
        Action::Start,
        Action::Heartbeat,
        Action::Succeed,
        Action::Fail,
    ] {
        let allowed = action.allowed_from();
        // 1 id, 2 new status, 3 error, 4 metadata patch, then the allowed statuses.
        let types: Vec<&str> = std::iter::once("uuid")
            .chain(std::iter::repeat_n("text", 3 + allowed.len()))
            .collect();
        let name = format!("transition_{action}");
        sqlx::query(&format!(
            "prepare {name} ({}) as {}",
            types.join(", "),
            postgres_transition(action)
        ))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("prepare the {action} transition: {e}"));
        let statuses: Vec<String> = allowed
            .iter()
            .map(|s| format!(", '{}'", s.as_str()))
            .collect();
        let plan: Vec<String> = sqlx::query_scalar(&format!(
            "explain execute {name} (gen_random_uuid(), '{}', null, null{})",
            action.target().as_str(),
            statuses.concat()
        ))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("using workspace_connector_sync_log_public_id_key"),
            "the {action} transition's generic plan does not probe the public id:\n{plan}"
        );
    }
    let _ = conn.close().await;
}

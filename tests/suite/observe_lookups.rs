//! The live runs of an observed table whose connector and public id come from the
//! connection table (`lookup:`): read by connection key and resolved by syncwatch through
//! its cache, on both stores. Every live run gets its connector and public uuid as the
//! joined reads give them; a run whose connection has no row, or no public id, is skipped
//! and counted as the joined read skips it; and a second read is answered from the cache
//! (a label changed meanwhile shows only in a new store, or after the cache's minute).

use crate::common;

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use common::{Backend, TestDb};
use syncwatch::domain::ConnectionKind;
use syncwatch::store::{self, Ident, PoolOptions, StuckCutoffs, TableMap};

/// Connection keys 1 and 2 have rows (hubspot and stripe), 4 a row without a public id,
/// 3 none at all.
async fn fixture(db: &TestDb) {
    let (ts, json) = match db.backend {
        Backend::Postgres => ("timestamptz", "jsonb"),
        Backend::Sqlite => ("datetime", "text"),
    };
    db.execute(
        "create table workspace_connector (id integer primary key, \
         workspace_connector_id varchar(36) unique, slug varchar(64))",
    )
    .await;
    db.execute(&format!(
        "create table workspace_connector_sync_log (
            id integer primary key,
            workspace_connector_sync_log_id varchar(36) not null unique,
            workspace_connector_id integer not null,
            status varchar(16) not null,
            trigger_type varchar(16),
            cloud_task_id varchar(255),
            started_at {ts}, completed_at {ts}, duration_ms bigint, error text,
            metadata {json},
            created_at {ts} not null, updated_at {ts} not null, deleted_at {ts})"
    ))
    .await;
    db.execute(
        "insert into workspace_connector values \
         (1, '00000000-0000-0000-0000-0000000000a1', 'hubspot'), \
         (2, '00000000-0000-0000-0000-0000000000a2', 'stripe'), \
         (4, null, 'zendesk')",
    )
    .await;
    let at = (Utc::now() - Duration::minutes(5)).format("%Y-%m-%d %H:%M:%S");
    let runs = [
        (1, 1, "in_progress", "manual"),
        (2, 1, "in_progress", "cloud_task"),
        (3, 2, "in_progress", "manual"),
        (4, 2, "scheduled", "cloud_task"),
        (5, 3, "in_progress", "manual"),
        (6, 4, "in_progress", "manual"),
        (7, 1, "success", "manual"),
    ];
    for (id, key, status, trigger) in runs {
        let completed = if status == "success" {
            format!("'{at}'")
        } else {
            "null".into()
        };
        db.execute(&format!(
            "insert into workspace_connector_sync_log (id, workspace_connector_sync_log_id, \
             workspace_connector_id, status, trigger_type, started_at, completed_at, \
             created_at, updated_at) values ({id}, '{}', {key}, '{status}', '{trigger}', \
             '{at}', {completed}, '{at}', '{at}')",
            uuid::Uuid::from_u128(id)
        ))
        .await;
    }
}

fn mapping() -> TableMap {
    TableMap {
        table: Ident::table("workspace_connector_sync_log").unwrap(),
        id: Ident::column("id").unwrap(),
        connection: Ident::column("workspace_connector_id").unwrap(),
        connection_id: "lookup:workspace_connector.workspace_connector_id"
            .parse()
            .unwrap(),
        connector: "lookup:workspace_connector.slug".parse().unwrap(),
        observed: true,
        // As `serve` reads them from the catalogue: ids are the public column's (text),
        // the keys the connection column's (integer).
        connection_kind: ConnectionKind::Text,
        key_kind: ConnectionKind::Int,
        run_key_kind: ConnectionKind::Int,
    }
}

async fn observed(db: &TestDb) -> store::Store {
    let options = PoolOptions {
        read_only: true,
        ..PoolOptions::default()
    };
    store::connect(&db.url, &options, &mapping()).await.unwrap()
}

/// Live runs per (public id, connector).
async fn live(store: &store::Store) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for run in store.live().live_runs(None, 100).await.unwrap() {
        // A run without a resolvable public id is kept (it counts in its group) but
        // named by none.
        let Some(id) = run.workspace_connector_id else {
            continue;
        };
        *out.entry((id.as_str().to_owned(), run.connector_slug))
            .or_default() += 1;
    }
    out
}

/// Active runs per (connector, status).
async fn groups(store: &store::Store) -> BTreeMap<(String, String), u64> {
    let long_ago = Utc::now() - Duration::days(1);
    let cutoffs = StuckCutoffs {
        scheduled_before: long_ago,
        idle_before: long_ago,
        started_before: long_ago,
    };
    store
        .live()
        .active_groups(&cutoffs)
        .await
        .unwrap()
        .into_iter()
        .map(|g| ((g.connector_slug, g.status.as_str().to_owned()), g.count))
        .collect()
}

#[tokio::test]
async fn live_runs_resolve_their_lookups_by_key_on_both_stores() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let Some(db) = TestDb::unmigrated(backend).await else {
            continue;
        };
        fixture(&db).await;
        let store = observed(&db).await;

        let a1 = "00000000-0000-0000-0000-0000000000a1".to_owned();
        let a2 = "00000000-0000-0000-0000-0000000000a2".to_owned();
        let wanted_live = BTreeMap::from([
            ((a1.clone(), "hubspot".to_owned()), 2),
            ((a2.clone(), "stripe".to_owned()), 2),
        ]);
        assert_eq!(live(&store).await, wanted_live, "{backend:?}");
        // Keys 3 (no connection row) and 4 (no public id): skipped, each counted once.
        let skipped: u64 = store
            .skipped()
            .counts()
            .iter()
            .filter(|(reason, _, _)| reason.as_str() == "null")
            .map(|(_, _, n)| n)
            .sum();
        assert_eq!(skipped, 2, "{backend:?}: {:?}", store.skipped().counts());
        // The groups count every active run, the unreadable public ids included (they
        // need only the connector): key 3 has none, so `unknown`.
        let wanted_groups = BTreeMap::from([
            (("hubspot".to_owned(), "in_progress".to_owned()), 2),
            (("stripe".to_owned(), "in_progress".to_owned()), 1),
            (("stripe".to_owned(), "scheduled".to_owned()), 1),
            (("unknown".to_owned(), "in_progress".to_owned()), 1),
            (("zendesk".to_owned(), "in_progress".to_owned()), 1),
        ]);
        assert_eq!(groups(&store).await, wanted_groups, "{backend:?}");

        // A renamed connector: this store answers from its cache, a new one reads it.
        db.execute("update workspace_connector set slug = 'hubspot_v2' where id = 1")
            .await;
        assert_eq!(live(&store).await, wanted_live, "{backend:?}: not cached");
        let fresh = observed(&db).await;
        let renamed = live(&fresh).await;
        assert_eq!(
            renamed.get(&(a1.clone(), "hubspot_v2".to_owned())),
            Some(&2)
        );
        assert_eq!(
            groups(&fresh)
                .await
                .get(&("hubspot_v2".to_owned(), "in_progress".to_owned())),
            Some(&2),
            "{backend:?}"
        );
    }
}

//! Concurrency is tested, not assumed: racing finishers, racing duplicate creates, and
//! pagination while rows are being inserted, on both stores.

use crate::common;

use std::collections::HashSet;

use common::{run_id, TestApp};
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

const RACERS: usize = 16;

async fn concurrent_finishers_have_exactly_one_winner(app: &TestApp) {
    for round in 0..3 {
        let row = app.run_in_status("hubspot", "in_progress").await;
        let id = run_id(&row);
        let calls = (0..RACERS).map(|i| {
            let path = if i % 2 == 0 {
                format!("/v1/sync-logs/{id}/succeed")
            } else {
                format!("/v1/sync-logs/{id}/fail")
            };
            let body = (i % 2 == 1).then(|| json!({"error": format!("racer {i}")}));
            async move { app.call(Method::POST, &path, body).await }
        });
        let results = join_all(calls).await;
        let winners: Vec<_> = results.iter().filter(|(s, _)| s.is_success()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for (status, body) in &results {
            assert!(
                status.is_success() || *status == StatusCode::CONFLICT,
                "round {round}: loser got {status} {body}"
            );
        }
        let (_, stored) = app.get(&format!("/v1/sync-logs/{id}")).await;
        assert_eq!(&stored, &winners[0].1, "the stored row is the winner's");
        match stored["status"].as_str().unwrap() {
            "success" => assert!(stored["error"].is_null()),
            "error" => assert!(stored["error"].as_str().unwrap().starts_with("racer ")),
            other => panic!("status {other} after the race"),
        }
        assert!(stored["duration_ms"].as_i64().is_some());
    }
}

async fn concurrent_creates_with_one_cloud_task_make_one_row(app: &TestApp) {
    let body = json!({
        "workspace_connector_id": Uuid::new_v4(),
        "connector_slug": "hubspot",
        "trigger_type": "cloud_task",
        "cloud_task_id": "projects/p/locations/l/queues/q/tasks/race",
    });
    let calls = (0..RACERS).map(|_| {
        let body = body.clone();
        async move { app.post("/v1/sync-logs", body).await }
    });
    let results = join_all(calls).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let replayed = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!((created, replayed), (1, RACERS - 1), "{results:?}");
    let ids: HashSet<String> = results.iter().map(|(_, row)| run_id(row)).collect();
    assert_eq!(ids.len(), 1, "every caller sees the same run");
    assert_eq!(app.db.count_rows().await, 1);
}

async fn pagination_neither_skips_nor_repeats_while_rows_are_inserted(app: &TestApp) {
    let connection = Uuid::new_v4();
    let mut expected = HashSet::new();
    for _ in 0..45 {
        let row = app
            .create(json!({"workspace_connector_id": connection, "connector_slug": "hubspot"}))
            .await;
        expected.insert(run_id(&row));
    }

    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let base = app.base.clone();
        let client = app.client.clone();
        tokio::spawn(async move {
            let mut inserted = 0;
            loop {
                if stop_rx.try_recv().is_ok() || inserted >= 200 {
                    return inserted;
                }
                let response = client
                    .post(format!("{base}/v1/sync-logs"))
                    .json(
                        &json!({"workspace_connector_id": connection, "connector_slug": "hubspot"}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
                inserted += 1;
            }
        })
    };

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/sync-logs?workspace_connector_id={connection}&limit=4");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().map(run_id));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    let _ = stop_tx.send(());
    let inserted = writer.await.unwrap();
    assert!(inserted > 0, "rows were inserted while paging");

    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a row was repeated");
    for id in &expected {
        assert!(unique.contains(id), "row {id} was skipped");
    }
}

on_both_stores!(
    concurrent_finishers_have_exactly_one_winner,
    concurrent_creates_with_one_cloud_task_make_one_row,
    pagination_neither_skips_nor_repeats_while_rows_are_inserted,
);

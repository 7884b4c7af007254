//! The load checker itself (`syncwatch_tools::load`, run directly against the store): it
//! must notice a lost or rolled-back write. The load through the real binaries on both
//! stores is `tools/tests/load.rs`.

use crate::common;

use std::time::Duration;

use common::{Backend, TestDb};
use syncwatch_tools::load::{self, LoadConfig, Target};

/// The verification is only worth something if it fails: a hard-deleted acknowledged run
/// and a finished run moved to another status are both reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_check_notices_lost_and_altered_writes() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let config = LoadConfig {
        clients: 2,
        duration: Duration::from_millis(500),
        fail_every: 0,
        duplicate_finish_every: 0,
        ..LoadConfig::default()
    };
    let report = load::run(
        &Target::Direct(db.store.clone()),
        &config,
        std::future::pending(),
    )
    .await;
    assert!(report.lifecycles >= 2, "{}", report.summary());
    assert_eq!(report.violation_count, 0, "{:?}", report.violations);
    let clean = load::verify(&db.store, &config, &report, true)
        .await
        .unwrap();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);

    let mut ids = report.acked.keys();
    let (lost, altered) = (ids.next().unwrap(), ids.next().unwrap());
    db.execute(&format!(
        "delete from workspace_connector_sync_log where workspace_connector_sync_log_id = '{lost}'"
    ))
    .await;
    db.execute(&format!(
        "update workspace_connector_sync_log set status = 'error', error = 'x' \
         where workspace_connector_sync_log_id = '{altered}'"
    ))
    .await;
    let found = load::verify(&db.store, &config, &report, true)
        .await
        .unwrap();
    let problems = found.problems.join("\n");
    assert!(
        problems.contains("1 acknowledged runs are missing"),
        "{problems}"
    );
    assert!(
        problems.contains("1 runs are behind what was acknowledged"),
        "{problems}"
    );
    assert!(problems.contains("creates were acknowledged"), "{problems}");
}

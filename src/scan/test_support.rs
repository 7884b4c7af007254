//! A terminal run for the scanner's unit tests.

use chrono::DateTime;
use uuid::Uuid;

use crate::domain::Status;
use crate::store::TerminalRun;

pub fn run(connector: &str, status: Status, secs: Option<f64>, at: i64) -> TerminalRun {
    TerminalRun {
        id: Uuid::new_v4(),
        key: uuid::Uuid::new_v4().simple().to_string(),
        workspace_connector_id: uuid::Uuid::from_u128(at as u128 % 3).into(),
        connector_slug: connector.into(),
        trigger_type: Some("manual".into()),
        status,
        duration_seconds: secs,
        dispatch_delay_seconds: secs.map(|_| 0.7),
        records_synced: Some(10.0),
        completed_at: DateTime::from_timestamp(at, 0).unwrap(),
        created_at: DateTime::from_timestamp(at - 60, 0).unwrap(),
        started_at: None,
        error: None,
        deleted: false,
    }
}

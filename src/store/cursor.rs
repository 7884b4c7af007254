//! The keyset cursors of `GET /v1/sync-logs` (the last row's `created_at` and public id)
//! and `GET /v1/connector-status` (the last entry's consecutive failures and connection),
//! opaque to clients.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{ConnectionId, ConnectionKind, ConnectorStatus};

/// Position in the newest-first listing: the last row's `created_at` and public id.
/// Shown to clients as an opaque string `<unix microseconds>_<uuid>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// Where the page after `run` starts.
    pub fn after(run: &crate::domain::SyncLog) -> Self {
        Self {
            created_at: run.created_at,
            id: run.workspace_connector_sync_log_id,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }
}

/// 9999-12-31T23:59:59.999999Z in Unix microseconds.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

impl FromStr for Cursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || "invalid cursor: pass back the next_cursor of a previous page".to_owned();
        let (micros, id) = s.split_once('_').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        // Up to the year 9999: every store can compare with these (Postgres refuses
        // timestamps past 294276 AD with an error, not an empty page). Never before 1970:
        // no run is created then, so such a cursor was not one this API gave out.
        if !(0..=MAX_MICROS).contains(&micros) {
            return Err(bad());
        }
        let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        let id = Uuid::try_parse(id).map_err(|_| bad())?;
        Ok(Cursor { created_at, id })
    }
}

/// Position in the connector-status listing (most consecutive failures first, then the
/// connection in its column's order): the last entry's failures and connection. Shown to
/// clients as `<failures>_<connection id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCursor {
    pub consecutive_failures: i64,
    pub workspace_connector_id: ConnectionId,
}

impl StatusCursor {
    /// Where the page after `entry` starts.
    pub fn after(entry: &ConnectorStatus) -> Self {
        Self {
            consecutive_failures: entry.consecutive_failures,
            workspace_connector_id: entry.workspace_connector_id.clone(),
        }
    }

    /// A cursor given back by a client, its connection read as the table's `kind`.
    pub fn parse(s: &str, kind: ConnectionKind) -> Result<Self, String> {
        let bad = || "invalid cursor: pass back the next_cursor of a previous page".to_owned();
        let (failures, id) = s.split_once('_').ok_or_else(bad)?;
        let consecutive_failures = failures
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(bad)?;
        let workspace_connector_id = kind.parse(id).map_err(|_| bad())?;
        Ok(Self {
            consecutive_failures,
            workspace_connector_id,
        })
    }
}

impl fmt::Display for StatusCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}",
            self.consecutive_failures, self.workspace_connector_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_cursors_round_trip_by_kind_and_reject_garbage() {
        for (kind, id) in [
            (ConnectionKind::Uuid, "521d86d1-5b13-497d-978e-84629bfc1abe"),
            (ConnectionKind::Int, "42"),
            (ConnectionKind::Text, "acme/eu_3"),
        ] {
            let cursor = StatusCursor {
                consecutive_failures: 7,
                workspace_connector_id: kind.parse(id).unwrap(),
            };
            assert_eq!(StatusCursor::parse(&cursor.to_string(), kind), Ok(cursor));
        }
        for (kind, bad) in [
            (ConnectionKind::Uuid, ""),
            (ConnectionKind::Uuid, "3"),
            (ConnectionKind::Uuid, "3_not-a-uuid"),
            (ConnectionKind::Int, "-1_42"),
            (ConnectionKind::Int, "x_42"),
            (ConnectionKind::Int, "1_4.2"),
            (ConnectionKind::Text, "1_"),
        ] {
            assert!(StatusCursor::parse(bad, kind).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        for edge in [0, MAX_MICROS] {
            let cursor = Cursor {
                created_at: DateTime::from_timestamp_micros(edge).unwrap(),
                id: Uuid::nil(),
            };
            assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        }
        for bad in [
            "",
            "abc",
            "1_",
            "_x",
            "12_not-a-uuid",
            "9999999999999999999_00000000000000000000000000000000",
            "-210866803200000001_521d86d15b13497d978e84629bfc1abe",
            "-1_521d86d15b13497d978e84629bfc1abe",
            "253402300800000000_521d86d15b13497d978e84629bfc1abe",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
    }
}

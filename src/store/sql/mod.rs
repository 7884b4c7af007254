//! [`SqlStore`]: the one implementation of the store's traits over either database's
//! [`Engine`]. One file per consumer, each holding its statements, their parameters, their
//! decoders and the trait it implements: `lifecycle.rs` ([`RunStore`](super::RunStore)),
//! `retention.rs` ([`Retention`](super::Retention)), `scanner.rs`
//! ([`ScanSource`](super::ScanSource)), `live.rs` ([`LiveReads`](super::LiveReads)),
//! `state.rs` ([`StateStore`](super::StateStore)), `status_page.rs`
//! ([`PageReads`](super::PageReads)) and `catalogue.rs` ([`Catalogue`](super::Catalogue));
//! `explain.rs` writes the scanner's statements out for `EXPLAIN`.

mod catalogue;
mod connection_walk;
mod connector_status;
mod explain;
mod lifecycle;
mod live;
mod lookups;
mod position;
mod retention;
mod scanner;
mod state;
mod status_page;

use std::sync::Arc;

use super::engine::{Columns, Engine, Param, PoolKind};
use super::lease::mapping_digest;
use super::observed::TableMap;
use super::skipped::SkippedRows;
use super::{Result, StoreError};
use crate::domain::SyncLog;
use lifecycle::decode_run;

pub use explain::{postgres_scanner_queries, postgres_transition};

/// A store over one database engine (PostgreSQL or SQLite), reading the sync log `table`
/// maps. Opened read-only (an observed table), it refuses every write to the sync log
/// itself, in [`SqlStore::writable`], before any statement is sent.
#[derive(Debug, Clone)]
pub struct SqlStore<E> {
    engine: E,
    table: TableMap,
    read_only: bool,
    skipped: Arc<SkippedRows>,
    /// The live reads' `lookup:` values by connection key (`lookups.rs`).
    lookups: Arc<lookups::LookupCache>,
    /// Which rows of syncwatch's state tables are this store's: the digest of the table
    /// and mapping they were counted from (empty for syncwatch's own table).
    scope: String,
}

/// Which column of a scanner read names its row, for [`SkippedRows::record`]: its index and
/// what it is (`run`, `connection`). `None`: the read's rows are groups, named by nothing.
type RowName = Option<(usize, &'static str)>;

impl<E: Engine> SqlStore<E> {
    pub fn new(engine: E, table: TableMap, read_only: bool, skipped: Arc<SkippedRows>) -> Self {
        let scope = mapping_digest(&table.key());
        Self {
            engine,
            table,
            read_only,
            skipped,
            lookups: Arc::default(),
            scope,
        }
    }

    /// The same store keeping the state of the table and mapping `mapping_key` (a state
    /// store's own map is syncwatch's table; the rows it keeps are another mapping's).
    pub fn scoped(mut self, mapping_key: &str) -> Self {
        self.scope = mapping_digest(mapping_key);
        self
    }

    /// The one place a write to the sync log is refused when syncwatch only observes it.
    /// The file check of [`Engine::file_intact`] runs here too, so a write never goes to
    /// a removed or replaced SQLite file.
    fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(StoreError::ObserveOnly)
        } else {
            self.engine.file_intact()
        }
    }

    async fn one_run(&self, sql: &str, params: Vec<Param>) -> Result<Option<SyncLog>> {
        let row = self
            .engine
            .fetch_optional(PoolKind::Api, sql, params)
            .await?;
        row.as_ref().map(decode_run).transpose()
    }

    async fn scan_rows(&self, sql: &str, params: Vec<Param>) -> Result<Vec<E::Row>> {
        self.engine.fetch_all(PoolKind::Scan, sql, params).await
    }

    /// A scanner read, every row decoded; a row with a value that does not decode is
    /// skipped and recorded (counted once, logged) instead of failing the read, so one row
    /// another service wrote wrong never stops the scanner.
    async fn scan_decoded<T>(
        &self,
        read: &str,
        sql: &str,
        params: Vec<Param>,
        name: RowName,
        decode: impl Fn(&E::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let rows = self.scan_rows(sql, params).await?;
        self.decode_lenient(read, &rows, name, decode)
    }

    /// Rows decoded as [`SqlStore::scan_decoded`] does.
    fn decode_lenient<T>(
        &self,
        read: &str,
        rows: &[E::Row],
        name: RowName,
        decode: impl Fn(&E::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut decoded = Vec::with_capacity(rows.len());
        for row in rows {
            match decode(row) {
                Ok(value) => decoded.push(value),
                Err(StoreError::Unreadable(error)) => {
                    let name = name.and_then(|(i, what)| {
                        row.raw_text(i).map(|value| format!("{what} {value}"))
                    });
                    self.skipped.record(read, name.as_deref(), &error);
                }
                Err(other) => return Err(other),
            }
        }
        Ok(decoded)
    }
}

fn json_text(metadata: &Option<serde_json::Map<String, serde_json::Value>>) -> Param {
    Param::Text(
        metadata
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string()),
    )
}

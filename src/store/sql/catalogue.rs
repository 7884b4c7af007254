//! What the database says about itself: the migrations applied, a round trip, and the
//! sync log's columns and indexes from its catalogue; [`Catalogue`] over them.

use async_trait::async_trait;

use super::SqlStore;
use crate::store::engine::{Columns, Engine, PoolKind};
use crate::store::observed::{self, ConnectionIdSource, ConnectorSource, Ident, TableDescription};
use crate::store::{Backend, Catalogue, Result, SchemaStatus, StoreError, StoreFault};

/// The highest applied migration, and 1 when one of them failed (same text on both).
pub const MIGRATIONS_STATE: &str = "select max(case when success then version end), \
     max(case when success then 0 else 1 end) from _sqlx_migrations";

/// Every privilege a role needs on a table syncwatch writes (`DELETE`: retention, and
/// forgetting a checkpoint).
const WRITES: [&str; 4] = ["SELECT", "INSERT", "UPDATE", "DELETE"];

impl<E: Engine> SqlStore<E> {
    /// The tables this store reads and writes, with the privileges each needs.
    fn needed_privileges(&self) -> Vec<(String, &'static [&'static str])> {
        let mut needed: Vec<(String, &'static [&'static str])> = Vec::new();
        if self.read_only {
            needed.push((self.table.table.quoted(), &["SELECT"]));
        } else {
            needed.push((self.table.table.quoted(), &WRITES[..3]));
            for state in ["syncwatch_scanner_checkpoint", "syncwatch_connection_state"] {
                needed.push((state.to_owned(), &WRITES));
            }
        }
        if let ConnectorSource::Lookup { table, .. } = &self.table.connector {
            needed.push((table.quoted(), &["SELECT"]));
        }
        if let ConnectionIdSource::Lookup { table, .. } = &self.table.connection_id {
            needed.push((table.quoted(), &["SELECT"]));
        }
        needed
    }

    /// The catalogue's answer: read-only sessions and missing privileges are faults (a
    /// table that does not exist is reported by the database as one).
    async fn postgres_access(&self) -> Result<()> {
        let rows = self
            .engine
            .fetch_all(
                PoolKind::Api,
                "select case when current_setting('transaction_read_only') = 'on' \
                   then 1 else 0 end",
                vec![],
            )
            .await?;
        let read_only = rows.first().map(|r| r.count(0)).transpose()?.unwrap_or(0) > 0;
        if read_only && !self.read_only {
            return Err(StoreError::Fault {
                fault: StoreFault::ReadOnly,
                detail: "the session is read-only (a standby, or default_transaction_read_only)"
                    .into(),
            });
        }
        let mut missing = Vec::new();
        for (table, privileges) in self.needed_privileges() {
            for privilege in privileges {
                let rows = self
                    .engine
                    .fetch_all(
                        PoolKind::Api,
                        "select case when has_table_privilege($1, $2) then 1 else 0 end",
                        vec![table.as_str().into(), (*privilege).into()],
                    )
                    .await?;
                if rows.first().map(|r| r.count(0)).transpose()?.unwrap_or(0) == 0 {
                    missing.push(format!("{privilege} on {table}"));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Fault {
                fault: StoreFault::Permission,
                detail: format!("the role lacks {}", missing.join(", ")),
            })
        }
    }

    /// A read of the sync log (by its unique public id, an index probe) and, unless
    /// observed, no-op writes of it and of the checkpoint, which a read-only file refuses.
    async fn sqlite_access(&self) -> Result<()> {
        let read = format!(
            "select workspace_connector_sync_log_id from {} \
             where workspace_connector_sync_log_id = $1",
            self.table.source(E::DIALECT, "s")
        );
        self.engine
            .execute(PoolKind::Api, &read, vec![uuid::Uuid::nil().into()])
            .await?;
        if !self.read_only {
            let target = self.table.target();
            for write in [
                format!("update {target} set updated_at = updated_at where 1 = 0"),
                "update syncwatch_scanner_checkpoint set updated_at = updated_at where 1 = 0"
                    .to_owned(),
            ] {
                self.engine.execute(PoolKind::Api, &write, vec![]).await?;
            }
        }
        Ok(())
    }

    /// One table's catalogue entry.
    async fn describe(&self, table: &Ident) -> Result<TableDescription> {
        let [columns, indexes, readable] = observed::describe_sql(E::BACKEND);
        let name = observed::catalogue_name(E::BACKEND, table);
        let read = |sql: &'static str| {
            self.engine
                .fetch_all(PoolKind::Api, sql, vec![name.as_str().into()])
        };
        let (columns, indexes, readable) = (
            read(columns).await?,
            read(indexes).await?,
            read(readable).await?,
        );
        observed::decode_description(&columns, &indexes, &readable)
    }
}

#[async_trait]
impl<E: Engine> Catalogue for SqlStore<E> {
    fn mapping_key(&self) -> String {
        self.table.key()
    }

    fn connection_kind(&self) -> crate::domain::ConnectionKind {
        self.table.connection_kind
    }

    fn backend(&self) -> Backend {
        E::BACKEND
    }

    async fn migrate(&self) -> Result<()> {
        self.engine.migrate().await
    }

    #[tracing::instrument(skip_all)]
    async fn schema_status(&self) -> Result<SchemaStatus> {
        let expected = E::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let rows = self
            .engine
            .fetch_all(PoolKind::Api, E::DIALECT.migrations_table_exists, vec![])
            .await?;
        if rows.first().map(|r| r.count(0)).transpose()?.unwrap_or(0) == 0 {
            return Ok(SchemaStatus {
                applied: None,
                expected,
                dirty: false,
            });
        }
        let rows = self
            .engine
            .fetch_all(PoolKind::Api, MIGRATIONS_STATE, vec![])
            .await?;
        let row = rows.first();
        Ok(SchemaStatus {
            applied: row.map(|r| r.int(0)).transpose()?.flatten(),
            expected,
            dirty: row.map(|r| r.count(1)).transpose()?.unwrap_or(0) > 0,
        })
    }

    /// What the API and the scanner need of the store, proven without changing a row and
    /// without waiting on a lock another session holds on the table: the file is the one
    /// opened and a read and no-op writes succeed (SQLite: the writes refused as a real
    /// one would be, by a read-only file); on PostgreSQL, from the catalogue, that the
    /// session is not read-only and the role holds every privilege the reads and writes
    /// need. Not proven: that every page is intact.
    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        self.engine.file_intact()?;
        match E::BACKEND {
            Backend::Postgres => self.postgres_access().await,
            Backend::Sqlite => self.sqlite_access().await,
        }
    }

    #[tracing::instrument(skip_all)]
    async fn describe_table(&self) -> Result<TableDescription> {
        let mut found = self.describe(&self.table.table).await?;
        if let ConnectorSource::Lookup { table, .. } = &self.table.connector {
            found.lookup = Some(Box::new(self.describe(table).await?));
        }
        if let ConnectionIdSource::Lookup { table, .. } = &self.table.connection_id {
            found.id_lookup = Some(Box::new(self.describe(table).await?));
        }
        Ok(found)
    }
}

//! What the database says about itself: the migrations applied, a round trip, and the
//! sync log's columns and indexes from its catalogue; [`Catalogue`] over them.

use async_trait::async_trait;

use super::SqlStore;
use crate::store::engine::{Columns, Engine, PoolKind};
use crate::store::observed::{self, ConnectionIdSource, ConnectorSource, Ident, TableDescription};
use crate::store::{Backend, Catalogue, Result, SchemaStatus};

/// The highest applied migration, and 1 when one of them failed (same text on both).
pub const MIGRATIONS_STATE: &str = "select max(case when success then version end), \
     max(case when success then 0 else 1 end) from _sqlx_migrations";

impl<E: Engine> SqlStore<E> {
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

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        self.engine
            .execute(PoolKind::Api, "select 1", vec![])
            .await?;
        Ok(())
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

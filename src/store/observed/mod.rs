//! An observed table: another service writes the sync log, syncwatch only reads it.
//! [`TableMap`] says how its columns map onto the sync log (`table.rs`), `inspect.rs` checks
//! it against what syncwatch reads (`check --observe-only`), and [`Store::observed`]
//! assembles the store: reads go to the observed table, syncwatch's own state — the
//! scanner's checkpoint and saved connection states — to a separate state store, or nowhere
//! (the scanner then keeps it in memory and rebuilds it after a restart). Writes to the
//! sync log are refused by the read-only store itself (and, before it, at the API).

mod check;
mod inspect;
mod sources;
mod table;

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Backend, Catalogue, NoState, Result, RunStore, SchemaStatus, Store};

pub use check::{check_table, CheckReport};
pub use inspect::TableDescription;
pub(crate) use inspect::{catalogue_name, decode_description, describe_sql};
pub use sources::{ConnectionIdSource, ConnectorSource};
pub use table::{Ident, TableMap, DEFAULT_CONNECTION_COLUMN, DEFAULT_ID_COLUMN, DEFAULT_TABLE};

impl Store {
    /// The store of an observed table: `table` (opened with
    /// [`PoolOptions::read_only`](super::PoolOptions::read_only)) for every read of the sync
    /// log, `state` (syncwatch's own tables, if any) for the checkpoint.
    pub fn observed(table: Store, state: Option<Store>) -> Store {
        let catalogue = Arc::new(ObservedCatalogue {
            runs: table.runs.clone(),
            table: table.catalogue.clone(),
            state: state.as_ref().map(|s| s.catalogue.clone()),
        });
        Store {
            state: match state {
                Some(state) => state.state,
                None => Arc::new(NoState),
            },
            catalogue,
            observe_only: true,
            ..table
        }
    }
}

/// An observed table's catalogue: the schema and migrations are the state store's (the
/// observed table is never altered); reachability is both's.
struct ObservedCatalogue {
    runs: Arc<dyn RunStore>,
    table: Arc<dyn Catalogue>,
    state: Option<Arc<dyn Catalogue>>,
}

#[async_trait]
impl Catalogue for ObservedCatalogue {
    fn mapping_key(&self) -> String {
        self.table.mapping_key()
    }

    fn connection_kind(&self) -> crate::domain::ConnectionKind {
        self.table.connection_kind()
    }

    fn backend(&self) -> Backend {
        self.table.backend()
    }

    /// Migrates the state store only: the observed table is never altered.
    async fn migrate(&self) -> Result<()> {
        match &self.state {
            Some(state) => state.migrate().await,
            None => Ok(()),
        }
    }

    /// The state store's schema; with none there is no schema of syncwatch's to be behind.
    async fn schema_status(&self) -> Result<SchemaStatus> {
        match &self.state {
            Some(state) => state.schema_status().await,
            None => Ok(SchemaStatus {
                applied: Some(0),
                expected: 0,
                dirty: false,
            }),
        }
    }

    /// A read of the observed table (by its unique public id, so an index probe), which
    /// also proves the role may read it and the mapped columns exist; and the state store,
    /// once it has been migrated (`serve` migrates it before it serves; `check` reports a
    /// state store that is not created yet on a line of its own).
    async fn ping(&self) -> Result<()> {
        self.runs.get(Uuid::nil()).await?;
        if let Some(state) = &self.state {
            if state.schema_status().await?.applied.is_some() {
                state.ping().await?;
            }
        }
        Ok(())
    }

    async fn describe_table(&self) -> Result<TableDescription> {
        self.table.describe_table().await
    }
}

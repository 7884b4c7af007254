//! What a store says about itself: [`Catalogue`] (its backend, its schema and migrations,
//! a round trip, the sync log's catalogue entry), for startup, `/readyz` and `check`.

use async_trait::async_trait;

use super::observed::TableDescription;
use super::{Backend, Result};

/// How the database's schema compares with the migrations this binary carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Highest applied migration, if any.
    pub applied: Option<i64>,
    /// Highest migration this binary knows.
    pub expected: i64,
    /// A migration that started and did not finish.
    pub dirty: bool,
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        !self.dirty && self.applied == Some(self.expected)
    }
}

/// The store as startup, `/readyz` and `check` see it.
#[async_trait]
pub trait Catalogue: Send + Sync + 'static {
    /// What the scanner's checkpoint is keyed by: the sync log's table and mapping
    /// ([`TableMap::key`](super::TableMap::key)).
    fn mapping_key(&self) -> String;

    /// The type connection ids are read from, so an id someone typed is read as one.
    fn connection_kind(&self) -> crate::domain::ConnectionKind;

    fn backend(&self) -> Backend;

    /// Apply pending migrations.
    async fn migrate(&self) -> Result<()>;

    async fn schema_status(&self) -> Result<SchemaStatus>;

    /// One round trip to the database.
    async fn ping(&self) -> Result<()>;

    /// The sync log's columns, indexes and readability as the database's catalogue
    /// describes them (for `check --observe-only`).
    async fn describe_table(&self) -> Result<TableDescription>;
}

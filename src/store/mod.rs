//! The lifecycle store: the sync log (syncwatch's own table, or one another service writes
//! and syncwatch only observes) and syncwatch's own state, on PostgreSQL or an embedded
//! SQLite file, which pass the same behavioural test suite.
//!
//! One trait per consumer, each in its own file with the values it takes and gives:
//! [`RunStore`] and [`Retention`] (`runs.rs`: the lifecycle API, the reaper, retention),
//! [`ScanSource`] and [`LiveReads`] (`scanning.rs`: the scanner), [`StateStore`]
//! (`state.rs`: the checkpoint), [`PageReads`] (`pages.rs`: the status page) and
//! [`Catalogue`] (`catalogue.rs`: startup, `/readyz`, `check`). [`Store`] hands each
//! consumer its part.
//!
//! The rooms below: `engine/` runs statements on PostgreSQL or SQLite (the [`Dialect`]
//! says what differs), `sql/` holds every statement with its parameters, its decoder and
//! the trait it serves (one implementation, [`sql::SqlStore`], for both databases and both
//! modes), `observed/` maps another service's table onto the sync log and checks it.

mod catalogue;
mod cursor;
mod engine;
mod error;
mod lease;
mod observed;
mod pages;
mod probe;
mod replica;
mod runs;
mod scanning;
pub mod skew;
mod skipped;
pub(crate) mod sql;
mod state;
mod url;

use std::sync::Arc;
use std::time::Duration;

use engine::{PostgresEngine, SqliteEngine};
use sql::SqlStore;

pub use catalogue::{Catalogue, SchemaStatus};
pub use cursor::{Cursor, StatusCursor};
pub use engine::{create_schema, naive_zone, pin, read_naive_timestamps_in, schema_exists, Pinned};
pub use error::{StoreError, StoreFault, Unreadable, UnreadableReason};
pub use lease::{sqlite_file_exists, Leadership, Lease, MIN_LEASE_TIMEOUT};
pub use observed::{
    check_table, CheckReport, ConnectionIdSource, ConnectorSource, Ident, TableDescription,
    TableMap, DEFAULT_CONNECTION_COLUMN, DEFAULT_ID_COLUMN, DEFAULT_TABLE,
};
pub use pages::{ConnectionSummary, ConnectorOutcomes, LatestError, PageReads};
pub use probe::Probed;
pub use replica::{ScanPoint, ScanReads};
pub use runs::{Change, Created, ListFilter, Page, Retention, RunStore, StatusFilter, StatusPage};
pub use scanning::{
    ActiveGroup, ConnectionChunk, LiveReads, LiveRun, Position, RecentRun, ScanSource,
    StuckCutoffs, TerminalAggregate, TerminalRun, ERROR_PREFIX_CHARS,
};
pub use skipped::SkippedRows;
pub use state::{ConnectionState, NoState, StateStore};
pub use url::{Backend, DatabaseUrl};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store as the rest of the service holds it: each consumer's part, cheap to clone.
/// Over an owned table every part is the same [`sql::SqlStore`]; over an observed one
/// (see [`Store::observed`]) the sync log is read-only and the state lives elsewhere.
#[derive(Clone)]
pub struct Store {
    runs: Arc<dyn RunStore>,
    retention: Arc<dyn Retention>,
    scan: Arc<dyn ScanSource>,
    live: Arc<dyn LiveReads>,
    pages: Arc<dyn PageReads>,
    state: Arc<dyn StateStore>,
    catalogue: Arc<dyn Catalogue>,
    /// The API's and the status page's reads of single runs and lists: `runs` itself
    /// unless a read replica is attached ([`Store::with_reads`]).
    reads: Arc<dyn RunStore>,
    /// With a read replica attached: how far its replay may fall behind before `/readyz`
    /// says so.
    read_replica: Option<Duration>,
    /// With a read replica attached and `--read-fallback-primary`: the primary's reads,
    /// for scans while the standby is down or too far behind.
    fallback: Option<Arc<replica::Reads>>,
    skipped: Arc<SkippedRows>,
    observe_only: bool,
}

/// Everything one database gives: the sync log's parts and syncwatch's state beside it.
trait Whole:
    RunStore + Retention + ScanSource + LiveReads + PageReads + StateStore + Catalogue
{
}

impl<T: RunStore + Retention + ScanSource + LiveReads + PageReads + StateStore + Catalogue> Whole
    for T
{
}

impl Store {
    /// A sync log syncwatch owns, with its state in the same database.
    fn owned<T: Whole>(store: T, skipped: Arc<SkippedRows>) -> Self {
        let store = Arc::new(store);
        Self {
            reads: store.clone(),
            read_replica: None,
            fallback: None,
            runs: store.clone(),
            retention: store.clone(),
            scan: store.clone(),
            live: store.clone(),
            pages: store.clone(),
            state: store.clone(),
            catalogue: store,
            skipped,
            observe_only: false,
        }
    }

    /// Rows the scanner's reads skipped because a value does not decode.
    pub fn skipped(&self) -> &SkippedRows {
        &self.skipped
    }

    /// The lifecycle API's part: record, move, read and list runs.
    pub fn runs(&self) -> &dyn RunStore {
        &*self.runs
    }

    /// Deleting old terminal runs.
    pub fn retention(&self) -> &dyn Retention {
        &*self.retention
    }

    /// The scanner's reads of finished runs.
    pub fn scan(&self) -> &dyn ScanSource {
        &*self.scan
    }

    /// The scanner's reads of live runs and of what its learned signals start from.
    pub fn live(&self) -> &dyn LiveReads {
        &*self.live
    }

    /// The status page's reads.
    pub fn pages(&self) -> &dyn PageReads {
        &*self.pages
    }

    /// Where the scanner's checkpoint is kept.
    pub fn state(&self) -> &dyn StateStore {
        &*self.state
    }

    /// Schema, migrations, reachability and the table's catalogue entry.
    pub fn catalogue(&self) -> &dyn Catalogue {
        &*self.catalogue
    }

    /// Whether the sync log belongs to another service, so syncwatch never writes it.
    pub fn observe_only(&self) -> bool {
        self.observe_only
    }

    /// The API's and the status page's reads of runs (`get`, `list`, `connector_status`,
    /// `find_live_by_cloud_task`): from the read replica when one is attached. Writes go
    /// through [`Store::runs`].
    pub fn run_reads(&self) -> &dyn RunStore {
        &*self.reads
    }

    /// With a read replica attached, the replay lag `/readyz` tolerates.
    pub fn read_replica_max_lag(&self) -> Option<Duration> {
        self.read_replica
    }
}

/// Pool settings shared by both stores.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Postgres: the server cancels an API statement running longer than this.
    pub statement_timeout: Option<Duration>,
    /// Postgres: the same for the scanner's reads, which have a pool of their own.
    pub scan_statement_timeout: Option<Duration>,
    /// Postgres: the `search_path` every session gets (a [`Pinned::setting`], or the state
    /// schema), when not the role's default.
    pub search_path: Option<String>,
    /// Postgres: the sessions' `timezone` (`--naive-timezone`), UTC when `None`.
    pub timezone: Option<String>,
    /// Open the database read-only (an observed table): PostgreSQL sessions default to
    /// read-only transactions, so the server itself refuses any write; SQLite opens the
    /// file read-only and leaves its journal mode alone. The store refuses writes to the
    /// sync log before sending them.
    pub read_only: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: None,
            scan_statement_timeout: None,
            search_path: None,
            timezone: None,
            read_only: false,
        }
    }
}

/// Open the store a URL names, reading the sync log `table` maps. Does not run migrations.
/// With `options.read_only` the sync log is observed: see [`Store::observed`] for where
/// its state goes.
pub async fn connect(url: &DatabaseUrl, options: &PoolOptions, table: &TableMap) -> Result<Store> {
    connect_scoped(url, options, table, &table.key()).await
}

/// Open a state store (`--state-database-url`, or the observed database's `syncwatch`
/// schema) for the table and mapping `mapping_key` ([`TableMap::key`]): syncwatch's own
/// tables, its rows there kept apart from other mappings'.
pub async fn connect_state(
    url: &DatabaseUrl,
    options: &PoolOptions,
    mapping_key: &str,
) -> Result<Store> {
    connect_scoped(url, options, &TableMap::default(), mapping_key).await
}

async fn connect_scoped(
    url: &DatabaseUrl,
    options: &PoolOptions,
    table: &TableMap,
    mapping_key: &str,
) -> Result<Store> {
    let table = table.clone();
    let read_only = options.read_only;
    let skipped = Arc::new(SkippedRows::default());
    Ok(match url.backend() {
        Backend::Postgres => Store::owned(
            SqlStore::new(
                PostgresEngine::connect(url, options)?,
                table,
                read_only,
                skipped.clone(),
            )
            .scoped(mapping_key),
            skipped,
        ),
        Backend::Sqlite => Store::owned(
            SqlStore::new(
                SqliteEngine::connect(url, options).await?,
                table,
                read_only,
                skipped.clone(),
            )
            .scoped(mapping_key),
            skipped,
        ),
    })
}

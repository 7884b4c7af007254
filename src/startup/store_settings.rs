//! The store settings of every command: which database, its pools, and with
//! `--observe-only` which table another service owns, how its columns map, and where
//! syncwatch's own state goes.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::domain::ConnectionKind;
use crate::settings::parse_duration;
use crate::store::{
    self, ConnectionIdSource, ConnectorSource, DatabaseUrl, Ident, Pinned, PoolOptions, Store,
    TableMap,
};

/// Which store to open and how its connection pools behave (flags of every command).
#[derive(Debug, Clone, Args)]
pub struct StoreSettings {
    /// Store URL: `postgres://…` for production, `sqlite://path` for the embedded store
    /// (the file is created if missing).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://syncwatch.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// Most connections the store pool opens.
    #[arg(
        long,
        env = "SYNCWATCH_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    db_max_connections: u32,

    /// How long a request (or a command) waits for a store connection before it gets 503
    /// (or fails).
    #[arg(long, env = "SYNCWATCH_DB_ACQUIRE_TIMEOUT", value_parser = parse_duration, default_value = "5s", global = true)]
    pub db_acquire_timeout: Duration,

    /// Postgres: the server cancels an API statement running longer than this (the
    /// request gets 503). `0s` turns it off.
    #[arg(long, env = "SYNCWATCH_DB_STATEMENT_TIMEOUT", value_parser = parse_duration, default_value = "10s", global = true)]
    pub(crate) db_statement_timeout: Duration,

    /// Never migrate at start: a pending migration stops `serve` with the reason (for a
    /// role without `CREATE`, whose schema another role migrates with `syncwatch migrate`).
    /// A current schema is never migrated anyway.
    #[arg(long, env = "SYNCWATCH_NO_MIGRATE", global = true)]
    pub no_migrate: bool,

    /// Watch a sync log another service writes: never create, alter or write it (no
    /// migrations on it, no reaper, no pruning; the API's writes answer 403).
    #[arg(long, env = "SYNCWATCH_OBSERVE_ONLY", global = true)]
    pub observe_only: bool,

    /// The sync log table (`name` or `schema.name`; with `--observe-only`).
    #[arg(long, env = "SYNCWATCH_TABLE", default_value = store::DEFAULT_TABLE, value_parser = Ident::table, global = true)]
    pub(crate) table: Ident,

    /// The column holding the connection (with `--observe-only`): its id — a uuid, integer
    /// or text key, compared in the column's own type — or with `--connection-id-from
    /// lookup:…` its key in the connection table.
    #[arg(long, env = "SYNCWATCH_CONNECTION_COLUMN", default_value = store::DEFAULT_CONNECTION_COLUMN, value_parser = Ident::column, global = true)]
    connection_column: Ident,

    /// The run's internal key (with `--observe-only`): the column the scanner's keyset
    /// walks order by after the completion time, of any type the table orders by (an
    /// integer, uuid or text; never shown).
    #[arg(long, env = "SYNCWATCH_ID_COLUMN", default_value = store::DEFAULT_ID_COLUMN, value_parser = Ident::column, global = true)]
    id_column: Ident,

    /// Where the connection's public id comes from (with `--observe-only`): the connection
    /// column itself (the default), `column:NAME` (another column of the table), or
    /// `lookup:TABLE.COLUMN` (joined on `TABLE.id` = the connection column: an ORM's
    /// integer foreign key to a connection table that holds the public id). A uuid, integer
    /// or text; metrics, the API and the status page show and filter by it.
    #[arg(long, env = "SYNCWATCH_CONNECTION_ID_FROM", global = true)]
    connection_id_from: Option<ConnectionIdSource>,

    /// Where the `connector` label comes from (with `--observe-only`): `column:NAME`,
    /// `metadata:KEY`, or `lookup:TABLE.COLUMN` (joined on `TABLE.id` = the connection
    /// column). Missing or invalid values count as `connector="unknown"`.
    #[arg(
        long,
        env = "SYNCWATCH_CONNECTOR_FROM",
        default_value = "column:connector_slug",
        global = true
    )]
    connector_from: ConnectorSource,

    /// With `--observe-only`: the store for syncwatch's own state (the scanner's
    /// checkpoint), e.g. `sqlite://syncwatch-state.db`. Without it, a `syncwatch` schema
    /// in the observed database when the role may create one, else memory only.
    #[arg(
        long,
        env = "SYNCWATCH_STATE_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    state_database_url: Option<DatabaseUrl>,

    /// A hot standby of `--database-url` (PostgreSQL streaming replication) for the sync
    /// log's reads: the scanner's, the status page's and the API's `GET`s. Writes, the
    /// scanner lease, retention, the reaper and syncwatch's state stay on `--database-url`.
    #[arg(
        long,
        env = "SYNCWATCH_READ_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    read_database_url: Option<DatabaseUrl>,

    /// With `--read-database-url`: how far the standby's replay may fall behind its
    /// primary before `/readyz` says so (the scanner counts a run once it is replayed,
    /// however late).
    #[arg(long, env = "SYNCWATCH_READ_MAX_LAG", value_parser = parse_duration, default_value = "5m", global = true)]
    read_max_lag: Duration,

    /// With `--observe-only` on PostgreSQL: the zone (IANA, e.g. `America/New_York`) the
    /// writers' `timestamp without time zone` values are local times of. Without it they
    /// are taken as UTC. Columns of `timestamp with time zone` are instants either way.
    #[arg(long, env = "SYNCWATCH_NAIVE_TIMEZONE", value_parser = parse_zone, global = true)]
    naive_timezone: Option<chrono_tz::Tz>,

    /// With `--read-database-url`: while the standby cannot be read or is further behind
    /// than `--read-max-lag`, the scanner reads the primary (each scan decides; the
    /// counters stay exact across the switch). Without it the scans wait for the standby.
    #[arg(long, env = "SYNCWATCH_READ_FALLBACK_PRIMARY", global = true)]
    read_fallback_primary: bool,
}

fn parse_zone(text: &str) -> Result<chrono_tz::Tz, String> {
    text.parse().map_err(|_| {
        format!("{text:?} is not an IANA time zone (such as America/New_York or Asia/Tokyo)")
    })
}

/// The schema of the observed database that holds syncwatch's state when no state store
/// is named.
pub const STATE_SCHEMA: &str = "syncwatch";

impl StoreSettings {
    /// The table mapping the flags describe. The table and column flags only apply to an
    /// observed table: syncwatch's own table has syncwatch's schema.
    pub fn table_map(&self) -> anyhow::Result<TableMap> {
        if self.db_acquire_timeout.is_zero() {
            anyhow::bail!(
                "--db-acquire-timeout must be positive: every request would fail waiting for a \
                 connection"
            );
        }
        let map = TableMap {
            table: self.table.clone(),
            connection: self.connection_column.clone(),
            id: self.id_column.clone(),
            connection_id: self.connection_id_from.clone().unwrap_or_default(),
            connector: self.connector_from.clone(),
            observed: self.observe_only,
            connection_kind: ConnectionKind::Uuid,
            key_kind: ConnectionKind::Uuid,
            run_key_kind: ConnectionKind::Int,
        };
        if !self.observe_only {
            if map != TableMap::default() {
                anyhow::bail!(
                    "--table, --id-column, --connection-column, --connection-id-from and --connector-from describe a table \
                     another service owns: add --observe-only"
                );
            }
            if self.state_database_url.is_some() {
                anyhow::bail!("--state-database-url only applies with --observe-only");
            }
        }
        if let Some(read) = &self.read_database_url {
            let postgres = store::Backend::Postgres;
            if self.database_url.backend() != postgres || read.backend() != postgres {
                anyhow::bail!(
                    "--read-database-url names a hot standby of a PostgreSQL --database-url; \
                     both must be postgres:// URLs"
                );
            }
            if read.same_database(&self.database_url) {
                anyhow::bail!(
                    "--read-database-url {read} names --database-url itself: name the \
                     standby (its own host or port)"
                );
            }
        }
        if self.naive_timezone.is_some()
            && (!self.observe_only || self.database_url.backend() != store::Backend::Postgres)
        {
            anyhow::bail!(
                "--naive-timezone applies to a PostgreSQL table observed with --observe-only \
                 (syncwatch's own tables hold instants)"
            );
        }
        if self.read_fallback_primary && self.read_database_url.is_none() {
            anyhow::bail!("--read-fallback-primary only applies with --read-database-url");
        }
        if let Some(state) = &self.state_database_url {
            if state.same_database(&self.database_url) {
                anyhow::bail!(
                    "--state-database-url {state} names the observed database: syncwatch \
                     would create its tables beside the observed table. Name another \
                     database, or leave the flag out to keep the state in a syncwatch \
                     schema of the observed database (when the role may create it)"
                );
            }
        }
        Ok(map)
    }

    fn pool_options(&self, scan_statement_timeout: Option<Duration>) -> PoolOptions {
        PoolOptions {
            max_connections: self.db_max_connections,
            acquire_timeout: self.db_acquire_timeout,
            statement_timeout: Some(self.db_statement_timeout).filter(|t| !t.is_zero()),
            scan_statement_timeout,
            search_path: None,
            timezone: None,
            read_only: false,
        }
    }

    /// PostgreSQL: the schema the sync log is read from and the `search_path` every
    /// session of its store gets, resolved once from the role's own path ([`store::pin`];
    /// with `--observe-only` the state schema is left out of it). `None` on SQLite, which
    /// has one namespace.
    pub async fn pin(&self) -> anyhow::Result<Option<Pinned>> {
        if self.database_url.backend() != store::Backend::Postgres {
            return Ok(None);
        }
        let exclude = self.observe_only.then_some(STATE_SCHEMA);
        let pinned = store::pin(
            &self.database_url,
            self.table.name(),
            self.table.schema(),
            self.observe_only,
            exclude,
            self.db_acquire_timeout,
        )
        .await
        .with_context(|| format!("resolving the sync log table in {}", self.database_url))?;
        Ok(Some(pinned))
    }

    /// Open the store; `scan_statement_timeout` caps the scanner's queries (Postgres).
    /// With `--observe-only`, the observed table plus the state store (if any).
    pub async fn open(&self, scan_statement_timeout: Option<Duration>) -> anyhow::Result<Store> {
        self.open_state(scan_statement_timeout, true).await
    }

    /// [`StoreSettings::open`] for `check`, which changes nothing: an SQLite state store
    /// that does not exist yet is not created (the check goes on without it).
    pub async fn open_to_check(&self) -> anyhow::Result<Store> {
        self.open_state(None, false).await
    }

    async fn open_state(
        &self,
        scan_statement_timeout: Option<Duration>,
        create_state: bool,
    ) -> anyhow::Result<Store> {
        let map = self.table_map()?;
        let pinned = self.pin().await?;
        let search_path = pinned.as_ref().map(Pinned::setting);
        if let Some(zone) = self.naive_timezone {
            store::read_naive_timestamps_in(zone).map_err(anyhow::Error::msg)?;
        }
        let options = PoolOptions {
            read_only: self.observe_only,
            search_path: search_path.clone(),
            timezone: self.naive_timezone.map(|z| z.name().to_owned()),
            ..self.pool_options(scan_statement_timeout)
        };
        let mut table = store::connect(&self.database_url, &options, &map)
            .await
            .with_context(|| format!("opening the store at {}", self.database_url))?;
        if !self.observe_only {
            return self
                .with_replica(table, &map, scan_statement_timeout, search_path)
                .await;
        }
        // An observed table's connection ids are read and bound in the type its catalogue
        // gives (when the catalogue cannot be read, `check` and the start's probe say why).
        let mut map = map;
        if let Ok(found) = table.catalogue().describe_table().await {
            let kinds = (found.connection_kind(&map), found.key_kind(&map));
            let run_key_kind = found.run_key_kind(&map).unwrap_or(map.run_key_kind);
            if let (Some(kind), Some(key_kind)) = kinds {
                if (kind, key_kind, run_key_kind)
                    != (map.connection_kind, map.key_kind, map.run_key_kind)
                {
                    map.connection_kind = kind;
                    map.key_kind = key_kind;
                    map.run_key_kind = run_key_kind;
                    table = store::connect(&self.database_url, &options, &map).await?;
                }
            }
        }
        // The state store keeps this table and mapping's rows apart from others' (two
        // deployments may share one).
        let home = match self.state_home().await? {
            StateHome::Url(_) if !create_state && self.state_file_missing().is_some() => {
                StateHome::Memory
            }
            home => home,
        };
        let state = match home {
            StateHome::Url(url) => Some(
                store::connect_state(&url, &self.pool_options(None), &map.key())
                    .await
                    .with_context(|| format!("opening the state store at {url}"))?,
            ),
            StateHome::Schema => {
                let options = PoolOptions {
                    search_path: Some(format!("\"{STATE_SCHEMA}\"")),
                    ..self.pool_options(None)
                };
                Some(store::connect_state(&self.database_url, &options, &map.key()).await?)
            }
            StateHome::Memory => None,
        };
        self.with_replica(
            Store::observed(table, state),
            &map,
            scan_statement_timeout,
            search_path,
        )
        .await
    }

    /// `store` with the sync log's reads from `--read-database-url`, when it is given
    /// (opened read-only, with the same mapping and the primary's pinned `search_path`: a
    /// standby replays the primary's catalogue).
    async fn with_replica(
        &self,
        store: Store,
        map: &TableMap,
        scan_statement_timeout: Option<Duration>,
        search_path: Option<String>,
    ) -> anyhow::Result<Store> {
        let Some(read) = &self.read_database_url else {
            return Ok(store);
        };
        let options = PoolOptions {
            read_only: true,
            search_path,
            timezone: self.naive_timezone.map(|z| z.name().to_owned()),
            ..self.pool_options(scan_statement_timeout)
        };
        let replica = store::connect(read, &options, map)
            .await
            .with_context(|| format!("opening the read replica at {read}"))?;
        Ok(store.with_reads(replica, self.read_max_lag, self.read_fallback_primary))
    }

    /// Where an observed table's state lives: the named state store, else the `syncwatch`
    /// schema when it exists (or, with `create`, can be created), else memory.
    async fn state_home(&self) -> anyhow::Result<StateHome> {
        if let Some(url) = &self.state_database_url {
            return Ok(StateHome::Url(url.clone()));
        }
        self.state_schema_home().await
    }

    /// Whether `--state-database-url` names an SQLite file that does not exist yet (`check`
    /// says so rather than creating it; `serve` creates and migrates it).
    pub fn state_file_missing(&self) -> Option<&DatabaseUrl> {
        let url = self.state_database_url.as_ref()?;
        (url.backend() == store::Backend::Sqlite && !store::sqlite_file_exists(url)).then_some(url)
    }

    async fn state_schema_home(&self) -> anyhow::Result<StateHome> {
        if self.database_url.backend() == store::Backend::Postgres
            && store::schema_exists(&self.database_url, STATE_SCHEMA, self.db_acquire_timeout)
                .await
                .with_context(|| format!("reading the schemas of {}", self.database_url))?
        {
            return Ok(StateHome::Schema);
        }
        Ok(StateHome::Memory)
    }

    /// Open the store and apply pending migrations, saying what was applied. With
    /// `--observe-only` only the state store is migrated (the `syncwatch` schema is
    /// created first when the role may); the observed table is never altered.
    pub async fn open_and_migrate(
        &self,
        scan_statement_timeout: Option<Duration>,
    ) -> anyhow::Result<Store> {
        if self.observe_only
            && self.state_database_url.is_none()
            && self.database_url.backend() == store::Backend::Postgres
        {
            if let Err(e) =
                store::create_schema(&self.database_url, STATE_SCHEMA, self.db_acquire_timeout)
                    .await
            {
                tracing::debug!(error = %e, "cannot create the state schema");
            }
        }
        let store = self.open(scan_statement_timeout).await?;
        // Migrating takes `CREATE` (sqlx makes sure its own table exists first), so only
        // when one is pending: a role with only DML grants serves a current schema.
        let current = store
            .catalogue()
            .schema_status()
            .await
            .is_ok_and(|schema| schema.is_current());
        if !current && self.no_migrate {
            anyhow::bail!(
                "the schema of {} is not current and --no-migrate is set: run `syncwatch \
                 migrate` as a role that may create tables",
                self.database_url
            );
        }
        if !current {
            store
                .catalogue()
                .migrate()
                .await
                .with_context(|| format!("migrating {}", self.database_url))?;
        }
        if self.observe_only {
            self.log_observed().await?;
            return Ok(store);
        }
        let schema = store.catalogue().schema_status().await?;
        tracing::info!(
            store = %self.database_url,
            version = schema.applied.unwrap_or(0),
            "schema is current"
        );
        Ok(store)
    }

    /// Where an observed table's state lives, in words (`None`: in memory only).
    pub async fn describe_state(&self) -> anyhow::Result<Option<String>> {
        Ok(match self.state_home().await? {
            StateHome::Url(url) => Some(format!("the state store {url}")),
            StateHome::Schema => Some(format!(
                "the {STATE_SCHEMA} schema of {}",
                self.database_url
            )),
            StateHome::Memory => None,
        })
    }

    async fn log_observed(&self) -> anyhow::Result<()> {
        let state = match self.describe_state().await? {
            Some(state) => state,
            None => {
                tracing::warn!("{NO_STATE_STORE}");
                "memory".into()
            }
        };
        tracing::info!(
            store = %self.database_url,
            table = %self.table,
            connection_column = %self.connection_column,
            connector_from = %self.connector_from,
            state,
            "observing a table read-only"
        );
        Ok(())
    }
}

/// Said at startup (and by `check`) when an observed table's state has nowhere to go.
pub const NO_STATE_STORE: &str = "no state store: the scanner keeps its totals in memory \
     and rebuilds them from the table after every restart; name one with \
     --state-database-url, or let the role create the syncwatch schema";

/// Where an observed table's state lives.
enum StateHome {
    Url(DatabaseUrl),
    Schema,
    Memory,
}

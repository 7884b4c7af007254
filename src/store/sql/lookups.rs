//! The `lookup:` columns of the runs still live, resolved in syncwatch instead of in every
//! scan's statements: the live-run reads select the connection column's own key, and
//! [`LookupCache`] maps each key to its connector and public id, read in bulk for the
//! keys it has not seen (`where id in (…)`, one probe of the connection table's primary
//! key each) and kept for [`LookupCache::TTL`]. A steady scan then sends no lookup at all
//! for its thousand live runs: the looked-up values of the same few connections were
//! probed again on every scan before, once per live run and per read.
//!
//! Only the live reads go through it (they read the same rows scan after scan); the reads
//! of terminal runs join the connection table as before, each reading its rows once.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::SqlStore;
use crate::domain::ConnectionId;
use crate::store::engine::{Columns, Dialect, Engine, Param, PoolKind, UNKNOWN_CONNECTOR};
use crate::store::observed::{ConnectionIdSource, ConnectorSource, Ident, TableMap};
use crate::store::{Result, StoreError, Unreadable, UnreadableReason};

/// Keys per lookup statement: well under SQLite's and PostgreSQL's parameter limits.
const CHUNK: usize = 500;

/// What a connection key resolves to.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The connector label ([`UNKNOWN_CONNECTOR`] when the connection table has no row
    /// or no readable label for it, as the joined read gives).
    pub connector: String,
    /// The public id, or why there is none (the run is then skipped, as the joined read
    /// skips a row whose public id is null or unreadable).
    pub public: std::result::Result<ConnectionId, Unreadable>,
}

#[derive(Debug)]
struct Entries {
    by_key: HashMap<String, Resolved>,
    since: Instant,
}

/// Connection keys' looked-up values, dropped whole every [`LookupCache::TTL`] (and when
/// they exceed [`LookupCache::MAX_ENTRIES`]), so a connection whose connector or public id
/// changes shows the new one within a minute.
#[derive(Debug)]
pub struct LookupCache {
    entries: Mutex<Entries>,
}

impl Default for LookupCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Entries {
                by_key: HashMap::new(),
                since: Instant::now(),
            }),
        }
    }
}

impl LookupCache {
    pub const TTL: Duration = Duration::from_secs(60);
    pub const MAX_ENTRIES: usize = 200_000;

    /// The cached values of `keys`, and the keys not cached (each once).
    fn split(&self, keys: &[ConnectionId]) -> (HashMap<String, Resolved>, Vec<ConnectionId>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.since.elapsed() >= Self::TTL || entries.by_key.len() > Self::MAX_ENTRIES {
            entries.by_key.clear();
            entries.since = Instant::now();
        }
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        let mut seen = HashSet::new();
        for key in keys {
            if !seen.insert(key.as_str()) {
                continue;
            }
            match entries.by_key.get(key.as_str()) {
                Some(resolved) => {
                    found.insert(key.as_str().to_owned(), resolved.clone());
                }
                None => missing.push(key.clone()),
            }
        }
        (found, missing)
    }

    fn insert(&self, resolved: &HashMap<String, Resolved>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (key, value) in resolved {
            entries.by_key.insert(key.clone(), value.clone());
        }
    }
}

/// A `lookup:` source: the table and column a value is read from by the connection key.
type Source<'a> = Option<(&'a Ident, &'a Ident)>;

/// The connector's and the public id's `lookup:` sources, where they are lookups.
fn lookups(t: &TableMap) -> (Source<'_>, Source<'_>) {
    let connector = match &t.connector {
        ConnectorSource::Lookup { table, column } => Some((table, column)),
        _ => None,
    };
    let public = match &t.connection_id {
        ConnectionIdSource::Lookup { table, column } => Some((table, column)),
        _ => None,
    };
    (connector, public)
}

/// Whether the live reads resolve `t`'s lookups through the cache: a `lookup:` connector
/// or public id, looked up by the connection column (a public id from another column of
/// the sync log keeps the probed reads).
pub fn resolves_by_key(t: &TableMap) -> bool {
    let (connector, public) = lookups(t);
    (connector.is_some() || public.is_some())
        && !matches!(t.connection_id, ConnectionIdSource::Column(_))
}

/// `column` of `table` for the `n` keys (parameters `$1`…`$n`), by the key; as text for
/// a label (an enum or `varchar` column reads as the joined read's `cast` does).
fn lookup_sql(
    t: &TableMap,
    d: &Dialect,
    (table, column): (&Ident, &Ident),
    n: usize,
    text: bool,
) -> String {
    let params: Vec<String> = (1..=n).map(|i| t.key_param(d, i)).collect();
    let value = format!("l.{}", column.quoted());
    format!(
        "select l.id, {} from {} l where l.id in ({})",
        if text {
            format!("cast({value} as text)")
        } else {
            value
        },
        table.quoted(),
        params.join(", ")
    )
}

impl<E: Engine> SqlStore<E> {
    /// The rows of `source` (when it is a lookup) for the `keys`: the key and the value.
    async fn lookup_rows(
        &self,
        source: Source<'_>,
        keys: &[ConnectionId],
        text: bool,
    ) -> Result<Vec<E::Row>> {
        let Some(source) = source else {
            return Ok(Vec::new());
        };
        let sql = lookup_sql(&self.table, E::DIALECT, source, keys.len(), text);
        let params = keys.iter().map(Param::from).collect();
        self.engine.fetch_all(PoolKind::Scan, &sql, params).await
    }

    /// What each of `keys` (connection column values) resolves to, from the cache or read
    /// in bulk. Keys the connection table does not hold resolve to the unknown connector
    /// and no public id.
    pub(super) async fn resolve_keys(
        &self,
        keys: &[ConnectionId],
    ) -> Result<HashMap<String, Resolved>> {
        let (mut found, missing) = self.lookups.split(keys);
        if missing.is_empty() {
            return Ok(found);
        }
        let (connector, public) = lookups(&self.table);
        let mut connectors: HashMap<String, String> = HashMap::new();
        let mut publics: HashMap<String, std::result::Result<ConnectionId, Unreadable>> =
            HashMap::new();
        for chunk in missing.chunks(CHUNK) {
            // A row of the connection table whose key does not decode is left out: its keys
            // read as the unknown connector and no public id, as when it has no row.
            for row in self.lookup_rows(connector, chunk, true).await? {
                if let Ok(Some(key)) = row.connection(0) {
                    let label = row
                        .connector(1)
                        .unwrap_or_else(|_| UNKNOWN_CONNECTOR.into());
                    connectors.insert(key.as_str().to_owned(), label);
                }
            }
            for row in self.lookup_rows(public, chunk, false).await? {
                if let Ok(Some(key)) = row.connection(0) {
                    let value = match row.connection_req(1) {
                        Ok(id) => Ok(id),
                        Err(StoreError::Unreadable(why)) => Err(why),
                        Err(other) => return Err(other),
                    };
                    publics.insert(key.as_str().to_owned(), value);
                }
            }
        }
        let mut resolved = HashMap::with_capacity(missing.len());
        for key in missing {
            let connector = connectors
                .remove(key.as_str())
                .unwrap_or_else(|| UNKNOWN_CONNECTOR.to_owned());
            let public = match public {
                None => Ok(key.clone()),
                Some(_) => publics.remove(key.as_str()).unwrap_or_else(|| {
                    Err(Unreadable {
                        column: "workspace_connector_id".into(),
                        sql_type: "lookup".into(),
                        reason: UnreadableReason::Null,
                        detail: format!(
                            "the connection table has no public id for key {}",
                            key.as_str()
                        ),
                    })
                }),
            };
            resolved.insert(key.as_str().to_owned(), Resolved { connector, public });
        }
        self.lookups.insert(&resolved);
        found.extend(resolved);
        Ok(found)
    }
}

//! The scanner lease, one per table and mapping: on Postgres a session-level advisory lock
//! held on a dedicated connection outside the pool; on SQLite an exclusive lock on a file
//! beside the database, so of two processes serving one file only one scans.

use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection};

use super::{Backend, DatabaseUrl};

/// Advisory lock key of syncwatch's own table: the bytes of "syncwatc" as a big-endian
/// integer (what every version has used, so replicas of two versions agree during an
/// upgrade).
pub const LEASE_KEY: i64 = 0x7379_6e63_7761_7463;

/// A table and mapping's name in syncwatch's state and lock files: 16 hex digits of
/// [`lease_key`], empty for syncwatch's own table.
pub fn mapping_digest(mapping_key: &str) -> String {
    if mapping_key.is_empty() {
        String::new()
    } else {
        format!("{:016x}", lease_key(mapping_key) as u64)
    }
}

/// The advisory lock key of the table and mapping `mapping_key` ([`TableMap::key`]
/// (super::TableMap::key), empty for syncwatch's own table): deployments scanning two
/// tables of one database each have a leader, replicas of one deployment share one.
/// A SHA-256 prefix, so every build and version computes the same key.
pub fn lease_key(mapping_key: &str) -> i64 {
    if mapping_key.is_empty() {
        return LEASE_KEY;
    }
    let digest = Sha256::digest(format!("syncwatch scanner lease\n{mapping_key}"));
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The shortest lease deadline accepted: a renewal every quarter of it must fit in a
/// round trip to the database on a busy machine.
pub const MIN_LEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a lease check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// This replica holds the lease.
    Leader,
    /// Another replica holds it.
    Follower,
    /// The database could not be asked (unreachable, or too slow to answer).
    Unknown(String),
}

pub enum Lease {
    /// This process always leads (tests; an in-memory SQLite database).
    Always,
    Postgres {
        url: DatabaseUrl,
        key: i64,
        /// The lease's deadline: the server ends the lock's session once it has been idle
        /// this long (`idle_session_timeout`), so a leader that stops renewing (stopped,
        /// hung, cut off) loses the lock within it.
        timeout: Duration,
        held: Option<Held>,
    },
    /// An exclusive lock on `path` (beside the SQLite file), held while the file is open.
    File { path: PathBuf, held: Option<File> },
}

/// A held advisory lock: its session belongs to a renewal task that pings it every quarter
/// of the deadline and closes it when a ping fails.
pub struct Held {
    task: tokio::task::JoinHandle<()>,
    /// When the server last answered a renewal.
    renewed: Arc<Mutex<Instant>>,
    /// Dropped to end the task, which closes the session (and so frees the lock).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Held {
    /// Whether the lock is still ours: the task runs and the server answered within half
    /// the deadline (the server frees the lock only after a whole deadline without one,
    /// so a holder gives up before any other replica can take it).
    fn alive(&self, timeout: Duration) -> bool {
        let renewed = *self.renewed.lock().unwrap_or_else(|e| e.into_inner());
        !self.task.is_finished() && renewed.elapsed() < timeout / 2
    }

    async fn release(mut self) {
        drop(self.stop.take());
        let _ = self.task.await;
    }
}

impl Lease {
    /// The lease of the table and mapping `mapping_key` in the store at `url`; on
    /// PostgreSQL lost within `timeout` of its holder's last renewal.
    pub fn for_store(url: &DatabaseUrl, mapping_key: &str, timeout: Duration) -> Self {
        let key = lease_key(mapping_key);
        match url.backend() {
            Backend::Postgres => Lease::Postgres {
                url: url.clone(),
                key,
                timeout: timeout.max(MIN_LEASE_TIMEOUT),
                held: None,
            },
            Backend::Sqlite => match sqlite_file(url) {
                Some(database) => {
                    let mut name = database.into_os_string();
                    name.push(".syncwatch-lease");
                    let digest = mapping_digest(mapping_key);
                    if !digest.is_empty() {
                        name.push(format!("-{digest}"));
                    }
                    Lease::File {
                        path: name.into(),
                        held: None,
                    }
                }
                None => Lease::Always,
            },
        }
    }

    /// Whether this replica leads now. A held lease is still ours while its renewals are
    /// answered; a lost one is dropped (its session closed) and we try to take it again.
    /// When the database cannot be reached at all the answer is [`Leadership::Unknown`].
    pub async fn check(&mut self) -> Leadership {
        let (url, key, timeout, held) = match self {
            Lease::Always => return Leadership::Leader,
            Lease::File { path, held } => return check_file(path, held),
            Lease::Postgres {
                url,
                key,
                timeout,
                held,
            } => (url, *key, *timeout, held),
        };
        if let Some(lease) = held.take() {
            if lease.alive(timeout) {
                *held = Some(lease);
                return Leadership::Leader;
            }
            tracing::warn!(
                deadline = ?timeout,
                "the scanner lease was not renewed in time (the process was stopped or the                  database did not answer); leadership dropped"
            );
            lease.release().await;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, try_lock(url, key, timeout)).await {
            Ok(Ok(Some(conn))) => {
                tracing::info!("scanner lease acquired; this replica exports domain metrics");
                *held = Some(renew(conn, timeout));
                Leadership::Leader
            }
            Ok(Ok(None)) => Leadership::Follower,
            Ok(Err(e)) => Leadership::Unknown(format!(
                "the store is unreachable (cannot take the scanner lease): {e}"
            )),
            Err(_) => Leadership::Unknown(format!(
                "timed out after {CONNECT_TIMEOUT:?} taking the scanner lease"
            )),
        }
    }

    /// Whether the lease is still held, without asking the database (a scan asks before it
    /// publishes what it read: a process stopped mid-scan past the deadline publishes
    /// nothing once it resumes).
    pub fn still_held(&self) -> bool {
        match self {
            Lease::Always => true,
            Lease::File { held, .. } => held.is_some(),
            Lease::Postgres { timeout, held, .. } => {
                held.as_ref().is_some_and(|h| h.alive(*timeout))
            }
        }
    }

    /// Give the lease up (on shutdown), so another replica takes over at once.
    pub async fn release(&mut self) {
        match self {
            Lease::Postgres { held, .. } => {
                if let Some(lease) = held.take() {
                    lease.release().await;
                }
            }
            // Closing the file releases its lock.
            Lease::File { held, .. } => drop(held.take()),
            Lease::Always => {}
        }
    }
}

/// Hand the lock's session to a task that renews it every quarter of `timeout` (a ping,
/// bounded by that quarter) until told to stop or a renewal fails, then closes it.
fn renew(mut conn: PgConnection, timeout: Duration) -> Held {
    let renewed = Arc::new(Mutex::new(Instant::now()));
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let every = timeout / 4;
    let last = renewed.clone();
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = ticker.tick() => {
                    let answered = tokio::time::timeout(every, conn.ping()).await;
                    if !matches!(answered, Ok(Ok(()))) {
                        tracing::warn!("the scanner lease's session did not answer a renewal");
                        break;
                    }
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                }
            }
        }
        let _ = tokio::time::timeout(CONNECT_TIMEOUT, conn.close()).await;
    });
    Held {
        task,
        renewed,
        stop: Some(stop),
    }
}

/// Whether the file an SQLite URL names exists (an in-memory database always does).
pub fn sqlite_file_exists(url: &DatabaseUrl) -> bool {
    sqlite_file(url).is_none_or(|file| file.exists())
}

/// The file an SQLite URL names (`None` for an in-memory database).
fn sqlite_file(url: &DatabaseUrl) -> Option<PathBuf> {
    let options = SqliteConnectOptions::from_str(url.expose()).ok()?;
    let file = options.get_filename();
    let text = file.to_string_lossy();
    // sqlx names an in-memory database `file:sqlx-in-memory-N`.
    if text.is_empty() || text == ":memory:" || text.starts_with("file:") {
        return None;
    }
    Some(std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()))
}

/// The file lease: held while its lock is (a process that dies releases it with its files).
/// A lock file that cannot be created (a read-only directory) leaves this process leading,
/// said once: that directory holds no second writer's journal either.
fn check_file(path: &std::path::Path, held: &mut Option<File>) -> Leadership {
    if held.is_some() {
        return Leadership::Leader;
    }
    let file = match File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::warn!(
                    error = %e,
                    path = %path.display(),
                    "cannot create the scanner lease file; this process scans without a lease"
                );
            });
            return Leadership::Leader;
        }
    };
    match file.try_lock() {
        Ok(()) => {
            tracing::info!(path = %path.display(), "scanner lease acquired; this process exports domain metrics");
            *held = Some(file);
            Leadership::Leader
        }
        Err(TryLockError::WouldBlock) => Leadership::Follower,
        Err(TryLockError::Error(e)) => Leadership::Unknown(format!(
            "cannot lock the scanner lease file {}: {e}",
            path.display()
        )),
    }
}

/// A session of its own holding the advisory lock `key`, which the server ends (freeing
/// the lock) once it has sat idle for `timeout`.
async fn try_lock(
    url: &DatabaseUrl,
    key: i64,
    timeout: Duration,
) -> Result<Option<PgConnection>, sqlx::Error> {
    let options = PgConnectOptions::from_str(url.expose())?
        .application_name("syncwatch-lease")
        .options([("idle_session_timeout", format!("{}ms", timeout.as_millis()))]);
    let mut conn = match PgConnection::connect_with(&options).await {
        Ok(conn) => conn,
        // PostgreSQL before 14 has no idle_session_timeout: the lock is then held until
        // the session ends, so a stopped holder keeps it (said once).
        Err(e) if e.to_string().contains("idle_session_timeout") => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::warn!(
                    "this PostgreSQL has no idle_session_timeout (before 14): the scanner \
                     lease has no deadline, and a stopped leader keeps it until its session ends"
                );
            });
            let options =
                PgConnectOptions::from_str(url.expose())?.application_name("syncwatch-lease");
            PgConnection::connect_with(&options).await?
        }
        Err(e) => return Err(e),
    };
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut conn)
        .await?;
    if locked {
        Ok(Some(conn))
    } else {
        let _ = conn.close().await;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_table_and_mapping_has_its_own_stable_key() {
        assert_eq!(
            lease_key(""),
            LEASE_KEY,
            "syncwatch's own table keeps its key"
        );
        let a = lease_key("table=a connection=c connection_id=c connector=column:s key=uuid");
        let b = lease_key("table=b connection=c connection_id=c connector=column:s key=uuid");
        assert_ne!(a, b);
        assert_ne!(a, LEASE_KEY);
        assert_eq!(
            a,
            lease_key("table=a connection=c connection_id=c connector=column:s key=uuid")
        );
        // Pinned: a change would give two leaders while replicas of two versions run.
        assert_eq!(
            lease_key("x"),
            i64::from_be_bytes(
                Sha256::digest("syncwatch scanner lease\nx")[..8]
                    .try_into()
                    .unwrap()
            )
        );
    }

    #[tokio::test]
    async fn one_process_holds_the_file_lease_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let url: DatabaseUrl = format!("sqlite://{}/s.db", dir.path().display())
            .parse()
            .unwrap();
        let mut first = Lease::for_store(&url, "", MIN_LEASE_TIMEOUT);
        let mut second = Lease::for_store(&url, "", MIN_LEASE_TIMEOUT);
        let mut other_table = Lease::for_store(&url, "table=other", MIN_LEASE_TIMEOUT);
        assert_eq!(first.check().await, Leadership::Leader);
        assert_eq!(first.check().await, Leadership::Leader);
        assert_eq!(second.check().await, Leadership::Follower);
        assert_eq!(other_table.check().await, Leadership::Leader);
        first.release().await;
        assert_eq!(second.check().await, Leadership::Leader);
        assert_eq!(first.check().await, Leadership::Follower);
        let memory: DatabaseUrl = "sqlite::memory:".parse().unwrap();
        assert!(matches!(
            Lease::for_store(&memory, "", MIN_LEASE_TIMEOUT),
            Lease::Always
        ));
    }
}

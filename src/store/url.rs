//! Store URLs: which backend a URL names, and a form of it that never shows a password.

use std::fmt;
use std::str::FromStr;

/// Which store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A store URL that never shows its password: `Display` and `Debug` print it redacted, and
/// only [`DatabaseUrl::expose`] gives the real text, for the driver.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

impl DatabaseUrl {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The full URL, password included. Hand it to the driver and nowhere else.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL with any password replaced, for logs and error messages.
    fn redacted(&self) -> String {
        match url::Url::parse(&self.raw) {
            Ok(mut parsed) => {
                if parsed.password().is_some() {
                    let _ = parsed.set_password(Some("REDACTED"));
                }
                let has_secret_param = parsed
                    .query_pairs()
                    .any(|(k, _)| k.eq_ignore_ascii_case("password"));
                if has_secret_param {
                    let pairs: Vec<(String, String)> = parsed
                        .query_pairs()
                        .map(|(k, v)| {
                            if k.eq_ignore_ascii_case("password") {
                                (k.into_owned(), "REDACTED".to_owned())
                            } else {
                                (k.into_owned(), v.into_owned())
                            }
                        })
                        .collect();
                    parsed.query_pairs_mut().clear().extend_pairs(pairs);
                }
                parsed.to_string()
            }
            Err(_) => format!("{}://…", self.scheme()),
        }
    }

    /// Whether `other` names the same database, whoever logs in to it: the same backend,
    /// host, port and database name (PostgreSQL; a missing host or port reads as the
    /// driver's default), or the same file (SQLite).
    pub fn same_database(&self, other: &DatabaseUrl) -> bool {
        fn place(url: &DatabaseUrl) -> Option<(Backend, String, u16, String)> {
            let parsed = url::Url::parse(&url.raw).ok()?;
            let host = parsed.host_str().unwrap_or("localhost");
            let host = if host == "127.0.0.1" || host == "::1" || host == "[::1]" {
                "localhost"
            } else {
                host
            };
            // PostgreSQL's default database is the user's name.
            let database = match parsed.path().trim_start_matches('/') {
                "" => parsed.username().to_owned(),
                name => name.to_owned(),
            };
            Some((
                url.backend,
                host.to_ascii_lowercase(),
                parsed.port().unwrap_or(5432),
                database,
            ))
        }
        match (self.backend, other.backend) {
            (Backend::Sqlite, Backend::Sqlite) => {
                let file = |u: &DatabaseUrl| {
                    let path = u.raw.trim_start_matches("sqlite:").trim_start_matches("//");
                    let path = path.split('?').next().unwrap_or(path);
                    std::fs::canonicalize(path).unwrap_or_else(|_| path.into())
                };
                file(self) == file(other)
            }
            (Backend::Postgres, Backend::Postgres) => {
                place(self).is_some() && place(self) == place(other)
            }
            _ => false,
        }
    }

    fn scheme(&self) -> &str {
        self.raw.split(':').next().unwrap_or("")
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let scheme = raw.split_once(':').map(|(s, _)| s).unwrap_or("");
        let backend = match scheme {
            "postgres" | "postgresql" => Backend::Postgres,
            "sqlite" => Backend::Sqlite,
            _ => {
                return Err(
                    "database URL must start with postgres://, postgresql:// or sqlite://".into(),
                )
            }
        };
        if backend == Backend::Postgres {
            check_postgres(raw)?;
        }
        Ok(Self {
            raw: raw.to_owned(),
            backend,
        })
    }
}

/// A PostgreSQL URL must name its host and its database, in the URL or as `host=` /
/// `dbname=` parameters: libpq's defaults (a local socket, a database named after the
/// user) would open a database nobody named, and syncwatch would migrate its tables into
/// it.
fn check_postgres(raw: &str) -> Result<(), String> {
    let parsed = url::Url::parse(raw).map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    let param = |name: &str| {
        parsed
            .query_pairs()
            .any(|(k, v)| k == name && !v.is_empty())
    };
    let host = parsed.host_str().is_some_and(|h| !h.is_empty()) || param("host");
    let database = !parsed.path().trim_start_matches('/').is_empty() || param("dbname");
    match (host, database) {
        (true, true) => Ok(()),
        (false, _) => Err(
            "the PostgreSQL URL names no host: postgres://USER@HOST:PORT/DATABASE (or \
             ?host=/path/to/socket)"
                .into(),
        ),
        (true, false) => Err(
            "the PostgreSQL URL names no database: postgres://USER@HOST:PORT/DATABASE (or \
             ?dbname=NAME); without one the driver would open a database named after the user"
                .into(),
        ),
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_shows_in_display_or_debug() {
        let url: DatabaseUrl = "postgres://app:s3cr3t-pw@db.internal:5432/app?sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(url.backend(), Backend::Postgres);
        for shown in [url.to_string(), format!("{url:?}")] {
            assert!(!shown.contains("s3cr3t-pw"), "{shown}");
            assert!(shown.contains("app:REDACTED@db.internal"), "{shown}");
        }
        assert!(url.expose().contains("s3cr3t-pw"));
    }

    #[test]
    fn the_same_database_is_told_whoever_logs_in() {
        let url = |s: &str| s.parse::<DatabaseUrl>().unwrap();
        let observed = url("postgres://reader:pw@127.0.0.1:5432/app");
        assert!(observed.same_database(&url("postgres://postgres@localhost/app")));
        assert!(!observed.same_database(&url("postgres://postgres@localhost/app_state")));
        assert!(!observed.same_database(&url("postgres://postgres@db2:5432/app")));
        assert!(!observed.same_database(&url("sqlite://app")));
        assert!(url("postgres://a@db/x?sslmode=prefer").same_database(&url("postgres://b@db/x")));
        assert!(url("sqlite://state.db").same_database(&url("sqlite:state.db")));
        assert!(!url("sqlite://state.db").same_database(&url("sqlite://other.db")));
    }

    #[test]
    fn password_query_parameter_is_redacted_too() {
        let url: DatabaseUrl = "postgres://db/app?user=app&password=hunter22"
            .parse()
            .unwrap();
        assert!(!url.to_string().contains("hunter22"), "{url}");
    }

    #[test]
    fn only_known_schemes_are_accepted() {
        assert_eq!(
            "sqlite://syncwatch.db"
                .parse::<DatabaseUrl>()
                .unwrap()
                .backend(),
            Backend::Sqlite
        );
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
        // libpq's defaults would pick a database (or host) nobody named.
        for unnamed in [
            "postgresql://",
            "postgres://db",
            "postgres://app@db:5432/",
            "postgres:///app",
        ] {
            let err = unnamed.parse::<DatabaseUrl>().unwrap_err();
            assert!(err.contains("names no"), "{unnamed}: {err}");
        }
        for named in [
            "postgres://db/app",
            "postgres:///app?host=/run/postgresql",
            "postgres://db?dbname=app",
        ] {
            assert!(named.parse::<DatabaseUrl>().is_ok(), "{named}");
        }
        assert!("syncwatch.db".parse::<DatabaseUrl>().is_err());
    }
}

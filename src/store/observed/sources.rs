//! Where an observed table's connector label and connection public id come from, as the
//! flags `--connector-from` and `--connection-id-from` spell them.

use std::fmt;
use std::str::FromStr;

use super::table::{Ident, DEFAULT_CONNECTOR_COLUMN};

/// Where a run's `connector` label comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorSource {
    /// A column of the sync log (`column:NAME`).
    Column(Ident),
    /// A key of the run's `metadata` object (`metadata:KEY`).
    Metadata(String),
    /// A column of another table, joined on its `id` = the connection column
    /// (`lookup:TABLE.COLUMN`, the table optionally schema-qualified).
    Lookup { table: Ident, column: Ident },
}

impl Default for ConnectorSource {
    fn default() -> Self {
        ConnectorSource::Column(Ident {
            parts: vec![DEFAULT_CONNECTOR_COLUMN.into()],
        })
    }
}

impl FromStr for ConnectorSource {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = "expected column:NAME, metadata:KEY or lookup:TABLE.COLUMN";
        let Some((kind, rest)) = text.split_once(':') else {
            return Err(format!("{text:?}: {usage}"));
        };
        match kind {
            "column" => Ok(ConnectorSource::Column(Ident::column(rest)?)),
            "metadata" => {
                let ok = !rest.is_empty()
                    && rest.len() <= 63
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if ok {
                    Ok(ConnectorSource::Metadata(rest.to_owned()))
                } else {
                    Err(format!(
                        "{text:?}: a metadata key is 1 to 63 letters, digits, `_` or `-`"
                    ))
                }
            }
            "lookup" => {
                let Some((table, column)) = rest.rsplit_once('.') else {
                    return Err(format!("{text:?}: lookup needs TABLE.COLUMN"));
                };
                Ok(ConnectorSource::Lookup {
                    table: Ident::table(table)?,
                    column: Ident::column(column)?,
                })
            }
            _ => Err(format!("{text:?}: {usage}")),
        }
    }
}

impl fmt::Display for ConnectorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorSource::Column(c) => write!(f, "column:{c}"),
            ConnectorSource::Metadata(k) => write!(f, "metadata:{k}"),
            ConnectorSource::Lookup { table, column } => write!(f, "lookup:{table}.{column}"),
        }
    }
}

/// Where a connection's public id (what metrics, the API and the status page show) comes
/// from, when not from the connection column itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ConnectionIdSource {
    /// The connection column holds it.
    #[default]
    Connection,
    /// Another column of the sync log (`column:NAME`).
    Column(Ident),
    /// A column of the connection table, joined on its `id` = the connection column
    /// (`lookup:TABLE.COLUMN`): an ORM's integer foreign key to a table that holds the
    /// connection's public uuid.
    Lookup { table: Ident, column: Ident },
}

impl FromStr for ConnectionIdSource {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.parse::<ConnectorSource>() {
            Ok(ConnectorSource::Column(column)) => Ok(ConnectionIdSource::Column(column)),
            Ok(ConnectorSource::Lookup { table, column }) => {
                Ok(ConnectionIdSource::Lookup { table, column })
            }
            _ => Err(format!(
                "{text:?}: expected column:NAME or lookup:TABLE.COLUMN"
            )),
        }
    }
}

impl fmt::Display for ConnectionIdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionIdSource::Connection => f.write_str("the connection column"),
            ConnectionIdSource::Column(c) => write!(f, "column:{c}"),
            ConnectionIdSource::Lookup { table, column } => write!(f, "lookup:{table}.{column}"),
        }
    }
}

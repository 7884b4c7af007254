//! What the database's catalogue says about an observed table: its columns and their
//! types, its indexes, and whether the role may read it. The catalogue reads are per
//! database (`describe_sql`); comparing them with what syncwatch needs is `check.rs`'s.

use super::sources::ConnectionIdSource;
use super::table::{Ident, TableMap};
use crate::domain::ConnectionKind;
use crate::store::engine::Columns;
use crate::store::{Backend, Result};

/// A table as the database's catalogue describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableDescription {
    /// Empty when the table does not exist (or the role cannot see it).
    pub(super) columns: Vec<ColumnInfo>,
    /// Each index's key columns in order (`?` for an expression).
    pub(super) indexes: Vec<(String, Vec<String>)>,
    pub(super) readable: bool,
    /// The lookup table of `--connector-from lookup:…`, when configured.
    pub(crate) lookup: Option<Box<TableDescription>>,
    /// The connection table of `--connection-id-from lookup:…`, when configured.
    pub(crate) id_lookup: Option<Box<TableDescription>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct ColumnInfo {
    pub(super) name: String,
    pub(super) sql_type: String,
}

impl TableDescription {
    /// The kind of id the sync log's `workspace_connector_id` is read as under `map`: the
    /// type of the connection column, of `column:NAME`, or of the lookup's public column.
    /// `None` when that column is not found or not of a type ids are read from.
    pub fn connection_kind(&self, map: &TableMap) -> Option<ConnectionKind> {
        let (columns, name) = match &map.connection_id {
            ConnectionIdSource::Connection => (&self.columns, map.connection.to_string()),
            ConnectionIdSource::Column(column) => (&self.columns, column.to_string()),
            ConnectionIdSource::Lookup { column, .. } => {
                (&self.id_lookup.as_deref()?.columns, column.to_string())
            }
        };
        let column = columns.iter().find(|c| c.name == name)?;
        ConnectionKind::of_column(&column.sql_type)
    }

    /// The kind of the run's internal key column (`--id-column`), which keyset reads
    /// compare with.
    pub fn run_key_kind(&self, map: &TableMap) -> Option<ConnectionKind> {
        let name = map.id.to_string();
        let column = self.columns.iter().find(|c| c.name == name)?;
        ConnectionKind::of_column(&column.sql_type)
    }

    /// The kind of the connection column itself (what `lookup:` tables are keyed by).
    pub fn key_kind(&self, map: &TableMap) -> Option<ConnectionKind> {
        let name = map.connection.to_string();
        let column = self.columns.iter().find(|c| c.name == name)?;
        ConnectionKind::of_column(&column.sql_type)
    }
}

/// The catalogue queries of one database, each taking the table's name as parameter 1:
/// (columns: name and type; indexes: name and comma-separated key columns; readable: 1
/// or 0).
pub fn describe_sql(backend: Backend) -> [&'static str; 3] {
    match backend {
        Backend::Postgres => [
            "select a.attname::text, format_type(a.atttypid, a.atttypmod) || \
               case when t.typtype = 'e' then ' (enum)' else '' end \
             from pg_attribute a join pg_type t on t.oid = a.atttypid \
             where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped \
             order by a.attnum",
            "select c.relname::text, (select string_agg(coalesce(a.attname::text, '?'), ',' \
                 order by k.ord) \
               from unnest(i.indkey::int2[]) with ordinality k(attnum, ord) \
               left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum) \
             from pg_index i join pg_class c on c.oid = i.indexrelid \
             where i.indrelid = to_regclass($1) order by 1",
            "select case when to_regclass($1) is not null \
               and has_table_privilege(to_regclass($1), 'select') then 1 else 0 end",
        ],
        Backend::Sqlite => [
            "select name, type from pragma_table_info($1) order by cid",
            "select il.name, (select group_concat(coalesce(name, '?'), ',') from \
               (select ii.name from pragma_index_info(il.name) ii order by ii.seqno)) \
             from pragma_index_list($1) il order by 1",
            "select count(*) from sqlite_master where type in ('table', 'view') and name = $1",
        ],
    }
}

/// The name the catalogue queries take: the quoted name on PostgreSQL (`to_regclass`
/// parses it), the bare name on SQLite (`pragma_table_info`).
pub fn catalogue_name(backend: Backend, table: &Ident) -> String {
    match backend {
        Backend::Postgres => table.quoted(),
        Backend::Sqlite => table.name().to_owned(),
    }
}

/// Decode the three catalogue reads into a description.
pub fn decode_description(
    columns: &[impl Columns],
    indexes: &[impl Columns],
    readable: &[impl Columns],
) -> Result<TableDescription> {
    Ok(TableDescription {
        columns: columns
            .iter()
            .map(|r| {
                Ok(ColumnInfo {
                    name: r.text_req(0)?,
                    sql_type: r.text(1)?.unwrap_or_default(),
                })
            })
            .collect::<Result<_>>()?,
        indexes: indexes
            .iter()
            .map(|r| {
                let keys = r.text(1)?.unwrap_or_default();
                Ok((r.text_req(0)?, keys.split(',').map(str::to_owned).collect()))
            })
            .collect::<Result<_>>()?,
        readable: readable
            .first()
            .map(|r| r.count(0))
            .transpose()?
            .unwrap_or(0)
            > 0,
        lookup: None,
        id_lookup: None,
    })
}

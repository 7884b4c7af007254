//! The per-connection walk of a first start: each connection's latest terminal run and
//! failure streak, a bounded chunk of connections per statement.

use crate::store::engine::Dialect;
use crate::store::observed::{ConnectionIdSource, TableMap};

/// Where the walk finds connections and their runs.
struct Walk {
    /// The first connection id (with `after`, after `$2`), and the one after `c.id`.
    first: String,
    next: String,
    /// The key `c.id`'s runs are probed by.
    key_of: String,
    /// The runs probed, under aliases `l` and `e`, and their column holding that key.
    runs_l: String,
    runs_e: String,
    key: String,
    /// Their column holding the run's key (`--id-column` on the table itself).
    id: String,
}

fn walk(d: &Dialect, t: &TableMap, after: bool) -> Walk {
    let after_param = t.connection_param(d, 2);
    if let ConnectionIdSource::Lookup { table, column } = &t.connection_id {
        let (lookup, public) = (table.quoted(), column.quoted());
        let runs = t.table.quoted();
        let connection = t.connection.quoted();
        let step = |bound: &str| {
            format!(
                "select p.{public} from {lookup} p \
                 where exists (select 1 from {runs} r where r.{connection} = p.id \
                   and r.completed_at is not null){bound} \
                 order by p.{public} limit 1"
            )
        };
        let first_bound = if after {
            format!(" and p.{public} > {after_param}")
        } else {
            String::new()
        };
        return Walk {
            first: step(&first_bound),
            next: step(&format!(" and p.{public} > c.id")),
            key_of: format!("(select p.id from {lookup} p where p.{public} = c.id limit 1)"),
            runs_l: format!("{runs} l"),
            runs_e: format!("{runs} e"),
            key: connection,
            id: t.id.quoted(),
        };
    }
    let bound = if after {
        format!(" and workspace_connector_id > {after_param}")
    } else {
        String::new()
    };
    Walk {
        first: format!(
            "select workspace_connector_id from {} where completed_at is not null{bound} \
             order by workspace_connector_id limit 1",
            t.source(d, "s")
        ),
        next: format!(
            "select l.workspace_connector_id from {} where l.completed_at is not null \
             and l.workspace_connector_id > c.id order by l.workspace_connector_id limit 1",
            t.source(d, "l")
        ),
        key_of: "c.id".into(),
        runs_l: t.source(d, "l"),
        runs_e: t.source(d, "e"),
        key: "workspace_connector_id".into(),
        id: "id".into(),
    }
}

/// Per connection, for at most `$1` connections in id order (with `after`, after `$2`):
/// the latest terminal run and the failures after the last success. (Two texts rather
/// than `$2 is null or …`, which would keep the index from starting at `$2`.)
///
/// Written as index probes on `connection_terminal_idx` (workspace_connector_id,
/// completed_at, id) so its cost follows the number of connections in the chunk and their
/// current failure streaks, not the length of the history: the chunk's connections are
/// enumerated by a loose index scan (one probe each), then per connection the latest
/// terminal run, the latest success, and the failures after it are read from the same
/// index. A run of a status outside the contract is no outcome, as the steady scan skips
/// it: the latest run is the latest of the four statuses among the connection's 8 latest
/// (one bounded probe; filtering the probe itself makes PostgreSQL leave the index), and
/// the failures after the latest success are an index range each checked for its status.
/// A connection that never succeeded counts all its errors. A run completed more than a
/// day ahead of the database clock ([`Dialect::horizon`]) is no outcome yet, as the
/// scanner's reads of single runs skip it.
///
/// Where the public id is looked up (`--connection-id-from lookup:`), the walk goes over
/// the connection table's index on that id instead (keeping connections with a terminal
/// run), and each connection's runs are probed by its internal key: sorting the joined
/// public ids would read the whole table for every chunk.
pub fn connection_states_sql(d: &Dialect, t: &TableMap, after: bool) -> String {
    let w = walk(d, t, after);
    let (l, e, key, id) = (&w.runs_l, &w.runs_e, &w.key, &w.id);
    format!(
        "
with recursive connections(id, n) as (
    select ({first}), 1
    union all
    select ({next}), c.n + 1
    from connections c where c.id is not null and c.n < $1
), keyed as (
    select c.id, {key_of} as k from connections c where c.id is not null
), latest as (
    select c.id as workspace_connector_id, c.k,
           (select z.id from (select l.{id} as id, l.status, l.completed_at from {l}
                where l.{key} = c.k and l.completed_at is not null
                  and l.completed_at <= {horizon}
                order by l.completed_at desc, l.{id} desc limit 8) z
            where z.status in ('scheduled', 'in_progress', 'success', 'error')
            order by z.completed_at desc, z.id desc limit 1) as last_id,
           (select l.completed_at from {l}
            where l.{key} = c.k and l.completed_at is not null
              and l.completed_at <= {horizon} and l.status = 'success'
            order by l.completed_at desc, l.{id} desc limit 1) as last_success
    from keyed c
)
select x.workspace_connector_id, t.connector_slug, t.status, t.completed_at,
       case when x.last_success is null then
           (select count(*) from {e}
            where e.{key} = x.k
              and e.completed_at is not null and e.completed_at <= {horizon}
              and e.status = 'error')
       else
           (select count(*) from {e}
            where e.{key} = x.k
              and e.completed_at > x.last_success and e.completed_at <= {horizon}
              and e.status = 'error')
       end as consecutive_failures,
       x.last_success
from latest x join {t} on t.id = x.last_id
order by x.workspace_connector_id
",
        first = w.first,
        next = w.next,
        key_of = w.key_of,
        horizon = d.horizon,
        t = t.source_of_few(d, "t"),
    )
}

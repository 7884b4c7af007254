//! What the scanner reads about runs still live: active runs per connector and status
//! with their stuck counts, the stuck runs' ids, the live runs one by one, and the recent
//! runs of given connections that the learned signals start from; their decoders, and
//! [`LiveReads`] over them.

use std::collections::hash_map::{Entry, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::lookups::resolves_by_key;
use super::SqlStore;
use crate::domain::{ConnectionId, Status};
use crate::store::engine::{Columns, Dialect, Engine, Param};
use crate::store::observed::{ConnectorSource, TableMap};
use crate::store::{ActiveGroup, LiveReads, LiveRun, RecentRun, Result, StuckCutoffs};

/// Active runs grouped by connector and status, with stuck counts. Parameters: 1 the
/// scheduled cut-off, 2 the idle cut-off, 3 the started cut-off ([`cutoff_params`]).
pub fn active_groups_sql(d: &Dialect, t: &TableMap) -> String {
    active_groups_from(&t.source_of_few(d, "s"), false)
}

/// [`active_groups_sql`] by connection key too, without lookups: the groups of a table whose
/// `lookup:` connector syncwatch resolves ([`resolves_by_key`]).
pub fn active_groups_by_key_sql(d: &Dialect, t: &TableMap) -> String {
    active_groups_from(&t.source_of_keys(d, "s"), true)
}

fn active_groups_from(source: &str, by_key: bool) -> String {
    let key = if by_key {
        "workspace_connector_id, "
    } else {
        ""
    };
    format!(
        "select {key}connector_slug, status, count(*) as runs, \
       coalesce(sum(case \
         when status = 'scheduled' and created_at < $1 then 1 \
         when status = 'in_progress' and (updated_at < $2 \
              or coalesce(started_at, created_at) < $3) then 1 \
         else 0 end), 0) as stuck, \
       min(case when status = 'in_progress' then coalesce(started_at, created_at) \
                else created_at end) as oldest \
     from {source} \
     where status in ('scheduled', 'in_progress') and deleted_at is null \
     group by {key}connector_slug, status"
    )
}

/// Ids of active runs stuck by the same rules (parameters as in [`active_groups_sql`]).
pub fn stuck_ids_sql(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select workspace_connector_sync_log_id from {} \
     where status in ('scheduled', 'in_progress') and deleted_at is null and ( \
       (status = 'scheduled' and created_at < $1) or \
       (status = 'in_progress' and (updated_at < $2 \
          or coalesce(started_at, created_at) < $3))) \
     order by created_at limit 1000",
        t.source_of_few(d, "s")
    )
}

/// A row of [`active_groups_sql`].
pub fn decode_active(row: &impl Columns) -> Result<ActiveGroup> {
    decode_active_from(row, 0)
}

/// An active group from column `first` on.
fn decode_active_from(row: &impl Columns, first: usize) -> Result<ActiveGroup> {
    Ok(ActiveGroup {
        connector_slug: row.connector(first)?,
        status: row.status(first + 1)?,
        count: row.count(first + 2)?,
        stuck: row.count(first + 3)?,
        oldest: row.timestamp_req(first + 4)?,
    })
}

/// Live runs, at most `limit`: all of them, the longest running first, or (`changed`) only
/// those created or started after `$1` (what changed since the scanner's last read; the
/// rest it keeps), in no order.
pub fn live_runs_sql(d: &Dialect, t: &TableMap, changed: bool, limit: usize) -> String {
    live_runs_from(&t.source_of_few(d, "s"), changed, limit)
}

fn live_runs_from(source: &str, changed: bool, limit: usize) -> String {
    // The limit is written in, and nothing is ordered by an indexed column: PostgreSQL's
    // generic plan for `limit $1` (taken after five runs) assumes few rows are wanted, and
    // walked the whole table down its creation-time index instead of the active-runs index
    // (23 ms against 2 ms at 100k rows, seconds at 10M).
    let (changed, order) = if changed {
        (" and (created_at > $1 or started_at > $1)", "")
    } else {
        ("", " order by coalesce(started_at, created_at)")
    };
    format!(
        "select workspace_connector_id, connector_slug, status, trigger_type, created_at, \
           started_at, workspace_connector_sync_log_id \
         from {source} \
         where status in ('scheduled', 'in_progress') and deleted_at is null{changed}\
         {order} limit {limit}"
    )
}

/// For the `ids` connections (parameters `$1`…`$n`): their latest 21 live `cloud_task`
/// runs by creation, and their latest 20 live successful runs with a duration by
/// completion. Each connection's cut-off is one index probe (`offset` down its
/// `(connection, created_at)` or `(connection, completed_at)` index entries; with fewer
/// runs than that, its oldest, one more probe at the other end), then a range read above
/// it: its cost follows the number of connections, not their history. The cut-off is never
/// null, so `created_at >= floor` is an index condition of the range read: written
/// `floor is null or created_at >= floor` it was not, and PostgreSQL read every run of
/// each connection to filter them (3.4 s against 0.04 s for 200 connections at 30M runs).
pub fn recent_runs_sql(d: &Dialect, t: &TableMap, ids: usize) -> String {
    let values: Vec<String> = (1..=ids)
        .map(|n| format!("({})", t.connection_param(d, n)))
        .collect();
    let probe = |alias: &str| t.source(d, alias);
    format!(
        "with c(id) as (values {values}),
floors as (
    select c.id,
        coalesce(
          (select p.created_at from {p} where p.workspace_connector_id = c.id
             and p.trigger_type = 'cloud_task' and p.deleted_at is null
           order by p.created_at desc limit 1 offset 20),
          (select p.created_at from {p} where p.workspace_connector_id = c.id
             and p.trigger_type = 'cloud_task' and p.deleted_at is null
           order by p.created_at limit 1)) as created_floor,
        coalesce(
          (select q.completed_at from {q} where q.workspace_connector_id = c.id
             and q.completed_at is not null and q.status = 'success' and q.deleted_at is null
             and q.duration_ms is not null
           order by q.completed_at desc limit 1 offset 19),
          (select q.completed_at from {q} where q.workspace_connector_id = c.id
             and q.completed_at is not null and q.status = 'success' and q.deleted_at is null
             and q.duration_ms is not null
           order by q.completed_at limit 1)) as success_floor
    from c
)
select l.workspace_connector_id, l.connector_slug, l.created_at, null, null,
       l.workspace_connector_sync_log_id
from floors f join {l} on l.workspace_connector_id = f.id
where l.trigger_type = 'cloud_task' and l.deleted_at is null
  and l.created_at >= f.created_floor
union all
select m.workspace_connector_id, m.connector_slug, m.created_at, m.completed_at, m.duration_ms,
       m.workspace_connector_sync_log_id
from floors f join {m} on m.workspace_connector_id = f.id
where m.completed_at is not null and m.status = 'success' and m.deleted_at is null
  and m.duration_ms is not null
  and m.completed_at >= f.success_floor",
        values = values.join(", "),
        p = probe("p"),
        q = probe("q"),
        l = probe("l"),
        m = probe("m"),
    )
}

/// A row of [`live_runs_sql`].
pub fn decode_live_run(row: &impl Columns) -> Result<LiveRun> {
    Ok(LiveRun {
        id: row.uuid_req(6)?,
        workspace_connector_id: row.connection(0)?,
        connector_slug: row.connector(1)?,
        status: row.status(2)?,
        trigger_type: row.text(3)?,
        created_at: row.timestamp_req(4)?,
        started_at: row.timestamp(5)?,
    })
}

/// A row of [`recent_runs_sql`].
pub fn decode_recent_run(row: &impl Columns) -> Result<RecentRun> {
    Ok(RecentRun {
        workspace_connector_id: row.connection_req(0)?,
        connector_slug: row.connector(1)?,
        created_at: row.timestamp_req(2)?,
        completed_at: row.timestamp(3)?,
        duration_ms: row.int(4)?,
    })
}

/// The cut-offs as the parameters of [`active_groups_sql`] and [`stuck_ids_sql`].
fn cutoff_params(cutoffs: &StuckCutoffs) -> Vec<Param> {
    vec![
        cutoffs.scheduled_before.into(),
        cutoffs.idle_before.into(),
        cutoffs.started_before.into(),
    ]
}

#[async_trait]
impl<E: Engine> LiveReads for SqlStore<E> {
    #[tracing::instrument(skip_all)]
    async fn active_groups(&self, cutoffs: &StuckCutoffs) -> Result<Vec<ActiveGroup>> {
        if !resolves_by_key(&self.table) {
            let sql = active_groups_sql(E::DIALECT, &self.table);
            return self
                .scan_decoded(
                    "active groups",
                    &sql,
                    cutoff_params(cutoffs),
                    None,
                    decode_active,
                )
                .await;
        }
        // By connection key, each key's connector resolved here, then summed by connector.
        let sql = active_groups_by_key_sql(E::DIALECT, &self.table);
        let by_key = self
            .scan_decoded(
                "active groups",
                &sql,
                cutoff_params(cutoffs),
                Some((0, "connection")),
                |row| Ok((row.connection_req(0)?, decode_active_from(row, 1)?)),
            )
            .await?;
        let keys: Vec<ConnectionId> = by_key.iter().map(|(key, _)| key.clone()).collect();
        let resolved = self.resolve_keys(&keys).await?;
        let looked_up = matches!(self.table.connector, ConnectorSource::Lookup { .. });
        // Summed by (connector, status) through a map: one row per live connection can be
        // tens of thousands.
        let mut groups: Vec<ActiveGroup> = Vec::new();
        let mut index: HashMap<(String, Status), usize> = HashMap::new();
        for (key, mut group) in by_key {
            if looked_up {
                if let Some(r) = resolved.get(key.as_str()) {
                    group.connector_slug.clone_from(&r.connector);
                }
            }
            match index.entry((group.connector_slug.clone(), group.status)) {
                Entry::Occupied(at) => {
                    let g = &mut groups[*at.get()];
                    g.count += group.count;
                    g.stuck += group.stuck;
                    g.oldest = g.oldest.min(group.oldest);
                }
                Entry::Vacant(slot) => {
                    slot.insert(groups.len());
                    groups.push(group);
                }
            }
        }
        Ok(groups)
    }

    #[tracing::instrument(skip_all)]
    async fn stuck_runs(&self, cutoffs: &StuckCutoffs) -> Result<Vec<Uuid>> {
        let sql = stuck_ids_sql(E::DIALECT, &self.table);
        self.scan_decoded(
            "stuck runs",
            &sql,
            cutoff_params(cutoffs),
            Some((0, "run")),
            |row| row.uuid_req(0),
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn live_runs(
        &self,
        changed_since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<LiveRun>> {
        let params: Vec<Param> = changed_since.map(Param::from).into_iter().collect();
        let changed = changed_since.is_some();
        if !resolves_by_key(&self.table) {
            let sql = live_runs_sql(E::DIALECT, &self.table, changed, limit);
            return self
                .scan_decoded("live runs", &sql, params, Some((6, "run")), decode_live_run)
                .await;
        }
        // By connection key: the connector and public id resolved here. A run whose public
        // id cannot be resolved is recorded, and kept without one (it still counts among
        // its connector's live runs, as in the groups).
        let sql = live_runs_from(&self.table.source_of_keys(E::DIALECT, "s"), changed, limit);
        let keyed = self
            .scan_decoded("live runs", &sql, params, Some((6, "run")), |row| {
                Ok((decode_live_run(row)?, row.raw_text(6)))
            })
            .await?;
        let keys: Vec<ConnectionId> = (keyed.iter())
            .filter_map(|(run, _)| run.workspace_connector_id.clone())
            .collect();
        let resolved = self.resolve_keys(&keys).await?;
        let looked_up = matches!(self.table.connector, ConnectorSource::Lookup { .. });
        let mut runs = Vec::with_capacity(keyed.len());
        for (mut run, name) in keyed {
            let found =
                (run.workspace_connector_id.as_ref()).and_then(|k| resolved.get(k.as_str()));
            run.workspace_connector_id = match found.map(|r| &r.public) {
                Some(Ok(public)) => Some(public.clone()),
                Some(Err(why)) => {
                    let name = name.map(|id| format!("run {id}"));
                    self.skipped.record("live runs", name.as_deref(), why);
                    None
                }
                None => None,
            };
            if let (true, Some(r)) = (looked_up, found) {
                run.connector_slug.clone_from(&r.connector);
            }
            runs.push(run);
        }
        Ok(runs)
    }

    #[tracing::instrument(skip_all)]
    async fn recent_runs(&self, ids: &[ConnectionId]) -> Result<Vec<RecentRun>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = recent_runs_sql(E::DIALECT, &self.table, ids.len());
        let params = ids.iter().map(Param::from).collect();
        self.scan_decoded(
            "recent runs",
            &sql,
            params,
            Some((5, "run")),
            decode_recent_run,
        )
        .await
    }
}

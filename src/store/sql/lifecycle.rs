//! The lifecycle API's statements (create, transitions, reads, soft delete, the
//! per-connection status), each written once for both stores against a [`Dialect`], their
//! parameters and decoders, and [`RunStore`] over them. Their spans are at `debug`, as is the
//! API's request span: at `info` they cost ~3 % of the server's CPU on the write path.

use async_trait::async_trait;
use uuid::Uuid;

use super::{json_text, SqlStore};
use crate::domain::{Action, NewSyncLog, Status, SyncLog, TriggerType, MAX_METADATA_BYTES};
use crate::store::engine::{Columns, Dialect, Engine, Param, PoolKind};
use crate::store::observed::TableMap;
use crate::store::runs::cas_failure;
use crate::store::Cursor;
use crate::store::{
    Change, ListFilter, Page, Result, RunStore, StatusFilter, StatusPage, StoreError,
};

/// The columns every statement returning a run selects, in the order [`decode_run`] reads.
pub const RUN_COLUMNS: &str = "workspace_connector_sync_log_id, workspace_connector_id, \
     connector_slug, status, trigger_type, cloud_task_id, started_at, completed_at, duration_ms, \
     error, metadata, created_at, updated_at";

/// Parameters: 1 id, 2 connection, 3 connector, 4 status, 5 trigger, 6 cloud task id,
/// 7 metadata (JSON text), 8 whether the run starts now.
pub fn insert(d: &Dialect, t: &TableMap) -> String {
    format!(
        "insert into {target} \
           (workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status, \
            trigger_type, cloud_task_id, metadata, started_at) \
         values ($1, {connection}, $3, $4, $5, $6, {metadata}, case when $8 then {now} end) \
         on conflict (cloud_task_id) where cloud_task_id is not null and deleted_at is null \
         do nothing \
         returning {RUN_COLUMNS}",
        metadata = d.typed(7, "jsonb"),
        connection = t.connection_param(d, 2),
        now = d.now,
        target = t.target(),
    )
}

/// The live run with a `cloud_task_id` (parameter 1).
pub fn live_by_cloud_task(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select {RUN_COLUMNS} from {} where cloud_task_id = $1 and deleted_at is null",
        t.source(d, "s")
    )
}

/// The live run with a public id (parameter 1).
pub fn live_by_id(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select {RUN_COLUMNS} from {} \
         where workspace_connector_sync_log_id = $1 and deleted_at is null",
        t.source(d, "s")
    )
}

/// The status of the live run with a public id (parameter 1), and the size its metadata
/// would have merged with the patch in parameter 2 (0 without one).
pub fn live_status(d: &Dialect, t: &TableMap) -> String {
    format!(
        "select status, case when $2 is null then 0 else {merged} end from {source} \
         where workspace_connector_sync_log_id = $1 and deleted_at is null",
        merged = d.merged_bytes(2),
        source = t.source(d, "s")
    )
}

/// The compare-and-set transition for `action`: it only matches a live run in one of the
/// statuses the action is allowed from, and only while its metadata merged with the patch
/// stays within [`MAX_METADATA_BYTES`]. Parameters: 1 id, 2 new status, 3 error, 4 metadata
/// patch (JSON text), then the statuses the action is allowed from
/// ([`Action::allowed_from`], from the state machine, never from input).
///
/// The allowed statuses are parameters rather than literals so that PostgreSQL's generic
/// plan cannot use the partial active-runs index (its predicate, scheduled or in progress
/// and live, would follow from literals): when the table was last analyzed with no run
/// live, the statistics call that index empty and it is the cheaper guess, and the plan,
/// kept as runs go live, then reads every in-progress run for each transition. With
/// parameters the run is found by its public id's unique index, whatever the statistics.
pub fn transition(d: &Dialect, t: &TableMap, action: Action) -> String {
    let allowed: Vec<String> = (0..action.allowed_from().len())
        .map(|i| format!("${}", 5 + i))
        .collect();
    let now = d.now;
    let started = if action == Action::Start {
        now
    } else {
        "started_at"
    };
    let finishing = action.target().is_terminal();
    let (completed, duration) = if finishing {
        (
            now.to_owned(),
            format!(
                "case when started_at is not null then {} end",
                d.elapsed_ms()
            ),
        )
    } else {
        ("completed_at".to_owned(), "duration_ms".to_owned())
    };
    format!(
        "update {target} set \
           status = $2, started_at = {started}, completed_at = {completed}, \
           duration_ms = {duration}, error = coalesce($3, error), \
           metadata = case when $4 is null then metadata else {merge} end, \
           updated_at = {now} \
         where workspace_connector_sync_log_id = $1 and deleted_at is null \
           and status in ({allowed}) \
           and ($4 is null or {merged} <= {MAX_METADATA_BYTES}) \
         returning {RUN_COLUMNS}",
        merge = d.merge_patch(4),
        merged = d.merged_bytes(4),
        allowed = allowed.join(", "),
        target = t.target(),
    )
}

/// Soft delete of the live run with a public id (parameter 1).
pub fn soft_delete(d: &Dialect, t: &TableMap) -> String {
    format!(
        "update {target} set deleted_at = {now}, updated_at = {now} \
         where workspace_connector_sync_log_id = $1 and deleted_at is null",
        now = d.now,
        target = t.target(),
    )
}

/// One keyset page of live runs, newest first. `filters` are the conditions already
/// numbered; the cursor and the limit take the next parameters.
pub fn list(
    d: &Dialect,
    t: &TableMap,
    filters: &[String],
    cursor_from: Option<usize>,
    limit_param: usize,
) -> String {
    let mut sql = format!(
        "select {RUN_COLUMNS} from {} where deleted_at is null",
        t.source(d, "s")
    );
    for filter in filters {
        sql.push_str(" and ");
        sql.push_str(filter);
    }
    if let Some(n) = cursor_from {
        sql.push_str(&format!(
            " and (created_at, workspace_connector_sync_log_id) < (${n}, ${})",
            n + 1
        ));
    }
    sql.push_str(&format!(
        " order by created_at desc, workspace_connector_sync_log_id desc limit ${limit_param}"
    ));
    sql
}

/// The values `trigger_type` may have, for the error naming one outside them.
const TRIGGER_TYPES: &str = "cloud_task, manual, oauth_callback";

/// A row selected with [`RUN_COLUMNS`].
pub fn decode_run(row: &impl Columns) -> Result<SyncLog> {
    // A value the run may lack that does not decode is shown as null and named in
    // `unreadable`, so one bad value never hides the rest of the run; the values every run
    // has (ids, status, creation and update times) must decode.
    fn optional<T>(unreadable: &mut Vec<String>, value: Result<Option<T>>) -> Result<Option<T>> {
        match value {
            Err(StoreError::Unreadable(e)) => {
                unreadable.push(e.column);
                Ok(None)
            }
            other => other,
        }
    }
    let mut bad = Vec::new();
    let trigger_type = optional(&mut bad, row.label(4, TRIGGER_TYPES))?;
    let cloud_task_id = optional(&mut bad, row.text(5))?;
    let started_at = optional(&mut bad, row.timestamp(6))?;
    let completed_at = optional(&mut bad, row.timestamp(7))?;
    let duration_ms = optional(&mut bad, row.int(8))?;
    let error = optional(&mut bad, row.text(9))?;
    let metadata = optional(&mut bad, row.json(10))?;
    Ok(SyncLog {
        workspace_connector_sync_log_id: row.uuid_req(0)?,
        workspace_connector_id: row.connection_req(1)?,
        connector_slug: row.connector(2)?,
        status: row.status(3)?,
        trigger_type,
        cloud_task_id,
        started_at,
        completed_at,
        duration_ms,
        error,
        metadata,
        created_at: row.timestamp_req(11)?,
        updated_at: row.timestamp_req(12)?,
        unreadable: bad,
    })
}

impl<E: Engine> SqlStore<E> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn current_status(&self, id: Uuid, patch: Param) -> Result<Option<(Status, i64)>> {
        let row = self
            .engine
            .fetch_optional(
                PoolKind::Api,
                &live_status(E::DIALECT, &self.table),
                vec![id.into(), patch],
            )
            .await?;
        row.map(|r| Ok((r.status(0)?, r.int_req(1)?))).transpose()
    }
}

#[async_trait]
impl<E: Engine> RunStore for SqlStore<E> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn insert(&self, new: &NewSyncLog) -> Result<Option<SyncLog>> {
        self.writable()?;
        let sql = insert(E::DIALECT, &self.table);
        let params = vec![
            Uuid::new_v4().into(),
            (&new.workspace_connector_id).into(),
            new.connector_slug.as_str().into(),
            new.status.as_str().into(),
            Param::Text(new.trigger_type.map(|t| TriggerType::as_str(t).to_owned())),
            new.cloud_task_id.clone().into(),
            json_text(&new.metadata),
            (new.status == Status::InProgress).into(),
        ];
        self.one_run(&sql, params).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_live_by_cloud_task(&self, cloud_task_id: &str) -> Result<Option<SyncLog>> {
        self.one_run(
            &live_by_cloud_task(E::DIALECT, &self.table),
            vec![cloud_task_id.into()],
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(action = %change.action))]
    async fn apply(&self, id: Uuid, change: &Change) -> Result<SyncLog> {
        self.writable()?;
        let sql = transition(E::DIALECT, &self.table, change.action);
        let mut params = vec![
            id.into(),
            change.action.target().as_str().into(),
            change.error.clone().into(),
            json_text(&change.metadata),
        ];
        params.extend(
            change
                .action
                .allowed_from()
                .iter()
                .map(|status| status.as_str().into()),
        );
        match self.one_run(&sql, params).await? {
            Some(row) => Ok(row),
            None => Err(cas_failure(
                change,
                self.current_status(id, json_text(&change.metadata)).await?,
            )),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get(&self, id: Uuid) -> Result<Option<SyncLog>> {
        self.one_run(&live_by_id(E::DIALECT, &self.table), vec![id.into()])
            .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list(&self, filter: &ListFilter) -> Result<Page> {
        let mut conditions = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let d = E::DIALECT;
        let key_type = self.table.connection_kind.sql_type();
        let mut condition = |column: &str, value: Param, sql_type: &str| {
            params.push(value);
            conditions.push(format!("{column} = {}", d.typed(params.len(), sql_type)));
        };
        if let Some(id) = &filter.workspace_connector_id {
            condition("workspace_connector_id", id.into(), key_type);
        }
        if let Some(slug) = &filter.connector_slug {
            condition("connector_slug", slug.as_str().into(), "text");
        }
        if let Some(status) = filter.status {
            // Compared as text: an observed table's status may be an enum type.
            condition("cast(status as text)", status.as_str().into(), "text");
        }
        let cursor_from = filter.cursor.map(|cursor| {
            params.push(cursor.created_at.into());
            params.push(cursor.id.into());
            params.len() - 1
        });
        params.push(Param::Int(i64::from(filter.limit) + 1));
        let sql = list(
            E::DIALECT,
            &self.table,
            &conditions,
            cursor_from,
            params.len(),
        );
        let rows = self.engine.fetch_all(PoolKind::Api, &sql, params).await?;
        // A run whose ids, status or times do not decode is left off the page (and
        // recorded as skipped); the page still ends where its last row does.
        let more = rows.len() > filter.limit as usize;
        let page = &rows[..rows.len().min(filter.limit as usize)];
        let items = self.decode_lenient("run list", page, Some((0, "run")), decode_run)?;
        let next_cursor = if more {
            items.last().map(Cursor::after)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn soft_delete(&self, id: Uuid) -> Result<bool> {
        self.writable()?;
        let sql = soft_delete(E::DIALECT, &self.table);
        let done = self
            .engine
            .execute(PoolKind::Api, &sql, vec![id.into()])
            .await?;
        Ok(done == 1)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn connector_status(&self, filter: &StatusFilter) -> Result<StatusPage> {
        self.connector_status_page(filter).await
    }
}

//! syncwatch's own state in its own tables: the scanner's checkpoint (its totals and the
//! point they are settled up to) and the saved per-connection states; the statements, their
//! parameters, and [`StateStore`] over them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::scanner::decode_connection_state;
use super::SqlStore;
use crate::domain::ConnectionId;
use crate::store::engine::{Columns, Dialect, Engine, Param, PoolKind};
use crate::store::{ConnectionState, Result, StateStore};

/// The scanner's saved totals of one table and mapping (parameter 1, [`checkpoint_name`]).
pub const LOAD_CHECKPOINT: &str =
    "select settled_upto, totals from syncwatch_scanner_checkpoint where name = $1";

/// The name of a scope's checkpoint row.
fn checkpoint_name(scope: &str) -> String {
    if scope.is_empty() {
        "totals".to_owned()
    } else {
        format!("totals {scope}")
    }
}

/// Replace the scanner's saved totals. Parameters: 1 settled up to, 2 totals (JSON text),
/// 3 the checkpoint's name.
pub fn save_checkpoint(d: &Dialect) -> String {
    format!(
        "insert into syncwatch_scanner_checkpoint (name, settled_upto, totals) \
         values ($3, $1, $2) \
         on conflict (name) do update set settled_upto = excluded.settled_upto, \
           totals = excluded.totals, updated_at = {now}",
        now = d.now
    )
}

/// The saved per-connection states of scope `$2`, at most `$1` in id order (with `after`,
/// after `$3`); the columns of [`decode_connection_state`].
pub fn saved_connection_states_sql(d: &Dialect, after: bool) -> String {
    format!(
        "select workspace_connector_id, connector_slug, last_status, last_completed_at, \
           consecutive_failures, last_success_at, learned from syncwatch_connection_state \
         where scope = $2{after} order by workspace_connector_id limit $1",
        after = if after {
            format!(" and workspace_connector_id > {}", d.typed(3, "text"))
        } else {
            String::new()
        },
    )
}

/// Upsert of `rows` saved connection states, [`STATE_PARAMS`] parameters each.
pub fn save_connection_states_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p = |i: usize| format!("${}", r * STATE_PARAMS + i);
            format!(
                "({}, {}, {}, {}, {}, {}, {}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7),
                p(8)
            )
        })
        .collect();
    format!(
        "insert into syncwatch_connection_state (workspace_connector_id, connector_slug, \
           last_status, last_completed_at, consecutive_failures, last_success_at, scope, \
           learned) \
         values {} \
         on conflict (scope, workspace_connector_id) do update set \
           connector_slug = excluded.connector_slug, last_status = excluded.last_status, \
           last_completed_at = excluded.last_completed_at, \
           consecutive_failures = excluded.consecutive_failures, \
           last_success_at = excluded.last_success_at, \
           learned = coalesce(excluded.learned, syncwatch_connection_state.learned)",
        values.join(", ")
    )
}

/// How many parameters one row of [`save_connection_states_sql`] takes.
const STATE_PARAMS: usize = 8;

/// The parameters of one row of [`save_connection_states_sql`].
fn state_params(state: &ConnectionState, scope: &str) -> [Param; STATE_PARAMS] {
    [
        (&state.workspace_connector_id).into(),
        state.connector_slug.as_str().into(),
        state.last_status.as_str().into(),
        state.last_completed_at.into(),
        Param::Int(state.consecutive_failures.min(i64::MAX as u64) as i64),
        Param::OptTimestamp(state.last_success_at),
        scope.into(),
        state.learned.clone().into(),
    ]
}

/// Rows of one connection-state upsert: under 1000 parameters, inside both databases'
/// limits.
const CONNECTION_STATES_PER_STATEMENT: usize = 999 / STATE_PARAMS;

#[async_trait]
impl<E: Engine> StateStore for SqlStore<E> {
    #[tracing::instrument(skip_all)]
    async fn load_checkpoint(&self) -> Result<Option<(DateTime<Utc>, String)>> {
        let name = checkpoint_name(&self.scope);
        let rows = self.scan_rows(LOAD_CHECKPOINT, vec![name.into()]).await?;
        rows.first()
            .map(|row| Ok((row.timestamp_req(0)?, row.text_req(1)?)))
            .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn checkpoint_settled_upto(&self) -> Result<Option<DateTime<Utc>>> {
        let name = checkpoint_name(&self.scope);
        let sql = "select settled_upto from syncwatch_scanner_checkpoint where name = $1";
        let rows = self.scan_rows(sql, vec![name.into()]).await?;
        rows.first().map(|row| row.timestamp_req(0)).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn save_checkpoint(
        &self,
        settled_upto: DateTime<Utc>,
        totals: &str,
        connections: &[ConnectionState],
    ) -> Result<()> {
        // The states first: a failure between the two leaves them ahead of the totals,
        // which a start handles (it applies a run to a connection only when newer); the
        // reverse would leave the checkpoint claiming states that were never saved.
        let scope = &self.scope;
        for chunk in connections.chunks(CONNECTION_STATES_PER_STATEMENT) {
            let sql = save_connection_states_sql(chunk.len());
            let params = chunk.iter().flat_map(|s| state_params(s, scope)).collect();
            self.engine.execute(PoolKind::Scan, &sql, params).await?;
        }
        let sql = save_checkpoint(E::DIALECT);
        self.engine
            .execute(
                PoolKind::Scan,
                &sql,
                vec![
                    settled_upto.into(),
                    totals.into(),
                    checkpoint_name(scope).into(),
                ],
            )
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn saved_connection_states(
        &self,
        after: Option<ConnectionId>,
        limit: usize,
    ) -> Result<Vec<ConnectionState>> {
        let sql = saved_connection_states_sql(E::DIALECT, after.is_some());
        let mut params = vec![
            Param::Int(limit.min(i64::MAX as usize) as i64),
            self.scope.clone().into(),
        ];
        params.extend(after.as_ref().map(Param::from));
        // syncwatch's own rows: one that does not decode is an error, not another's data.
        let rows = self.scan_rows(&sql, params).await?;
        rows.iter()
            .map(|row| {
                let mut state = decode_connection_state(row)?;
                state.learned = row.text(6)?;
                Ok(state)
            })
            .collect()
    }

    #[tracing::instrument(skip_all)]
    async fn forget_connections_before(&self, before: DateTime<Utc>) -> Result<()> {
        let sql = "delete from syncwatch_connection_state where scope = $1 \
                   and last_completed_at < $2";
        self.engine
            .execute(
                PoolKind::Scan,
                sql,
                vec![self.scope.clone().into(), before.into()],
            )
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn forget_checkpoint(&self) -> Result<()> {
        let scope = &self.scope;
        for (sql, key) in [
            (
                "delete from syncwatch_scanner_checkpoint where name = $1",
                checkpoint_name(scope),
            ),
            (
                "delete from syncwatch_connection_state where scope = $1",
                scope.clone(),
            ),
        ] {
            self.engine
                .execute(PoolKind::Scan, sql, vec![key.into()])
                .await?;
        }
        Ok(())
    }
}

//! Retention's one statement: hard-deleting the oldest terminal runs in batches, and
//! [`Retention`] over it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqlStore;
use crate::store::engine::{Engine, Param, PoolKind};
use crate::store::observed::TableMap;
use crate::store::{Result, Retention};

/// Hard-deletes at most `$2` terminal runs completed before `$1`, oldest first (an index
/// range; active runs have no `completed_at` and are never touched).
pub fn prune_sql(t: &TableMap) -> String {
    format!(
        "delete from {target} where id in ( \
         select id from {target} \
         where completed_at is not null and completed_at < $1 \
         order by completed_at limit $2)",
        target = t.target()
    )
}

#[async_trait]
impl<E: Engine> Retention for SqlStore<E> {
    #[tracing::instrument(skip_all)]
    async fn prune(&self, before: DateTime<Utc>, batch: u64) -> Result<u64> {
        self.writable()?;
        let params = vec![before.into(), Param::Int(batch.min(i64::MAX as u64) as i64)];
        self.engine
            .execute(PoolKind::Api, &prune_sql(&self.table), params)
            .await
    }
}

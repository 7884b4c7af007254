-- Keyset reads of terminal runs go by (completed_at, id): runs that share one completion
-- time (a backfill written in one statement) are read and aggregated in bounded chunks
-- within that instant. This index serves every read the (completed_at) one served.
create index if not exists workspace_connector_sync_log_completed_key_idx
    on workspace_connector_sync_log (completed_at, id)
    where completed_at is not null;

drop index if exists workspace_connector_sync_log_completed_at_idx;

-- Terminal runs per connection in completion order: the scanner's per-connection state
-- (latest terminal run, failures since the last success) becomes a few index probes per
-- connection instead of a sort of the whole history.
create index workspace_connector_sync_log_connection_terminal_idx
    on workspace_connector_sync_log (workspace_connector_id, completed_at, id)
    where completed_at is not null;

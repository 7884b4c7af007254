-- Saved connection states keep two more things:
-- - `scope`: which table and mapping they belong to (a digest of the mapping; empty for
--   syncwatch's own table, as every row saved before was), so deployments scanning two
--   tables can share one state store without mixing or erasing each other's rows;
-- - `last_success_at`: the connection's latest success, so a failed run that completed
--   before it but committed after it (seen late by the scanner) never extends the streak
--   (null for states saved before, and for connections that never succeeded).
alter table syncwatch_connection_state
    add column scope text not null default '',
    add column last_success_at timestamptz;
alter table syncwatch_connection_state drop constraint syncwatch_connection_state_pkey;
alter table syncwatch_connection_state add primary key (scope, workspace_connector_id);

-- Saved connection states keep two more things:
-- - `scope`: which table and mapping they belong to (a digest of the mapping; empty for
--   syncwatch's own table, as every row saved before was), so deployments scanning two
--   tables can share one state store without mixing or erasing each other's rows;
-- - `last_success_at`: the connection's latest success, so a failed run that completed
--   before it but committed after it (seen late by the scanner) never extends the streak
--   (null for states saved before, and for connections that never succeeded).
-- SQLite cannot change a primary key in place: the table is made anew.
create table syncwatch_connection_state_scoped (
    scope                   text not null default '',
    workspace_connector_id  text not null,
    connector_slug          text not null,
    last_status             text not null,
    last_completed_at       text not null,
    consecutive_failures    bigint not null,
    last_success_at         text,
    primary key (scope, workspace_connector_id)
);
insert into syncwatch_connection_state_scoped (workspace_connector_id, connector_slug,
    last_status, last_completed_at, consecutive_failures)
select workspace_connector_id, connector_slug, last_status, last_completed_at,
    consecutive_failures
from syncwatch_connection_state;
drop table syncwatch_connection_state;
alter table syncwatch_connection_state_scoped rename to syncwatch_connection_state;

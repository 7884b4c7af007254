-- The scanner's per-connection state (latest terminal run, failures since the last
-- success), saved with its checkpoint (the states first, then the totals). A start loads
-- it in bounded chunks instead of walking the whole table, and it keeps the state of
-- connections whose history was pruned (`syncwatch prune`, `--retention`).
create table syncwatch_connection_state (
    workspace_connector_id  text primary key,
    connector_slug          text not null,
    last_status             text not null,
    last_completed_at       text not null,
    consecutive_failures    bigint not null
);

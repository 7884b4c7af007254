-- The lifecycle store: one row per connector sync run (same logical schema as Postgres).
-- Timestamps are UTC text in one fixed format, 'YYYY-MM-DDTHH:MM:SS.sssZ', so that text
-- order is time order; every timestamp syncwatch writes comes from SQLite's own clock.
create table workspace_connector_sync_log (
    id                              integer primary key autoincrement,
    workspace_connector_sync_log_id text not null
        check (length(workspace_connector_sync_log_id) = 36),
    workspace_connector_id          text not null
        check (length(workspace_connector_id) = 36),
    connector_slug                  text not null
        check (length(connector_slug) between 1 and 64
               and connector_slug not glob '*[^a-z0-9_-]*'
               and substr(connector_slug, 1, 1) glob '[a-z0-9]'),
    status                          text not null default 'scheduled'
        check (status in ('scheduled', 'in_progress', 'success', 'error')),
    trigger_type                    text
        check (trigger_type in ('cloud_task', 'manual', 'oauth_callback')),
    cloud_task_id                   text
        check (cloud_task_id is null or (length(cloud_task_id) <= 255 and trigger_type = 'cloud_task')),
    started_at                      text,
    completed_at                    text,
    duration_ms                     integer,
    error                           text,
    metadata                        text
        check (metadata is null or (json_valid(metadata) and json_type(metadata) = 'object')),
    created_at                      text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at                      text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at                      text,

    check ((status in ('success', 'error')) = (completed_at is not null)),
    check (error is null or status = 'error'),
    check (duration_ms is null or (started_at is not null and completed_at is not null and duration_ms >= 0))
);

create unique index workspace_connector_sync_log_public_id_key
    on workspace_connector_sync_log (workspace_connector_sync_log_id);

create unique index workspace_connector_sync_log_cloud_task_id_live_key
    on workspace_connector_sync_log (cloud_task_id)
    where cloud_task_id is not null and deleted_at is null;

create index workspace_connector_sync_log_active_idx
    on workspace_connector_sync_log (connector_slug, status, created_at)
    where status in ('scheduled', 'in_progress') and deleted_at is null;

create index workspace_connector_sync_log_completed_at_idx
    on workspace_connector_sync_log (completed_at)
    where completed_at is not null;

create index workspace_connector_sync_log_connection_latest_idx
    on workspace_connector_sync_log (workspace_connector_id, created_at desc, workspace_connector_sync_log_id desc)
    where deleted_at is null;

create index workspace_connector_sync_log_created_at_idx
    on workspace_connector_sync_log (created_at desc, workspace_connector_sync_log_id desc)
    where deleted_at is null;

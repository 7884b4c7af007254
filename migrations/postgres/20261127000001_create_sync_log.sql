-- The lifecycle store: one row per connector sync run.
-- Status and trigger values are text with CHECK constraints rather than enum types so that
-- other writers (observer mode) can insert plain strings and new values need no type change.
create table workspace_connector_sync_log (
    id                              bigint generated always as identity primary key,
    workspace_connector_sync_log_id uuid not null default gen_random_uuid(),
    workspace_connector_id          uuid not null,
    connector_slug                  text not null,
    status                          text not null default 'scheduled',
    trigger_type                    text,
    cloud_task_id                   varchar(255),
    started_at                      timestamptz,
    completed_at                    timestamptz,
    duration_ms                     integer,
    error                           text,
    metadata                        jsonb,
    created_at                      timestamptz not null default now(),
    updated_at                      timestamptz not null default now(),
    deleted_at                      timestamptz,

    constraint workspace_connector_sync_log_public_id_key
        unique (workspace_connector_sync_log_id),
    constraint workspace_connector_sync_log_status_check
        check (status in ('scheduled', 'in_progress', 'success', 'error')),
    constraint workspace_connector_sync_log_trigger_type_check
        check (trigger_type in ('cloud_task', 'manual', 'oauth_callback')),
    constraint workspace_connector_sync_log_connector_slug_check
        check (connector_slug ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    constraint workspace_connector_sync_log_cloud_task_id_check
        check (cloud_task_id is null or trigger_type = 'cloud_task'),
    constraint workspace_connector_sync_log_metadata_check
        check (metadata is null or jsonb_typeof(metadata) = 'object'),
    constraint workspace_connector_sync_log_completed_at_check
        check ((status in ('success', 'error')) = (completed_at is not null)),
    constraint workspace_connector_sync_log_error_check
        check (error is null or status = 'error'),
    constraint workspace_connector_sync_log_duration_check
        check (duration_ms is null or (started_at is not null and completed_at is not null and duration_ms >= 0))
);

-- De-duplication of Cloud Tasks deliveries: one live row per task name.
create unique index workspace_connector_sync_log_cloud_task_id_live_key
    on workspace_connector_sync_log (cloud_task_id)
    where cloud_task_id is not null and deleted_at is null;

-- Scanner: the active runs (small, whatever the history).
create index workspace_connector_sync_log_active_idx
    on workspace_connector_sync_log (connector_slug, status, created_at)
    where status in ('scheduled', 'in_progress') and deleted_at is null;

-- Scanner: terminal runs by completion time. Soft-deleted rows are included on purpose:
-- a run that happened stays counted.
create index workspace_connector_sync_log_completed_at_idx
    on workspace_connector_sync_log (completed_at)
    where completed_at is not null;

-- Latest run per connection (connector status) and the API's newest-first listing.
create index workspace_connector_sync_log_connection_latest_idx
    on workspace_connector_sync_log (workspace_connector_id, created_at desc, workspace_connector_sync_log_id desc)
    where deleted_at is null;

create index workspace_connector_sync_log_created_at_idx
    on workspace_connector_sync_log (created_at desc, workspace_connector_sync_log_id desc)
    where deleted_at is null;

-- RFC 7396 JSON merge patch, the same semantics as SQLite's json_patch(): keys in the
-- patch replace keys in the target, nested objects merge, a null value removes the key.
create function syncwatch_merge_patch(target jsonb, patch jsonb) returns jsonb
language plpgsql immutable as $$
declare
    result jsonb;
    k text;
    v jsonb;
begin
    if patch is null then
        return target;
    end if;
    if jsonb_typeof(patch) <> 'object' then
        return patch;
    end if;
    if target is null or jsonb_typeof(target) <> 'object' then
        result := '{}'::jsonb;
    else
        result := target;
    end if;
    for k, v in select key, value from jsonb_each(patch) loop
        if jsonb_typeof(v) = 'null' then
            result := result - k;
        else
            result := jsonb_set(result, array[k], syncwatch_merge_patch(result -> k, v));
        end if;
    end loop;
    return result;
end
$$;

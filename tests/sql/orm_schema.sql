-- The orchestrator's tables as an ORM creates them (tests/suite/observe_orm.rs, the soak).
create type sync_status as enum ('scheduled', 'in_progress', 'success', 'error');
create table workspace_connector (
    id serial primary key,
    workspace_connector_id uuid not null unique default gen_random_uuid(),
    connector_slug text not null
);
create table workspace_connector_sync_log (
    id serial primary key,
    workspace_connector_sync_log_id uuid not null unique default gen_random_uuid(),
    workspace_connector_id integer not null references workspace_connector (id),
    status sync_status not null default 'scheduled',
    trigger_type text check (trigger_type in ('cloud_task', 'manual', 'oauth_callback')),
    cloud_task_id varchar(255),
    started_at timestamptz,
    completed_at timestamptz,
    duration_ms bigint,
    error text,
    metadata jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    deleted_at timestamptz
);
create index on workspace_connector_sync_log (workspace_connector_id);

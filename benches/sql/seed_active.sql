-- Seed workspace_connector_sync_log with active runs (scheduled / in_progress) for
-- benchmarks, to go with seed.sql.
--
-- One statement, three bigint bind parameters, with the same meaning as in seed.sql:
--   $1  number of active rows to insert
--   $2  number of connectors  (connector_slug 'connector-0001' .. )
--   $3  number of connections (connection c belongs to connector 1 + (c - 1) % $2, the
--       same md5-derived workspace_connector_id as seed.sql)
--
-- Deterministic like seed.sql (hashint8extended() of the series number, no random()); the
-- ages are relative to the second the statement runs.
--
-- The data (stuck thresholds are syncwatch's defaults: scheduled 15 min, in_progress idle
-- 30 min, in_progress running 6 h):
--   * 40 % scheduled: 85 % created 0-10 min ago (not stuck when seeded; they cross 15 min
--     5 min or more after seeding), 15 % created 16 min-3 h ago (stuck).
--   * 60 % in_progress, started 0.2-10 s after creation:
--       - 90 % created 1 min-2 h ago with a heartbeat (updated_at) in the last minute;
--       - 7 % idle: last heartbeat 31-91 min ago (stuck by the idle rule);
--       - 3 % running for more than 6 h (created 6 h 10 min-10 h 10 min ago) but still
--         heartbeating (stuck by the maximum run duration).
--   * trigger_type mixed as in seed.sql; cloud_task rows get a unique cloud_task_id
--     ('.../tasks/active-<n>', distinct from seed.sql's '.../tasks/run-<n>').
--   * 1 % soft-deleted (deleted_at = updated_at): not active for the metrics.
--
-- Public ids are md5('syncwatch-bench-active-run-<n>'), distinct from seed.sql's.
insert into workspace_connector_sync_log (
    workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status,
    trigger_type, cloud_task_id, started_at, completed_at, duration_ms, error, metadata,
    created_at, updated_at, deleted_at)
select
    md5('syncwatch-bench-active-run-' || g.n)::uuid,
    md5('syncwatch-bench-connection-' || c.connection)::uuid,
    'connector-' || lpad(c.connector::text, 4, '0'),
    s.status,
    t.trigger_type,
    case when t.trigger_type = 'cloud_task'
         then 'projects/bench/locations/us-central1/queues/connector-sync/tasks/active-' || g.n end,
    tm.started_at,
    null,
    null,
    null,
    case when s.status = 'in_progress' and r.h8 % 2 = 0
         then jsonb_build_object('records_synced', (r.h8 >> 8) % 100000) end,
    tm.created_at,
    tm.updated_at,
    case when (r.h8 >> 32) % 100 = 0 then tm.updated_at end
from (select date_trunc('second', now()) as anchor) a
cross join generate_series(1::bigint, $1::bigint) as g(n)
cross join lateral (
    select hashint8extended(g.n, 101) & 9223372036854775807 as h1,
           hashint8extended(g.n, 102) & 9223372036854775807 as h2,
           hashint8extended(g.n, 103) & 9223372036854775807 as h3,
           hashint8extended(g.n, 104) & 9223372036854775807 as h4,
           hashint8extended(g.n, 105) & 9223372036854775807 as h5,
           hashint8extended(g.n, 106) & 9223372036854775807 as h6,
           hashint8extended(g.n, 107) & 9223372036854775807 as h7,
           hashint8extended(g.n, 108) & 9223372036854775807 as h8
) r
cross join lateral (select 1 + r.h1 % $3::bigint as connection) c0
cross join lateral (
    select c0.connection, 1 + (c0.connection - 1) % $2::bigint as connector
) c
cross join lateral (
    select case when r.h2 % 100 < 70 then 'cloud_task'
                when r.h2 % 100 < 85 then 'manual'
                when r.h2 % 100 < 90 then 'oauth_callback'
           end as trigger_type
) t
cross join lateral (
    select case when r.h3 % 100 < 40 then 'scheduled' else 'in_progress' end as status,
           r.h4 % 100 as kind
) s
cross join lateral (
    -- Ages in milliseconds before the anchor: of creation, and of the last update.
    select case
               when s.status = 'scheduled' and s.kind < 15
                   then 960000 + r.h5 % 9840000                      -- 16 min .. 3 h
               when s.status = 'scheduled'
                   then r.h5 % 600000                                -- 0 .. 10 min
               when s.kind < 7
                   then 1860000 + r.h5 % 3600000                     -- idle: 31 .. 91 min
                        + 60000 + r.h6 % 3600000                     --   + 1 .. 61 min
               when s.kind < 10
                   then 22200000 + r.h5 % 14400000                   -- 6 h 10 min .. 10 h 10 min
               else 60000 + r.h5 % 7140000                           -- 1 min .. 2 h
           end as created_age_ms,
           case
               when s.status = 'scheduled' then null
               when s.kind < 7 then 1860000 + r.h5 % 3600000          -- 31 .. 91 min
               else r.h6 % 60000                                     -- last minute
           end as updated_age_ms,
           200 + r.h7 % 9800 as delay_ms
) age
cross join lateral (
    select a.anchor - age.created_age_ms * interval '1 millisecond' as created_at,
           case when s.status = 'in_progress'
                then a.anchor - age.created_age_ms * interval '1 millisecond'
                     + age.delay_ms * interval '1 millisecond' end as started_at
) st
cross join lateral (
    select st.created_at,
           st.started_at,
           case when s.status = 'scheduled' then st.created_at
                else greatest(st.started_at,
                              a.anchor - age.updated_age_ms * interval '1 millisecond') end
           as updated_at
) tm;

-- Seed workspace_connector_sync_log with terminal runs (success / error) for benchmarks.
--
-- One statement, three bigint bind parameters:
--   $1  number of terminal rows to insert
--   $2  number of connectors  (connector_slug 'connector-0001' .. )
--   $3  number of connections (workspace_connector_id = md5-derived uuid of the connection
--       number; connection c belongs to connector 1 + (c - 1) % $2)
--
-- Deterministic: every value derives from the series number through hashint8extended()
-- (the stable hash Postgres uses for hash partitioning) and md5(), never random(). Two runs
-- with the same parameters insert the same rows; only the absolute timestamps move, since
-- they are laid out backwards from the second the statement runs (now() truncated to the
-- second, millisecond offsets, so every timestamp has millisecond precision).
--
-- The data:
--   * created_at spread evenly over the last 90 days in series order (so `id` follows
--     time), plus up to 1 s of jitter; every run completes at least 39 min before now().
--   * ~9 % error: one connection in 50 (picked by hash, so spread over the connectors) is
--     broken and 60 % of its runs fail, the others fail 8 % of the time; 10 % of the
--     errors never started (scheduled -> error: no started_at, no duration_ms, no
--     metadata).
--   * dispatch delay (started_at - created_at) 0.2-10 s, 1 % of runs 10 s-20 min.
--   * duration_ms log-uniform between 1 s and 2 h; completed_at = started_at + duration_ms.
--   * trigger_type 70 % cloud_task (each with a unique cloud_task_id), 15 % manual,
--     5 % oauth_callback, 10 % null.
--   * metadata: successes {"records_synced": 0..999999 (log-distributed), "pages": n};
--     1 in 1000 successes carries records_synced as a string (must not be counted);
--     half of the started errors carry a partial records_synced and an error_code.
--   * 0.5 % soft-deleted (deleted_at one day after completion, capped at now()).
--
-- Public ids are md5('syncwatch-bench-run-<n>'): seeding twice into the same table fails
-- on the unique key instead of duplicating data.
insert into workspace_connector_sync_log (
    workspace_connector_sync_log_id, workspace_connector_id, connector_slug, status,
    trigger_type, cloud_task_id, started_at, completed_at, duration_ms, error, metadata,
    created_at, updated_at, deleted_at)
select
    md5('syncwatch-bench-run-' || g.n)::uuid,
    md5('syncwatch-bench-connection-' || c.connection)::uuid,
    'connector-' || lpad(c.connector::text, 4, '0'),
    s.status,
    t.trigger_type,
    case when t.trigger_type = 'cloud_task'
         then 'projects/bench/locations/us-central1/queues/connector-sync/tasks/run-' || g.n end,
    tm.started_at,
    tm.completed_at,
    tm.duration_ms,
    case when s.status = 'error'
         then (array['upstream returned HTTP 500', 'rate limited by upstream (HTTP 429)',
                     'oauth token expired', 'worker lost: no heartbeat',
                     'schema mismatch on destination'])[1 + r.h9 % 5] end,
    case
        when s.status = 'success' and r.h8 % 1000 = 0
            then jsonb_build_object('records_synced', rec.n::text)
        when s.status = 'success'
            then jsonb_build_object('records_synced', rec.n, 'pages', 1 + rec.n / 500)
        when s.never_started then null
        when r.h8 % 2 = 0
            then jsonb_build_object('records_synced', rec.n / 10, 'error_code', 'upstream_error')
        else jsonb_build_object('error_code', 'upstream_error')
    end,
    tm.created_at,
    coalesce(del.deleted_at, tm.completed_at),
    del.deleted_at
from (select date_trunc('second', now()) as anchor) a
cross join generate_series(1::bigint, $1::bigint) as g(n)
cross join lateral (
    select hashint8extended(g.n, 1) & 9223372036854775807 as h1,
           hashint8extended(g.n, 2) & 9223372036854775807 as h2,
           hashint8extended(g.n, 3) & 9223372036854775807 as h3,
           hashint8extended(g.n, 4) & 9223372036854775807 as h4,
           hashint8extended(g.n, 5) & 9223372036854775807 as h5,
           hashint8extended(g.n, 6) & 9223372036854775807 as h6,
           hashint8extended(g.n, 7) & 9223372036854775807 as h7,
           hashint8extended(g.n, 8) & 9223372036854775807 as h8,
           hashint8extended(g.n, 9) & 9223372036854775807 as h9
) r
cross join lateral (select 1 + r.h1 % $3::bigint as connection) c0
cross join lateral (
    select c0.connection, 1 + (c0.connection - 1) % $2::bigint as connector,
           (hashint8extended(c0.connection, 10) & 9223372036854775807) % 50 = 0 as broken
) c
cross join lateral (
    select case when r.h2 % 100 < 70 then 'cloud_task'
                when r.h2 % 100 < 85 then 'manual'
                when r.h2 % 100 < 90 then 'oauth_callback'
           end as trigger_type
) t
cross join lateral (
    select x.status, x.status = 'error' and r.h4 % 10 = 0 as never_started
    from (select case
                     when c.broken and r.h3 % 100 < 60 then 'error'
                     when not c.broken and r.h3 % 1000 < 80 then 'error'
                     else 'success'
                 end as status) x
) s
cross join lateral (
    select a.anchor - interval '90 days'
           + ((g.n - 1) * 7765200000 / $1::bigint + r.h5 % 1000) * interval '1 millisecond'
           as created_at,
           case when r.h6 % 100 = 0 then 10000 + (r.h6 >> 16) % 1190000
                else 200 + (r.h6 >> 16) % 9800 end as delay_ms,
           floor(1000 * power(7200.0::float8, (r.h7 % 1000000) / 1000000.0::float8))::integer
           as run_ms
) base
cross join lateral (
    select base.created_at,
           case when s.never_started then null
                else base.created_at + base.delay_ms * interval '1 millisecond' end
           as started_at,
           case when s.never_started
                then base.created_at + (1000 + (r.h7 >> 20) % 59000) * interval '1 millisecond'
                else base.created_at
                     + (base.delay_ms + base.run_ms) * interval '1 millisecond' end
           as completed_at,
           case when s.never_started then null else base.run_ms end as duration_ms
) tm
cross join lateral (
    select floor(power(10.0::float8, ((r.h8 >> 16) % 1000000) / 1000000.0::float8 * 6))::bigint - 1
           as n
) rec
cross join lateral (
    select case when (r.h9 >> 16) % 200 = 0
                then least(tm.completed_at + interval '1 day', a.anchor) end as deleted_at
) del;

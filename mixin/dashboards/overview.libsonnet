local lib = import 'lib.libsonnet';

function(config)
  local variables = lib.variables(config);
  local exemplar = lib.exemplar(config);
  lib.frame {
    uid: 'syncwatch-overview',
    title: 'Connector syncs / Overview',
    description: "Sync runs of every connector, from syncwatch's metrics: throughput, errors, durations, active and stuck runs, freshness and failing connections.",
    templating: { list: [variables.datasource, variables.job, variables.instance, variables.ui_url] },
    panels: [
      lib.panel.row { id: 1, title: 'Summary', gridPos: { h: 1, w: 24, x: 0, y: 0 } },
      lib.panel.stat {
        title: 'Runs in range',
        description: "Terminal runs (success and error) completed during the selected time range, all connectors. Counted when the scanner first sees a run's completion, so counts lag a completion by up to one scan interval plus the scrape interval.",
        fieldConfig+: {
          defaults+: { thresholds+: { steps: [{ color: 'green', value: null }] }, decimals: 0 },
        },
        id: 2,
        gridPos: { h: 4, w: 4, x: 0, y: 1 },
        targets: [
          lib.instantTarget('sum(increase(connector_sync_runs_total{job=~"$job", instance=~"$instance"}[$__range]))', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Error ratio in range',
        description: 'Share of the terminal runs completed during the selected time range that ended in error, all connectors (connector_sync_runs_total{status="error"} over all statuses).',
        fieldConfig+: {
          defaults+: {
            unit: 'percentunit',
            thresholds+: {
              steps: [
                { color: 'green', value: null },
                { color: 'orange', value: 0.05 },
                { color: 'red', value: 0.2 },
              ],
            },
          },
        },
        id: 3,
        gridPos: { h: 4, w: 4, x: 4, y: 1 },
        targets: [
          lib.instantTarget('sum (increase(connector_sync_runs_total{job=~"$job", instance=~"$instance", status="error"}[$__range]))\n/\nsum (increase(connector_sync_runs_total{job=~"$job", instance=~"$instance"}[$__range]))', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Active runs',
        description: 'Live runs now scheduled or in progress, all connectors (connector_sync_runs_active). Soft-deleted runs are excluded.',
        fieldConfig+: { defaults+: { thresholds+: { steps: [{ color: 'green', value: null }] } } },
        id: 4,
        gridPos: { h: 4, w: 4, x: 8, y: 1 },
        targets: [
          lib.instantTarget('sum(connector_sync_runs_active{job=~"$job", instance=~"$instance"}) or vector(0)', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Stuck runs',
        description: 'Live runs stuck now: scheduled for longer than --stuck-scheduled-after, or in progress without an update for --stuck-in-progress-after or running longer than --max-run-duration (connector_sync_runs_stuck).',
        id: 5,
        gridPos: { h: 4, w: 4, x: 12, y: 1 },
        targets: [
          lib.instantTarget('sum(connector_sync_runs_stuck{job=~"$job", instance=~"$instance"}) or vector(0)', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Failing connections',
        description: 'Connections whose latest terminal run failed, all connectors (connector_sync_failing_connections).',
        id: 6,
        gridPos: { h: 4, w: 4, x: 16, y: 1 },
        targets: [
          lib.instantTarget('sum(connector_sync_failing_connections{job=~"$job", instance=~"$instance"}) or vector(0)', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Oldest active run',
        description: 'Age of the oldest live run: for scheduled runs since creation, for in-progress runs since start (time() - connector_sync_oldest_active_run_timestamp_seconds). Empty when no run is active.',
        fieldConfig+: {
          defaults+: {
            unit: 's',
            thresholds+: { steps: [{ color: 'green', value: null }] },
            noValue: 'none active',
          },
        },
        id: 7,
        gridPos: { h: 4, w: 4, x: 20, y: 1 },
        targets: [
          lib.instantTarget('max(time() - connector_sync_oldest_active_run_timestamp_seconds{job=~"$job", instance=~"$instance"})', 'A'),
        ],
      },
      lib.panel.row { id: 8, title: 'Runs', gridPos: { h: 1, w: 24, x: 0, y: 5 } },
      lib.panel.timeseries {
        title: 'Runs per second by status',
        description: "Terminal runs per second, by final status (success or error), all connectors. Counted when the scanner first sees a run's completion, so counts lag a completion by up to one scan interval plus the scrape interval.",
        fieldConfig+: {
          defaults+: { unit: 'ops' },
          overrides: [
            {
              matcher: { id: 'byName', options: 'success' },
              properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: 'green' } }],
            },
            {
              matcher: { id: 'byName', options: 'error' },
              properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }],
            },
          ],
        },
        id: 9,
        gridPos: { h: 8, w: 12, x: 0, y: 6 },
        targets: [
          lib.target('sum by (status) (rate(connector_sync_runs_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'A') + { legendFormat: '{{status}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Error ratio by connector',
        description: "Share of each connector's terminal runs that ended in error over the rate window. Gaps mean the connector completed no run in the window.",
        fieldConfig+: { defaults+: { unit: 'percentunit', max: 1 } },
        id: 10,
        gridPos: { h: 8, w: 12, x: 12, y: 6 },
        targets: [
          lib.target('sum by (connector) (rate(connector_sync_runs_total{job=~"$job", instance=~"$instance", status="error"}[$__rate_interval]))\n/\nsum by (connector) (rate(connector_sync_runs_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'A') + { legendFormat: '{{connector}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Runs per second by connector',
        description: "Terminal runs per second, by connector, both statuses. Counted when the scanner first sees a run's completion, so counts lag a completion by up to one scan interval plus the scrape interval.",
        fieldConfig+: { defaults+: { unit: 'ops' } },
        id: 11,
        gridPos: { h: 8, w: 12, x: 0, y: 14 },
        targets: [
          lib.target('sum by (connector) (rate(connector_sync_runs_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'A') + { legendFormat: '{{connector}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Records synced per second',
        description: "Records synced per second, by connector: the rate of connector_sync_records_synced_total, the sum of metadata.records_synced over terminal runs. A run's records are added when it completes, so long runs show as spikes.",
        fieldConfig+: { defaults+: { unit: 'cps' } },
        id: 12,
        gridPos: { h: 8, w: 12, x: 12, y: 14 },
        targets: [
          lib.target('sum by (connector) (rate(connector_sync_records_synced_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'A') + { legendFormat: '{{connector}}' },
        ],
      },
      lib.panel.row { id: 13, title: 'Durations', gridPos: { h: 1, w: 24, x: 0, y: 22 } },
      lib.panel.timeseries {
        title: 'Run duration p50 / p95 / p99',
        description: 'Quantiles of the duration (completed_at - started_at) of terminal runs that started, both statuses, all connectors, estimated from the histogram buckets (1 s to 6 h by default; the +Inf bucket caps estimates at the largest bound).',
        id: 14,
        gridPos: { h: 8, w: 12, x: 0, y: 23 },
        targets: [
          lib.target('histogram_quantile(0.5, sum by (le) (rate(connector_sync_duration_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))', 'A') + { legendFormat: 'p50' } + exemplar,
          lib.target('histogram_quantile(0.95, sum by (le) (rate(connector_sync_duration_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))', 'B') + { legendFormat: 'p95' } + exemplar,
          lib.target('histogram_quantile(0.99, sum by (le) (rate(connector_sync_duration_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))', 'C') + { legendFormat: 'p99' } + exemplar,
        ],
      },
      lib.panel.heatmap {
        title: 'Run duration distribution',
        description: 'Terminal runs per second in each duration bucket (connector_sync_duration_seconds), all connectors and statuses. Darker cells hold more runs.',
        id: 15,
        gridPos: { h: 8, w: 12, x: 12, y: 23 },
        targets: [
          lib.target('sum by (le) (rate(connector_sync_duration_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'A') + { legendFormat: '{{le}}', format: 'heatmap' } + exemplar,
        ],
      },
      lib.panel.timeseries {
        title: 'Run duration p95 by connector',
        description: '95th percentile of the duration of terminal runs that started, by connector, both statuses.',
        id: 16,
        gridPos: { h: 8, w: 12, x: 0, y: 31 },
        targets: [
          lib.target('histogram_quantile(0.95, sum by (connector, le) (rate(connector_sync_duration_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))', 'A') + { legendFormat: '{{connector}}' } + exemplar,
        ],
      },
      lib.panel.timeseries {
        title: 'Dispatch delay p95',
        description: "95th percentile of the delay from a run's creation to its start (started_at - created_at), overall and by trigger. A run enters this histogram when it completes, not when it starts.",
        id: 17,
        gridPos: { h: 8, w: 12, x: 12, y: 31 },
        targets: [
          lib.target('histogram_quantile(0.95, sum by (le) (rate(connector_sync_dispatch_delay_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))', 'A') + { legendFormat: 'p95 all triggers' },
          lib.target('histogram_quantile(0.95, sum by (trigger, le) (rate(connector_sync_dispatch_delay_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))', 'B') + { legendFormat: 'p95 {{trigger}}' },
        ],
      },
      lib.panel.row { id: 18, title: 'Active and stuck runs', gridPos: { h: 1, w: 24, x: 0, y: 39 } },
      lib.panel.timeseries {
        title: 'Active runs',
        description: "Live runs now scheduled or in progress, by connector and status (connector_sync_runs_active). A connector's series disappear when it has no live run.",
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 19,
        gridPos: { h: 8, w: 8, x: 0, y: 40 },
        targets: [
          lib.target('sum by (connector, status) (connector_sync_runs_active{job=~"$job", instance=~"$instance"})', 'A') + { legendFormat: '{{connector}} {{status}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Stuck runs',
        description: 'Live runs stuck now, by connector and status (connector_sync_runs_stuck, a subset of the active runs): scheduled too long, in progress without an update, or running too long.',
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 20,
        gridPos: { h: 8, w: 8, x: 8, y: 40 },
        targets: [
          lib.target('sum by (connector, status) (connector_sync_runs_stuck{job=~"$job", instance=~"$instance"})', 'A') + { legendFormat: '{{connector}} {{status}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Oldest active run age',
        description: 'Age of the oldest live run, by connector and status: since creation for scheduled runs, since start for in-progress runs (time() - connector_sync_oldest_active_run_timestamp_seconds).',
        id: 21,
        gridPos: { h: 8, w: 8, x: 16, y: 40 },
        targets: [
          lib.target('time() - min by (connector, status) (connector_sync_oldest_active_run_timestamp_seconds{job=~"$job", instance=~"$instance"})', 'A') + { legendFormat: '{{connector}} {{status}}' },
        ],
      },
      lib.panel.row { id: 22, title: 'Freshness and failures', gridPos: { h: 1, w: 24, x: 0, y: 48 } },
      lib.panel.table {
        title: 'Time since last success',
        description: "Per connector, the time since its most recent successful run completed (time() - connector_sync_last_success_timestamp_seconds), the stalest first. A connector that never succeeded is not listed. Click a connector to open its dashboard, or its failing connections on syncwatch's status page.",
        fieldConfig: {
          defaults: {
            unit: 's',
            color: { mode: 'thresholds' },
            thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] },
            custom: { align: 'auto', cellOptions: { type: 'auto' } },
          },
          overrides: [
            {
              matcher: { id: 'byName', options: 'connector' },
              properties: [
                {
                  id: 'links',
                  value: [
                    {
                      title: 'Open the connector dashboard',
                      url: '/d/syncwatch-connector?${datasource:queryparam}&${job:queryparam}&${instance:queryparam}&var-connector=${__value.raw}&${__url_time_range}',
                    },
                    {
                      title: 'Open its failing connections on the status page',
                      url: '${ui_url}/ui/failing?connector=${__value.raw}',
                    },
                  ],
                },
              ],
            },
          ],
        },
        options+: { sortBy: [{ displayName: 'Since last success', desc: true }] },
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true },
              indexByName: {},
              renameByName: { Value: 'Since last success' },
            },
          },
        ],
        id: 23,
        gridPos: { h: 9, w: 12, x: 0, y: 49 },
        targets: [
          lib.instantTarget('sort_desc(time() - max by (connector) (connector_sync_last_success_timestamp_seconds{job=~"$job", instance=~"$instance"}))', 'A'),
        ],
      },
      lib.panel.table {
        title: 'Last success and last failure',
        description: "Per connector, when its most recent successful and failed runs completed (connector_sync_last_success_timestamp_seconds, connector_sync_last_failure_timestamp_seconds), the most recent failure first. Soft-deleted runs count. Click a connector to open its dashboard, or its failing connections on syncwatch's status page.",
        fieldConfig: {
          defaults: {
            unit: 'dateTimeAsIso',
            color: { mode: 'thresholds' },
            thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] },
            custom: { align: 'auto', cellOptions: { type: 'auto' } },
          },
          overrides: [
            {
              matcher: { id: 'byName', options: 'connector' },
              properties: [
                {
                  id: 'links',
                  value: [
                    {
                      title: 'Open the connector dashboard',
                      url: '/d/syncwatch-connector?${datasource:queryparam}&${job:queryparam}&${instance:queryparam}&var-connector=${__value.raw}&${__url_time_range}',
                    },
                    {
                      title: 'Open its failing connections on the status page',
                      url: '${ui_url}/ui/failing?connector=${__value.raw}',
                    },
                  ],
                },
              ],
            },
          ],
        },
        options+: { sortBy: [{ displayName: 'Last failure', desc: true }] },
        transformations: [
          { id: 'merge', options: {} },
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true },
              indexByName: {},
              renameByName: { 'Value #A': 'Last success', 'Value #B': 'Last failure' },
            },
          },
        ],
        id: 24,
        gridPos: { h: 9, w: 12, x: 12, y: 49 },
        targets: [
          lib.instantTarget('max by (connector) (connector_sync_last_success_timestamp_seconds{job=~"$job", instance=~"$instance"}) * 1000', 'A'),
          lib.instantTarget('max by (connector) (connector_sync_last_failure_timestamp_seconds{job=~"$job", instance=~"$instance"}) * 1000', 'B'),
        ],
      },
      lib.panel.table {
        title: 'Failing connections by connector',
        description: "Per connector, the connections whose latest terminal run failed (connector_sync_failing_connections), most first. Connectors with none are hidden. Click a connector to open its dashboard, or its failing connections on syncwatch's status page.",
        fieldConfig: {
          defaults: {
            unit: 'short',
            color: { mode: 'thresholds' },
            thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] },
            custom: { align: 'auto', cellOptions: { type: 'auto' } },
          },
          overrides: [
            {
              matcher: { id: 'byName', options: 'connector' },
              properties: [
                {
                  id: 'links',
                  value: [
                    {
                      title: 'Open the connector dashboard',
                      url: '/d/syncwatch-connector?${datasource:queryparam}&${job:queryparam}&${instance:queryparam}&var-connector=${__value.raw}&${__url_time_range}',
                    },
                    {
                      title: 'Open its failing connections on the status page',
                      url: '${ui_url}/ui/failing?connector=${__value.raw}',
                    },
                  ],
                },
              ],
            },
          ],
        },
        options+: { sortBy: [{ displayName: 'Failing connections', desc: true }] },
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true },
              indexByName: {},
              renameByName: { Value: 'Failing connections' },
            },
          },
        ],
        id: 25,
        gridPos: { h: 9, w: 8, x: 0, y: 58 },
        targets: [
          lib.instantTarget('sort_desc(sum by (connector) (connector_sync_failing_connections{job=~"$job", instance=~"$instance"}) > 0)', 'A'),
        ],
      },
      lib.panel.table {
        title: 'Consecutive failures by connection',
        description: "Failed runs since the last success, per connection (workspace_connector_id), most first (connector_sync_connection_consecutive_failures). Only the K worst connections are exported (--top-failing-connections, default 50), and a connection leaves the list when it succeeds again. Click a connector to open its dashboard, or its failing connections on syncwatch's status page; click a connection to open its runs there.",
        fieldConfig: {
          defaults: {
            unit: 'short',
            color: { mode: 'thresholds' },
            thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] },
            custom: { align: 'auto', cellOptions: { type: 'auto' } },
          },
          overrides: [
            {
              matcher: { id: 'byName', options: 'connector' },
              properties: [
                {
                  id: 'links',
                  value: [
                    {
                      title: 'Open the connector dashboard',
                      url: '/d/syncwatch-connector?${datasource:queryparam}&${job:queryparam}&${instance:queryparam}&var-connector=${__value.raw}&${__url_time_range}',
                    },
                    {
                      title: 'Open its failing connections on the status page',
                      url: '${ui_url}/ui/failing?connector=${__value.raw}',
                    },
                  ],
                },
              ],
            },
            {
              matcher: { id: 'byName', options: 'Connection (workspace_connector_id)' },
              properties: [
                {
                  id: 'links',
                  value: [
                    {
                      title: 'Open the connection on the status page',
                      url: '${ui_url}/ui/connections/${__value.raw}',
                    },
                  ],
                },
              ],
            },
          ],
        },
        id: 26,
        gridPos: { h: 9, w: 16, x: 8, y: 58 },
        targets: [
          lib.instantTarget('sort_desc(max by (connector, workspace_connector_id) (connector_sync_connection_consecutive_failures{job=~"$job", instance=~"$instance"}))', 'A'),
        ],
      },
      lib.panel.timeseries {
        title: 'Failing connections over time',
        description: 'Connections whose latest terminal run failed, by connector (connector_sync_failing_connections).',
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 27,
        gridPos: { h: 8, w: 24, x: 0, y: 67 },
        targets: [
          lib.target('sum by (connector) (connector_sync_failing_connections{job=~"$job", instance=~"$instance"})', 'A') + { legendFormat: '{{connector}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Failures per second by reason',
        description: 'Failed runs of every connector per second by reason (the first failure rule matching the error text) and owner: customer failures do not burn the error budget, provider and platform ones do (connector_sync_failures_total).',
        fieldConfig+: {
          defaults+: { unit: 'reqps', custom+: { fillOpacity: 30, stacking+: { mode: 'normal' } } },
        },
        id: 28,
        gridPos: { h: 8, w: 24, x: 0, y: 75 },
        targets: [
          lib.target('sum by (reason, owner) (rate(connector_sync_failures_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'A') + { legendFormat: '{{reason}} ({{owner}})' } + exemplar,
        ],
      },
      lib.panel.timeseries {
        title: 'Overdue connections by connector',
        description: 'Connections whose latest scheduled run was created longer ago than --overdue-factor times their learned interval, by connector (connector_sync_connections_overdue); connectors with none are hidden.',
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 29,
        gridPos: { h: 8, w: 12, x: 0, y: 83 },
        targets: [
          lib.target('sum by (connector) (connector_sync_connections_overdue{job=~"$job", instance=~"$instance"}) > 0', 'A') + { legendFormat: '{{connector}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Overrunning runs by connector',
        description: "Runs in progress for longer than --overrun-factor times their connection's p95 successful duration, by connector (connector_sync_runs_overrunning); connectors with none are hidden.",
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 30,
        gridPos: { h: 8, w: 12, x: 12, y: 83 },
        targets: [
          lib.target('sum by (connector) (connector_sync_runs_overrunning{job=~"$job", instance=~"$instance"}) > 0', 'A') + { legendFormat: '{{connector}}' },
        ],
      },
    ],
  }

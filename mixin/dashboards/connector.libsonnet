local lib = import 'lib.libsonnet';

function(config)
  local variables = lib.variables(config);
  local exemplar = lib.exemplar(config);
  lib.frame {
    uid: 'syncwatch-connector',
    title: 'Connector syncs / Connector',
    description: 'Sync runs of one connector (the connector variable): throughput, errors, durations, active and stuck runs, freshness and its failing connections.',
    templating: {
      list: [
        variables.datasource,
        variables.job,
        variables.instance,
        variables.connector,
        variables.ui_url,
      ],
    },
    panels: [
      lib.panel.row { id: 1, title: 'Summary: $connector', gridPos: { h: 1, w: 24, x: 0, y: 0 } },
      lib.panel.stat {
        title: 'Runs in range',
        description: "Terminal runs of this connector completed during the selected time range. Counted when the scanner first sees a run's completion, so counts lag a completion by up to one scan interval plus the scrape interval.",
        fieldConfig+: {
          defaults+: { thresholds+: { steps: [{ color: 'green', value: null }] }, decimals: 0 },
        },
        id: 2,
        gridPos: { h: 4, w: 3, x: 0, y: 1 },
        targets: [
          lib.instantTarget('sum(increase(connector_sync_runs_total{job=~"$job", instance=~"$instance", connector="$connector"}[$__range]))', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Error ratio in range',
        description: "Share of this connector's terminal runs completed during the selected time range that ended in error.",
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
        gridPos: { h: 4, w: 3, x: 3, y: 1 },
        targets: [
          lib.instantTarget('sum (increase(connector_sync_runs_total{job=~"$job", instance=~"$instance", connector="$connector", status="error"}[$__range]))\n/\nsum (increase(connector_sync_runs_total{job=~"$job", instance=~"$instance", connector="$connector"}[$__range]))', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Active runs',
        description: 'Live runs of this connector now scheduled or in progress (connector_sync_runs_active).',
        fieldConfig+: { defaults+: { thresholds+: { steps: [{ color: 'green', value: null }] } } },
        id: 4,
        gridPos: { h: 4, w: 3, x: 6, y: 1 },
        targets: [
          lib.instantTarget('sum(connector_sync_runs_active{job=~"$job", instance=~"$instance", connector="$connector"}) or vector(0)', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Stuck runs',
        description: 'Live runs of this connector stuck now (connector_sync_runs_stuck): scheduled too long, in progress without an update, or running too long.',
        id: 5,
        gridPos: { h: 4, w: 3, x: 9, y: 1 },
        targets: [
          lib.instantTarget('sum(connector_sync_runs_stuck{job=~"$job", instance=~"$instance", connector="$connector"}) or vector(0)', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Failing connections',
        description: 'Connections of this connector whose latest terminal run failed (connector_sync_failing_connections).',
        id: 6,
        gridPos: { h: 4, w: 3, x: 12, y: 1 },
        targets: [
          lib.instantTarget('sum(connector_sync_failing_connections{job=~"$job", instance=~"$instance", connector="$connector"}) or vector(0)', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Oldest active run',
        description: "Age of this connector's oldest live run: since creation if scheduled, since start if in progress (time() - connector_sync_oldest_active_run_timestamp_seconds).",
        fieldConfig+: {
          defaults+: {
            unit: 's',
            thresholds+: { steps: [{ color: 'green', value: null }] },
            noValue: 'none active',
          },
        },
        id: 7,
        gridPos: { h: 4, w: 3, x: 15, y: 1 },
        targets: [
          lib.instantTarget('max(time() - connector_sync_oldest_active_run_timestamp_seconds{job=~"$job", instance=~"$instance", connector="$connector"})', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Since last success',
        description: "Time since this connector's most recent successful run completed (time() - connector_sync_last_success_timestamp_seconds). Empty if it never succeeded.",
        fieldConfig+: {
          defaults+: {
            unit: 's',
            thresholds+: { steps: [{ color: 'green', value: null }] },
            noValue: 'never',
          },
        },
        id: 8,
        gridPos: { h: 4, w: 3, x: 18, y: 1 },
        targets: [
          lib.instantTarget('time() - max(connector_sync_last_success_timestamp_seconds{job=~"$job", instance=~"$instance", connector="$connector"})', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Since last failure',
        description: "Time since this connector's most recent failed run completed (time() - connector_sync_last_failure_timestamp_seconds). Empty if it never failed.",
        fieldConfig+: {
          defaults+: {
            unit: 's',
            thresholds+: { steps: [{ color: 'green', value: null }] },
            noValue: 'never',
          },
        },
        id: 9,
        gridPos: { h: 4, w: 3, x: 21, y: 1 },
        targets: [
          lib.instantTarget('time() - max(connector_sync_last_failure_timestamp_seconds{job=~"$job", instance=~"$instance", connector="$connector"})', 'A'),
        ],
      },
      lib.panel.row { id: 10, title: 'Runs', gridPos: { h: 1, w: 24, x: 0, y: 5 } },
      lib.panel.timeseries {
        title: 'Runs per second by status',
        description: "This connector's terminal runs per second, by final status. Counted when the scanner first sees a run's completion, so counts lag a completion by up to one scan interval plus the scrape interval.",
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
        id: 11,
        gridPos: { h: 8, w: 12, x: 0, y: 6 },
        targets: [
          lib.target('sum by (status) (rate(connector_sync_runs_total{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval]))', 'A') + { legendFormat: '{{status}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Error ratio',
        description: "Share of this connector's terminal runs that ended in error over the rate window, overall and by trigger (cloud_task, manual, oauth_callback, or none). Gaps mean no run completed in the window.",
        fieldConfig+: { defaults+: { unit: 'percentunit', max: 1 } },
        id: 12,
        gridPos: { h: 8, w: 12, x: 12, y: 6 },
        targets: [
          lib.target('sum (rate(connector_sync_runs_total{job=~"$job", instance=~"$instance", connector="$connector", status="error"}[$__rate_interval]))\n/\nsum (rate(connector_sync_runs_total{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval]))', 'A') + { legendFormat: 'all triggers' },
          lib.target('sum by (trigger) (rate(connector_sync_runs_total{job=~"$job", instance=~"$instance", connector="$connector", status="error"}[$__rate_interval]))\n/\nsum by (trigger) (rate(connector_sync_runs_total{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval]))', 'B') + { legendFormat: '{{trigger}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Runs per second by trigger',
        description: "This connector's terminal runs per second, by trigger, both statuses.",
        fieldConfig+: { defaults+: { unit: 'ops' } },
        id: 13,
        gridPos: { h: 8, w: 12, x: 0, y: 14 },
        targets: [
          lib.target('sum by (trigger) (rate(connector_sync_runs_total{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval]))', 'A') + { legendFormat: '{{trigger}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Records synced per second',
        description: "Records synced per second by this connector (rate of connector_sync_records_synced_total). A run's records are added when it completes.",
        fieldConfig+: { defaults+: { unit: 'cps' } },
        id: 14,
        gridPos: { h: 8, w: 12, x: 12, y: 14 },
        targets: [
          lib.target('sum(rate(connector_sync_records_synced_total{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval]))', 'A') + { legendFormat: 'records' },
        ],
      },
      lib.panel.row { id: 15, title: 'Durations', gridPos: { h: 1, w: 24, x: 0, y: 22 } },
      lib.panel.timeseries {
        title: 'Run duration p50 / p95 / p99',
        description: "Quantiles of the duration of this connector's terminal runs that started, both statuses, estimated from the histogram buckets.",
        id: 16,
        gridPos: { h: 8, w: 12, x: 0, y: 23 },
        targets: [
          lib.target('histogram_quantile(0.5, sum by (le) (rate(connector_sync_duration_seconds_bucket{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval])))', 'A') + { legendFormat: 'p50' } + exemplar,
          lib.target('histogram_quantile(0.95, sum by (le) (rate(connector_sync_duration_seconds_bucket{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval])))', 'B') + { legendFormat: 'p95' } + exemplar,
          lib.target('histogram_quantile(0.99, sum by (le) (rate(connector_sync_duration_seconds_bucket{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval])))', 'C') + { legendFormat: 'p99' } + exemplar,
        ],
      },
      lib.panel.heatmap {
        title: 'Run duration distribution',
        description: "This connector's terminal runs per second in each duration bucket (connector_sync_duration_seconds), both statuses.",
        id: 17,
        gridPos: { h: 8, w: 12, x: 12, y: 23 },
        targets: [
          lib.target('sum by (le) (rate(connector_sync_duration_seconds_bucket{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval]))', 'A') + { legendFormat: '{{le}}', format: 'heatmap' } + exemplar,
        ],
      },
      lib.panel.timeseries {
        title: 'Run duration p95 by status',
        description: "95th percentile of the duration of this connector's terminal runs, successful and failed runs apart. Runs that failed before starting have no duration and are not included.",
        fieldConfig+: {
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
        id: 18,
        gridPos: { h: 8, w: 12, x: 0, y: 31 },
        targets: [
          lib.target('histogram_quantile(0.95, sum by (status, le) (rate(connector_sync_duration_seconds_bucket{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval])))', 'A') + { legendFormat: '{{status}}' } + exemplar,
        ],
      },
      lib.panel.timeseries {
        title: 'Dispatch delay p95',
        description: "95th percentile of the delay from creation to start of this connector's runs, overall and by trigger. A run enters this histogram when it completes.",
        id: 19,
        gridPos: { h: 8, w: 12, x: 12, y: 31 },
        targets: [
          lib.target('histogram_quantile(0.95, sum by (le) (rate(connector_sync_dispatch_delay_seconds_bucket{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval])))', 'A') + { legendFormat: 'p95 all triggers' },
          lib.target('histogram_quantile(0.95, sum by (trigger, le) (rate(connector_sync_dispatch_delay_seconds_bucket{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval])))', 'B') + { legendFormat: 'p95 {{trigger}}' },
        ],
      },
      lib.panel.row { id: 20, title: 'Active and stuck runs', gridPos: { h: 1, w: 24, x: 0, y: 39 } },
      lib.panel.timeseries {
        title: 'Active runs',
        description: "This connector's live runs now scheduled or in progress, by status (connector_sync_runs_active).",
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 21,
        gridPos: { h: 8, w: 8, x: 0, y: 40 },
        targets: [
          lib.target('sum by (status) (connector_sync_runs_active{job=~"$job", instance=~"$instance", connector="$connector"})', 'A') + { legendFormat: '{{status}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Stuck runs',
        description: "This connector's live runs stuck now, by status (connector_sync_runs_stuck).",
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 22,
        gridPos: { h: 8, w: 8, x: 8, y: 40 },
        targets: [
          lib.target('sum by (status) (connector_sync_runs_stuck{job=~"$job", instance=~"$instance", connector="$connector"})', 'A') + { legendFormat: '{{status}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Oldest active run age',
        description: "Age of this connector's oldest live run, by status (time() - connector_sync_oldest_active_run_timestamp_seconds).",
        id: 23,
        gridPos: { h: 8, w: 8, x: 16, y: 40 },
        targets: [
          lib.target('time() - min by (status) (connector_sync_oldest_active_run_timestamp_seconds{job=~"$job", instance=~"$instance", connector="$connector"})', 'A') + { legendFormat: '{{status}}' },
        ],
      },
      lib.panel.row { id: 24, title: 'Failures', gridPos: { h: 1, w: 24, x: 0, y: 48 } },
      lib.panel.table {
        title: 'Failing connections',
        description: "This connector's connections with failed runs since their last success, most first (connector_sync_connection_consecutive_failures). Only the K worst connections over all connectors are exported (--top-failing-connections, default 50). Click a connection to open its runs on syncwatch's status page.",
        fieldConfig: {
          defaults: {
            unit: 'short',
            color: { mode: 'thresholds' },
            thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] },
            custom: { align: 'auto', cellOptions: { type: 'auto' } },
          },
          overrides: [
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
        id: 25,
        gridPos: { h: 9, w: 8, x: 0, y: 49 },
        targets: [
          lib.instantTarget('sort_desc(max by (workspace_connector_id) (connector_sync_connection_consecutive_failures{job=~"$job", instance=~"$instance", connector="$connector"}))', 'A'),
        ],
      },
      lib.panel.timeseries {
        title: 'Failing connections over time',
        description: 'Connections of this connector whose latest terminal run failed (connector_sync_failing_connections).',
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 26,
        gridPos: { h: 9, w: 8, x: 8, y: 49 },
        targets: [
          lib.target('sum(connector_sync_failing_connections{job=~"$job", instance=~"$instance", connector="$connector"})', 'A') + { legendFormat: 'failing connections' },
        ],
      },
      lib.panel.timeseries {
        title: 'Time since last success and failure',
        description: "Time since this connector's most recent successful and failed runs completed. The success line climbs steadily while no run succeeds.",
        fieldConfig+: {
          overrides: [
            {
              matcher: { id: 'byName', options: 'since last success' },
              properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: 'green' } }],
            },
            {
              matcher: { id: 'byName', options: 'since last failure' },
              properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }],
            },
          ],
        },
        id: 27,
        gridPos: { h: 9, w: 8, x: 16, y: 49 },
        targets: [
          lib.target('time() - max(connector_sync_last_success_timestamp_seconds{job=~"$job", instance=~"$instance", connector="$connector"})', 'A') + { legendFormat: 'since last success' },
          lib.target('time() - max(connector_sync_last_failure_timestamp_seconds{job=~"$job", instance=~"$instance", connector="$connector"})', 'B') + { legendFormat: 'since last failure' },
        ],
      },
      lib.panel.timeseries {
        title: 'Failures per second by reason',
        description: 'Failed runs of this connector per second by reason (the first failure rule matching the error text) and owner: customer failures do not burn the error budget, provider and platform ones do (connector_sync_failures_total).',
        fieldConfig+: {
          defaults+: { unit: 'reqps', custom+: { fillOpacity: 30, stacking+: { mode: 'normal' } } },
        },
        id: 28,
        gridPos: { h: 8, w: 24, x: 0, y: 58 },
        targets: [
          lib.target('sum by (reason, owner) (rate(connector_sync_failures_total{job=~"$job", instance=~"$instance", connector="$connector"}[$__rate_interval]))', 'A') + { legendFormat: '{{reason}} ({{owner}})' } + exemplar,
        ],
      },
      lib.panel.timeseries {
        title: 'Overdue connections',
        description: 'Connections of this connector whose latest scheduled run was created longer ago than --overdue-factor times their learned interval (connector_sync_connections_overdue). See the ConnectorSyncMissedSchedule runbook.',
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 29,
        gridPos: { h: 8, w: 12, x: 0, y: 66 },
        targets: [
          lib.target('sum(connector_sync_connections_overdue{job=~"$job", instance=~"$instance", connector="$connector"})', 'A') + { legendFormat: 'overdue connections' },
        ],
      },
      lib.panel.timeseries {
        title: 'Overrunning runs',
        description: "Runs of this connector in progress for longer than --overrun-factor times their connection's p95 successful duration (connector_sync_runs_overrunning). See the ConnectorSyncRunOverrunning runbook.",
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 30,
        gridPos: { h: 8, w: 12, x: 12, y: 66 },
        targets: [
          lib.target('sum(connector_sync_runs_overrunning{job=~"$job", instance=~"$instance", connector="$connector"})', 'A') + { legendFormat: 'overrunning runs' },
        ],
      },
      lib.panel.table {
        title: 'Most overdue connections',
        description: "Connections of this connector whose next scheduled run is overdue, with the seconds since it was due (connector_sync_connection_overdue_seconds, the --top-failing-connections most overdue). See the ConnectorSyncMissedSchedule runbook. Click a connection to open its runs on syncwatch's status page.",
        fieldConfig: {
          defaults: {
            unit: 's',
            color: { mode: 'thresholds' },
            thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] },
            custom: { align: 'auto', cellOptions: { type: 'auto' } },
          },
          overrides: [
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
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true },
              indexByName: {},
              renameByName: {
                Value: 'Past due',
                workspace_connector_id: 'Connection (workspace_connector_id)',
              },
            },
          },
        ],
        id: 31,
        gridPos: { h: 9, w: 24, x: 0, y: 74 },
        targets: [
          lib.instantTarget('sort_desc(max by (workspace_connector_id) (connector_sync_connection_overdue_seconds{job=~"$job", instance=~"$instance", connector="$connector"}))', 'A'),
        ],
      },
    ],
  }

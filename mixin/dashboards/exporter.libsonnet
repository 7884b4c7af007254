local lib = import 'lib.libsonnet';

function(config)
  local variables = lib.variables(config);
  lib.frame {
    uid: 'syncwatch-exporter',
    title: 'syncwatch / Exporter',
    description: "syncwatch's own health: scrapes, scans, scanner leadership, label cap, versions and the API's requests, errors and latency.",
    templating: { list: [variables.datasource, variables.job, variables.instance] },
    panels: [
      lib.panel.row { id: 1, title: 'Health', gridPos: { h: 1, w: 24, x: 0, y: 0 } },
      lib.panel.stat {
        title: 'Targets up',
        description: 'syncwatch targets that Prometheus scraped successfully (sum of up).',
        fieldConfig+: {
          defaults+: {
            thresholds+: { steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] },
          },
        },
        id: 2,
        gridPos: { h: 4, w: 4, x: 0, y: 1 },
        targets: [lib.instantTarget('sum(up{job=~"$job", instance=~"$instance"})', 'A')],
      },
      lib.panel.stat {
        title: 'Scans succeeding',
        description: 'Replicas whose last scan succeeded (sum of syncwatch_up). A replica reports 0 while the store is unreachable, a query fails or the scan times out, and before its first scan.',
        fieldConfig+: {
          defaults+: {
            thresholds+: { steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] },
          },
        },
        id: 3,
        gridPos: { h: 4, w: 4, x: 4, y: 1 },
        targets: [lib.instantTarget('sum(syncwatch_up{job=~"$job", instance=~"$instance"})', 'A')],
      },
      lib.panel.stat {
        title: 'Scanner leaders',
        description: 'Replicas holding the scanner lease (sum of syncwatch_scanner_leader). Exactly one per store: 0 means no domain metrics are exported, more than 1 doubles every sum (possible for at most one scan interval during a takeover, or legitimately when several jobs are selected).',
        fieldConfig+: {
          defaults+: {
            thresholds+: {
              steps: [
                { color: 'red', value: null },
                { color: 'green', value: 1 },
                { color: 'red', value: 2 },
              ],
            },
          },
        },
        id: 4,
        gridPos: { h: 4, w: 4, x: 8, y: 1 },
        targets: [
          lib.instantTarget('sum(syncwatch_scanner_leader{job=~"$job", instance=~"$instance"})', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Oldest successful scan',
        description: "Largest time since a replica's last successful scan (time() - syncwatch_last_scan_success_timestamp_seconds); replicas that never succeeded are left out. Domain values are this old at most.",
        fieldConfig+: {
          defaults+: {
            unit: 's',
            thresholds+: {
              steps: [
                { color: 'green', value: null },
                { color: 'orange', value: 60 },
                { color: 'red', value: 300 },
              ],
            },
            noValue: 'never',
          },
        },
        id: 5,
        gridPos: { h: 4, w: 4, x: 12, y: 1 },
        targets: [
          lib.instantTarget('max(time() - (syncwatch_last_scan_success_timestamp_seconds{job=~"$job", instance=~"$instance"} > 0))', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Longest last scan',
        description: "Longest wall-clock duration of a replica's last scan, successful or not (syncwatch_last_scan_duration_seconds). A scan is abandoned after --scan-timeout (default 30 s).",
        fieldConfig+: {
          defaults+: {
            unit: 's',
            thresholds+: {
              steps: [
                { color: 'green', value: null },
                { color: 'orange', value: 15 },
                { color: 'red', value: 25 },
              ],
            },
          },
        },
        id: 6,
        gridPos: { h: 4, w: 4, x: 16, y: 1 },
        targets: [
          lib.instantTarget('max(syncwatch_last_scan_duration_seconds{job=~"$job", instance=~"$instance"})', 'A'),
        ],
      },
      lib.panel.stat {
        title: 'Versions running',
        description: 'Distinct syncwatch versions across the selected replicas (syncwatch_build_info). More than one during a rollout.',
        fieldConfig+: {
          defaults+: {
            thresholds+: { steps: [{ color: 'green', value: null }, { color: 'orange', value: 2 }] },
          },
        },
        id: 7,
        gridPos: { h: 4, w: 4, x: 20, y: 1 },
        targets: [
          lib.instantTarget('count(count by (version) (syncwatch_build_info{job=~"$job", instance=~"$instance"}))', 'A'),
        ],
      },
      lib.panel.row { id: 8, title: 'Scanner', gridPos: { h: 1, w: 24, x: 0, y: 5 } },
      lib.panel.timeseries {
        title: 'Up',
        description: 'Per replica: whether Prometheus scraped it (up) and whether its last scan succeeded (syncwatch_up).',
        fieldConfig+: { defaults+: { unit: 'short', max: 1 } },
        id: 9,
        gridPos: { h: 8, w: 12, x: 0, y: 6 },
        targets: [
          lib.target('up{job=~"$job", instance=~"$instance"}', 'A') + { legendFormat: 'scraped {{instance}}' },
          lib.target('syncwatch_up{job=~"$job", instance=~"$instance"}', 'B') + { legendFormat: 'scan ok {{instance}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Scanner leader',
        description: 'Replicas holding the scanner lease: the total and each replica (syncwatch_scanner_leader). Only the leader exports domain metrics.',
        fieldConfig+: { defaults+: { unit: 'short' } },
        id: 10,
        gridPos: { h: 8, w: 12, x: 12, y: 6 },
        targets: [
          lib.target('sum(syncwatch_scanner_leader{job=~"$job", instance=~"$instance"})', 'A') + { legendFormat: 'leaders' },
          lib.target('syncwatch_scanner_leader{job=~"$job", instance=~"$instance"}', 'B') + { legendFormat: '{{instance}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Last scan duration',
        description: "Wall-clock seconds each replica's last scan took, successful or not (syncwatch_last_scan_duration_seconds). Builds (startup, leadership gained) and repair sweeps (every --repair-interval) read the most history and take longest.",
        id: 11,
        gridPos: { h: 8, w: 8, x: 0, y: 14 },
        targets: [
          lib.target('syncwatch_last_scan_duration_seconds{job=~"$job", instance=~"$instance"}', 'A') + { legendFormat: '{{instance}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Time since last successful scan',
        description: 'Per replica, time since its last successful scan (time() - syncwatch_last_scan_success_timestamp_seconds). Climbs while scans fail.',
        id: 12,
        gridPos: { h: 8, w: 8, x: 8, y: 14 },
        targets: [
          lib.target('time() - (syncwatch_last_scan_success_timestamp_seconds{job=~"$job", instance=~"$instance"} > 0)', 'A') + { legendFormat: '{{instance}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Scan errors per second',
        description: 'Failed scans per second, per replica (rate of syncwatch_scan_errors_total): store unreachable, a query error or a timeout.',
        fieldConfig+: { defaults+: { unit: 'ops' } },
        id: 13,
        gridPos: { h: 8, w: 8, x: 16, y: 14 },
        targets: [
          lib.target('sum by (instance) (rate(syncwatch_scan_errors_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'A') + { legendFormat: '{{instance}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Connector label overflow',
        description: 'Connectors folded into connector="other" by the --max-connectors cap, per second and replica (rate of syncwatch_label_overflow_total). Any value means connectors lose their own label.',
        fieldConfig+: { defaults+: { unit: 'ops' } },
        id: 14,
        gridPos: { h: 8, w: 12, x: 0, y: 22 },
        targets: [
          lib.target('sum by (instance) (rate(syncwatch_label_overflow_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'A') + { legendFormat: '{{instance}}' },
        ],
      },
      lib.panel.table {
        title: 'Build info',
        description: 'The syncwatch version each replica runs (syncwatch_build_info).',
        fieldConfig: {
          defaults: {
            unit: 'short',
            color: { mode: 'thresholds' },
            thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] },
            custom: { align: 'auto', cellOptions: { type: 'auto' } },
          },
          overrides: [],
        },
        options: {
          showHeader: true,
          cellHeight: 'sm',
          footer: { show: false, reducer: ['sum'], fields: '' },
        },
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true, Value: true },
              indexByName: {},
              renameByName: { job: 'Job', instance: 'Instance', version: 'Version' },
            },
          },
        ],
        id: 15,
        gridPos: { h: 8, w: 12, x: 12, y: 22 },
        targets: [
          lib.instantTarget('max by (job, instance, version) (syncwatch_build_info{job=~"$job", instance=~"$instance"})', 'A'),
        ],
      },
      lib.panel.row { id: 16, title: 'API', gridPos: { h: 1, w: 24, x: 0, y: 30 } },
      lib.panel.timeseries {
        title: 'Requests per second by route and code',
        description: 'API requests per second on the --listen address, by method, route template and status code (syncwatch_http_requests_total). Requests matching no route are route="unmatched".',
        fieldConfig+: { defaults+: { unit: 'reqps' } },
        id: 17,
        gridPos: { h: 8, w: 12, x: 0, y: 31 },
        targets: [
          lib.target('sum by (method, route, code) (rate(syncwatch_http_requests_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'A') + { legendFormat: '{{method}} {{route}} {{code}}' },
        ],
      },
      lib.panel.timeseries {
        title: '5xx ratio',
        description: 'Share of API requests answered with a 5xx status, overall and by method and route.',
        fieldConfig+: { defaults+: { unit: 'percentunit', max: 1 } },
        id: 18,
        gridPos: { h: 8, w: 12, x: 12, y: 31 },
        targets: [
          lib.target('(sum(rate(syncwatch_http_requests_total{job=~"$job", instance=~"$instance", code=~"5.."}[$__rate_interval])) or vector(0))\n/\nsum(rate(syncwatch_http_requests_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'A') + { legendFormat: 'all routes' },
          lib.target('(\n  sum by (method, route) (rate(syncwatch_http_requests_total{job=~"$job", instance=~"$instance", code=~"5.."}[$__rate_interval]))\n  or\n  0 * sum by (method, route) (rate(syncwatch_http_requests_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))\n)\n/\nsum by (method, route) (rate(syncwatch_http_requests_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))', 'B') + { legendFormat: '{{method}} {{route}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Latency p50 by route',
        description: 'Median API request latency, by method and route template (syncwatch_http_request_duration_seconds).',
        id: 19,
        gridPos: { h: 8, w: 12, x: 0, y: 39 },
        targets: [
          lib.target('histogram_quantile(0.5, sum by (method, route, le) (rate(syncwatch_http_request_duration_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))', 'A') + { legendFormat: '{{method}} {{route}}' },
        ],
      },
      lib.panel.timeseries {
        title: 'Latency p99 by route',
        description: '99th percentile API request latency, by method and route template (syncwatch_http_request_duration_seconds). Buckets end at 10 s.',
        id: 20,
        gridPos: { h: 8, w: 12, x: 12, y: 39 },
        targets: [
          lib.target('histogram_quantile(0.99, sum by (method, route, le) (rate(syncwatch_http_request_duration_seconds_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))', 'A') + { legendFormat: '{{method}} {{route}}' },
        ],
      },
    ],
  }

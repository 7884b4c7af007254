// What a deployment may change. Every rule, alert and dashboard of the mixin reads these
// fields and nothing else; override them in your own jsonnet:
//
//   (import 'syncwatch/mixin/mixin.libsonnet') + {
//     _config+:: { syncwatchSelector: 'job="connector-sync", namespace="data"' },
//   }
{
  _config+:: {
    // The label matchers that select syncwatch's series: every expression, every query an
    // alert's description or status link runs, and the dashboards' job variable use it.
    // With the Prometheus Operator the job label is the Service's name ("syncwatch" in
    // deploy/kubernetes). Label values may hold any character but a backtick.
    syncwatchSelector: 'job="syncwatch"',

    // The success objective: the share of terminal sync runs that must succeed, per
    // connector, over the error budget's period. The budget is 1 - objective.
    errorBudget: {
      objective: 0.95,
      periodDays: 30,
    },

    // Multi-window, multi-burn-rate pages on the error budget: each fires when both its
    // long and its short window burn the budget faster than `factor` times.
    burnRateAlerts: [
      { long: '1h', short: '5m', factor: 14.4, 'for': '2m', severity: 'critical' },
      { long: '6h', short: '30m', factor: 6, 'for': '15m', severity: 'critical' },
      { long: '1d', short: '2h', factor: 3, 'for': '1h', severity: 'warning' },
      { long: '3d', short: '6h', factor: 1, 'for': '3h', severity: 'warning' },
    ],
    // The fewest failed runs (owned by the platform or a provider) a burn-rate page needs in
    // its long window: below it a high ratio is a handful of runs, not a trend (one failure
    // of an hourly connector is a 100 % error ratio over 1h).
    burnMinFailedRuns: 3,

    // ConnectorSyncCustomerActionNeeded: any failure only the customer can fix within this
    // window raises a ticket (an increase above 0.5 allows for extrapolation).
    customerFailureWindow: '1h',
    // ConnectorSyncNoRecentSuccess: no success for this long. Keep it above two of the
    // connectors' scheduling intervals.
    noRecentSuccessSeconds: 6 * 3600,
    // ConnectorSyncConnectionFailing: this many failed runs in a row.
    connectionFailingRuns: 3,
    // SyncwatchScanStale: no successful scan for this long. Keep it well above
    // --scan-interval (15s) plus --scan-timeout (30s).
    scanStaleSeconds: 300,

    // Where the annotations point.
    runbookUrl: 'https://github.com/syncwatch/syncwatch/blob/main/docs/runbooks.md',
    connectorDashboardPath: '/d/syncwatch-connector',
    exporterDashboardPath: '/d/syncwatch-exporter',

    // Exemplars: the dashboards' queries of connector_sync_duration_seconds_bucket (the
    // duration quantiles and heatmaps) and of connector_sync_failures_total (failures by
    // reason) ask Prometheus for exemplars, each the latest run of its series with its
    // trace_id and run_id. Prometheus keeps them only with
    // --enable-feature=exemplar-storage; false leaves them out of the queries.
    exemplars: true,
    // syncwatch's status page as Grafana's users reach it (syncwatch's --public-url, no
    // trailing slash): an exemplar's run_id links to <statusPageUrl>/ui/runs/<run_id>.
    // Grafana expands $VAR and ${VAR} in the provisioning file from its environment, so
    // '${SYNCWATCH_PUBLIC_URL}' works; write $$ for a literal $.
    statusPageUrl: 'http://syncwatch:8080',
    // The Grafana data source of dashboards/provisioning/datasources.example.yaml: the Prometheus that
    // scrapes syncwatch, with the exemplar links of the panels above.
    grafana: {
      datasourceName: 'Prometheus',
      datasourceUid: 'prometheus',
      prometheusUrl: 'http://prometheus:9090',
      // The scrape interval of the syncwatch job, so $__rate_interval spans at least four
      // scrapes.
      scrapeInterval: '15s',
      // The uid of the trace data source (Tempo, Jaeger, …) that receives syncwatch's OTLP
      // spans: an exemplar's trace_id opens the run's trace there. '' leaves that link out.
      traceDatasourceUid: 'tempo',
    },
  },
}

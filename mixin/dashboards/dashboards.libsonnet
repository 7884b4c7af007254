// The Grafana dashboards, by file name. Their queries select `job=~"$job"`; the job
// variable offers the jobs matching _config.syncwatchSelector.
{
  grafanaDashboards+:: {
    'connector-syncs-overview.json': (import 'overview.libsonnet')($._config),
    'connector-syncs-connector.json': (import 'connector.libsonnet')($._config),
    'syncwatch-exporter.json': (import 'exporter.libsonnet')($._config),
  },
}

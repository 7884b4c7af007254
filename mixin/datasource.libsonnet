// grafanaDatasources: the Grafana provisioning of the Prometheus data source that scrapes
// syncwatch, with the links of the dashboards' exemplars (_config.exemplars). Every exemplar
// of connector_sync_duration_seconds_bucket and connector_sync_failures_total carries two
// labels: run_id, linked to the run on syncwatch's status page, and trace_id, linked to the
// run's trace in the trace data source. Grafana takes these links from the data source
// (jsonData.exemplarTraceIdDestinations), not from the panels. In their URLs
// ${__value.raw} is the label's value, written $${__value.raw}: Grafana expands $VAR and
// ${VAR} in provisioning files from its environment, and $$ is a literal $.
{
  local config = $._config,
  local grafana = config.grafana,
  local statusPage = std.rstripChars(config.statusPageUrl, '/'),

  grafanaDatasources+:: {
    apiVersion: 1,
    datasources: [
      {
        name: grafana.datasourceName,
        type: 'prometheus',
        uid: grafana.datasourceUid,
        access: 'proxy',
        url: grafana.prometheusUrl,
        isDefault: true,
        editable: false,
        jsonData: {
          timeInterval: grafana.scrapeInterval,
          httpMethod: 'POST',
          exemplarTraceIdDestinations: [
            {
              name: 'run_id',
              url: statusPage + '/ui/runs/$${__value.raw}',
              urlDisplayLabel: 'Open run in syncwatch',
            },
          ] + (
            if grafana.traceDatasourceUid == '' then []
            else [{
              name: 'trace_id',
              datasourceUid: grafana.traceDatasourceUid,
              urlDisplayLabel: 'Open trace',
            }]
          ),
        },
      },
    ],
  },
}

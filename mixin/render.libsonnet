// The files the mixin generates, by path from the repository's root: what scripts/mixin
// writes and what tests/suite/mixin.rs compares with the committed files. `files` are
// texts (jsonnet -S -m); `dashboards` are objects, written as JSON by jsonnet itself
// (jsonnet -m into dashboards/: std.manifestJsonEx would take seconds in jsonnet 0.18).
local yaml = import 'lib/yaml.libsonnet';

function(mixin) {
  // Without its final newline: jsonnet -S -m ends every file with one.
  local groups = std.rstripChars(yaml.manifest({
    groups: mixin.prometheusRules.groups + mixin.prometheusAlerts.groups,
  }), '\n'),
  local indented(text) = std.join('\n', [
    if line == '' then '' else '  ' + line
    for line in std.split(text, '\n')
  ]),
  local generated = |||
    # Generated from mixin/ (jsonnet) by scripts/mixin: edit mixin/config.libsonnet (job
    # selector, objective, thresholds, windows) or the rules in mixin/, then run
    # scripts/mixin. tests/suite/mixin.rs fails while this file differs from the mixin.
  |||,

  files:: {
    'alerts/syncwatch.rules.yml': generated + |||
      #
      # Prometheus recording and alerting rules for syncwatch. Load this file from
      # prometheus.yml (`rule_files: [/etc/prometheus/rules/syncwatch.rules.yml]`) and check it
      # with `promtool check rules alerts/syncwatch.rules.yml`; the unit tests are in
      # alerts/tests/ (`promtool test rules alerts/tests/*.yml`). Runbooks: docs/runbooks.md.
      #
      # Every selector reads %(sel)s (_config.syncwatchSelector). Every alert's
      # `status_url` links to syncwatch's status page, from the series
      # syncwatch_ui_info{public_url="…"} that syncwatch exports when given --public-url.
      # Domain metrics (connector_sync_*) come from the replica holding the scanner lease
      # only; the alerts aggregate them by connector, so an alert keeps its identity when
      # another replica takes the lease over.

    ||| % { sel: mixin._config.syncwatchSelector } + groups,

    // The same groups, indented under `spec:`.
    'deploy/kubernetes/base/prometheusrule.yaml': generated + |||
      #
      # The rules of alerts/syncwatch.rules.yml for the Prometheus Operator (runbooks:
      # docs/runbooks.md). With the Operator the job label is the Service's name, syncwatch.
      apiVersion: monitoring.coreos.com/v1
      kind: PrometheusRule
      metadata:
        name: syncwatch
        labels:
          app.kubernetes.io/name: syncwatch
      spec:
    ||| + indented(groups),

    'dashboards/provisioning/datasources.example.yaml': |||
      # Generated from mixin/ (jsonnet) by scripts/mixin: edit _config.grafana and
      # _config.statusPageUrl in mixin/config.libsonnet, then run scripts/mixin.
      # tests/suite/mixin.rs fails while this file differs from the mixin.
      #
      # Grafana data source provisioning for the Prometheus that scrapes syncwatch, with the
      # links of the exemplars on the dashboards' run duration and failure panels:
      # - an exemplar's run_id opens the run on syncwatch's status page.
    ||| + (
      if mixin._config.grafana.traceDatasourceUid == '' then ''
      else "# - its trace_id opens the run's trace in the trace data source.\n"
    ) + |||
      # Copy to /etc/grafana/provisioning/datasources/prometheus.yaml and set url (the
      # dashboards list every Prometheus data source, defaulting to this one). Prometheus keeps
      # exemplars only with --enable-feature=exemplar-storage. Grafana expands $VAR and
      # ${VAR} in this file from its environment: $$ is a literal $, so $${__value.raw}
      # reaches Grafana as ${__value.raw}, the exemplar label's value.
    ||| + std.rstripChars(yaml.manifest(mixin.grafanaDatasources), '\n'),
  },

  dashboards:: mixin.grafanaDashboards,
}

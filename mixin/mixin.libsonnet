// syncwatch's monitoring mixin: prometheusRules (recording rules), prometheusAlerts,
// grafanaDashboards and grafanaDatasources (the Prometheus data source with the exemplars'
// links), all from _config (config.libsonnet). alerts/, dashboards/, the PrometheusRule in
// deploy/kubernetes and dashboards/provisioning/datasources.example.yaml are generated from it by
// scripts/mixin.
(import 'config.libsonnet')
+ (import 'rules.libsonnet')
+ (import 'alerts.libsonnet')
+ (import 'dashboards/dashboards.libsonnet')
+ (import 'datasource.libsonnet')

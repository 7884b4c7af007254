// syncwatch's monitoring mixin: prometheusRules (recording rules), prometheusAlerts and
// grafanaDashboards, all from _config (config.libsonnet). alerts/, dashboards/ and the
// PrometheusRule in deploy/kubernetes are generated from it by scripts/mixin.
(import 'config.libsonnet')
+ (import 'rules.libsonnet')
+ (import 'alerts.libsonnet')
+ (import 'dashboards/dashboards.libsonnet')

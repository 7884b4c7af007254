// Recording rules: the error budget, the per-connector error ratios over every burn-rate
// window, and the failed-run counts the minimum-volume guard reads.
// Sorts durations by length, so the recording rules come in a stable, readable order.
local duration(w) =
  local unit = std.substr(w, std.length(w) - 1, 1);
  std.parseInt(std.substr(w, 0, std.length(w) - 1))
  * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[unit];

local windows(config) =
  std.set(std.flattenArrays([[w.long, w.short] for w in config.burnRateAlerts]), duration);

{
  prometheusRules+:: {
    local config = $._config,
    local sel = config.syncwatchSelector,
    local failures = 'connector_sync_failures_total{%s,owner!="customer"}' % sel,
    local runs = 'connector_sync_runs_total{%s}' % sel,
    groups+: [{
      name: 'syncwatch-connector-sync.rules',
      rules: [
        // The error budget: 1 - objective. Every ConnectorSyncErrorBudgetBurn threshold is
        // a multiple of it.
        {
          record: 'syncwatch:connector_sync_error_budget:ratio',
          expr: 'vector(1 - %g)' % config.errorBudget.objective,
        },
        // Terminal runs per second by connector and final status, for dashboards.
        {
          record: 'connector:connector_sync_runs:rate5m',
          expr: |||
            sum by (connector, status) (
              rate(%s[5m])
            )
          ||| % runs,
        },
        {
          record: 'syncwatch:connector_sync_burn_min_failed_runs:count',
          expr: 'vector(%d)' % config.burnMinFailedRuns,
        },
      ] + [
        // Failed runs the budget counts (owned by the platform or a provider), per
        // connector, over each burn-rate alert's long window, for the minimum-volume guard.
        {
          record: 'connector:connector_sync_failures_paging:increase%s' % w,
          expr: 'sum by (connector) (increase(%s[%s]))' % [failures, w],
        }
        for w in std.set([a.long for a in config.burnRateAlerts], duration)
      ] + [
        // Share of terminal runs that failed for a reason the platform or a provider owns,
        // per connector, over each burn-rate window (failure reasons and owners come from the
        // failure rules, `--failure-rules`). Failures only the customer can fix (a revoked
        // token) do not burn the budget: they raise ConnectorSyncCustomerActionNeeded.
        // A connector with no terminal run in the window has 0/0 = NaN, which compares false
        // with every threshold: no traffic, no burn alert.
        {
          record: 'connector:connector_sync_runs_error:ratio_rate%s' % w,
          expr: |||
            sum by (connector) (rate(%(failures)s[%(w)s]))
            /
            sum by (connector) (rate(%(runs)s[%(w)s]))
          ||| % { failures: failures, runs: runs, w: w },
        }
        for w in windows(config)
      ],
    }],
  },
}

// Alerting rules: the error-budget pages, the connector and connection alerts, and the
// alerts on syncwatch itself. Thresholds and windows come from _config (config.libsonnet).

// Several alerts' descriptions list the connections behind them by running a query from
// a Go template: `printf "…"` takes the query as a double-quoted Go string, in which the
// selector's backslashes and quotes are escaped, and printf's verb character doubled.
local goString(s) =
  std.strReplace(std.strReplace(std.strReplace(s, '\\', '\\\\'), '"', '\\"'), '%', '%%');
// Texts written on several lines in the source, one line in the rule.
local oneLine(s) = std.join(' ', std.split(std.rstripChars(s, '\n'), '\n'));

{
  prometheusAlerts+:: {
    local config = $._config,
    local sel = config.syncwatchSelector,
    local runbook(alert) = '%s#%s' % [config.runbookUrl, std.asciiLower(alert)],
    local connectorDashboard = config.connectorDashboardPath + '?var-connector={{ $labels.connector }}',
    // The status page's base URL, from the syncwatch_ui_info series (--public-url).
    local statusUrl(path) =
      '{{ with query `syncwatch_ui_info{%s}` }}{{ . | first | label "public_url" }}%s{{ end }}'
      % [sel, path],
    local failingUrl = statusUrl('/ui/failing?connector={{ $labels.connector | urlquery }}'),
    local connectorRowUrl = statusUrl('/ui#connector-{{ $labels.connector | urlquery }}'),
    // One alert: its runbook is the section named after it.
    local alert(name, expr, forDuration, labels, summary, description, dashboard, status) = {
      alert: name,
      expr: expr,
      'for': forDuration,
      labels: labels,
      annotations: {
        summary: summary,
        description: oneLine(description),
        runbook_url: runbook(name),
        dashboard_url: dashboard,
        status_url: status,
      },
    },
    local budget = 'syncwatch:connector_sync_error_budget:ratio',

    groups+: [
      {
        name: 'syncwatch-connector-sync.alerts',
        rules: [
          // Multi-window, multi-burn-rate alerts on the error budget. Each rule fires when
          // both its long and its short window burn the budget faster than the factor: the
          // long window proves the burn is significant, the short one that it is still going
          // on. The value is the error ratio over the long window.
          local period = config.errorBudget.periodDays;
          local lasts = period / w.factor;
          local times = if w.factor == 1 then 'the error budget' else '%g times the error budget' % w.factor;
          alert(
            'ConnectorSyncErrorBudgetBurn',
            |||
              (
                connector:connector_sync_runs_error:ratio_rate%(long)s
                  > on() group_left() (%(factor)g * %(budget)s)
              )
              and
              (
                connector:connector_sync_runs_error:ratio_rate%(short)s
                  > on() group_left() (%(factor)g * %(budget)s)
              )
              and on(connector)
              (
                connector:connector_sync_failures_paging:increase%(long)s
                  >= on() group_left() syncwatch:connector_sync_burn_min_failed_runs:count
              )
            ||| % (w { budget: budget }),
            w['for'],
            { severity: w.severity, long_window: w.long, burn_rate: '%g' % w.factor },
            "A connector's sync runs fail fast enough to exhaust the error budget within %s."
            % (if lasts < 7 then 'days' else 'weeks'),
            |||
              {{ $value | humanizePercentage }} of {{ $labels.connector }} sync runs failed (for
              reasons the platform or a provider owns) over the last %(long)s, more than %(times)s,
              and the last %(short)s are above %(that)s too. %(rate)s
            ||| % {
              long: w.long,
              short: w.short,
              times: times,
              that: if w.factor == 1 then 'it' else 'that',
              rate: if lasts >= period then
                'At this rate the budget runs out before its %d-day period ends.' % period
              else 'At this rate a %d-day budget lasts about %d days.' % [period, std.floor(lasts + 0.5)],
            },
            connectorDashboard,
            failingUrl,
          )
          for w in config.burnRateAlerts
        ] + [
          // Failures only the customer can fix (owner="customer" in the failure rules:
          // revoked or expired credentials, missing permissions): not paged, a ticket per
          // connector and reason, listing the connections failing in a row.
          alert(
            'ConnectorSyncCustomerActionNeeded',
            |||
              sum by (connector, reason) (
                increase(connector_sync_failures_total{%s,owner="customer"}[%s])
              ) > 0.5
            ||| % [sel, config.customerFailureWindow],
            '5m',
            { severity: 'warning', owner: 'customer' },
            'Sync runs fail for a reason only the customer can fix.',
            |||
              {{ $labels.connector }} sync runs failed {{ $value | humanize }} time(s) in the
              last %s with reason {{ $labels.reason }}, which the customer has to fix (for
              example by reconnecting the account).
              {{- with printf "max by (workspace_connector_id) (connector_sync_connection_consecutive_failures{%s,connector='%%s'})" $labels.connector | query }}
              Connections of {{ $labels.connector }} failing in a row:{{ range . }} {{ .Labels.workspace_connector_id }} ({{ .Value | humanize }}){{ end }}.
              {{- end }}
            ||| % [config.customerFailureWindow, goString(sel)],
            connectorDashboard,
            failingUrl,
          ),
          // A connection's scheduled runs stopped coming: its latest cloud_task run was
          // created longer ago than --overdue-factor (3) times the interval syncwatch learned
          // from its previous ones. Nothing fails and nothing is stuck, so no other alert
          // sees it. syncwatch decides what is overdue; this alert waits 10 minutes.
          alert(
            'ConnectorSyncMissedSchedule',
            |||
              max by (connector) (connector_sync_connections_overdue{%s}) > 0
            ||| % sel,
            '10m',
            { severity: 'warning' },
            'Scheduled sync runs stopped coming for some connections.',
            |||
              {{ $value | humanize }} connection(s) of {{ $labels.connector }} have had no
              scheduled run for over 3 times their usual interval.
              {{- with printf "max by (workspace_connector_id) (connector_sync_connection_overdue_seconds{%s,connector='%%s'})" $labels.connector | query }}
              Most overdue:{{ range . }} {{ .Labels.workspace_connector_id }} ({{ .Value | humanizeDuration }} past due){{ end }}.
              {{- end }}
            ||| % goString(sel),
            connectorDashboard,
            connectorRowUrl,
          ),
          // Runs in progress far longer than usual for their connection: over
          // --overrun-factor (3) times the p95 of its last 20 successful durations (at least
          // --overrun-min, 5m), even while they heartbeat. Long before --max-run-duration
          // (6h) calls them stuck.
          alert(
            'ConnectorSyncRunOverrunning',
            |||
              max by (connector) (connector_sync_runs_overrunning{%s}) > 0
            ||| % sel,
            '10m',
            { severity: 'warning' },
            'Sync runs are taking far longer than usual.',
            |||
              {{ $labels.connector }} has {{ $value | humanize }} run(s) in progress for more
              than 3 times their connection's usual (p95) duration.
            |||,
            connectorDashboard,
            connectorRowUrl,
          ),
          // No successful run for too long. The value is the time since the last success.
          // Soft-deleted runs count, as in the metric.
          alert(
            'ConnectorSyncNoRecentSuccess',
            |||
              time() - max by (connector) (connector_sync_last_success_timestamp_seconds{%s})
                > %d
            ||| % [sel, config.noRecentSuccessSeconds],
            '10m',
            { severity: 'warning' },
            'A connector has not completed a sync run successfully for hours.',
            |||
              {{ $labels.connector }} last completed a sync run successfully
              {{ $value | humanizeDuration }} ago.
            |||,
            connectorDashboard,
            failingUrl,
          ),
          // The same alert for a connector that has failed runs but has never succeeded (it
          // has no last-success series at all). The value is the time since its last failure.
          alert(
            'ConnectorSyncNoRecentSuccess',
            |||
              time() - (
                max by (connector) (connector_sync_last_failure_timestamp_seconds{%(sel)s})
                unless on(connector)
                max by (connector) (connector_sync_last_success_timestamp_seconds{%(sel)s})
              )
            ||| % { sel: sel },
            '10m',
            { severity: 'warning', last_success: 'never' },
            'A connector has not completed a sync run successfully for hours.',
            |||
              {{ $labels.connector }} has failed sync runs and has never completed one
              successfully; its last failure was {{ $value | humanizeDuration }} ago.
            |||,
            connectorDashboard,
            failingUrl,
          ),
          // Runs in progress with no heartbeat for --stuck-in-progress-after (30m) or running
          // longer than --max-run-duration (6h): syncwatch decides what is stuck, this alert
          // only waits 15 more minutes.
          alert(
            'ConnectorSyncStuckRuns',
            |||
              max by (connector) (connector_sync_runs_stuck{%s,status="in_progress"}) > 0
            ||| % sel,
            '15m',
            { severity: 'warning' },
            'Sync runs are stuck in progress.',
            |||
              {{ $labels.connector }} has {{ $value | humanize }} sync run(s) in progress with
              no heartbeat for too long or running for too long.
            |||,
            connectorDashboard,
            connectorRowUrl,
          ),
          // Runs scheduled longer than --stuck-scheduled-after (15m) ago and never started.
          alert(
            'ConnectorSyncScheduledBacklog',
            |||
              max by (connector) (connector_sync_runs_stuck{%s,status="scheduled"}) > 0
            ||| % sel,
            '15m',
            { severity: 'warning' },
            'Scheduled sync runs are not being dispatched.',
            |||
              {{ $labels.connector }} has {{ $value | humanize }} scheduled sync run(s) that
              have not started long after they were created.
            |||,
            connectorDashboard,
            connectorRowUrl,
          ),
          // One connection failing run after run. Only the --top-failing-connections (50)
          // worst connections have a series.
          alert(
            'ConnectorSyncConnectionFailing',
            |||
              max by (connector, workspace_connector_id) (
                connector_sync_connection_consecutive_failures{%s}
              ) >= %d
            ||| % [sel, config.connectionFailingRuns],
            '5m',
            { severity: 'warning' },
            'A connection keeps failing its sync runs.',
            |||
              Connection {{ $labels.workspace_connector_id }} of {{ $labels.connector }} has
              failed its last {{ $value | humanize }} sync runs in a row.
            |||,
            connectorDashboard,
            statusUrl('/ui/connections/{{ $labels.workspace_connector_id }}'),
          ),
        ],
      },
      {
        name: 'syncwatch-exporter.alerts',
        rules: [
          // A target Prometheus cannot scrape, or no target at all.
          alert(
            'SyncwatchDown',
            |||
              up{%(sel)s} == 0
              or
              absent(up{%(sel)s})
            ||| % { sel: sel },
            '5m',
            { severity: 'critical' },
            'Prometheus cannot scrape syncwatch.',
            |||
              {{ with $labels.instance }}Prometheus has failed to scrape the syncwatch target
              {{ . }} for 5 minutes.{{ else }}Prometheus has no target for %s.{{ end }}
            ||| % sel,
            config.exporterDashboardPath,
            statusUrl('/ui'),
          ),
          // The last scan failed: store unreachable, a query failed, or the scan timed out.
          alert(
            'SyncwatchStoreUnreachable',
            |||
              syncwatch_up{%s} == 0
            ||| % sel,
            '5m',
            { severity: 'critical' },
            'syncwatch cannot scan its store.',
            |||
              syncwatch at {{ $labels.instance }} has failed every scan of its store for
              5 minutes (syncwatch_up = {{ $value }}); its connector metrics are frozen at its
              last good scan, or gone if it lost the scanner lease.
            |||,
            config.exporterDashboardPath,
            statusUrl('/ui'),
          ),
          // No successful scan for too long, on a replica that has succeeded before.
          alert(
            'SyncwatchScanStale',
            |||
              (time() - syncwatch_last_scan_success_timestamp_seconds{%(sel)s} > %(stale)d)
              and
              (syncwatch_last_scan_success_timestamp_seconds{%(sel)s} > 0)
            ||| % { sel: sel, stale: config.scanStaleSeconds },
            '5m',
            { severity: 'critical' },
            'syncwatch has not completed a scan for minutes.',
            |||
              syncwatch at {{ $labels.instance }} last completed a scan of its store
              {{ $value | humanizeDuration }} ago; the metrics it exports are frozen at that scan.
            |||,
            config.exporterDashboardPath,
            statusUrl('/ui'),
          ),
          // No replica holds the scanner lease while at least one is up (with every target
          // down, SyncwatchDown fires instead).
          alert(
            'SyncwatchNoScannerLeader',
            |||
              sum(syncwatch_scanner_leader{%(sel)s}) < 1
              and on()
              sum(up{%(sel)s}) > 0
            ||| % { sel: sel },
            '5m',
            { severity: 'critical' },
            'No syncwatch replica exports the connector metrics.',
            |||
              {{ $value }} syncwatch replicas hold the scanner lease while targets are up: no
              connector metrics are exported and the connector alerts cannot fire.
            |||,
            config.exporterDashboardPath,
            statusUrl('/ui'),
          ),
        ],
      },
    ],
  },
}

//! What the scanner learns about each connection from its own runs, with no configuration:
//! its schedule (the interval between the creations of its `cloud_task` runs) and its usual
//! duration (the p95 of its latest successful runs). From them: connections whose next
//! scheduled run is overdue, and live runs taking far longer than usual.
//!
//! A fixed number of bytes per connection: the creation times of its latest
//! [`SCHEDULE_RUNS`] scheduled runs and the durations of its latest [`DURATION_RUNS`]
//! successful runs. Kept up to date from the runs each scan sees; rebuilt after a restart
//! from those same latest runs of each connection (index probes, never its whole history).
//! Pure: no I/O, unit-tested.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::{ConnectionId, Status};
use crate::store::{LiveRun, RecentRun, TerminalRun};

mod saved;

/// Scheduled runs whose creation times are kept: 20 gaps between them.
pub const SCHEDULE_RUNS: usize = 21;
/// Successful runs whose durations are kept.
pub const DURATION_RUNS: usize = 20;
/// Fewest runs (scheduled ones for the schedule, successful ones for the duration) before
/// anything is learned.
pub const MIN_RUNS: usize = 5;

/// The trigger whose runs follow the schedule (manual and OAuth runs are ad hoc).
pub const SCHEDULED_TRIGGER: &str = "cloud_task";

/// One connection's latest runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Learned {
    pub connector: String,
    /// Creation times (Unix milliseconds) of the latest scheduled runs, ascending, distinct.
    created: [i64; SCHEDULE_RUNS],
    created_len: u8,
    /// Durations (milliseconds) of the latest successful runs, a ring by completion time.
    durations: [u32; DURATION_RUNS],
    /// Completion time (Unix milliseconds) of each duration, to keep the latest ones.
    completed: [i64; DURATION_RUNS],
    durations_len: u8,
    /// The learned interval, kept with the creation times it comes from.
    interval: Option<i64>,
}

impl Learned {
    fn new(connector: &str) -> Self {
        Self {
            connector: connector.to_owned(),
            created: [0; SCHEDULE_RUNS],
            created_len: 0,
            durations: [0; DURATION_RUNS],
            completed: [0; DURATION_RUNS],
            durations_len: 0,
            interval: None,
        }
    }

    /// Note a scheduled run's creation. Idempotent (a time already kept is ignored), so the
    /// same run seen by a probe and by a scan counts once; keeps the latest ones.
    fn note_created(&mut self, at_ms: i64) {
        let len = usize::from(self.created_len);
        let kept = &self.created[..len];
        if kept.binary_search(&at_ms).is_ok() {
            return;
        }
        if len == SCHEDULE_RUNS {
            if at_ms < kept[0] {
                return;
            }
            self.created.copy_within(1..SCHEDULE_RUNS, 0);
            self.created_len -= 1;
        }
        let len = usize::from(self.created_len);
        let pos = self.created[..len].partition_point(|t| *t < at_ms);
        self.created.copy_within(pos..len, pos + 1);
        self.created[pos] = at_ms;
        self.created_len += 1;
        self.interval = self.compute_interval();
    }

    /// Note a successful run's duration. Idempotent on (completion time, duration); keeps
    /// the latest ones by completion time.
    fn note_duration(&mut self, completed_ms: i64, duration_ms: u32) {
        let len = usize::from(self.durations_len);
        let same =
            (0..len).any(|i| self.completed[i] == completed_ms && self.durations[i] == duration_ms);
        if same {
            return;
        }
        if len < DURATION_RUNS {
            self.completed[len] = completed_ms;
            self.durations[len] = duration_ms;
            self.durations_len += 1;
            return;
        }
        // Full: replace the oldest, if this one is newer.
        let (oldest, at) = (0..len)
            .map(|i| (i, self.completed[i]))
            .min_by_key(|(_, t)| *t)
            .unwrap_or((0, i64::MIN));
        if completed_ms > at {
            self.completed[oldest] = completed_ms;
            self.durations[oldest] = duration_ms;
        }
    }

    /// Creation time of the latest scheduled run (Unix milliseconds).
    fn latest_created_ms(&self) -> Option<i64> {
        self.created[..usize::from(self.created_len)]
            .last()
            .copied()
    }

    /// The learned interval between scheduled runs (milliseconds): the median of the gaps
    /// between the kept creation times (the lower of the two middle ones for an even
    /// count); `None` below [`MIN_RUNS`] runs.
    fn interval_ms(&self) -> Option<i64> {
        self.interval
    }

    fn compute_interval(&self) -> Option<i64> {
        let len = usize::from(self.created_len);
        if len < MIN_RUNS {
            return None;
        }
        // On the stack: this runs for every connection at every scan.
        let mut all = [0i64; SCHEDULE_RUNS - 1];
        for (gap, w) in all.iter_mut().zip(self.created[..len].windows(2)) {
            *gap = w[1] - w[0];
        }
        let gaps = &mut all[..len - 1];
        gaps.sort_unstable();
        Some(gaps[(gaps.len() - 1) / 2])
    }

    /// The p95 of the kept successful durations (milliseconds, nearest rank); `None` below
    /// [`MIN_RUNS`] runs.
    fn p95_duration_ms(&self) -> Option<u32> {
        let len = usize::from(self.durations_len);
        if len < MIN_RUNS {
            return None;
        }
        let mut d = self.durations;
        let d = &mut d[..len];
        d.sort_unstable();
        let rank = (len * 95).div_ceil(100);
        Some(d[rank.saturating_sub(1)])
    }
}

/// How overdue and overrunning are decided (from the scanner's flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearnedRules {
    pub overdue_factor: f64,
    pub forget_after: chrono::Duration,
    pub overrun_factor: f64,
    pub overrun_min: chrono::Duration,
}

/// A connection whose next scheduled run is overdue.
#[derive(Debug, Clone, PartialEq)]
pub struct Overdue {
    pub workspace_connector_id: ConnectionId,
    pub connector: String,
    /// Seconds since the next run was due (the latest creation plus one interval).
    pub past_due_seconds: f64,
}

/// What the learned state says now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LearnedSignals {
    pub overdue: Vec<Overdue>,
    /// (connector, live runs overrunning).
    pub overrunning: Vec<(String, u64)>,
}

/// Every connection's learned state. Boxed: a map of 456-byte slots would keep its empty
/// buckets (up to half of its capacity) at full size.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LearnedState {
    pub by_id: HashMap<ConnectionId, Box<Learned>>,
}

impl LearnedState {
    fn entry(&mut self, id: &ConnectionId, connector: &str) -> &mut Learned {
        if !self.by_id.contains_key(id) {
            self.by_id
                .insert(id.clone(), Box::new(Learned::new(connector)));
        }
        let entry = self.by_id.get_mut(id).expect("inserted above");
        if entry.connector != connector {
            entry.connector = connector.to_owned();
        }
        entry
    }

    /// Forget what was learned about `id` (its runs are gone from the table).
    pub fn forget(&mut self, id: &ConnectionId) {
        self.by_id.remove(id);
    }

    /// A terminal run a scan counted. Soft-deleted runs teach nothing.
    pub fn observe(&mut self, run: &TerminalRun) {
        if run.deleted {
            return;
        }
        let scheduled = run.trigger_type.as_deref() == Some(SCHEDULED_TRIGGER);
        let duration = (run.status == Status::Success)
            .then_some(run.duration_seconds)
            .flatten();
        if !scheduled && duration.is_none() {
            return;
        }
        let entry = self.entry(&run.workspace_connector_id, &run.connector_slug);
        if scheduled {
            entry.note_created(run.created_at.timestamp_millis());
        }
        if let Some(seconds) = duration {
            let ms = (seconds * 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32;
            entry.note_duration(run.completed_at.timestamp_millis(), ms);
        }
    }

    /// A connection's latest runs read from the table (after a start).
    pub fn restore(&mut self, run: &RecentRun) {
        let entry = self.entry(&run.workspace_connector_id, &run.connector_slug);
        match run.duration_ms {
            Some(ms) => entry.note_duration(
                run.completed_at.map_or(0, |t| t.timestamp_millis()),
                u32::try_from(ms.max(0)).unwrap_or(u32::MAX),
            ),
            None => entry.note_created(run.created_at.timestamp_millis()),
        }
    }

    /// Live runs read: scheduled ones count as creations of their connection (once is
    /// enough, a creation already noted is not noted again).
    pub fn observe_active<'a>(&mut self, active: impl IntoIterator<Item = &'a LiveRun>) {
        for run in active {
            let Some(id) = &run.workspace_connector_id else {
                continue;
            };
            if run.trigger_type.as_deref() == Some(SCHEDULED_TRIGGER) {
                self.entry(id, &run.connector_slug)
                    .note_created(run.created_at.timestamp_millis());
            }
        }
    }

    /// Overdue connections and overrunning live runs at `now`. Connections silent for
    /// longer than `forget_after` are retired: not counted, and forgotten.
    pub fn signals<'a>(
        &mut self,
        now: DateTime<Utc>,
        active: impl IntoIterator<Item = &'a LiveRun>,
        rules: &LearnedRules,
    ) -> LearnedSignals {
        let now_ms = now.timestamp_millis();
        let forget_ms = rules.forget_after.num_milliseconds();
        let mut signals = LearnedSignals::default();
        // One pass over every connection: retire the silent ones, note the overdue ones.
        self.by_id.retain(|id, learned| {
            let heard = learned.latest_created_ms().or_else(|| {
                learned.completed[..usize::from(learned.durations_len)]
                    .iter()
                    .max()
                    .copied()
            });
            if heard.is_none_or(|t| now_ms - t > forget_ms) {
                return false;
            }
            if let (Some(latest), Some(interval)) =
                (learned.latest_created_ms(), learned.interval_ms())
            {
                let silent = now_ms - latest;
                if interval > 0 && silent as f64 > rules.overdue_factor * interval as f64 {
                    signals.overdue.push(Overdue {
                        workspace_connector_id: id.clone(),
                        connector: learned.connector.clone(),
                        past_due_seconds: (silent - interval) as f64 / 1000.0,
                    });
                }
            }
            true
        });
        if self.by_id.len() * 2 < self.by_id.capacity() {
            self.by_id.shrink_to_fit();
        }
        let mut overrunning: HashMap<&str, u64> = HashMap::new();
        for run in active {
            if run.status != Status::InProgress {
                continue;
            }
            let Some(p95) = (run.workspace_connector_id.as_ref())
                .and_then(|id| self.by_id.get(id))
                .and_then(|learned| learned.p95_duration_ms())
            else {
                continue;
            };
            let limit_ms = (rules.overrun_factor * f64::from(p95))
                .max(rules.overrun_min.num_milliseconds() as f64);
            let started = run.started_at.unwrap_or(run.created_at);
            if (now_ms - started.timestamp_millis()) as f64 > limit_ms {
                *overrunning.entry(run.connector_slug.as_str()).or_default() += 1;
            }
        }
        signals.overrunning = overrunning
            .into_iter()
            .map(|(c, n)| (c.to_owned(), n))
            .collect();
        signals
    }
}

#[cfg(test)]
impl Learned {
    /// A connection's window with these scheduled runs' creation times noted.
    fn with_created(created: &[i64]) -> Self {
        let mut l = Learned::new("a");
        for t in created {
            l.note_created(*t);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(created: &[i64]) -> Learned {
        Learned::with_created(created)
    }

    #[test]
    fn the_schedule_is_the_median_gap_of_the_latest_runs() {
        assert_eq!(learned(&[0, 10, 20, 30]).interval_ms(), None, "4 runs");
        assert_eq!(learned(&[0, 10, 20, 30, 40]).interval_ms(), Some(10));
        // One late run and one early run do not move a median.
        assert_eq!(learned(&[0, 10, 20, 45, 50, 60]).interval_ms(), Some(10));
        // Out of order and repeated creations land once, in order.
        let l = learned(&[40, 0, 20, 10, 30, 20, 40]);
        assert_eq!(l.interval_ms(), Some(10));
        assert_eq!(l.latest_created_ms(), Some(40));
        // Only the latest 21 are kept: an old schedule is forgotten.
        let mut times: Vec<i64> = (0..30).map(|i| i * 1000).collect();
        times.extend((0..21).map(|i| 100_000 + i * 10));
        assert_eq!(learned(&times).interval_ms(), Some(10));
        // Something older than everything kept does not enter a full window.
        let mut l = learned(&times);
        l.note_created(5);
        assert_eq!(l.created[0], 100_000);
    }

    #[test]
    fn the_usual_duration_is_the_p95_of_the_latest_successes() {
        let mut l = Learned::new("a");
        for (i, d) in [100, 200, 300, 400].into_iter().enumerate() {
            l.note_duration(i as i64, d);
        }
        assert_eq!(l.p95_duration_ms(), None, "4 runs");
        l.note_duration(4, 10_000);
        assert_eq!(l.p95_duration_ms(), Some(10_000), "p95 of 5 is the largest");
        for i in 5..40 {
            l.note_duration(i, 50);
        }
        // The latest 20 are all 50 ms: the old ones are gone.
        assert_eq!(l.p95_duration_ms(), Some(50));
        l.note_duration(39, 50);
        assert_eq!(l.durations_len as usize, DURATION_RUNS);
    }
}

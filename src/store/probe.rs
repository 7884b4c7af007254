//! Proving the store can do what the service will ask of it: every kind of read the
//! scanner, the API and the status page run, once each and bounded, through the very
//! statements and decoders `serve` uses. `check` prints each step; `serve --observe-only`
//! refuses to start when one fails (a table whose rows syncwatch cannot decode would
//! otherwise fail every scan).

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::ConnectionId;

use super::{ListFilter, Position, StatusFilter, Store, StoreError, StuckCutoffs};

/// One read of the probe: what it is, and how many rows it read or why it failed.
#[derive(Debug)]
pub struct Probed {
    pub read: &'static str,
    pub outcome: Result<usize, StoreError>,
}

/// Rows one step reads at most (the aggregate: runs it aggregates).
const PROBE_ROWS: usize = 20;

impl Store {
    /// Run each kind of read once. Later steps take their ids from earlier ones (a listed
    /// run, a walked connection); a step with nothing to go on reads by the nil id.
    pub async fn probe(&self) -> Vec<Probed> {
        let mut done = Vec::new();
        let now = match self.scan().db_now().await {
            Ok(now) => now,
            Err(e) => {
                done.push(failed("the database clock", e));
                return done;
            }
        };
        done.push(Probed {
            read: "the database clock",
            outcome: Ok(1),
        });
        let first = step(&mut done, "the oldest completion", async {
            let first = self.scan().first_completed_at().await?;
            Ok((usize::from(first.is_some()), first))
        })
        .await
        .flatten();
        // The aggregate and the run-by-run read over the oldest few runs only (all of them
        // when fewer remain). Without the boundary they are not run: over the whole table
        // they would be no probe.
        let boundary = step(&mut done, "where the first chunk of runs ends", async {
            let upto = self
                .scan()
                .terminal_boundary(None, now, PROBE_ROWS as u64)
                .await?;
            Ok((usize::from(upto.is_some()), upto))
        })
        .await;
        if let Some(upto) = boundary.map(|upto| upto.unwrap_or_else(|| now.into())) {
            self.probe_terminal_runs(&mut done, first, upto).await;
        }
        let connections = step(&mut done, "the scanner's per-connection states", async {
            let chunk = self.scan().connection_states(None, PROBE_ROWS).await?;
            let ids: Vec<ConnectionId> = chunk
                .states
                .iter()
                .map(|s| s.workspace_connector_id.clone())
                .collect();
            Ok((ids.len(), ids))
        })
        .await
        .unwrap_or_default();
        let placeholder = self.catalogue().connection_kind().placeholder();
        let connection = connections.first().cloned().unwrap_or(placeholder.clone());
        let cutoffs = cutoffs(now);
        step(&mut done, "the scanner's live runs per connector", async {
            Ok((self.live().active_groups(&cutoffs).await?.len(), ()))
        })
        .await;
        step(&mut done, "the scanner's stuck runs", async {
            Ok((self.live().stuck_runs(&cutoffs).await?.len(), ()))
        })
        .await;
        step(&mut done, "the scanner's live runs", async {
            Ok((self.live().live_runs(None, PROBE_ROWS).await?.len(), ()))
        })
        .await;
        step(
            &mut done,
            "the scanner's live runs changed in the last hour",
            async {
                let since = now - chrono::Duration::hours(1);
                Ok((
                    self.live().live_runs(Some(since), PROBE_ROWS).await?.len(),
                    (),
                ))
            },
        )
        .await;
        step(&mut done, "the learned signals' recent runs", async {
            // With no connection to go on, a nil id still runs the statement.
            let ids = if connections.is_empty() {
                vec![placeholder]
            } else {
                connections.clone()
            };
            Ok((self.live().recent_runs(&ids).await?.len(), ()))
        })
        .await;
        let listed = step(&mut done, "the API's list of runs", async {
            let filter = ListFilter {
                limit: PROBE_ROWS as u32,
                ..ListFilter::default()
            };
            let page = self.run_reads().list(&filter).await?;
            let id = page
                .items
                .first()
                .map(|r| r.workspace_connector_sync_log_id);
            Ok((page.items.len(), id))
        })
        .await
        .flatten();
        step(&mut done, "the API's run by id", async {
            let run = self.run_reads().get(listed.unwrap_or(Uuid::nil())).await?;
            Ok((usize::from(run.is_some()), ()))
        })
        .await;
        step(&mut done, "the API's connection status", async {
            let filter = StatusFilter {
                workspace_connector_id: Some(connection.clone()),
                limit: 1,
                ..StatusFilter::default()
            };
            Ok((
                self.run_reads()
                    .connector_status(&filter)
                    .await?
                    .items
                    .len(),
                (),
            ))
        })
        .await;
        step(
            &mut done,
            "the status page's outcomes of the last hour",
            async {
                let outcomes = self
                    .pages()
                    .outcomes_since(now - Duration::hours(1))
                    .await?;
                Ok((outcomes.len(), ()))
            },
        )
        .await;
        step(&mut done, "the status page's connection summary", async {
            self.pages().connection_summary(&connection).await?;
            Ok((1, ()))
        })
        .await;
        step(&mut done, "the scanner's checkpoint", async {
            let saved = self.state().load_checkpoint().await?;
            Ok((usize::from(saved.is_some()), ()))
        })
        .await;
        done
    }
}

impl Store {
    /// The scanner's two reads of terminal runs, over those completed at or before `upto`.
    async fn probe_terminal_runs(
        &self,
        done: &mut Vec<Probed>,
        first: Option<DateTime<Utc>>,
        upto: Position,
    ) {
        step(done, "the scanner's aggregate of terminal runs", async {
            let rows = self
                .scan()
                .terminal_aggregate(None, &upto, &[1.0, 60.0], &[1.0])
                .await?;
            Ok((rows.len(), ()))
        })
        .await;
        let after = Position::from(first.unwrap_or(upto.at) - Duration::seconds(1));
        let limit = Some(PROBE_ROWS as u64);
        step(done, "the scanner's terminal runs one by one", async {
            let rows = self
                .scan()
                .terminal_after(&after, Some(&upto), limit)
                .await?;
            Ok((rows.len(), ()))
        })
        .await;
    }
}

/// Record one step; its value when it succeeded.
async fn step<T>(
    done: &mut Vec<Probed>,
    read: &'static str,
    run: impl std::future::Future<Output = Result<(usize, T), StoreError>>,
) -> Option<T> {
    match run.await {
        Ok((rows, value)) => {
            done.push(Probed {
                read,
                outcome: Ok(rows),
            });
            Some(value)
        }
        Err(e) => {
            done.push(failed(read, e));
            None
        }
    }
}

fn failed(read: &'static str, error: StoreError) -> Probed {
    Probed {
        read,
        outcome: Err(error),
    }
}

/// Any cut-offs exercise the same statements; these are the defaults' shape.
fn cutoffs(now: DateTime<Utc>) -> StuckCutoffs {
    StuckCutoffs {
        scheduled_before: now - Duration::minutes(15),
        idle_before: now - Duration::minutes(30),
        started_before: now - Duration::hours(6),
    }
}

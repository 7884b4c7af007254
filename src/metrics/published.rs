//! The published snapshot: the scanner swaps a new one in whole, scrapes read it without
//! waiting; its exposition is encoded once (text and gzip), on an encoder thread of its own
//! or by the first scrape that comes before it, and the text is kept only while somebody
//! scrapes without gzip.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use prometheus::{IntGauge, IntGaugeVec};

use super::{exposition, Exposition, Metrics, Snapshot};

/// A published snapshot and, once encoded, its exposition (and, once a scrape without
/// gzip asked for it and the text was not kept, the text decompressed once).
pub(super) struct Published {
    snapshot: Arc<Snapshot>,
    exposition: OnceLock<Arc<Exposition>>,
    plain: OnceLock<Arc<Vec<u8>>>,
}

impl Published {
    pub(super) fn new(snapshot: Snapshot) -> Arc<Self> {
        Arc::new(Self {
            snapshot: Arc::new(snapshot),
            exposition: OnceLock::new(),
            plain: OnceLock::new(),
        })
    }
}

/// How long after a scrape without gzip the text of each new snapshot is kept encoded.
const KEEP_TEXT_FOR_SECS: i64 = 600;

/// What encoding a snapshot needs besides the snapshot: the size gauges, and when a
/// scrape last asked for the text.
#[derive(Clone)]
struct EncodeState {
    series: IntGauge,
    bytes: IntGaugeVec,
    /// Unix seconds of the last scrape without gzip; 0 for never.
    plain_requested: Arc<AtomicI64>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Metrics {
    /// Swap in a new snapshot; scrapes after this see it whole. Its exposition is encoded
    /// once, on the encoder thread (a scrape that comes first encodes it itself; either
    /// way once).
    pub fn publish(&self, snapshot: Snapshot) {
        let published = Published::new(snapshot);
        let previous = {
            let mut slot = self.published.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *slot, published.clone())
        };
        let encoder = self.encoder.get_or_init(|| start_encoder(self));
        // Freeing the previous snapshot (tens of thousands of map entries) is the encoder
        // thread's work too, not the scan's. When the encoder is gone, it is freed here
        // and the next scrape encodes the new one instead.
        let _ = encoder.send(Job::Retire(previous));
        let _ = encoder.send(Job::Encode(published));
    }

    fn current(&self) -> Arc<Published> {
        self.published
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn encode_state(&self) -> EncodeState {
        EncodeState {
            series: self.exposition_series.clone(),
            bytes: self.exposition_bytes.clone(),
            plain_requested: self.plain_requested.clone(),
        }
    }

    /// `published`'s exposition, encoding it if nobody has yet.
    fn encoded(&self, published: &Arc<Published>) -> Arc<Exposition> {
        encode_once(published, &self.encode_state())
    }

    /// The domain section as text: stored, or decompressed once per snapshot. Asking
    /// keeps the text of the next snapshots encoded for [`KEEP_TEXT_FOR_SECS`].
    pub(crate) fn with_domain_text<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        self.plain_requested.store(unix_now(), Ordering::Relaxed);
        let published = self.current();
        let exposition = self.encoded(&published);
        if exposition.text.len() == exposition.text_len {
            return f(&exposition.text);
        }
        let text = published
            .plain
            .get_or_init(|| Arc::new(exposition.plain().into_owned()));
        f(text)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current().snapshot.clone()
    }

    /// The domain section of the current snapshot, encoded (once).
    pub(crate) fn domain_exposition(&self) -> Arc<Exposition> {
        self.encoded(&self.current())
    }

    /// The self metrics, encoded now (a few dozen samples).
    fn self_text(&self) -> Vec<u8> {
        exposition::text(&self.registry.gather())
    }

    /// The whole exposition as text: the stored domain section, then the self metrics.
    pub fn render_bytes(&self) -> Vec<u8> {
        let own = self.self_text();
        self.with_domain_text(|domain| {
            let mut body = Vec::with_capacity(domain.len() + own.len());
            body.extend_from_slice(domain);
            body.extend_from_slice(&own);
            body
        })
    }

    /// The whole exposition gzipped: the stored gzip member of the domain section, then a
    /// member for the self metrics.
    pub fn render_gzip(&self) -> Vec<u8> {
        let domain = self.domain_exposition();
        let own = exposition::gzip(&self.self_text());
        let mut body = Vec::with_capacity(domain.gzip.len() + own.len());
        body.extend_from_slice(&domain.gzip);
        body.extend_from_slice(&own);
        body
    }
}

/// `published`'s exposition, encoded by whoever comes first (the encoder thread, or a
/// scrape that arrives before it), with the size gauges set.
fn encode_once(published: &Arc<Published>, state: &EncodeState) -> Arc<Exposition> {
    published
        .exposition
        .get_or_init(|| {
            let asked = state.plain_requested.load(Ordering::Relaxed);
            let keep_text = unix_now() - asked <= KEEP_TEXT_FOR_SECS;
            let exposition = Exposition::from_snapshot(&published.snapshot, keep_text);
            state.series.set(exposition.series as i64);
            state
                .bytes
                .with_label_values(&["identity"])
                .set(exposition.text_len as i64);
            state
                .bytes
                .with_label_values(&["gzip"])
                .set(exposition.gzip.len() as i64);
            Arc::new(exposition)
        })
        .clone()
}

/// The encoder thread's work.
pub(super) enum Job {
    /// Encode a published snapshot (skipped when a newer one is queued behind it).
    Encode(Arc<Published>),
    /// Free a snapshot that is no longer published (freed here unless a scrape still
    /// holds it).
    Retire(Arc<Published>),
}

/// One long-lived thread encodes each published snapshot, newest first (an older one
/// still queued is skipped): not the scanner's task, and one thread rather than a pool,
/// so the large, short-lived encoding buffers reuse one allocator arena instead of
/// spreading over many. It holds no `Metrics` (only the gauges), so it ends when the last
/// clone is dropped.
fn start_encoder(metrics: &Metrics) -> std::sync::mpsc::Sender<Job> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let state = metrics.encode_state();
    let spawned = std::thread::Builder::new()
        .name("syncwatch-encoder".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut newest = None;
                for job in std::iter::once(first).chain(rx.try_iter()) {
                    match job {
                        Job::Encode(published) => newest = Some(published),
                        Job::Retire(previous) => drop(previous),
                    }
                }
                if let Some(published) = newest {
                    encode_once(&published, &state);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the encoder thread; scrapes will encode");
    }
    tx
}

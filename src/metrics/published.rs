//! The published snapshot: the scanner swaps a new one in whole, scrapes read it without
//! waiting; its exposition is encoded once per format (text and gzip), on an encoder
//! thread of its own or by the first scrape that comes before it. The encoder thread
//! encodes the formats scraped in the last ten minutes (the Prometheus text format until
//! the first scrape); the text is kept only while somebody scrapes without gzip.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use prometheus::{IntGauge, IntGaugeVec};

use super::openmetrics::{self, Format};
use super::{exposition, Exposition, Metrics, Snapshot};

/// A published snapshot and, once encoded, its exposition in each format (and, once a
/// scrape without gzip asked for it and the text was not kept, the text decompressed
/// once).
pub(super) struct Published {
    snapshot: Arc<Snapshot>,
    exposition: [OnceLock<Arc<Exposition>>; 2],
    plain: [OnceLock<Arc<Vec<u8>>>; 2],
}

impl Published {
    pub(super) fn new(snapshot: Snapshot) -> Arc<Self> {
        Arc::new(Self {
            snapshot: Arc::new(snapshot),
            exposition: Default::default(),
            plain: Default::default(),
        })
    }
}

/// How long after a scrape without gzip the text of each new snapshot is kept encoded,
/// and after a scrape in a format each new snapshot is encoded in it ahead of the next.
const KEEP_TEXT_FOR_SECS: i64 = 600;

/// When scrapes last asked for each format, and for the text without gzip (Unix seconds;
/// 0 for never). The Prometheus text format counts as asked at the start.
#[derive(Debug)]
pub(super) struct Requested {
    format: [AtomicI64; 2],
    plain: AtomicI64,
}

impl Default for Requested {
    fn default() -> Self {
        Self {
            format: [AtomicI64::new(unix_now()), AtomicI64::new(0)],
            plain: AtomicI64::new(0),
        }
    }
}

impl Requested {
    fn recent(at: &AtomicI64) -> bool {
        unix_now() - at.load(Ordering::Relaxed) <= KEEP_TEXT_FOR_SECS
    }
}

/// What encoding a snapshot needs besides the snapshot: the size gauges, and when
/// scrapes last asked for what.
#[derive(Clone)]
struct EncodeState {
    series: IntGauge,
    bytes: IntGaugeVec,
    requested: Arc<Requested>,
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
            requested: self.requested.clone(),
        }
    }

    /// `published`'s exposition in `format`, encoding it if nobody has yet. Asking keeps
    /// the next snapshots encoded in `format` ahead of the scrapes for
    /// [`KEEP_TEXT_FOR_SECS`].
    fn encoded(&self, published: &Arc<Published>, format: Format) -> Arc<Exposition> {
        self.requested.format[format.index()].store(unix_now(), Ordering::Relaxed);
        encode_once(published, format, &self.encode_state())
    }

    /// The domain section as text in `format`: stored, or decompressed once per snapshot.
    /// Asking keeps the text of the next snapshots encoded for [`KEEP_TEXT_FOR_SECS`].
    pub(crate) fn with_domain_text_in<T>(&self, format: Format, f: impl FnOnce(&[u8]) -> T) -> T {
        self.requested.plain.store(unix_now(), Ordering::Relaxed);
        let published = self.current();
        let exposition = self.encoded(&published, format);
        if exposition.text.len() == exposition.text_len {
            return f(&exposition.text);
        }
        let text = published.plain[format.index()]
            .get_or_init(|| Arc::new(exposition.plain().into_owned()));
        f(text)
    }

    /// The domain section in the Prometheus text format.
    pub(crate) fn with_domain_text<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        self.with_domain_text_in(Format::Text, f)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current().snapshot.clone()
    }

    /// The domain section of the current snapshot in the text format, encoded (once).
    pub(crate) fn domain_exposition(&self) -> Arc<Exposition> {
        self.domain_exposition_in(Format::Text)
    }

    /// The domain section of the current snapshot in `format`, encoded (once).
    pub(crate) fn domain_exposition_in(&self, format: Format) -> Arc<Exposition> {
        self.encoded(&self.current(), format)
    }

    /// The self metrics, encoded now (a few dozen samples); in OpenMetrics with the
    /// closing `# EOF`.
    fn self_text(&self, format: Format) -> Vec<u8> {
        let families = self.registry.gather();
        match format {
            Format::Text => exposition::text(&families),
            Format::OpenMetrics => {
                let mut text = openmetrics::encode(&families);
                text.extend_from_slice(openmetrics::EOF);
                text
            }
        }
    }

    /// The whole exposition as text: the stored domain section, then the self metrics.
    pub fn render_bytes(&self) -> Vec<u8> {
        self.render_in(Format::Text, false)
    }

    /// The whole exposition gzipped.
    pub fn render_gzip(&self) -> Vec<u8> {
        self.render_in(Format::Text, true)
    }

    /// The whole exposition in `format`: the stored domain section, then the self metrics
    /// encoded now. Gzipped, it is the stored gzip member of the domain section, then a
    /// member for the self metrics.
    pub fn render_in(&self, format: Format, gzip: bool) -> Vec<u8> {
        let Rendered { domain, own } = self.render_parts(format, gzip);
        let mut body = Vec::with_capacity(domain.len() + own.len());
        body.extend_from_slice(&domain);
        body.extend_from_slice(&own);
        body
    }

    /// [`Metrics::render_in`] in two parts: the domain section, shared with every other
    /// scrape of this snapshot (never copied per scrape, so concurrent scrapes of a large
    /// exposition cost one copy of it, gzipped or not), and the self metrics, encoded now.
    pub fn render_parts(&self, format: Format, gzip: bool) -> Rendered {
        let own = self.self_text(format);
        if gzip {
            let domain = self.domain_exposition_in(format);
            return Rendered {
                domain: Bytes::from_owner(Shared::Gzip(domain)),
                own: exposition::gzip(&own),
            };
        }
        self.requested.plain.store(unix_now(), Ordering::Relaxed);
        let published = self.current();
        let exposition = self.encoded(&published, format);
        let domain = if exposition.text.len() == exposition.text_len {
            Shared::Text(exposition)
        } else {
            Shared::Plain(
                published.plain[format.index()]
                    .get_or_init(|| Arc::new(exposition.plain().into_owned()))
                    .clone(),
            )
        };
        Rendered {
            domain: Bytes::from_owner(domain),
            own,
        }
    }
}

/// A scrape's body: the snapshot's shared domain section, then this scrape's self metrics.
pub struct Rendered {
    pub domain: Bytes,
    pub own: Vec<u8>,
}

/// The stored bytes a scrape body points into, kept alive while any body does.
enum Shared {
    Gzip(Arc<Exposition>),
    Text(Arc<Exposition>),
    Plain(Arc<Vec<u8>>),
}

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        match self {
            Shared::Gzip(e) => &e.gzip,
            Shared::Text(e) => &e.text,
            Shared::Plain(text) => text,
        }
    }
}

/// `published`'s exposition in `format`, encoded by whoever comes first (the encoder
/// thread, or a scrape that arrives before it), with the size gauges set.
fn encode_once(published: &Arc<Published>, format: Format, state: &EncodeState) -> Arc<Exposition> {
    published.exposition[format.index()]
        .get_or_init(|| {
            let keep_text = Requested::recent(&state.requested.plain);
            let exposition = Exposition::from_snapshot(&published.snapshot, format, keep_text);
            state.series.set(exposition.series as i64);
            let bytes = |encoding| state.bytes.with_label_values(&[format.as_str(), encoding]);
            bytes("identity").set(exposition.text_len as i64);
            bytes("gzip").set(exposition.gzip.len() as i64);
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
                    for format in Format::ALL {
                        if Requested::recent(&state.requested.format[format.index()]) {
                            encode_once(&published, format, &state);
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the encoder thread; scrapes will encode");
    }
    tx
}

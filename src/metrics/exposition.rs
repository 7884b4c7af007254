//! The domain snapshot's exposition, encoded once per published snapshot (plain text and
//! gzip) rather than at every scrape: a scrape writes the stored bytes and encodes only
//! the small self-metrics section.
//!
//! A gzip response is the stored gzip member of the domain section followed by a member
//! of its own for the self metrics: a multi-member gzip stream (RFC 1952 §2.2), which
//! Prometheus's reader, like every gzip reader that follows the RFC, reads as one text.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, TextEncoder};

/// A section of the exposition: gzip always, the text too when it is kept (see
/// [`Exposition::without_text`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Empty when not kept; [`Exposition::plain`] then decompresses `gzip`.
    pub text: Vec<u8>,
    pub gzip: Vec<u8>,
    /// Samples (lines that are not comments).
    pub series: usize,
    /// Bytes of the text, kept or not.
    pub text_len: usize,
}

impl Exposition {
    /// Encode `families` as text with the `prometheus` crate's encoder, and compress it.
    pub fn encode(families: &[MetricFamily]) -> Self {
        Self::from_text(text(families))
    }

    /// Write `snapshot`'s text in `format` straight from its maps into the compressor,
    /// keeping the text too only when `keep_text`: without it the whole text is never held.
    pub fn from_snapshot(
        snapshot: &crate::metrics::Snapshot,
        format: super::openmetrics::Format,
        keep_text: bool,
    ) -> Self {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        let mut text = Vec::new();
        let mut text_len = 0;
        let mut spill = |piece: &[u8]| {
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(piece);
            text_len += piece.len();
            if keep_text {
                text.extend_from_slice(piece);
            }
        };
        let mut sink = super::text::TextSink::new(format, &mut spill);
        snapshot.write_to(&mut sink);
        let series = sink.series;
        sink.finish();
        let mut gzip = encoder.finish().unwrap_or_default();
        gzip.shrink_to_fit();
        text.shrink_to_fit();
        Self {
            text,
            gzip,
            series,
            text_len,
        }
    }

    /// Kept for the snapshot's lifetime: trimmed to size (a grown `Vec` holds up to twice
    /// its length).
    fn from_text(mut text: Vec<u8>) -> Self {
        text.shrink_to_fit();
        let series = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty() && l[0] != b'#')
            .count();
        let gzip = gzip(&text);
        Self {
            text_len: text.len(),
            text,
            gzip,
            series,
        }
    }

    /// The same without the text: kept only while somebody scrapes without gzip (Prometheus
    /// always asks for gzip), it is most of the memory an exposition holds.
    #[cfg(test)]
    fn without_text(mut self) -> Self {
        self.text = Vec::new();
        self
    }

    /// The text, borrowed when kept, else decompressed from `gzip`.
    pub fn plain(&self) -> std::borrow::Cow<'_, [u8]> {
        if self.text.len() == self.text_len {
            return std::borrow::Cow::Borrowed(&self.text);
        }
        let mut text = Vec::with_capacity(self.text_len);
        let mut decoder = flate2::read::MultiGzDecoder::new(self.gzip.as_slice());
        if let Err(e) = std::io::Read::read_to_end(&mut decoder, &mut text) {
            tracing::error!(error = %e, "decompressing the stored exposition failed");
        }
        std::borrow::Cow::Owned(text)
    }
}

/// The text exposition of `families`.
pub fn text(families: &[MetricFamily]) -> Vec<u8> {
    let mut buffer = Vec::new();
    if let Err(e) = TextEncoder::new().encode(families, &mut buffer) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    buffer
}

/// One gzip member holding `bytes`. A fast level: the exposition is text with long runs
/// of repeated label names, which compresses well at any level.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 8), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    let mut compressed = encoder.finish().unwrap_or_default();
    compressed.shrink_to_fit();
    compressed
}

/// Whether an `Accept-Encoding` header value accepts gzip (a `q=0` refuses it).
pub fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|part| {
        let mut fields = part.split(';').map(str::trim);
        let coding = fields.next().unwrap_or("");
        let refused = fields.any(|f| {
            f.strip_prefix("q=")
                .and_then(|q| q.parse::<f64>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn an_exposition_without_its_text_gives_the_same_text_back() {
        let text = b"# TYPE a counter\na_total{x=\"1\"} 3\nb 4\n".repeat(500);
        let kept = Exposition::from_text(text.clone());
        assert_eq!(kept.series, 1000);
        assert_eq!(kept.text_len, text.len());
        assert!(matches!(kept.plain(), std::borrow::Cow::Borrowed(t) if t == text.as_slice()));
        let dropped = kept.clone().without_text();
        assert!(dropped.text.is_empty());
        assert_eq!((dropped.series, dropped.text_len), (1000, text.len()));
        assert_eq!(dropped.plain().as_ref(), text.as_slice());
        let empty = Exposition::from_text(Vec::new()).without_text();
        assert!(empty.plain().is_empty());
    }

    /// A snapshot far larger than one piece of the writer: the stored gzip decompresses to
    /// exactly the text, kept or not, and the series are counted as written.
    #[test]
    fn a_streamed_exposition_is_the_written_text() {
        use crate::metrics::{HistogramData, Label, Snapshot};
        let mut snapshot = Snapshot {
            leader: true,
            ..Snapshot::default()
        };
        let bounds: std::sync::Arc<[f64]> = vec![1.0, 30.0, 600.0].into();
        for i in 0..3000 {
            let connector = Label::from(format!("connector-{i}"));
            let status = Label::from(if i % 7 == 0 { "error" } else { "success" });
            let key = (connector, Label::from("cloud_task"), status);
            snapshot.runs.insert(key.clone(), i);
            let mut histogram = HistogramData::zeroed(&bounds);
            histogram.observe(i as f64);
            snapshot.durations.insert(key, histogram);
        }
        let mut text = Vec::new();
        snapshot.write_text(&mut text);
        assert!(
            text.len() > 4 * 64 * 1024,
            "spans many pieces: {}",
            text.len()
        );
        let text_format = crate::metrics::openmetrics::Format::Text;
        let kept = Exposition::from_snapshot(&snapshot, text_format, true);
        let dropped = Exposition::from_snapshot(&snapshot, text_format, false);
        assert_eq!(kept.text, text);
        assert!(dropped.text.is_empty());
        for exposition in [&kept, &dropped] {
            assert_eq!(exposition.text_len, text.len());
            assert_eq!(
                exposition.series,
                3000 + 3000 * 6,
                "a runs sample, 6 histogram lines"
            );
            let mut unzipped = Vec::new();
            flate2::read::MultiGzDecoder::new(exposition.gzip.as_slice())
                .read_to_end(&mut unzipped)
                .unwrap();
            assert_eq!(unzipped, text);
            assert_eq!(exposition.plain().as_ref(), text.as_slice());
        }
    }

    #[test]
    fn gzip_is_negotiated_as_prometheus_asks() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=1.0, *;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip(""));
    }

    #[test]
    fn two_members_read_back_as_one_text() {
        let (a, b) = (b"first section\n".repeat(50), b"second\n".to_vec());
        let mut stream = gzip(&a);
        stream.extend(gzip(&b));
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&stream[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, [a, b].concat());
    }
}

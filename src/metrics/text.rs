//! The snapshot's exposition written straight from its maps, in either format: the
//! Prometheus text format (the same bytes as the `prometheus` crate's text encoder over
//! [`Snapshot::families`]; a test holds the two together) or OpenMetrics with exemplars
//! (`openmetrics.rs`), without building the protobuf tree first, which at 100k series is
//! most of the encoding's time and transient memory.

use std::io::Write;

use super::histogram::Exemplar;
use super::openmetrics::{self, Format};
use super::snapshot::{
    Family, HistogramData, Snapshot, ACTIVE, CONSECUTIVE_FAILURES, DISPATCH_DELAY, DURATION,
    FAILING_CONNECTIONS, FAILURES, LAST_FAILURE, LAST_SUCCESS, OLDEST_ACTIVE, OVERDUE,
    OVERDUE_SECONDS, OVERRUNNING, RECORDS_SYNCED, RUNS, STUCK,
};

/// Where the text goes: a buffer handed to `spill` in pieces of about [`SPILL_AT`] bytes,
/// so a caller that only compresses it never holds the whole text (~13 MB at 100k series).
pub struct TextSink<'a> {
    buf: Vec<u8>,
    format: Format,
    spill: &'a mut dyn FnMut(&[u8]),
    /// Samples written (lines that are not comments).
    pub series: usize,
}

/// Bytes buffered before they are handed on.
const SPILL_AT: usize = 64 * 1024;

impl<'a> TextSink<'a> {
    pub fn new(format: Format, spill: &'a mut dyn FnMut(&[u8])) -> Self {
        Self {
            buf: Vec::with_capacity(SPILL_AT + 4096),
            format,
            spill,
            series: 0,
        }
    }

    /// After a whole series (or a histogram's lines): hand on a full buffer.
    fn row_done(&mut self) {
        if self.buf.len() >= SPILL_AT {
            (self.spill)(&self.buf);
            self.buf.clear();
        }
    }

    /// Hand on what is left.
    pub fn finish(self) {
        if !self.buf.is_empty() {
            (self.spill)(&self.buf);
        }
    }
}

/// `\` → `\\`, newline → `\n`, and with `quote` `"` → `\"`, as the text format wants.
pub(super) fn escape(out: &mut Vec<u8>, text: &str, quote: bool) {
    let special = |b: &u8| *b == b'\\' || *b == b'\n' || (quote && *b == b'"');
    if !text.as_bytes().iter().any(special) {
        // Label values almost never need escaping: copy them whole.
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quote => out.extend_from_slice(b"\\\""),
            // Multi-byte UTF-8 sequences contain no ASCII bytes: copied as they are.
            _ => out.push(b),
        }
    }
}

/// A sample value as `Display` for f64 writes it (what the crate's encoder writes); whole
/// numbers below 2^53 take the integer formatter, which writes the same digits faster.
pub(super) fn value(out: &mut Vec<u8>, value: f64) {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if value.fract() == 0.0 && value.abs() < EXACT && !(value == 0.0 && value.is_sign_negative()) {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

fn header(out: &mut TextSink<'_>, spec: &Family) {
    let format = out.format;
    openmetrics::header(&mut out.buf, format, spec.name, spec.help, spec.kind);
}

/// `{name="value",…}`, values escaped; nothing for no labels.
pub(super) fn label_set<'a>(out: &mut Vec<u8>, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    let mut separator = b'{';
    for (name, value) in pairs {
        out.push(separator);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        escape(out, value, true);
        out.push(b'"');
        separator = b',';
    }
    if separator == b',' {
        out.push(b'}');
    }
}

fn sample(
    out: &mut TextSink<'_>,
    spec: &Family,
    postfix: &str,
    values: &[&str],
    extra: Option<(&str, &str)>,
    number: f64,
    exemplar: Option<&Exemplar>,
) {
    out.series += 1;
    let openmetrics = out.format == Format::OpenMetrics;
    let out = &mut out.buf;
    out.extend_from_slice(spec.name.as_bytes());
    out.extend_from_slice(postfix.as_bytes());
    let pairs = spec.labels.iter().copied().zip(values.iter().copied());
    label_set(out, pairs.chain(extra));
    out.push(b' ');
    value(out, number);
    if let Some(exemplar) = exemplar.filter(|_| openmetrics) {
        openmetrics::exemplar(out, exemplar);
    }
    out.push(b'\n');
}

/// A counter or gauge family: each row is its label values and its value.
fn scalars<'a, const N: usize>(
    out: &mut TextSink<'_>,
    spec: &Family,
    rows: impl ExactSizeIterator<Item = ([&'a str; N], f64)>,
) {
    with_exemplars(out, spec, rows.map(|(values, value)| (values, value, None)));
}

/// The same, each row with the exemplar of its sample, if any.
fn with_exemplars<'a, 'e, const N: usize>(
    out: &mut TextSink<'_>,
    spec: &Family,
    rows: impl ExactSizeIterator<Item = ([&'a str; N], f64, Option<&'e Exemplar>)>,
) {
    if rows.len() == 0 {
        return;
    }
    header(out, spec);
    for (values, value, exemplar) in rows {
        sample(out, spec, "", &values, None, value, exemplar);
        out.row_done();
    }
}

fn histograms<'a, const N: usize>(
    out: &mut TextSink<'_>,
    spec: &Family,
    rows: impl ExactSizeIterator<Item = ([&'a str; N], &'a HistogramData)>,
) {
    if rows.len() == 0 {
        return;
    }
    header(out, spec);
    // The `le` values, formatted once per set of bounds (a family shares one).
    let mut les: Option<(&[f64], Vec<String>)> = None;
    for (values, data) in rows {
        let bounds: &[f64] = &data.bounds;
        if les.as_ref().is_none_or(|(b, _)| *b != bounds) {
            les = Some((bounds, bounds.iter().map(|b| openmetrics::le(*b)).collect()));
        }
        let le = les.as_ref().map_or(&[][..], |(_, le)| le.as_slice());
        let mut inf_seen = false;
        for (i, ((bound, count), le)) in
            data.bounds.iter().zip(&data.cumulative).zip(le).enumerate()
        {
            sample(
                out,
                spec,
                "_bucket",
                &values,
                Some(("le", le)),
                *count as f64,
                data.exemplar(i),
            );
            inf_seen |= bound.is_sign_positive() && bound.is_infinite();
        }
        if !inf_seen {
            let count = data.count as f64;
            let exemplar = data.exemplar(data.bounds.len());
            sample(
                out,
                spec,
                "_bucket",
                &values,
                Some(("le", "+Inf")),
                count,
                exemplar,
            );
        }
        sample(out, spec, "_sum", &values, None, data.sum, None);
        sample(out, spec, "_count", &values, None, data.count as f64, None);
        out.row_done();
    }
}

impl Snapshot {
    /// The text exposition of the domain families (empty when this replica does not lead).
    #[cfg(test)]
    pub(crate) fn write_text(&self, text: &mut Vec<u8>) {
        let mut append = |piece: &[u8]| text.extend_from_slice(piece);
        let mut sink = TextSink::new(Format::Text, &mut append);
        self.write_to(&mut sink);
        sink.finish();
    }

    /// The same, handed to `out` in pieces.
    pub fn write_to(&self, out: &mut TextSink<'_>) {
        if !self.leader {
            return;
        }
        let n = |v: &u64| *v as f64;
        scalars(
            out,
            &RUNS,
            self.runs
                .iter()
                .map(|((c, t, s), v)| ([&**c, &**t, &**s], n(v))),
        );
        let series = self.failure_series_with_exemplars();
        let rows = series.map(|(k, n, e)| (k, n as f64, e));
        with_exemplars(out, &FAILURES, rows);
        histograms(
            out,
            &DURATION,
            self.durations
                .iter()
                .map(|((c, t, s), h)| ([&**c, &**t, &**s], h)),
        );
        histograms(
            out,
            &DISPATCH_DELAY,
            self.dispatch_delays
                .iter()
                .map(|((c, t), h)| ([&**c, &**t], h)),
        );
        scalars(
            out,
            &RECORDS_SYNCED,
            self.records_synced.iter().map(|(c, v)| ([&**c], *v)),
        );
        scalars(
            out,
            &ACTIVE,
            self.active.iter().map(|((c, s), v)| ([&**c, &**s], n(v))),
        );
        scalars(
            out,
            &STUCK,
            self.stuck.iter().map(|((c, s), v)| ([&**c, &**s], n(v))),
        );
        scalars(
            out,
            &OLDEST_ACTIVE,
            self.oldest_active
                .iter()
                .map(|((c, s), v)| ([&**c, &**s], *v)),
        );
        scalars(
            out,
            &LAST_SUCCESS,
            self.last_success.iter().map(|(c, v)| ([&**c], *v)),
        );
        scalars(
            out,
            &LAST_FAILURE,
            self.last_failure.iter().map(|(c, v)| ([&**c], *v)),
        );
        scalars(
            out,
            &FAILING_CONNECTIONS,
            self.failing_connections.iter().map(|(c, v)| ([&**c], n(v))),
        );
        scalars(
            out,
            &OVERDUE,
            self.overdue_connections.iter().map(|(c, v)| ([&**c], n(v))),
        );
        scalars(
            out,
            &OVERDUE_SECONDS,
            self.overdue_seconds
                .iter()
                .map(|((c, id), v)| ([&**c, &**id], *v)),
        );
        scalars(
            out,
            &OVERRUNNING,
            self.overrunning.iter().map(|(c, v)| ([&**c], n(v))),
        );
        scalars(
            out,
            &CONSECUTIVE_FAILURES,
            self.consecutive_failures
                .iter()
                .map(|((c, id), v)| ([&**c, &**id], n(v))),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::Label;
    use super::*;

    /// Every family, with values that exercise the formatting: fractions, large and
    /// negative numbers, zero, and label values that need escaping.
    #[test]
    fn the_same_bytes_as_the_crate_encoder() {
        let h = |sum: f64| HistogramData {
            bounds: vec![0.5, 1.0, 15.0, 21600.0].into(),
            cumulative: vec![1, 2, 2, 3],
            sum,
            count: 4,
            exemplars: None,
        };
        let s = |v: &str| Label::from(v);
        let mut snap = Snapshot {
            leader: true,
            ..Snapshot::default()
        };
        snap.runs.insert((s("a"), s("cloud_task"), s("error")), 7);
        snap.runs
            .insert((s("we\"ird\\\nslug"), s("none"), s("success")), 0);
        snap.runs.insert(
            (s("zürich-\u{1F600}\\"), s("none"), s("success")),
            9007199254740993,
        );
        snap.failures
            .insert((s("a"), s("cloud_task"), s("auth"), s("customer")), 3);
        snap.failures
            .insert((s("a"), s("manual"), s("timeout"), s("provider")), 1);
        snap.failure_pairs = vec![(s("a"), s("cloud_task")), (s("b"), s("none"))];
        snap.failure_reasons = vec![(s("auth"), s("customer")), (s("other"), s("platform"))];
        snap.durations
            .insert((s("a"), s("none"), s("success")), h(1203.25));
        snap.dispatch_delays
            .insert((s("a"), s("manual")), h(0.1 + 0.2));
        snap.records_synced.insert(s("a"), 1e21);
        snap.active.insert((s("a"), s("scheduled")), 2);
        snap.stuck.insert((s("a"), s("scheduled")), 0);
        snap.oldest_active
            .insert((s("a"), s("scheduled")), 1767226740.123);
        snap.last_success.insert(s("a"), 1767226320.0);
        snap.last_failure.insert(s("a"), -1.5);
        snap.last_failure.insert(s("b"), -0.0);
        snap.last_failure.insert(s("c"), -9007199254740991.0);
        snap.failing_connections.insert(s("a"), 1);
        snap.overdue_connections.insert(s("a"), 0);
        snap.overdue_seconds.insert(
            (s("a"), s("00000000-0000-0000-0000-000000000001")),
            86587.924,
        );
        snap.overrunning.insert(s("a"), 4);
        snap.consecutive_failures.insert((s("a"), s("id")), 10);
        let mut direct = Vec::new();
        snap.write_text(&mut direct);
        let crate_encoder = super::super::exposition::text(&snap.families());
        let failures: Vec<&str> = std::str::from_utf8(&direct)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("connector_sync_failures_total{"))
            .collect();
        assert_eq!(
            failures,
            [
                r#"connector_sync_failures_total{connector="a",trigger="cloud_task",reason="auth",owner="customer"} 3"#,
                r#"connector_sync_failures_total{connector="a",trigger="cloud_task",reason="other",owner="platform"} 0"#,
                r#"connector_sync_failures_total{connector="a",trigger="manual",reason="timeout",owner="provider"} 1"#,
                r#"connector_sync_failures_total{connector="b",trigger="none",reason="auth",owner="customer"} 0"#,
                r#"connector_sync_failures_total{connector="b",trigger="none",reason="other",owner="platform"} 0"#,
            ],
            "zero-filled when written, merged in key order with the counted"
        );
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            String::from_utf8(crate_encoder).unwrap()
        );
        let mut none = Vec::new();
        Snapshot::default().write_text(&mut none);
        assert!(none.is_empty());
    }
}

//! The snapshot's text exposition written straight from its maps: the same bytes as the
//! `prometheus` crate's text encoder over [`Snapshot::families`] (a test holds the two
//! together), without building the protobuf tree first, which at 100k series is most of
//! the encoding's time and transient memory.

use std::io::Write;

use prometheus::proto::MetricType;

use super::snapshot::{
    Family, HistogramData, Snapshot, ACTIVE, CONSECUTIVE_FAILURES, DISPATCH_DELAY, DURATION,
    FAILING_CONNECTIONS, FAILURES, LAST_FAILURE, LAST_SUCCESS, OLDEST_ACTIVE, OVERDUE,
    OVERDUE_SECONDS, OVERRUNNING, RECORDS_SYNCED, RUNS, STUCK,
};

/// `\` → `\\`, newline → `\n`, and with `quote` `"` → `\"`, as the text format wants.
fn escape(out: &mut Vec<u8>, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '"' if quote => out.extend_from_slice(b"\\\""),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

fn header(out: &mut Vec<u8>, spec: &Family) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(spec.name.as_bytes());
    out.push(b' ');
    escape(out, spec.help, false);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(spec.name.as_bytes());
    out.extend_from_slice(match spec.kind {
        MetricType::COUNTER => b" counter\n".as_slice(),
        MetricType::GAUGE => b" gauge\n",
        MetricType::HISTOGRAM => b" histogram\n",
        MetricType::SUMMARY => b" summary\n",
        MetricType::UNTYPED => b" untyped\n",
    });
}

fn sample(
    out: &mut Vec<u8>,
    spec: &Family,
    postfix: &str,
    values: &[&str],
    extra: Option<(&str, &str)>,
    value: f64,
) {
    out.extend_from_slice(spec.name.as_bytes());
    out.extend_from_slice(postfix.as_bytes());
    if !values.is_empty() || extra.is_some() {
        let mut separator = b'{';
        let pairs = spec.labels.iter().copied().zip(values.iter().copied());
        for (name, value) in pairs.chain(extra) {
            out.push(separator);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"=\"");
            escape(out, value, true);
            out.push(b'"');
            separator = b',';
        }
        out.push(b'}');
    }
    // `Display` for f64, as the crate's encoder writes it.
    let _ = writeln!(out, " {value}");
}

/// A counter or gauge family: each row is its label values and its value.
fn scalars<'a, const N: usize>(
    out: &mut Vec<u8>,
    spec: &Family,
    rows: impl ExactSizeIterator<Item = ([&'a str; N], f64)>,
) {
    if rows.len() == 0 {
        return;
    }
    header(out, spec);
    for (values, value) in rows {
        sample(out, spec, "", &values, None, value);
    }
}

fn histograms<'a, const N: usize>(
    out: &mut Vec<u8>,
    spec: &Family,
    rows: impl ExactSizeIterator<Item = ([&'a str; N], &'a HistogramData)>,
) {
    if rows.len() == 0 {
        return;
    }
    header(out, spec);
    for (values, data) in rows {
        let mut inf_seen = false;
        for (bound, count) in data.bounds.iter().zip(&data.cumulative) {
            let le = bound.to_string();
            sample(
                out,
                spec,
                "_bucket",
                &values,
                Some(("le", &le)),
                *count as f64,
            );
            inf_seen |= bound.is_sign_positive() && bound.is_infinite();
        }
        if !inf_seen {
            let count = data.count as f64;
            sample(out, spec, "_bucket", &values, Some(("le", "+Inf")), count);
        }
        sample(out, spec, "_sum", &values, None, data.sum);
        sample(out, spec, "_count", &values, None, data.count as f64);
    }
}

impl Snapshot {
    /// The text exposition of the domain families (empty when this replica does not lead).
    pub fn write_text(&self, out: &mut Vec<u8>) {
        if !self.leader {
            return;
        }
        let n = |v: &u64| *v as f64;
        scalars(
            out,
            &RUNS,
            self.runs
                .iter()
                .map(|((c, t, s), v)| ([c.as_str(), t, s], n(v))),
        );
        scalars(
            out,
            &FAILURES,
            self.failures
                .iter()
                .map(|((c, t, r, o), v)| ([c.as_str(), t, r, o], n(v))),
        );
        histograms(
            out,
            &DURATION,
            self.durations
                .iter()
                .map(|((c, t, s), h)| ([c.as_str(), t, s], h)),
        );
        histograms(
            out,
            &DISPATCH_DELAY,
            self.dispatch_delays
                .iter()
                .map(|((c, t), h)| ([c.as_str(), t], h)),
        );
        scalars(
            out,
            &RECORDS_SYNCED,
            self.records_synced.iter().map(|(c, v)| ([c.as_str()], *v)),
        );
        scalars(
            out,
            &ACTIVE,
            self.active
                .iter()
                .map(|((c, s), v)| ([c.as_str(), s], n(v))),
        );
        scalars(
            out,
            &STUCK,
            self.stuck.iter().map(|((c, s), v)| ([c.as_str(), s], n(v))),
        );
        scalars(
            out,
            &OLDEST_ACTIVE,
            self.oldest_active
                .iter()
                .map(|((c, s), v)| ([c.as_str(), s], *v)),
        );
        scalars(
            out,
            &LAST_SUCCESS,
            self.last_success.iter().map(|(c, v)| ([c.as_str()], *v)),
        );
        scalars(
            out,
            &LAST_FAILURE,
            self.last_failure.iter().map(|(c, v)| ([c.as_str()], *v)),
        );
        scalars(
            out,
            &FAILING_CONNECTIONS,
            self.failing_connections
                .iter()
                .map(|(c, v)| ([c.as_str()], n(v))),
        );
        scalars(
            out,
            &OVERDUE,
            self.overdue_connections
                .iter()
                .map(|(c, v)| ([c.as_str()], n(v))),
        );
        scalars(
            out,
            &OVERDUE_SECONDS,
            self.overdue_seconds
                .iter()
                .map(|((c, id), v)| ([c.as_str(), id], *v)),
        );
        scalars(
            out,
            &OVERRUNNING,
            self.overrunning.iter().map(|(c, v)| ([c.as_str()], n(v))),
        );
        scalars(
            out,
            &CONSECUTIVE_FAILURES,
            self.consecutive_failures
                .iter()
                .map(|((c, id), v)| ([c.as_str(), id], n(v))),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family, with values that exercise the formatting: fractions, large and
    /// negative numbers, zero, and label values that need escaping.
    #[test]
    fn the_same_bytes_as_the_crate_encoder() {
        let h = |sum: f64| HistogramData {
            bounds: vec![0.5, 1.0, 15.0, 21600.0],
            cumulative: vec![1, 2, 2, 3],
            sum,
            count: 4,
        };
        let s = |v: &str| v.to_owned();
        let mut snap = Snapshot {
            leader: true,
            ..Snapshot::default()
        };
        snap.runs.insert((s("a"), s("cloud_task"), s("error")), 7);
        snap.runs
            .insert((s("we\"ird\\\nslug"), s("none"), s("success")), 0);
        snap.failures
            .insert((s("a"), s("cloud_task"), s("auth"), s("customer")), 3);
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
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            String::from_utf8(crate_encoder).unwrap()
        );
        let mut none = Vec::new();
        Snapshot::default().write_text(&mut none);
        assert!(none.is_empty());
    }
}

//! The OpenMetrics 1.0 text format beside the Prometheus one: which a scraper gets
//! (`Accept` negotiation), and what differs when writing it — counter families named
//! without `_total`, `# UNIT`, escaped quotes in `# HELP`, exemplars, and `# EOF` at the
//! end — and what does not (`le` values, see [`le`]).

use std::io::Write;

use prometheus::proto::{MetricFamily, MetricType};

use super::histogram::Exemplar;
use super::text::{escape, label_set, value};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0 text, with exemplars.
    OpenMetrics,
}

/// The end of an OpenMetrics exposition.
pub const EOF: &[u8] = b"# EOF\n";

impl Format {
    pub const ALL: [Format; 2] = [Format::Text, Format::OpenMetrics];

    pub fn index(self) -> usize {
        match self {
            Format::Text => 0,
            Format::OpenMetrics => 1,
        }
    }

    /// Its label value on `syncwatch_exposition_bytes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::OpenMetrics => "openmetrics",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header prefers: the media type with the highest `q` among
    /// those served (`application/openmetrics-text` in version 1.0.0 or 0.0.1, `text/plain`,
    /// `*/*`); the text format on a tie, without a header, or when neither is accepted.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let mut openmetrics_q = 0.0_f64;
        let mut text_q = 0.0_f64;
        for part in accept.unwrap_or("").split(',') {
            let mut fields = part.split(';').map(str::trim);
            let media = fields.next().unwrap_or("").to_ascii_lowercase();
            let (mut q, mut version) = (1.0_f64, None);
            for field in fields {
                let Some((name, v)) = field.split_once('=') else {
                    continue;
                };
                match name.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.trim().parse().unwrap_or(0.0),
                    "version" => version = Some(v.trim().trim_matches('"').to_owned()),
                    _ => {}
                }
            }
            match media.as_str() {
                "application/openmetrics-text"
                    if matches!(version.as_deref(), None | Some("1.0.0" | "0.0.1")) =>
                {
                    openmetrics_q = openmetrics_q.max(q)
                }
                "text/plain" | "*/*" | "text/*" => text_q = text_q.max(q),
                _ => {}
            }
        }
        if openmetrics_q > 0.0 && openmetrics_q > text_q {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// A histogram bound as the `le` label, in both formats as the Prometheus text format has
/// always written it (`60`, not OpenMetrics' canonical `60.0`): Prometheus 2 stores label
/// values as scraped, so a canonical form would split every bucket series in two when a
/// scraper starts negotiating OpenMetrics and break queries naming `le="60"`; OpenMetrics
/// parsers must accept it, and Prometheus 3 normalises either form to the same series.
pub fn le(bound: f64) -> String {
    if bound == f64::INFINITY {
        return "+Inf".into();
    }
    bound.to_string()
}

/// The unit a family's name ends with, for `# UNIT` (OpenMetrics wants the name to end
/// with it).
fn unit(family: &str) -> Option<&'static str> {
    ["seconds", "bytes", "ratio"]
        .into_iter()
        .find(|unit| family.strip_suffix(unit).is_some_and(|n| n.ends_with('_')))
}

/// A family's `# HELP` and `# TYPE` lines (and `# UNIT` in OpenMetrics).
pub(super) fn header(out: &mut Vec<u8>, format: Format, name: &str, help: &str, kind: MetricType) {
    let openmetrics = format == Format::OpenMetrics;
    let family = match kind {
        MetricType::COUNTER if openmetrics => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(family.as_bytes());
    out.push(b' ');
    // OpenMetrics escapes quotes in the help text too.
    escape(out, help, openmetrics);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(family.as_bytes());
    out.extend_from_slice(match kind {
        MetricType::COUNTER => b" counter\n".as_slice(),
        MetricType::GAUGE => b" gauge\n",
        MetricType::HISTOGRAM => b" histogram\n",
        MetricType::SUMMARY => b" summary\n",
        MetricType::UNTYPED if openmetrics => b" unknown\n",
        MetricType::UNTYPED => b" untyped\n",
    });
    if let Some(unit) = unit(family).filter(|_| openmetrics) {
        out.extend_from_slice(b"# UNIT ");
        out.extend_from_slice(family.as_bytes());
        out.push(b' ');
        out.extend_from_slice(unit.as_bytes());
        out.push(b'\n');
    }
}

/// ` # {trace_id="…",run_id="…"} value timestamp`: 82 characters of labels, within the
/// 128 OpenMetrics allows.
pub(super) fn exemplar(out: &mut Vec<u8>, exemplar: &Exemplar) {
    out.extend_from_slice(b" # {trace_id=\"");
    let mut hex = uuid::Uuid::encode_buffer();
    out.extend_from_slice(exemplar.run.simple().encode_lower(&mut hex).as_bytes());
    out.extend_from_slice(b"\",run_id=\"");
    out.extend_from_slice(exemplar.run.hyphenated().encode_lower(&mut hex).as_bytes());
    out.extend_from_slice(b"\"} ");
    value(out, exemplar.value);
    let (seconds, millis) = (
        exemplar.at_ms.div_euclid(1000),
        exemplar.at_ms.rem_euclid(1000),
    );
    let _ = write!(out, " {seconds}.{millis:03}");
}

/// `families` (the self metrics) in OpenMetrics, without `# EOF`.
pub fn encode(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for family in families {
        let kind = family.get_field_type();
        header(
            &mut out,
            Format::OpenMetrics,
            family.name(),
            family.help(),
            kind,
        );
        let name = family.name();
        for metric in family.get_metric() {
            let labels: Vec<(&str, &str)> = metric
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            match kind {
                MetricType::COUNTER => line(
                    &mut out,
                    name,
                    "",
                    &labels,
                    None,
                    metric.get_counter().get_value(),
                ),
                MetricType::GAUGE => line(
                    &mut out,
                    name,
                    "",
                    &labels,
                    None,
                    metric.get_gauge().get_value(),
                ),
                MetricType::HISTOGRAM => {
                    let h = metric.get_histogram();
                    let mut inf_seen = false;
                    for bucket in h.get_bucket() {
                        let le = le(bucket.upper_bound());
                        inf_seen |= bucket.upper_bound() == f64::INFINITY;
                        let count = bucket.cumulative_count() as f64;
                        line(&mut out, name, "_bucket", &labels, Some(&le), count);
                    }
                    if !inf_seen {
                        let count = h.get_sample_count() as f64;
                        line(&mut out, name, "_bucket", &labels, Some("+Inf"), count);
                    }
                    line(&mut out, name, "_sum", &labels, None, h.get_sample_sum());
                    line(
                        &mut out,
                        name,
                        "_count",
                        &labels,
                        None,
                        h.get_sample_count() as f64,
                    );
                }
                // syncwatch registers no summaries or untyped metrics.
                _ => {}
            }
        }
    }
    out
}

fn line(
    out: &mut Vec<u8>,
    name: &str,
    postfix: &str,
    labels: &[(&str, &str)],
    le: Option<&str>,
    number: f64,
) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(postfix.as_bytes());
    label_set(out, labels.iter().copied().chain(le.map(|le| ("le", le))));
    out.push(b' ');
    value(out, number);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_a_scraper_prefers() {
        let prometheus_default = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            Format::negotiate(Some(prometheus_default)),
            Format::OpenMetrics
        );
        let text_first =
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.6";
        assert_eq!(Format::negotiate(Some(text_first)), Format::Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; version=2.0.0")),
            Format::Text,
            "a version not served"
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("application/json")), Format::Text);
    }

    #[test]
    fn le_values_are_written_alike_in_both_formats() {
        assert_eq!(
            [le(1.0), le(0.5), le(21600.0), le(f64::INFINITY)],
            ["1", "0.5", "21600", "+Inf"]
        );
    }

    #[test]
    fn headers_name_counter_families_without_total_and_say_their_unit() {
        let mut out = Vec::new();
        header(
            &mut out,
            Format::OpenMetrics,
            "a_runs_total",
            "say \"hi\"\\",
            MetricType::COUNTER,
        );
        header(
            &mut out,
            Format::OpenMetrics,
            "a_duration_seconds",
            "d",
            MetricType::HISTOGRAM,
        );
        header(
            &mut out,
            Format::OpenMetrics,
            "a_up",
            "u",
            MetricType::GAUGE,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP a_runs say \\\"hi\\\"\\\\\n# TYPE a_runs counter\n\
             # HELP a_duration_seconds d\n# TYPE a_duration_seconds histogram\n# UNIT a_duration_seconds seconds\n\
             # HELP a_up u\n# TYPE a_up gauge\n"
        );
    }

    #[test]
    fn an_exemplar_names_the_run_and_its_trace() {
        let run = uuid::Uuid::parse_str("0190f5a2-7c1e-7d3a-9b4f-1a2b3c4d5e6f").unwrap();
        let mut out = Vec::new();
        exemplar(
            &mut out,
            &Exemplar {
                run,
                value: 12.5,
                at_ms: 1_767_226_740_007,
            },
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            " # {trace_id=\"0190f5a27c1e7d3a9b4f1a2b3c4d5e6f\",run_id=\"0190f5a2-7c1e-7d3a-9b4f-1a2b3c4d5e6f\"} 12.5 1767226740.007"
        );
        let labels = &text[text.find('{').unwrap() + 1..text.find('}').unwrap()];
        let chars: usize = labels
            .split(',')
            .map(|pair| pair.replace(['=', '"'], "").chars().count())
            .sum();
        assert!(chars <= 128, "{chars} characters of exemplar labels");
    }
}

//! Prometheus families to OTLP metrics, and the attribute, scope and resource values
//! every OTLP message carries.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus::proto::{MetricFamily, MetricType};

use super::OtlpConfig;
use crate::metrics::snapshot::{DURATION, FAILURES};
use crate::metrics::{Exemplar, Snapshot};

pub(super) fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub(super) fn chrono_nanos(t: DateTime<Utc>) -> u64 {
    t.timestamp_nanos_opt().unwrap_or(0).max(0) as u64
}

pub(super) fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

pub(super) fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

pub(super) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "syncwatch".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

pub(super) fn resource(config: &OtlpConfig) -> Resource {
    let mut attributes = vec![
        kv("service.name", config.service_name.clone()),
        kv("service.version", env!("CARGO_PKG_VERSION")),
    ];
    for (k, v) in &config.resource_attributes {
        if k != "service.name" {
            attributes.push(kv(k, v.clone()));
        }
    }
    Resource {
        attributes,
        ..Default::default()
    }
}

/// Convert gathered Prometheus families to OTLP metrics: counters become monotonic
/// cumulative sums, gauges gauges, histograms cumulative explicit-bucket histograms.
pub fn to_otlp_metrics(
    families: &[MetricFamily],
    start: SystemTime,
    now: SystemTime,
) -> Vec<pm::Metric> {
    let (start, now) = (nanos(start), nanos(now));
    families
        .iter()
        .filter_map(|family| {
            let attributes = |m: &prometheus::proto::Metric| -> Vec<KeyValue> {
                m.get_label()
                    .iter()
                    .map(|l| kv(l.name(), l.value()))
                    .collect()
            };
            let number = |m: &prometheus::proto::Metric, value: f64| pm::NumberDataPoint {
                attributes: attributes(m),
                start_time_unix_nano: start,
                time_unix_nano: now,
                value: Some(pm::number_data_point::Value::AsDouble(value)),
                ..Default::default()
            };
            let data = match family.get_field_type() {
                MetricType::COUNTER => pm::metric::Data::Sum(pm::Sum {
                    data_points: family
                        .get_metric()
                        .iter()
                        .map(|m| number(m, m.get_counter().get_value()))
                        .collect(),
                    aggregation_temporality: pm::AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                MetricType::GAUGE => pm::metric::Data::Gauge(pm::Gauge {
                    data_points: family
                        .get_metric()
                        .iter()
                        .map(|m| number(m, m.get_gauge().get_value()))
                        .collect(),
                }),
                MetricType::HISTOGRAM => pm::metric::Data::Histogram(pm::Histogram {
                    data_points: family
                        .get_metric()
                        .iter()
                        .map(|m| {
                            let h = m.get_histogram();
                            let (bounds, counts) = per_bucket(
                                h.get_bucket()
                                    .iter()
                                    .map(|b| (b.upper_bound(), b.cumulative_count())),
                                h.get_sample_count(),
                            );
                            pm::HistogramDataPoint {
                                attributes: attributes(m),
                                start_time_unix_nano: start,
                                time_unix_nano: now,
                                count: h.get_sample_count(),
                                sum: Some(h.get_sample_sum()),
                                bucket_counts: counts,
                                explicit_bounds: bounds,
                                ..Default::default()
                            }
                        })
                        .collect(),
                    aggregation_temporality: pm::AggregationTemporality::Cumulative as i32,
                }),
                _ => return None,
            };
            Some(pm::Metric {
                name: family.name().to_owned(),
                description: family.help().to_owned(),
                unit: if family.name().contains("_seconds") {
                    "s".into()
                } else {
                    String::new()
                },
                data: Some(data),
                ..Default::default()
            })
        })
        .collect()
}

/// The snapshot's exemplars on the OTLP data points converted from it (by
/// [`to_otlp_metrics`] over [`Snapshot::families`], whose points come in the snapshot's
/// key order): each duration point gets the latest run of each of its buckets, each
/// failure point the latest failed run counted in it. The trace and span ids are the
/// run's span's; `run_id` the filtered attribute.
pub fn attach_exemplars(metrics: &mut [pm::Metric], snapshot: &Snapshot) {
    let otlp = |e: &Exemplar| pm::Exemplar {
        filtered_attributes: vec![kv("run_id", e.run.to_string())],
        time_unix_nano: (e.at_ms.max(0) as u64) * 1_000_000,
        span_id: e.run.as_bytes()[8..16].to_vec(),
        trace_id: e.run.as_bytes().to_vec(),
        value: Some(pm::exemplar::Value::AsDouble(e.value)),
    };
    let same = |attributes: &[KeyValue], values: &[&str]| {
        attributes.len() == values.len()
            && attributes.iter().zip(values).all(|(a, v)| {
                matches!(&a.value, Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) if s == v)
            })
    };
    for metric in metrics {
        match (&mut metric.data, metric.name.as_str()) {
            (Some(pm::metric::Data::Histogram(h)), name) if name == DURATION.name => {
                for (point, ((c, t, st), data)) in h.data_points.iter_mut().zip(&snapshot.durations)
                {
                    if same(&point.attributes, &[c, t, st]) {
                        point.exemplars = data.exemplars().iter().map(|(_, e)| otlp(e)).collect();
                    }
                }
            }
            (Some(pm::metric::Data::Sum(sum)), name) if name == FAILURES.name => {
                let series = snapshot.failure_series_with_exemplars();
                for (point, (key, _, exemplar)) in sum.data_points.iter_mut().zip(series) {
                    if let Some(e) = exemplar.filter(|_| same(&point.attributes, &key)) {
                        point.exemplars = vec![otlp(e)];
                    }
                }
            }
            _ => {}
        }
    }
}

/// Prometheus buckets are cumulative with an implicit `+Inf`; OTLP wants a count per
/// bucket, with one more count than bounds (the overflow bucket).
pub fn per_bucket(
    cumulative: impl Iterator<Item = (f64, u64)>,
    total: u64,
) -> (Vec<f64>, Vec<u64>) {
    let mut bounds = Vec::new();
    let mut counts = Vec::new();
    let mut previous = 0;
    for (bound, count) in cumulative {
        if bound.is_infinite() {
            continue;
        }
        bounds.push(bound);
        counts.push(count.saturating_sub(previous));
        previous = count;
    }
    counts.push(total.saturating_sub(previous));
    (bounds, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets_become_per_bucket_counts() {
        let (bounds, counts) = per_bucket(
            [(1.0, 2), (5.0, 3), (15.0, 3), (f64::INFINITY, 4)].into_iter(),
            4,
        );
        assert_eq!(bounds, vec![1.0, 5.0, 15.0]);
        assert_eq!(counts, vec![2, 1, 0, 1]);
        assert_eq!(counts.iter().sum::<u64>(), 4);
    }
}

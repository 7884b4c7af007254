//! OTLP settings from the standard `OTEL_*` variables (the OTLP exporter specification).

use std::time::Duration;

use anyhow::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    pub protocol: Protocol,
    pub metrics_endpoint: String,
    pub traces_endpoint: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub export_interval: Duration,
    pub service_name: String,
    pub resource_attributes: Vec<(String, String)>,
}

impl OtlpConfig {
    /// From the process environment; `None` when no OTLP endpoint is configured.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From any variable source (tests pass a map). Follows the OTLP exporter spec:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is a base (`/v1/metrics`, `/v1/traces` appended for
    /// HTTP), the per-signal `…_METRICS_ENDPOINT` / `…_TRACES_ENDPOINT` are used as given.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let base = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        let metrics = get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
        let traces = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        if base.is_none() && metrics.is_none() && traces.is_none() {
            return Ok(None);
        }
        let protocol = match get("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported; use grpc or http/protobuf"
            ),
        };
        let default_base = match protocol {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf => "http://localhost:4318",
        };
        let base = base.unwrap_or_else(|| default_base.to_owned());
        let signal = |path: &str| match protocol {
            Protocol::Grpc => base.clone(),
            Protocol::HttpProtobuf => format!("{}/{path}", base.trim_end_matches('/')),
        };
        let millis = |name: &str, default: u64| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(match get(name) {
                Some(v) => v
                    .parse()
                    .with_context(|| format!("{name}={v:?} is not a number of milliseconds"))?,
                None => default,
            }))
        };
        let pairs = |name: &str| -> anyhow::Result<Vec<(String, String)>> {
            let Some(text) = get(name) else {
                return Ok(Vec::new());
            };
            text.split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|pair| {
                    let (k, v) = pair
                        .split_once('=')
                        .with_context(|| format!("{name}: {pair:?} is not key=value"))?;
                    Ok((decode_percent(k.trim()), decode_percent(v.trim())))
                })
                .collect()
        };
        let export_interval = millis("OTEL_METRIC_EXPORT_INTERVAL", 60_000)?;
        if export_interval.is_zero() {
            anyhow::bail!("OTEL_METRIC_EXPORT_INTERVAL must be positive");
        }
        Ok(Some(Self {
            protocol,
            metrics_endpoint: metrics.unwrap_or_else(|| signal("v1/metrics")),
            traces_endpoint: traces.unwrap_or_else(|| signal("v1/traces")),
            headers: pairs("OTEL_EXPORTER_OTLP_HEADERS")?,
            timeout: millis("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000)?,
            export_interval,
            service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| "syncwatch".into()),
            resource_attributes: pairs("OTEL_RESOURCE_ATTRIBUTES")?,
        }))
    }
}

fn decode_percent(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(OtlpConfig::from_vars(vars(&[])).unwrap(), None);
        let disabled = vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        assert_eq!(OtlpConfig::from_vars(disabled).unwrap(), None);
    }

    #[test]
    fn http_endpoints_get_signal_paths_grpc_ones_do_not() {
        let http =
            OtlpConfig::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]))
                .unwrap()
                .unwrap();
        assert_eq!(http.protocol, Protocol::HttpProtobuf);
        assert_eq!(http.metrics_endpoint, "http://c:4318/v1/metrics");
        assert_eq!(http.traces_endpoint, "http://c:4318/v1/traces");
        assert_eq!(http.export_interval, Duration::from_secs(60));
        assert_eq!(http.timeout, Duration::from_secs(10));
        let grpc = OtlpConfig::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%20x,tenant=a"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
            ("OTEL_SERVICE_NAME", "sw-prod"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(grpc.metrics_endpoint, "http://c:4317");
        assert_eq!(grpc.traces_endpoint, "http://t:4317");
        assert_eq!(
            grpc.headers,
            vec![
                ("api-key".into(), "s x".into()),
                ("tenant".into(), "a".into())
            ]
        );
        assert_eq!(grpc.export_interval, Duration::from_millis(500));
        assert_eq!(grpc.service_name, "sw-prod");
    }

    #[test]
    fn bad_values_are_errors() {
        for bad in [
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "1m"),
            ],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ],
        ] {
            assert!(OtlpConfig::from_vars(vars(&bad)).is_err(), "{bad:?}");
        }
    }
}

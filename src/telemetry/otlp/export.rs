//! The transport: OTLP export requests over gRPC or HTTP/protobuf, with the configured
//! headers and timeout.

use anyhow::Context;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tonic::transport::Channel;

use super::convert::{resource, scope};
use super::{OtlpConfig, Protocol};

struct GrpcClients {
    metrics: MetricsServiceClient<Channel>,
    traces: TraceServiceClient<Channel>,
}

enum Transport {
    Grpc(Box<GrpcClients>),
    Http { client: reqwest::Client },
}

/// Sends OTLP requests with the configured protocol, headers and timeout.
pub struct Exporter {
    pub(super) config: OtlpConfig,
    transport: Transport,
}

impl Exporter {
    pub fn new(config: OtlpConfig) -> anyhow::Result<Self> {
        let transport = match config.protocol {
            Protocol::Grpc => {
                let channel = |endpoint: &str| -> anyhow::Result<Channel> {
                    Ok(Channel::from_shared(endpoint.to_owned())
                        .with_context(|| format!("invalid OTLP endpoint {endpoint:?}"))?
                        .timeout(config.timeout)
                        .connect_lazy())
                };
                Transport::Grpc(Box::new(GrpcClients {
                    metrics: MetricsServiceClient::new(channel(&config.metrics_endpoint)?),
                    traces: TraceServiceClient::new(channel(&config.traces_endpoint)?),
                }))
            }
            Protocol::HttpProtobuf => Transport::Http {
                client: reqwest::Client::builder().timeout(config.timeout).build()?,
            },
        };
        Ok(Self { config, transport })
    }

    fn grpc_request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        for (k, v) in &self.config.headers {
            let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                .with_context(|| format!("invalid OTLP header name {k:?}"))?;
            let value = v
                .parse()
                .with_context(|| format!("invalid OTLP header value for {k:?}"))?;
            request.metadata_mut().insert(key, value);
        }
        Ok(request)
    }

    async fn post(&self, client: &reqwest::Client, url: &str, body: Vec<u8>) -> anyhow::Result<()> {
        let mut request = client
            .post(url)
            .header("content-type", "application/x-protobuf")
            .body(body);
        for (k, v) in &self.config.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            anyhow::bail!("OTLP endpoint {url} answered {}", response.status());
        }
        Ok(())
    }

    pub async fn export_metrics(&mut self, metrics: Vec<pm::Metric>) -> anyhow::Result<()> {
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![pm::ResourceMetrics {
                resource: Some(resource(&self.config)),
                scope_metrics: vec![pm::ScopeMetrics {
                    scope: Some(scope()),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        match &self.transport {
            Transport::Grpc(clients) => {
                let request = self.grpc_request(request)?;
                clients.metrics.clone().export(request).await?;
            }
            Transport::Http { client } => {
                let url = self.config.metrics_endpoint.clone();
                self.post(client, &url, request.encode_to_vec()).await?;
            }
        }
        Ok(())
    }

    pub async fn export_spans(&mut self, spans: Vec<Span>) -> anyhow::Result<()> {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource(&self.config)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        match &self.transport {
            Transport::Grpc(clients) => {
                let request = self.grpc_request(request)?;
                clients.traces.clone().export(request).await?;
            }
            Transport::Http { client } => {
                let url = self.config.traces_endpoint.clone();
                self.post(client, &url, request.encode_to_vec()).await?;
            }
        }
        Ok(())
    }
}

//! OpenTelemetry traces over OTLP/gRPC (the same tonic as the gateway), off unless
//! `tracing.otlp_endpoint` is set: the `tracing` spans become OpenTelemetry spans, exported in
//! batches from a background thread; a call's span takes its parent from an incoming W3C
//! `traceparent`.

use std::time::Duration;

use opentelemetry::{
    propagation::{Extractor, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::TracingConfig;

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry exporter: {0}")]
pub struct ExporterError(String);

/// The OTLP pipeline, when configured: flush it before the process ends.
#[derive(Clone, Debug)]
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Builds the exporter (inside a tokio runtime: the gRPC channel lives on it); `None` when
    /// `otlp_endpoint` is empty.
    pub(super) fn build(config: &TracingConfig) -> Result<Option<Exporter>, ExporterError> {
        if config.otlp_endpoint.is_empty() {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.otlp_endpoint.clone())
            .with_timeout(Duration::from_millis(config.export_timeout_ms))
            .build()
            .map_err(|e| ExporterError(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        Ok(Some(Exporter { provider }))
    }

    pub(super) fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        self.provider.tracer("paygate")
    }

    /// Sends every finished span now (blocking: call it off the async threads).
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "flushing OpenTelemetry spans failed");
        }
    }

    /// Flushes and stops the exporter (blocking).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "stopping the OpenTelemetry exporter failed");
        }
    }
}

/// Makes `span` a child of the W3C trace context in `headers` (`traceparent`, `tracestate`),
/// when there is one; otherwise it starts a trace of its own.
pub fn set_remote_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

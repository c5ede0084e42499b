//! The wire under every network client: one HTTP/1.1 `POST` over a fresh TCP connection
//! (hyper's client connection API), bounded by the network's timeout, carrying the W3C
//! `traceparent` (and `tracestate`) of the current span when OpenTelemetry is on.
//!
//! A fresh connection per call keeps the failure model simple (no pooled connection
//! half-closed by an outage): a call's only states are answered, refused or unknown.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tokio::net::TcpStream;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Most bytes of an answer (a reconciliation file is the largest).
pub const ANSWER_BYTES_MAX: usize = 32 * 1024 * 1024;

/// Where a network is reached and how long a call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` of the network's front-end processor (or the simulator).
    pub address: String,
    pub timeout_ms: u64,
}

/// Why a call has no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No answer within the timeout: the network may or may not have booked it.
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// Connection refused, reset or closed before the answer: unknown as well.
    #[error("connection: {0}")]
    Connection(String),
    /// An answer, but not a 200.
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("answer over {ANSWER_BYTES_MAX} bytes")]
    TooLarge,
}

/// Posts `body` to `path` at `endpoint` and returns the answer's body.
pub async fn post(
    endpoint: &Endpoint,
    path: &str,
    content_type: &'static str,
    body: String,
) -> Result<Bytes, HttpError> {
    post_with(endpoint, path, content_type, &[], body).await
}

/// [`post`] with more headers (a notice's MAC).
pub async fn post_with(
    endpoint: &Endpoint,
    path: &str,
    content_type: &'static str,
    headers: &[(&'static str, String)],
    body: String,
) -> Result<Bytes, HttpError> {
    assert!(endpoint.timeout_ms > 0, "a network call has a timeout");
    let limit = Duration::from_millis(endpoint.timeout_ms);
    let exchanged = exchange(endpoint, path, content_type, headers, body);
    match tokio::time::timeout(limit, exchanged).await {
        Ok(answer) => answer,
        Err(_) => Err(HttpError::Timeout(endpoint.timeout_ms)),
    }
}

/// Aborts the connection task when the exchange ends or is dropped (at the timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn exchange(
    endpoint: &Endpoint,
    path: &str,
    content_type: &'static str,
    headers: &[(&'static str, String)],
    body: String,
) -> Result<Bytes, HttpError> {
    let connection = |e: &dyn std::fmt::Display| HttpError::Connection(e.to_string());
    let stream = TcpStream::connect(&endpoint.address)
        .await
        .map_err(|e| connection(&e))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| connection(&e))?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let mut request = http::Request::post(path)
        .header(http::header::HOST, endpoint.address.as_str())
        .header(http::header::CONTENT_TYPE, content_type);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let mut request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| connection(&e))?;
    inject_trace_context(request.headers_mut());
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| connection(&e))?;
    let status = answer.status();
    let bytes = Limited::new(answer.into_body(), ANSWER_BYTES_MAX)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                HttpError::TooLarge
            } else {
                connection(&e)
            }
        })?
        .to_bytes();
    if status != http::StatusCode::OK {
        return Err(HttpError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        });
    }
    Ok(bytes)
}

/// Writes the current span's W3C trace context into `headers` (nothing when the span is not
/// recorded by OpenTelemetry).
pub fn inject_trace_context(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

//! The front door every call passes before any handler: who is calling (from the verified client
//! certificate), may it call this method, is it within its rate, are it and the gateway within
//! their concurrency limits ([`super::permits`]: calls and streams apart). It also gives each
//! call an id, a tracing span and its metrics.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Instant,
};

use http::{HeaderValue, Request, Response};
use tonic::{Status, body::Body, transport::server::TlsConnectInfo};
use tower::{Layer, Service};
use tracing::Instrument;

use super::{
    caller_rules::{Grants, TokenBucket},
    codec, deadline,
    identity::{Callers, Named},
    log_throttle::{LogThrottle, Verdict},
    permits::{CallKind, CallerPermits, GatewayPermits, LimitRefusal, Permits},
};
use crate::{
    config::{AccountScope, CallerConfig, LimitsConfig},
    swap::Swap,
    telemetry::{self, CallerReasonLabels, Metrics, ReasonLabels},
    tls::ConnectionInfo,
};

/// Header carrying the call id; honoured when the caller sends a sane one, generated otherwise,
/// and always echoed in the response.
pub const CALL_ID_HEADER: &str = "x-request-id";
const CALL_ID_LEN_MAX: usize = 128;
/// Services any holder of a valid client certificate may call (probes, tooling).
const OPEN_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Why the front door refused a call. Mapped to a status in [`crate::grpc::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoClientCertificate,
    UnknownCaller,
    /// The certificate's identities name two different callers.
    AmbiguousCaller {
        callers: [Arc<str>; 2],
    },
    NotGranted {
        caller: Arc<str>,
        method: String,
    },
    RateLimited {
        caller: Arc<str>,
        rate_per_s: u32,
    },
    /// A concurrency limit, the caller's or the gateway's.
    Limit(LimitRefusal),
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::NoClientCertificate => "CLIENT_CERTIFICATE_REQUIRED",
            Refusal::UnknownCaller => "CALLER_UNKNOWN",
            Refusal::AmbiguousCaller { .. } => "CALLER_AMBIGUOUS",
            Refusal::NotGranted { .. } => "METHOD_NOT_GRANTED",
            Refusal::RateLimited { .. } => "RATE_LIMITED",
            Refusal::Limit(limit) => limit.reason(),
        }
    }

    /// The caller whose own limit (rate, concurrency, streams) refused the call, if it was one.
    fn limited_caller(&self) -> Option<&Arc<str>> {
        match self {
            Refusal::RateLimited { caller, .. }
            | Refusal::Limit(LimitRefusal::CallerConcurrencyExceeded { caller, .. })
            | Refusal::Limit(LimitRefusal::CallerStreamsExceeded { caller, .. }) => Some(caller),
            _ => None,
        }
    }

    /// The caller the certificate identified, when the refusal came after that.
    fn identified_caller(&self) -> Option<&Arc<str>> {
        match self {
            Refusal::NotGranted { caller, .. } => Some(caller),
            _ => self.limited_caller(),
        }
    }
}

/// What a handler learns about its call, from the request extensions.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The configured caller name; empty for an open service called by an unmapped certificate.
    pub caller: Arc<str>,
    pub call_id: Arc<str>,
    /// Which accounts the caller may touch.
    pub account_scope: AccountScope,
}

struct Caller {
    name: Arc<str>,
    account_scope: AccountScope,
    grants: Grants,
    rate_per_s: u32,
    bucket: Mutex<TokenBucket>,
    permits: CallerPermits,
}

impl Caller {
    fn new(caller: &CallerConfig, limits: &LimitsConfig) -> Caller {
        let rate_per_s = caller.rate_per_s.unwrap_or(limits.caller_rate_per_s);
        let burst = caller.burst.unwrap_or(limits.caller_burst);
        Caller {
            name: Arc::from(caller.name.as_str()),
            account_scope: caller.account_scope,
            grants: Grants::compile(&caller.grants),
            rate_per_s,
            bucket: Mutex::new(TokenBucket::new(rate_per_s, burst)),
            permits: CallerPermits::of(caller, limits),
        }
    }
}

/// Shared state of the front door.
pub struct GateState {
    /// The configured callers, replaced whole on reload.
    callers: Swap<Callers<Caller>>,
    permits: GatewayPermits,
    call_timeout_ms: u64,
    /// Refusal log lines, bounded (a client retrying in a loop does not flood the log).
    refusal_log: LogThrottle,
    metrics: Metrics,
}

impl GateState {
    pub fn new(callers: &[CallerConfig], limits: &LimitsConfig, metrics: Metrics) -> GateState {
        GateState {
            callers: Swap::new(Callers::new(callers, |c| Caller::new(c, limits))),
            permits: GatewayPermits::new(limits.inflight_calls_max, limits.streams_max),
            call_timeout_ms: limits.call_timeout_ms,
            refusal_log: LogThrottle::default(),
            metrics,
        }
    }

    /// Puts a new caller table in force (reload); calls already admitted keep their caller.
    /// Every caller's rate bucket starts full again.
    pub fn replace_callers(&self, callers: &[CallerConfig], limits: &LimitsConfig) {
        self.callers
            .replace(Callers::new(callers, |c| Caller::new(c, limits)));
    }

    /// Decides whether a call may proceed. On success the permits are held until its final status.
    fn admit<B>(
        &self,
        request: &Request<B>,
        method: &str,
    ) -> Result<(Arc<str>, AccountScope, Permits), Refusal> {
        let certs = request
            .extensions()
            .get::<TlsConnectInfo<ConnectionInfo>>()
            .and_then(|info| info.peer_certs());
        let leaf = certs
            .as_ref()
            .and_then(|certs| certs.first())
            .ok_or(Refusal::NoClientCertificate)?;
        let callers = self.callers.get();
        let named = callers.named_by(leaf.as_ref());
        let caller = match named {
            Named::One(caller) => Some(caller),
            Named::Nobody | Named::Two(..) => None,
        };
        let service = method.split_once('/').map_or(method, |(s, _)| s);
        let (name, scope) = if OPEN_SERVICES.contains(&service) {
            caller.map_or_else(
                || (Arc::from(""), AccountScope::Own),
                |c| (c.name.clone(), c.account_scope),
            )
        } else {
            let caller = match named {
                Named::One(caller) => caller,
                Named::Nobody => return Err(Refusal::UnknownCaller),
                Named::Two(a, b) => {
                    let callers = [a.name.clone(), b.name.clone()];
                    return Err(Refusal::AmbiguousCaller { callers });
                }
            };
            if !caller.grants.allows(method) {
                return Err(Refusal::NotGranted {
                    caller: caller.name.clone(),
                    method: method.to_owned(),
                });
            }
            let admitted = caller
                .bucket
                .lock()
                .map(|mut bucket| bucket.try_take(Instant::now()))
                .unwrap_or(false);
            if !admitted {
                return Err(Refusal::RateLimited {
                    caller: caller.name.clone(),
                    rate_per_s: caller.rate_per_s,
                });
            }
            (caller.name.clone(), caller.account_scope)
        };
        let permits = self
            .permits
            .admit(CallKind::of(method), caller.map(|c| (&c.name, &c.permits)))
            .map_err(Refusal::Limit)?;
        Ok((name, scope, permits))
    }
}

/// Tower layer installing the front door in front of every service.
#[derive(Clone)]
pub struct GateLayer {
    state: Arc<GateState>,
}

impl GateLayer {
    pub fn new(state: Arc<GateState>) -> GateLayer {
        GateLayer { state }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;
    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    state: Arc<GateState>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for Gate<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The clone is the one ready to be called; keep the fresh clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        let started = Instant::now();
        let method = request.uri().path().trim_start_matches('/').to_owned();
        let call_id = call_id_of(&request);

        let admitted = state.admit(&request, &method);
        Box::pin(async move {
            let (caller, account_scope, permits) = match admitted {
                Ok(admitted) => admitted,
                Err(refusal) => {
                    let reason = refusal.reason();
                    if let Verdict::Log { suppressed_before } = state.refusal_log.check(started) {
                        tracing::warn!(%call_id, %method, reason, suppressed_before, "call refused");
                    }
                    state
                        .metrics
                        .refused
                        .get_or_create(&ReasonLabels {
                            reason: reason.to_owned(),
                        })
                        .inc();
                    if let Some(caller) = refusal.limited_caller() {
                        state
                            .metrics
                            .caller_refused
                            .get_or_create(&CallerReasonLabels {
                                caller: caller.to_string(),
                                reason: reason.to_owned(),
                            })
                            .inc();
                    }
                    let caller = refusal.identified_caller().cloned();
                    let mut response = Status::from(refusal).into_http::<Body>();
                    echo_call_id(&mut response, &call_id);
                    let caller = caller.as_deref().unwrap_or("");
                    let span = tracing::info_span!("rpc", %call_id, caller, %method);
                    CallGuard::new(state.metrics.clone(), method, started, None, span)
                        .finish(code_of(response.headers()).unwrap_or("UNKNOWN"));
                    return Ok(response);
                }
            };
            request.extensions_mut().insert(CallContext {
                caller: caller.clone(),
                call_id: call_id.clone(),
                account_scope,
            });
            let span = tracing::info_span!("rpc", %call_id, caller = %caller, %method);
            telemetry::set_remote_parent(&span, request.headers());
            permits.count_opened(&state.metrics);
            // The method the call's ledger submissions are audited under.
            let audited: Arc<str> = Arc::from(method.as_str());
            let guard = CallGuard::new(
                state.metrics.clone(),
                method,
                started,
                Some(permits),
                span.clone(),
            );
            let timeout = deadline::call_timeout(request.headers(), state.call_timeout_ms);
            let call = crate::ledger::audit::in_call(audited, inner.call(request));
            let answer = tokio::time::timeout(timeout, call.instrument(span)).await;
            let response = match answer {
                Ok(response) => response?,
                Err(_) => deadline::deadline_exceeded(timeout).into_http::<Body>(),
            };
            let (mut parts, body) = response.into_parts();
            if let Ok(value) = HeaderValue::from_str(&call_id) {
                parts.headers.insert(CALL_ID_HEADER, value);
            }
            if let Some(status) = Status::from_header_map(&parts.headers) {
                // Trailers-only response: the call is over. A message over the size limit is
                // refused by tonic before the codec sees it: the refusal gains its ErrorInfo here.
                if let Some(too_large) = codec::message_too_large(&status) {
                    guard.finish(code_name(too_large.code()));
                    let mut response = too_large.into_http::<Body>();
                    echo_call_id(&mut response, &call_id);
                    return Ok(response);
                }
                guard.finish(code_name(status.code()));
                return Ok(Response::from_parts(parts, body));
            }
            // The status follows in the trailers; the call (and its permit) lasts until then.
            let body = Body::new(GuardedBody {
                inner: body,
                guard: Some(guard),
            });
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// One admitted call, from admission to its final status: holds the concurrency permits, and on
/// finish records the metrics and the log line. Dropped unfinished means the caller went away.
struct CallGuard {
    metrics: Metrics,
    method: String,
    started: Instant,
    permits: Option<Permits>,
    span: tracing::Span,
    finished: bool,
}

impl CallGuard {
    fn new(
        metrics: Metrics,
        method: String,
        started: Instant,
        permits: Option<Permits>,
        span: tracing::Span,
    ) -> CallGuard {
        CallGuard {
            metrics,
            method,
            started,
            permits,
            span,
            finished: false,
        }
    }

    fn finish(mut self, code: &'static str) {
        self.record(code);
    }

    fn record(&mut self, code: &'static str) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(permits) = self.permits.take() {
            permits.count_closed(&self.metrics);
        }
        let elapsed = self.started.elapsed();
        self.metrics
            .observe_call(&self.method, code, elapsed.as_secs_f64());
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        // A line per call costs more than the call on the hot path: answered calls log at
        // DEBUG, refusals at INFO, failures of the gateway itself at WARN.
        self.span.in_scope(|| match code {
            "OK" => tracing::debug!(code, latency_us, "call"),
            "INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "UNAVAILABLE" | "DEADLINE_EXCEEDED" => {
                tracing::warn!(code, latency_us, "call")
            }
            _ => tracing::info!(code, latency_us, "call"),
        });
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.record("CANCELLED");
    }
}

/// A response body that finishes its call when the trailers (with `grpc-status`) go out.
struct GuardedBody {
    inner: Body,
    guard: Option<CallGuard>,
}

impl http_body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(guard) = self.guard.take()
                {
                    guard.finish(code_of(trailers).unwrap_or("UNKNOWN"));
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(guard) = self.guard.take() {
                    guard.finish("INTERNAL");
                }
            }
            Poll::Ready(None) => {
                if let Some(guard) = self.guard.take() {
                    guard.finish("UNKNOWN");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn echo_call_id(response: &mut Response<Body>, call_id: &str) {
    if let Ok(value) = HeaderValue::from_str(call_id) {
        response.headers_mut().insert(CALL_ID_HEADER, value);
    }
}

/// The `grpc-status` in a header map, by name.
fn code_of(headers: &http::HeaderMap) -> Option<&'static str> {
    Status::from_header_map(headers).map(|status| code_name(status.code()))
}

fn call_id_of<B>(request: &Request<B>) -> Arc<str> {
    request
        .headers()
        .get(CALL_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= CALL_ID_LEN_MAX && v.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(Arc::from)
        .unwrap_or_else(|| Arc::from(uuid::Uuid::now_v7().to_string()))
}

pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

//! How much one caller, and the gateway, may run at once (并发限额). A unary call holds a call
//! permit until its final status; a long-lived stream (WatchAccount, SubscribeEvents, a health
//! watch, a reflection session) holds a stream permit for its whole life instead, so streams
//! held open never use up the calls, and a caller at its own limit never takes the others'
//! share. Beyond a limit the call is refused at the front door and nothing executes.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use crate::{
    config::{CallerConfig, LimitsConfig},
    telemetry::{CallerLabels, Metrics},
};

/// The methods that hold a stream permit: every server- or bidirectional-streaming method the
/// gateway serves (a unit test checks the `paygate.v1` ones against the contract).
const STREAM_METHODS: [&str; 6] = [
    "paygate.v1.AccountService/WatchAccount",
    "paygate.v1.AccountService/ImportAccounts",
    "paygate.v1.CashierService/SubscribeEvents",
    "grpc.health.v1.Health/Watch",
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Which limit refused a call. Mapped to a status in [`crate::grpc::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitRefusal {
    /// The gateway's calls in flight (`limits.inflight_calls_max`).
    Overloaded { inflight_calls_max: usize },
    /// The caller's own unary calls (`concurrent_calls_max`).
    CallerConcurrencyExceeded {
        caller: Arc<str>,
        concurrent_calls_max: usize,
    },
    /// The caller's own open streams (`streams_max`).
    CallerStreamsExceeded {
        caller: Arc<str>,
        streams_max: usize,
    },
    /// The gateway's open streams (`limits.streams_max`).
    StreamsExhausted { streams_max: usize },
}

impl LimitRefusal {
    pub fn reason(&self) -> &'static str {
        match self {
            LimitRefusal::Overloaded { .. } => "OVERLOADED",
            LimitRefusal::CallerConcurrencyExceeded { .. } => "CALLER_CONCURRENCY_EXCEEDED",
            LimitRefusal::CallerStreamsExceeded { .. } => "CALLER_STREAMS_EXCEEDED",
            LimitRefusal::StreamsExhausted { .. } => "STREAMS_EXHAUSTED",
        }
    }
}

/// A unary call or a long-lived stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Unary,
    Stream,
}

impl CallKind {
    /// `method` is `package.Service/Method`.
    pub fn of(method: &str) -> CallKind {
        if STREAM_METHODS.contains(&method) {
            CallKind::Stream
        } else {
            CallKind::Unary
        }
    }
}

/// A bounded count of things running at once. Nothing ever waits for a permit (a call beyond
/// the limit is refused), so an atomic count is all it takes: no semaphore, whose release locks
/// its wait list on every call.
#[derive(Debug)]
struct Limit {
    taken: Arc<AtomicUsize>,
    max: usize,
}

impl Limit {
    fn new(max: usize) -> Limit {
        Limit {
            taken: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    fn try_take(&self) -> Option<Permit> {
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < self.max).then_some(taken + 1)
            })
            .ok()?;
        Some(Permit(self.taken.clone()))
    }

    #[cfg(test)]
    fn available(&self) -> usize {
        self.max - self.taken.load(Ordering::Acquire)
    }
}

/// One unit of a [`Limit`], given back when dropped.
#[derive(Debug)]
struct Permit(Arc<AtomicUsize>);

impl Drop for Permit {
    fn drop(&mut self) {
        let before = self.0.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "a permit given back twice");
    }
}

/// One caller's share: its calls and its streams, apart.
#[derive(Debug)]
pub struct CallerPermits {
    calls: Limit,
    streams: Limit,
}

impl CallerPermits {
    pub fn new(concurrent_calls_max: usize, streams_max: usize) -> CallerPermits {
        CallerPermits {
            calls: Limit::new(concurrent_calls_max),
            streams: Limit::new(streams_max),
        }
    }

    /// A configured caller's limits: its own, else the defaults of `limits`.
    pub fn of(caller: &CallerConfig, limits: &LimitsConfig) -> CallerPermits {
        CallerPermits::new(
            caller
                .concurrent_calls_max
                .unwrap_or(limits.caller_concurrent_calls_max),
            caller.streams_max.unwrap_or(limits.caller_streams_max),
        )
    }
}

/// The whole gateway's share: calls in flight and open streams, apart.
#[derive(Debug)]
pub struct GatewayPermits {
    calls: Limit,
    streams: Limit,
}

impl GatewayPermits {
    pub fn new(inflight_calls_max: usize, streams_max: usize) -> GatewayPermits {
        GatewayPermits {
            calls: Limit::new(inflight_calls_max),
            streams: Limit::new(streams_max),
        }
    }

    /// The permits of a call of `kind`: the caller's own first (when it is a configured caller),
    /// then the gateway's. Either missing refuses the call, and nothing is held.
    pub fn admit(
        &self,
        kind: CallKind,
        caller: Option<(&Arc<str>, &CallerPermits)>,
    ) -> Result<Permits, LimitRefusal> {
        let own = match caller {
            None => None,
            Some((name, permits)) => Some(match kind {
                CallKind::Unary => permits.calls.try_take().ok_or_else(|| {
                    LimitRefusal::CallerConcurrencyExceeded {
                        caller: name.clone(),
                        concurrent_calls_max: permits.calls.max,
                    }
                })?,
                CallKind::Stream => permits.streams.try_take().ok_or_else(|| {
                    LimitRefusal::CallerStreamsExceeded {
                        caller: name.clone(),
                        streams_max: permits.streams.max,
                    }
                })?,
            }),
        };
        let gateway = match kind {
            CallKind::Unary => self.calls.try_take().ok_or(LimitRefusal::Overloaded {
                inflight_calls_max: self.calls.max,
            })?,
            CallKind::Stream => self
                .streams
                .try_take()
                .ok_or(LimitRefusal::StreamsExhausted {
                    streams_max: self.streams.max,
                })?,
        };
        Ok(Permits {
            kind,
            caller: caller.map(|(name, _)| name.clone()),
            _own: own,
            _gateway: gateway,
        })
    }
}

/// The permits one admitted call holds until its final status, or until its caller goes:
/// dropping them frees them.
#[derive(Debug)]
pub struct Permits {
    kind: CallKind,
    /// The configured caller whose own permit is held, if any.
    caller: Option<Arc<str>>,
    _own: Option<Permit>,
    _gateway: Permit,
}

impl Permits {
    /// Counts what these permits hold (a call in flight, or an open stream, also by caller).
    pub fn count_opened(&self, metrics: &Metrics) {
        self.count(metrics, 1);
    }

    /// Stops counting what [`Permits::count_opened`] counted.
    pub fn count_closed(&self, metrics: &Metrics) {
        self.count(metrics, -1);
    }

    fn count(&self, metrics: &Metrics, by: i64) {
        match self.kind {
            CallKind::Unary => {
                metrics.inflight.inc_by(by);
            }
            CallKind::Stream => {
                metrics.streams.inc_by(by);
                if let Some(caller) = &self.caller {
                    metrics
                        .caller_streams
                        .get_or_create(&CallerLabels {
                            caller: caller.to_string(),
                        })
                        .inc_by(by);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::grpc::pb::FILE_DESCRIPTOR_SET;

    #[test]
    fn every_streaming_method_of_the_contract_holds_a_stream_permit() {
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor");
        let mut streaming = Vec::new();
        for file in set.file.iter().filter(|f| f.package() == "paygate.v1") {
            for service in &file.service {
                for method in &service.method {
                    let name = format!("paygate.v1.{}/{}", service.name(), method.name());
                    let streams = method.server_streaming() || method.client_streaming();
                    let expected = if streams {
                        CallKind::Stream
                    } else {
                        CallKind::Unary
                    };
                    assert_eq!(CallKind::of(&name), expected, "{name}");
                    if streams {
                        streaming.push(name);
                    }
                }
            }
        }
        assert_eq!(streaming.len(), 3, "{streaming:?}");
    }

    #[test]
    fn a_caller_at_its_limit_leaves_the_others_their_share() {
        let gateway = GatewayPermits::new(3, 3);
        let (greedy, other) = (Arc::from("greedy"), Arc::from("other"));
        let (greedy_limits, other_limits) = (CallerPermits::new(1, 1), CallerPermits::new(1, 1));

        let held = gateway.admit(CallKind::Stream, Some((&greedy, &greedy_limits)));
        let refused = gateway.admit(CallKind::Stream, Some((&greedy, &greedy_limits)));
        let greedy_call = gateway.admit(CallKind::Unary, Some((&greedy, &greedy_limits)));
        let others = gateway.admit(CallKind::Stream, Some((&other, &other_limits)));

        assert!(held.is_ok() && greedy_call.is_ok() && others.is_ok());
        assert_eq!(
            refused.err(),
            Some(LimitRefusal::CallerStreamsExceeded {
                caller: greedy.clone(),
                streams_max: 1
            })
        );
        drop(held);
        assert!(
            gateway
                .admit(CallKind::Stream, Some((&greedy, &greedy_limits)))
                .is_ok(),
            "a closed stream frees its permit"
        );
    }

    #[test]
    fn the_gateway_limit_refuses_after_the_caller_limit_and_holds_nothing() {
        let gateway = GatewayPermits::new(1, 1);
        let caller = Arc::from("caller");
        let limits = CallerPermits::new(2, 2);
        let _stream = gateway.admit(CallKind::Stream, Some((&caller, &limits)));

        let refused = gateway.admit(CallKind::Stream, Some((&caller, &limits)));

        assert_eq!(
            refused.err(),
            Some(LimitRefusal::StreamsExhausted { streams_max: 1 })
        );
        assert_eq!(limits.streams.available(), 1);
    }
}

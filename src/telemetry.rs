//! Logs (text or JSON) and the Prometheus metrics served on the admin listener.

mod otel;
mod process;

pub use otel::{Exporter, ExporterError, set_remote_parent};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogConfig, LogFormat, TracingConfig};

/// Installs the process-wide log subscriber. `RUST_LOG` overrides the configured filter.
/// Calling it twice is harmless (the second call is ignored), which keeps tests simple.
/// Colours only on a terminal: a pipe, a file or journald gets plain text.
pub fn init_logging(config: &LogConfig) {
    install(config, None);
}

/// [`init_logging`], and OpenTelemetry export when `tracing.otlp_endpoint` is set (call it
/// inside the tokio runtime). The spans the log filter lets through are the ones exported.
pub fn init(log: &LogConfig, tracing: &TracingConfig) -> Result<Option<Exporter>, ExporterError> {
    let exporter = Exporter::build(tracing)?;
    install(log, exporter.as_ref());
    Ok(exporter)
}

fn install(config: &LogConfig, exporter: Option<&Exporter>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.filter.as_str()));
    let otel = exporter.map(|e| tracing_opentelemetry::layer().with_tracer(e.tracer()));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let ansi = std::io::stdout().is_terminal();
    let _ = match config.format {
        LogFormat::Text => registry
            .with(fmt::layer().with_target(false).with_ansi(ansi))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_ansi(false),
            )
            .try_init(),
    };
}

/// A database URL fit for a log line: the password, in the user part or as a `password`
/// query parameter, is left out; everything else is kept.
pub fn database_url_for_logs(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((user_info, host)) => {
                    let user = user_info
                        .split_once(':')
                        .map_or(user_info, |(user, _)| user);
                    format!("{user}@{host}")
                }
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let key = pair.split_once('=').map_or(*pair, |(key, _)| key);
                !key.eq_ignore_ascii_case("password")
            })
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// A clearing network's result notice, by what became of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NoticeLabels {
    pub network: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SettingLabels {
    pub setting: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallerLabels {
    pub caller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallerReasonLabels {
    pub caller: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    git_commit: String,
}

/// The ledger batcher's metrics (组提交, group commit): what each batch carried and how long
/// its database transaction took. Observed by the batcher; registered with [`Metrics`].
#[derive(Clone, Debug)]
pub struct LedgerMetrics {
    /// Requests per committed or failed batch.
    pub batch_size: Histogram,
    /// From the batch's start to its commit (load, apply, write, commit).
    pub batch_commit_seconds: Histogram,
    /// From a request's submission to the start of its batch (time queued).
    pub batch_wait_seconds: Histogram,
}

impl Default for LedgerMetrics {
    fn default() -> Self {
        LedgerMetrics {
            // 1 .. 2048 requests
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            batch_commit_seconds: latency_histogram(),
            batch_wait_seconds: latency_histogram(),
        }
    }
}

/// What is read afresh at each scrape from parts of the gateway telemetry does not know (the
/// ledger's queue, the database pool, the idempotency store).
#[async_trait::async_trait]
pub trait Sample: Send + Sync + 'static {
    async fn sample(&self, metrics: &Metrics);
}

/// Nothing to sample (tests, or an admin listener without a gateway behind it).
pub struct NoSample;

#[async_trait::async_trait]
impl Sample for NoSample {
    async fn sample(&self, _metrics: &Metrics) {}
}

/// The gateway's metrics. Cheap to clone (everything inside is shared).
#[derive(Clone)]
pub struct Metrics {
    registry: std::sync::Arc<Registry>,
    pub calls: Family<CallLabels, Counter>,
    pub latency: Family<MethodLabels, Histogram, fn() -> Histogram>,
    pub refused: Family<ReasonLabels, Counter>,
    pub inflight: Gauge,
    /// Long-lived streams open now (counted apart from `inflight`).
    pub streams: Gauge,
    /// Long-lived streams open now, by configured caller.
    pub caller_streams: Family<CallerLabels, Gauge>,
    /// Calls refused by a caller's own limit (rate, concurrency, streams), by caller and reason.
    pub caller_refused: Family<CallerReasonLabels, Counter>,
    /// TLS handshakes that failed or timed out, by reason.
    pub tls_handshake_failures: Family<ReasonLabels, Counter>,
    /// The networks' result notices received, by network and result (`settled`,
    /// `already_final`, `not_final`, `unknown_reference`, `amount_differs`, `mac_missing`,
    /// `mac_invalid`, `malformed`, `too_large`, `busy`, `rate_limited`, `error`).
    pub clearing_notices: Family<NoticeLabels, Counter>,
    /// 1 for each database setting that can lose an acknowledged payment and that this
    /// process serves under only because `database.allow_durability_risk` is on.
    pub durability_overrides: Family<SettingLabels, Gauge>,
    pub ledger: LedgerMetrics,
    /// Requests waiting for a ledger batch (sampled at each scrape).
    pub ledger_queue_depth: Gauge,
    /// Idempotency records kept (sampled at most every few seconds; see `Sample`).
    pub idempotency_keys: Gauge,
    /// Pooled database connections open, and of them idle (sampled at each scrape).
    pub db_pool_connections: Gauge,
    pub db_pool_idle_connections: Gauge,
    process: std::sync::Arc<process::ProcessMetrics>,
    /// The answered-OK counter and latency histogram of each method seen, so that the hot path
    /// finds them without building label strings (bounded; see [`Metrics::observe_call`]).
    by_method: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, MethodHandles>>>,
}

/// One method's metric handles (they share their values with the families they came from).
#[derive(Clone, Debug)]
struct MethodHandles {
    ok: Counter,
    latency: Histogram,
}

/// Most methods whose handles are kept (the contract has a few dozen; a client calling made-up
/// method names falls back to the families).
const METHOD_HANDLES_MAX: usize = 256;

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("paygate");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "grpc_calls",
            "gRPC calls by full method and status code",
            calls.clone(),
        );
        let latency = Family::<MethodLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "grpc_call_duration_seconds",
            "gRPC call latency until the response head, by full method",
            latency.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "grpc_refused",
            "Calls refused at the front door, by reason",
            refused.clone(),
        );
        let inflight = Gauge::default();
        registry.register(
            "grpc_inflight_calls",
            "Calls executing now",
            inflight.clone(),
        );
        let streams = Gauge::default();
        registry.register(
            "grpc_open_streams",
            "Long-lived streams open now (watches, subscriptions)",
            streams.clone(),
        );
        let caller_streams = Family::<CallerLabels, Gauge>::default();
        registry.register(
            "grpc_caller_open_streams",
            "Long-lived streams open now, by configured caller",
            caller_streams.clone(),
        );
        let caller_refused = Family::<CallerReasonLabels, Counter>::default();
        registry.register(
            "grpc_caller_refused",
            "Calls refused by a caller's own limit (rate, concurrency, streams), by caller and reason",
            caller_refused.clone(),
        );
        let durability_overrides = Family::<SettingLabels, Gauge>::default();
        registry.register(
            "durability_override",
            "1 per database setting that can lose an acknowledged payment, served under only by override",
            durability_overrides.clone(),
        );
        let tls_handshake_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out, by reason",
            tls_handshake_failures.clone(),
        );
        let clearing_notices = Family::<NoticeLabels, Counter>::default();
        registry.register(
            "clearing_notices",
            "Result notices the clearing networks posted, by network and result",
            clearing_notices.clone(),
        );
        let ledger = LedgerMetrics::default();
        let batch_size_histogram = ledger.batch_size.clone();
        registry.register(
            "ledger_batch_size",
            "Requests per ledger batch (one database transaction)",
            batch_size_histogram.clone(),
        );
        let batch_commit_histogram = ledger.batch_commit_seconds.clone();
        registry.register(
            "ledger_batch_commit_duration_seconds",
            "Ledger batch from its start to its commit",
            batch_commit_histogram.clone(),
        );
        let batch_wait_histogram = ledger.batch_wait_seconds.clone();
        registry.register(
            "ledger_batch_wait_duration_seconds",
            "Ledger request from its submission to the start of its batch",
            batch_wait_histogram.clone(),
        );
        let ledger_queue_depth = Gauge::default();
        registry.register(
            "ledger_queue_depth",
            "Requests waiting for a ledger batch",
            ledger_queue_depth.clone(),
        );
        let idempotency_keys = Gauge::default();
        registry.register(
            "ledger_idempotency_keys",
            "Idempotency records kept (counted at most every few seconds)",
            idempotency_keys.clone(),
        );
        let db_pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Pooled database connections open (the ledger batches hold one more)",
            db_pool_connections.clone(),
        );
        let db_pool_idle_connections = Gauge::default();
        registry.register(
            "db_pool_idle_connections",
            "Pooled database connections open and idle",
            db_pool_idle_connections.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "The running build: version and git commit (value 1)",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                git_commit: option_env!("PAYGATE_GIT_COMMIT")
                    .unwrap_or("unknown")
                    .to_owned(),
            })
            .set(1);
        let process = std::sync::Arc::new(process::ProcessMetrics::register(&mut registry));
        Metrics {
            registry: std::sync::Arc::new(registry),
            calls,
            latency,
            refused,
            inflight,
            streams,
            caller_streams,
            caller_refused,
            tls_handshake_failures,
            clearing_notices,
            durability_overrides,
            ledger,
            ledger_queue_depth,
            idempotency_keys,
            db_pool_connections,
            db_pool_idle_connections,
            process,
            by_method: Default::default(),
        }
    }

    /// Counts one finished call of `method` with status `code` and its latency.
    pub fn observe_call(&self, method: &str, code: &'static str, elapsed_s: f64) {
        let count = |handles: &MethodHandles| {
            handles.latency.observe(elapsed_s);
            if code == "OK" {
                handles.ok.inc();
            } else {
                self.calls
                    .get_or_create(&CallLabels {
                        method: method.to_owned(),
                        code: code.to_owned(),
                    })
                    .inc();
            }
        };
        if let Ok(known) = self.by_method.read()
            && let Some(handles) = known.get(method)
        {
            count(handles);
            return;
        }
        let handles = MethodHandles {
            ok: self
                .calls
                .get_or_create(&CallLabels {
                    method: method.to_owned(),
                    code: "OK".to_owned(),
                })
                .clone(),
            latency: self
                .latency
                .get_or_create(&MethodLabels {
                    method: method.to_owned(),
                })
                .clone(),
        };
        count(&handles);
        if let Ok(mut known) = self.by_method.write()
            && known.len() < METHOD_HANDLES_MAX
        {
            known.insert(method.to_owned(), handles);
        }
    }

    /// The Prometheus text exposition of every metric (the process figures read afresh).
    pub fn encode(&self) -> String {
        self.process.refresh();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::database_url_for_logs;

    #[test]
    fn a_password_in_the_user_part_is_left_out_of_the_logged_url() {
        assert_eq!(
            database_url_for_logs("postgres://paygate:s3cret@db.bank:5432/paygate?sslmode=require"),
            "postgres://paygate@db.bank:5432/paygate?sslmode=require"
        );
    }

    #[test]
    fn a_password_query_parameter_is_left_out_of_the_logged_url() {
        assert_eq!(
            database_url_for_logs(
                "postgres://db/paygate?user=pg&password=s3cret&sslmode=verify-full"
            ),
            "postgres://db/paygate?user=pg&sslmode=verify-full"
        );
        assert_eq!(
            database_url_for_logs("postgres://pg@db/paygate?password=s3cret"),
            "postgres://pg@db/paygate"
        );
    }

    #[test]
    fn a_url_without_a_password_is_logged_as_it_is() {
        for url in [
            "sqlite://data/paygate.db",
            "postgres://postgres@127.0.0.1:5432/test",
            "sqlite::memory:",
        ] {
            assert_eq!(database_url_for_logs(url), url);
        }
    }
}

//! Logs (text or JSON) and the Prometheus metrics served on the admin listener.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogConfig, LogFormat};

/// Installs the process-wide log subscriber. `RUST_LOG` overrides the configured filter.
/// Calling it twice is harmless (the second call is ignored), which keeps tests simple.
/// Colours only on a terminal: a pipe, a file or journald gets plain text.
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.filter.as_str()));
    let registry = tracing_subscriber::registry().with(filter);
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
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 16,
    ))
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
        Metrics {
            registry: std::sync::Arc::new(registry),
            calls,
            latency,
            refused,
            inflight,
            streams,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
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

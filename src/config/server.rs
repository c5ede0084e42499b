//! The front end: listener, TLS, admin endpoint, logs, call limits and the server secret.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// After a shutdown signal, how long in-flight calls may take to finish before they are cut.
    pub shutdown_grace_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain (PEM).
    pub server_cert: PathBuf,
    /// Server private key (PEM).
    pub server_key: PathBuf,
    /// CA that client certificates must chain to (PEM). Nothing else is trusted.
    pub client_ca: PathBuf,
    /// Certificate revocation lists (PEM) checked on every handshake: a client certificate they
    /// revoke fails the handshake. When set, every client CA needs its CRL here (a certificate
    /// whose revocation status is unknown is refused). Reloaded with the rest on SIGHUP.
    pub crl_files: Vec<PathBuf>,
    /// Create a development PKI in `dev_pki_dir` when the files above are all missing.
    /// Never enable this in production: bring your own PKI (see certs/README.md).
    pub generate_dev_pki: bool,
    /// Where the development PKI is written.
    pub dev_pki_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve Prometheus metrics (`/metrics`) and liveness (`/livez`, `/readyz`) over plain HTTP.
    pub enabled: bool,
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `paygate=debug,info`. `RUST_LOG` wins when set.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// OpenTelemetry traces exported over OTLP/gRPC: off unless `otlp_endpoint` is set. Spans: the
/// gRPC call (its parent taken from an incoming W3C `traceparent`), the ledger batch wait, the
/// batch commit (linked to the waits it answers) and each clearing-network call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// A collector's OTLP/gRPC endpoint, plain HTTP/2 (`http://127.0.0.1:4317`, a local agent);
    /// empty: no export.
    pub otlp_endpoint: String,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Longest wait for one export batch; spans that cannot be sent are dropped, calls never wait.
    pub export_timeout_ms: u64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: String::new(),
            service_name: "paygate".to_owned(),
            export_timeout_ms: 10_000,
        }
    }
}

/// Front-end limits, all explicit: nothing is left to a library default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request or response message, in bytes.
    pub message_size_max_bytes: usize,
    /// HTTP/2 concurrent streams per connection.
    pub concurrent_streams_max: u32,
    /// HTTP/2 keepalive ping interval and the time to wait for its answer.
    pub keepalive_interval_ms: u64,
    pub keepalive_timeout_ms: u64,
    /// Upper bound of any call; a caller's shorter `grpc-timeout` wins.
    pub call_timeout_ms: u64,
    /// Calls executing at once across all connections; beyond it calls are shed with RESOURCE_EXHAUSTED.
    pub inflight_calls_max: usize,
    /// Default per-caller rate limit (token bucket), calls per second and burst.
    pub caller_rate_per_s: u32,
    pub caller_burst: u32,
    /// Default unary calls one caller may have executing at once (a caller's
    /// `concurrent_calls_max` overrides it); beyond it: RESOURCE_EXHAUSTED
    /// `CALLER_CONCURRENCY_EXCEEDED`.
    pub caller_concurrent_calls_max: usize,
    /// Default long-lived streams (WatchAccount, SubscribeEvents, health watch, reflection) one
    /// caller may hold open (a caller's `streams_max` overrides it); beyond it:
    /// RESOURCE_EXHAUSTED `CALLER_STREAMS_EXCEEDED`. Streams are counted apart from calls.
    pub caller_streams_max: usize,
    /// Streams open at once across all callers; beyond it: RESOURCE_EXHAUSTED `STREAMS_EXHAUSTED`.
    pub streams_max: usize,
    /// A TLS handshake must finish within this time or the connection is dropped.
    pub tls_handshake_timeout_ms: u64,
    /// A connection with no call in flight for this long (from its handshake or its last call's
    /// end) is closed; an open stream keeps its connection.
    pub connection_idle_timeout_ms: u64,
}

/// The server secret from which card tokens, person keys and page-token signatures derive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// 32 random bytes as hex. Back it up with the database: card tokens depend on it.
    pub key_file: PathBuf,
    /// Create the file on first start when it does not exist (development default).
    pub generate_if_missing: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            shutdown_grace_ms: 10_000,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            server_cert: PathBuf::from("certs/server.pem"),
            server_key: PathBuf::from("certs/server.key"),
            client_ca: PathBuf::from("certs/ca.pem"),
            crl_files: Vec::new(),
            generate_dev_pki: true,
            dev_pki_dir: PathBuf::from("certs"),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            message_size_max_bytes: 4 * 1024 * 1024,
            concurrent_streams_max: 256,
            keepalive_interval_ms: 30_000,
            keepalive_timeout_ms: 10_000,
            call_timeout_ms: 30_000,
            inflight_calls_max: 4_096,
            caller_rate_per_s: 20_000,
            caller_burst: 40_000,
            caller_concurrent_calls_max: 1_024,
            caller_streams_max: 1_024,
            streams_max: 10_000,
            tls_handshake_timeout_ms: 10_000,
            connection_idle_timeout_ms: 300_000,
        }
    }
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            key_file: PathBuf::from("data/secret.key"),
            generate_if_missing: true,
        }
    }
}

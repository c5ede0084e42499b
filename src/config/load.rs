//! Loading (defaults, file, environment) and validation at start.

use std::{collections::BTreeSet, path::Path};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};

use super::Config;

/// Why a configuration was refused at start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then the TOML file (when given; a named file that does not exist is an error),
    /// then `PAYGATE_` environment variables (`__` separates levels: `PAYGATE_SERVER__LISTEN`).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only sectioned keys (`PAYGATE_SECTION__KEY`) are configuration; other PAYGATE_*
        // variables (PAYGATE_CONFIG, test settings) are not and must not fail the load.
        figment = figment.merge(
            Env::prefixed("PAYGATE_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks everything that can be checked without touching the outside world.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.yields.validate().map_err(ConfigError::Invalid)?;
        self.eod.validate().map_err(ConfigError::Invalid)?;
        self.credit.validate().map_err(ConfigError::Invalid)?;
        self.clearing.validate().map_err(ConfigError::Invalid)?;
        if self.clearing.recovery.bound_ms >= self.accounts.clearing_reservation_timeout_ms {
            return Err(ConfigError::Invalid(format!(
                "clearing.recovery.bound_ms ({}) must be below accounts.clearing_reservation_timeout_ms ({}): \
                 a reservation must outlive the recovery of its call",
                self.clearing.recovery.bound_ms, self.accounts.clearing_reservation_timeout_ms
            )));
        }
        self.validate_positive()?;
        self.validate_bounds()?;
        self.validate_callers()
    }

    /// Every count, interval and timeout that must be greater than zero.
    // Over 70 lines: one row per setting in a flat table (as rustfmt lays it out); no logic.
    fn validate_positive(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let l = &self.limits;
        for (name, value) in [
            (
                "limits.concurrent_streams_max",
                l.concurrent_streams_max as u64,
            ),
            ("limits.keepalive_interval_ms", l.keepalive_interval_ms),
            ("limits.keepalive_timeout_ms", l.keepalive_timeout_ms),
            ("limits.call_timeout_ms", l.call_timeout_ms),
            ("limits.inflight_calls_max", l.inflight_calls_max as u64),
            ("limits.caller_rate_per_s", l.caller_rate_per_s as u64),
            ("limits.caller_burst", l.caller_burst as u64),
            (
                "limits.caller_concurrent_calls_max",
                l.caller_concurrent_calls_max as u64,
            ),
            ("limits.caller_streams_max", l.caller_streams_max as u64),
            ("limits.streams_max", l.streams_max as u64),
            (
                "limits.tls_handshake_timeout_ms",
                l.tls_handshake_timeout_ms,
            ),
            (
                "limits.connection_idle_timeout_ms",
                l.connection_idle_timeout_ms,
            ),
            (
                "database.connections_max",
                self.database.connections_max as u64,
            ),
            (
                "database.acquire_timeout_ms",
                self.database.acquire_timeout_ms,
            ),
            ("ledger.batch_size_max", self.ledger.batch_size_max as u64),
            ("ledger.queue_depth_max", self.ledger.queue_depth_max as u64),
            (
                "ledger.idempotency_retention_days",
                self.ledger.idempotency_retention_days as u64,
            ),
            (
                "ledger.expiry_sweep_interval_ms",
                self.ledger.expiry_sweep_interval_ms,
            ),
            (
                "ledger.expiry_sweep_items_max",
                self.ledger.expiry_sweep_items_max as u64,
            ),
            (
                "ledger.pending_timeout_max_ms",
                self.ledger.pending_timeout_max_ms,
            ),
            (
                "ledger.hold_timeout_max_ms",
                self.ledger.hold_timeout_max_ms,
            ),
            (
                "ledger.idempotency_purge_interval_ms",
                self.ledger.idempotency_purge_interval_ms,
            ),
            (
                "ledger.changes_poll_interval_ms",
                self.ledger.changes_poll_interval_ms,
            ),
            (
                "cashier.order_expiry_default_ms",
                self.cashier.order_expiry_default_ms,
            ),
            (
                "cashier.order_expiry_max_ms",
                self.cashier.order_expiry_max_ms,
            ),
            (
                "cashier.payment_code_ttl_ms",
                self.cashier.payment_code_ttl_ms,
            ),
            (
                "cashier.events_poll_interval_ms",
                self.cashier.events_poll_interval_ms,
            ),
        ] {
            if value == 0 {
                return invalid(format!("{name} must be greater than zero"));
            }
        }
        Ok(())
    }

    /// Upper bounds and the database URL's scheme.
    fn validate_bounds(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let t = &self.tracing;
        if !(t.otlp_endpoint.is_empty() || t.otlp_endpoint.starts_with("http://")) {
            return invalid("tracing.otlp_endpoint is empty or http://host:port".into());
        }
        if !(1..=300_000).contains(&t.export_timeout_ms) || t.service_name.is_empty() {
            return invalid(
                "tracing.export_timeout_ms must be within 1..=300000, service_name not empty"
                    .into(),
            );
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.limits.message_size_max_bytes) {
            return invalid("limits.message_size_max_bytes must be within 1 KiB..=64 MiB".into());
        }
        let l = &self.limits;
        for (name, value) in [
            ("limits.inflight_calls_max", l.inflight_calls_max),
            (
                "limits.caller_concurrent_calls_max",
                l.caller_concurrent_calls_max,
            ),
            ("limits.caller_streams_max", l.caller_streams_max),
            ("limits.streams_max", l.streams_max),
        ] {
            if value > CONCURRENCY_LIMIT_CEILING {
                return invalid(format!(
                    "{name} must be at most {CONCURRENCY_LIMIT_CEILING}"
                ));
            }
        }
        if self.ledger.expiry_sweep_items_max > 100_000 {
            return invalid("ledger.expiry_sweep_items_max must be at most 100000".into());
        }
        // Deadlines are stored as signed milliseconds since the epoch: keep them far from overflow.
        const TIMEOUT_CEILING_MS: u64 = 10 * 366 * 24 * 3_600_000;
        if self.ledger.pending_timeout_max_ms > TIMEOUT_CEILING_MS
            || self.ledger.hold_timeout_max_ms > TIMEOUT_CEILING_MS
        {
            return invalid("ledger timeouts must be at most ten years".into());
        }
        if self.ledger.batch_size_max > 8_190 {
            return invalid("ledger.batch_size_max must be at most 8190".into());
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres:")
            || self.database.url.starts_with("postgresql:"))
        {
            return invalid("database.url must start with sqlite: or postgres:".into());
        }
        if !self.database.url.starts_with("sqlite:")
            && let Err(why) = super::parse_pg_url(&self.database.url)
        {
            return invalid(format!("database.url: {why}"));
        }
        Ok(())
    }

    /// Caller names and certificate identities are unique; grants and rates are well formed.
    fn validate_callers(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let mut names = BTreeSet::new();
        let mut identities = BTreeSet::new();
        for caller in &self.callers {
            if caller.name.is_empty() || !names.insert(caller.name.as_str()) {
                return invalid(format!(
                    "caller name {:?} is empty or repeated",
                    caller.name
                ));
            }
            if caller.identities.is_empty() {
                return invalid(format!("caller {} has no identities", caller.name));
            }
            for identity in &caller.identities {
                if !identities.insert(identity.as_str()) {
                    return invalid(format!(
                        "certificate identity {identity:?} maps to more than one caller"
                    ));
                }
            }
            for grant in &caller.grants {
                if !is_valid_grant(grant) {
                    return invalid(format!(
                        "caller {}: grant {grant:?} is not `*`, `package.Service/*` or `package.Service/Method`",
                        caller.name
                    ));
                }
            }
            if caller.rate_per_s == Some(0) || caller.burst == Some(0) {
                return invalid(format!(
                    "caller {}: rate_per_s and burst must be greater than zero",
                    caller.name
                ));
            }
            let limits = [caller.concurrent_calls_max, caller.streams_max];
            if limits
                .iter()
                .flatten()
                .any(|&max| max == 0 || max > CONCURRENCY_LIMIT_CEILING)
            {
                return invalid(format!(
                    "caller {}: concurrent_calls_max and streams_max must be within 1..={CONCURRENCY_LIMIT_CEILING}",
                    caller.name
                ));
            }
        }
        Ok(())
    }
}

/// Highest accepted concurrency limit (calls or streams, per caller or overall).
const CONCURRENCY_LIMIT_CEILING: usize = 1_000_000;

fn is_valid_grant(grant: &str) -> bool {
    if grant == "*" {
        return true;
    }
    match grant.split_once('/') {
        Some((service, method)) => {
            service.contains('.')
                && !service.contains('*')
                && !method.is_empty()
                && (method == "*" || !method.contains('*'))
        }
        None => false,
    }
}

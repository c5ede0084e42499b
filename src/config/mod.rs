//! The one typed configuration tree: loaded once at start (defaults, then a TOML file, then
//! `PAYGATE_*` environment overrides), validated, and passed down. No globals.

mod credit;
mod eod;
mod load;
mod paths;
mod pg_url;
mod server;
mod services;
mod storage;
mod yields;

pub use credit::*;
pub use eod::*;
pub use load::ConfigError;
pub use pg_url::*;
pub use server::*;
pub use services::*;
pub use storage::*;
pub use yields::*;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// Every setting of the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub admin: AdminConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub tracing: TracingConfig,
    pub limits: LimitsConfig,
    pub ledger: LedgerConfig,
    pub secrets: SecretsConfig,
    pub accounts: AccountsConfig,
    pub cashier: CashierConfig,
    pub yields: YieldsConfig,
    /// The end-of-day run (日切).
    pub eod: EodConfig,
    pub credit: CreditConfig,
    pub clock: ClockConfig,
    /// The routing table (method × scenario × bank → network) and the networks' endpoints.
    pub clearing: crate::clearing::routing::ClearingConfig,
    /// The callers this gateway knows: who they are (certificate identities) and what they may call.
    pub callers: Vec<CallerConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            admin: AdminConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            tracing: TracingConfig::default(),
            limits: LimitsConfig::default(),
            ledger: LedgerConfig::default(),
            secrets: SecretsConfig::default(),
            accounts: AccountsConfig::default(),
            cashier: CashierConfig::default(),
            yields: YieldsConfig::default(),
            eod: EodConfig::default(),
            credit: CreditConfig::default(),
            clock: ClockConfig::default(),
            clearing: crate::clearing::routing::ClearingConfig::default(),
            callers: default_callers(),
        }
    }
}

/// The gateway's clock.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    /// Empty (the default): the system clock, as production runs. An RFC 3339 instant
    /// (`2026-12-07T09:30:00+08:00`): a rehearsal clock that reads that instant when the process
    /// starts and runs on at real speed, to walk a sandbox database through business dates
    /// (the README's yield tour does). Never behind the database's last use; logged as a warning
    /// at every start.
    pub start: String,
}

impl ClockConfig {
    /// The clock this setting names.
    pub fn clock(&self) -> Result<Clock, ConfigError> {
        if self.start.is_empty() {
            return Ok(Clock::system());
        }
        let at = time::OffsetDateTime::parse(
            &self.start,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| ConfigError::Invalid(format!("clock.start: an RFC 3339 instant ({e})")))?;
        let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| ConfigError::Invalid("clock.start is out of range".to_owned()))?;
        Ok(Clock::starting_at(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().expect("defaults validate");
    }

    #[test]
    fn a_repeated_identity_is_refused() {
        let mut config = Config::default();
        config.callers[1].identities = vec!["core-banking".into()];
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn a_malformed_grant_is_refused() {
        let mut config = Config::default();
        config.callers[0].grants = vec!["AccountService*".into()];
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
    fn only_sectioned_environment_variables_are_configuration() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PAYGATE_CONFIG", "elsewhere.toml");
            jail.set_env("PAYGATE_TEST_PG_URL", "postgres://nowhere");
            jail.set_env("PAYGATE_SERVER__LISTEN", "127.0.0.1:6000");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.server.listen.port(), 6000);
            Ok(())
        });
    }

    #[test]
    fn a_rehearsal_clock_starts_at_its_instant_and_a_malformed_one_is_refused() {
        let clock = ClockConfig {
            start: "2026-12-07T09:30:00+08:00".into(),
        }
        .clock()
        .expect("clock");
        let start_ms = 1_796_607_000_000;
        assert!((start_ms..start_ms + 60_000).contains(&clock.now_ms()));
        assert!(!clock.is_system());
        let bad = ClockConfig {
            start: "next monday".into(),
        };
        assert!(matches!(bad.clock(), Err(ConfigError::Invalid(_))));
        assert!(ClockConfig::default().clock().expect("system").is_system());
    }

    #[test]
    fn zero_limits_are_refused() {
        let mut config = Config::default();
        config.limits.inflight_calls_max = 0;
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn accrual_shards_are_bounded() {
        for (shards, valid) in [(0, false), (1, true), (256, true), (257, false)] {
            let mut config = Config::default();
            config.yields.accrual_shards = shards;
            assert_eq!(config.validate().is_ok(), valid, "{shards} shards");
        }
    }
}

#[cfg(test)]
mod example_file {
    use std::path::Path;

    use super::*;

    /// The annotated example in the repository is exactly the defaults, so it cannot drift.
    #[test]
    fn the_example_file_spells_out_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("paygate.example.toml");
        let text = std::fs::read_to_string(path).expect("example file");
        let parsed: Config = toml::from_str(&text).expect("example parses");
        assert_eq!(parsed, Config::default());
    }
}

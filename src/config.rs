//! The one typed configuration tree: loaded once at start (defaults, then a TOML file, then
//! `PAYGATE_*` environment overrides), validated, and passed down. No globals.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

mod yields;
pub use yields::*;

/// Every setting of the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub admin: AdminConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    pub ledger: LedgerConfig,
    pub secrets: SecretsConfig,
    pub accounts: AccountsConfig,
    pub cashier: CashierConfig,
    pub yields: YieldsConfig,
    /// The callers this gateway knows: who they are (certificate identities) and what they may call.
    pub callers: Vec<CallerConfig>,
}

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
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (embedded default) or `postgres://user@host:port/db`.
    pub url: String,
    /// Connection pool size ceiling.
    pub connections_max: u32,
    /// How long to wait for a pooled connection.
    pub acquire_timeout_ms: u64,
    /// SQLite `PRAGMA synchronous`: FULL (default; an acknowledged posting survives power loss) or NORMAL.
    pub sqlite_synchronous: SqliteSynchronous,
    /// Accounts a process keeps in memory between its own batches (used only while no other
    /// process has written; 0 turns the cache off). About 300 bytes each.
    pub account_cache_entries_max: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

impl SqliteSynchronous {
    pub fn pragma_value(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Normal => "NORMAL",
        }
    }
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Most requests gathered into one database transaction (group commit).
    pub batch_size_max: usize,
    /// Requests waiting for a batch; beyond it submissions are refused with RESOURCE_EXHAUSTED.
    pub queue_depth_max: usize,
    /// How long idempotency keys (and their stored answers) are kept.
    pub idempotency_retention_days: u32,
    /// How often expired pending transfers and holds are voided.
    pub expiry_sweep_interval_ms: u64,
    /// Most expired items voided per sweep.
    pub expiry_sweep_items_max: u32,
    /// Longest timeout a two-phase pending transfer may ask for.
    pub pending_timeout_max_ms: u64,
    /// Longest timeout a hold may ask for (a hold without timeout lasts until released).
    pub hold_timeout_max_ms: u64,
    /// How often idempotency keys older than the retention are deleted.
    pub idempotency_purge_interval_ms: u64,
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

/// Electronic accounts (电子账户): class rules with the regulatory defaults, counted per business
/// date in Asia/Shanghai. Amounts are decimal strings in `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Currency of personal electronic accounts (they are RMB accounts).
    pub currency: String,
    /// Per person per bank (rule): at most this many open Class II and Class III accounts.
    pub class_ii_per_person_max: u32,
    pub class_iii_per_person_max: u32,
    /// Class II (银发〔2015〕392号 / 2016 302号): non-bound inflows and outflows.
    pub class_ii_non_bound_inflow_per_day: String,
    pub class_ii_non_bound_inflow_per_year: String,
    pub class_ii_non_bound_outflow_per_day: String,
    pub class_ii_non_bound_outflow_per_year: String,
    /// Class III (银发〔2018〕16号): balance cap and outflows.
    pub class_iii_balance_max: String,
    pub class_iii_outflow_per_day: String,
    pub class_iii_outflow_per_year: String,
    /// Business date: UTC offset of the bank's calendar (Asia/Shanghai = +480) and the cutover
    /// (日切) minute of the local day at which the date rolls.
    pub business_day_utc_offset_minutes: i32,
    pub business_day_cutover_minute: u32,
    /// How long a withdrawal or top-up reservation waits for the clearing network.
    pub clearing_reservation_timeout_ms: u64,
    /// List pages: default and ceiling of `page_size`.
    pub page_size_default: u32,
    pub page_size_max: u32,
    /// How often a WatchAccount stream looks for changes.
    pub watch_poll_interval_ms: u64,
}

/// The quick cashier (快捷收银台): order expiry, payment codes, barcode limits (rule,
/// 银发〔2017〕296号) per payer per business date, and the bank's own callers. Amounts are
/// decimal strings in the electronic-account currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CashierConfig {
    /// Expiry of an order created without one, and the longest expiry a caller may ask for.
    pub order_expiry_default_ms: u64,
    pub order_expiry_max_ms: u64,
    /// How long a consumer-presented payment code (付款码) is accepted.
    pub payment_code_ttl_ms: u64,
    /// Static merchant code payments per payer per day.
    pub static_code_per_day: String,
    /// Dynamic code payments per payer per day by risk level (A: the amount agreed with the
    /// customer, one bank-wide figure here).
    pub dynamic_code_a_per_day: String,
    pub dynamic_code_b_per_day: String,
    pub dynamic_code_c_per_day: String,
    /// Callers that act for every merchant and may register merchants (the bank's own systems).
    pub bank_callers: Vec<String>,
    /// How often a SubscribeEvents stream looks for new events.
    pub events_poll_interval_ms: u64,
    /// How often unpaid orders past their expiry are closed (with an ORDER_CLOSED event).
    pub expiry_sweep_interval_ms: u64,
}

impl Default for CashierConfig {
    fn default() -> Self {
        CashierConfig {
            order_expiry_default_ms: 30 * 60_000,
            order_expiry_max_ms: 7 * 24 * 3_600_000,
            payment_code_ttl_ms: 60_000,
            static_code_per_day: "500.00".to_owned(),
            dynamic_code_a_per_day: "50000.00".to_owned(),
            dynamic_code_b_per_day: "5000.00".to_owned(),
            dynamic_code_c_per_day: "1000.00".to_owned(),
            bank_callers: vec![
                "core-banking".to_owned(),
                "loadtest".to_owned(),
                "auditor".to_owned(),
            ],
            events_poll_interval_ms: 200,
            expiry_sweep_interval_ms: 1_000,
        }
    }
}

/// A named caller: the certificate identities that are this caller, and the methods it may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerConfig {
    /// Stable caller name, used in logs, metrics and idempotency scopes.
    pub name: String,
    /// Certificate identities (a SAN DNS name, URI or e-mail, or the subject CN) that map to this caller.
    pub identities: Vec<String>,
    /// Grants: `*` (everything), `paygate.v1.AccountService/*` (a whole service) or
    /// `paygate.v1.AccountService/GetAccount` (one method). Health and reflection are open to
    /// every caller holding a valid certificate.
    pub grants: Vec<String>,
    /// Per-caller rate limit override.
    #[serde(default)]
    pub rate_per_s: Option<u32>,
    #[serde(default)]
    pub burst: Option<u32>,
    /// Which accounts this caller may touch: `all`, or `own` (only accounts it opened, e.g. a
    /// mobile back end and its own customers).
    #[serde(default)]
    pub account_scope: AccountScope,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountScope {
    #[default]
    All,
    Own,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            admin: AdminConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            limits: LimitsConfig::default(),
            ledger: LedgerConfig::default(),
            secrets: SecretsConfig::default(),
            accounts: AccountsConfig::default(),
            cashier: CashierConfig::default(),
            yields: YieldsConfig::default(),
            callers: default_callers(),
        }
    }
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

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/paygate.db".to_owned(),
            connections_max: 8,
            acquire_timeout_ms: 5_000,
            sqlite_synchronous: SqliteSynchronous::Full,
            account_cache_entries_max: 1_000_000,
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
        }
    }
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            batch_size_max: 1_024,
            queue_depth_max: 65_536,
            idempotency_retention_days: 30,
            expiry_sweep_interval_ms: 1_000,
            expiry_sweep_items_max: 1_000,
            pending_timeout_max_ms: 7 * 24 * 3_600_000,
            hold_timeout_max_ms: 366 * 24 * 3_600_000,
            idempotency_purge_interval_ms: 3_600_000,
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

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            currency: "CNY".to_owned(),
            class_ii_per_person_max: 5,
            class_iii_per_person_max: 5,
            class_ii_non_bound_inflow_per_day: "10000.00".to_owned(),
            class_ii_non_bound_inflow_per_year: "200000.00".to_owned(),
            class_ii_non_bound_outflow_per_day: "10000.00".to_owned(),
            class_ii_non_bound_outflow_per_year: "200000.00".to_owned(),
            class_iii_balance_max: "2000.00".to_owned(),
            class_iii_outflow_per_day: "2000.00".to_owned(),
            class_iii_outflow_per_year: "50000.00".to_owned(),
            business_day_utc_offset_minutes: 480,
            business_day_cutover_minute: 0,
            clearing_reservation_timeout_ms: 600_000,
            page_size_default: 50,
            page_size_max: 500,
            watch_poll_interval_ms: 200,
        }
    }
}

/// The sample callers of the development PKI (`paygate certs init`), with grants that show the model.
pub fn default_callers() -> Vec<CallerConfig> {
    let caller = |name: &str, grants: &[&str]| CallerConfig {
        name: name.to_owned(),
        identities: vec![name.to_owned()],
        grants: grants.iter().map(|g| (*g).to_owned()).collect(),
        rate_per_s: None,
        burst: None,
        account_scope: if name == "mobile-backend" {
            AccountScope::Own
        } else {
            AccountScope::All
        },
    };
    vec![
        caller("core-banking", &["*"]),
        // A mobile back end serves its own customers: no freezes or holds (those are the bank's).
        caller(
            "mobile-backend",
            &[
                "paygate.v1.AccountService/OpenAccount",
                "paygate.v1.AccountService/GetAccount",
                "paygate.v1.AccountService/ListAccounts",
                "paygate.v1.AccountService/GetBalance",
                "paygate.v1.AccountService/Transfer",
                "paygate.v1.AccountService/TopUp",
                "paygate.v1.AccountService/Withdraw",
                "paygate.v1.AccountService/CloseAccount",
                "paygate.v1.AccountService/ListEntries",
                "paygate.v1.AccountService/WatchAccount",
                "paygate.v1.CashierService/*",
                "paygate.v1.YieldService/ListProducts",
                "paygate.v1.YieldService/GetProduct",
                "paygate.v1.YieldService/Subscribe",
                "paygate.v1.YieldService/Redeem",
                "paygate.v1.YieldService/GetHolding",
                "paygate.v1.YieldService/ListIncome",
                "paygate.v1.YieldService/ListRedemptions",
                "paygate.v1.YieldService/SetAutoSweep",
                "paygate.v1.YieldService/GetAutoSweep",
            ],
        ),
        caller("merchant-gateway", &["paygate.v1.CashierService/*"]),
        caller("loadtest", &["*"]),
        caller(
            "auditor",
            &[
                "paygate.v1.AccountService/GetAccount",
                "paygate.v1.AccountService/ListAccounts",
                "paygate.v1.AccountService/GetBalance",
                "paygate.v1.AccountService/ListEntries",
                "paygate.v1.CashierService/GetMerchant",
                "paygate.v1.CashierService/GetOrder",
                "paygate.v1.CashierService/GetRefund",
                "paygate.v1.YieldService/ListProducts",
                "paygate.v1.YieldService/GetProduct",
                "paygate.v1.YieldService/GetHolding",
                "paygate.v1.YieldService/ListIncome",
                "paygate.v1.YieldService/ListRedemptions",
                "paygate.v1.YieldService/GetAutoSweep",
            ],
        ),
    ]
}

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
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        self.yields.validate().map_err(ConfigError::Invalid)?;
        let l = &self.limits;
        if !(1024..=64 * 1024 * 1024).contains(&l.message_size_max_bytes) {
            return invalid("limits.message_size_max_bytes must be within 1 KiB..=64 MiB".into());
        }
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
        }
        Ok(())
    }
}

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
    fn zero_limits_are_refused() {
        let mut config = Config::default();
        config.limits.inflight_calls_max = 0;
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
    }
}

#[cfg(test)]
mod example_file {
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

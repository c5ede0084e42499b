//! The routing table: payment method × scenario × bank → network, and where each network is
//! reached. Part of the one configuration tree (`[clearing]`), validated when it loads: a
//! network name the gateway does not know is refused by the parser, a route to a network with
//! no endpoint, a repeated endpoint or an unreachable route by [`ClearingConfig::validate`].
//!
//! ```toml
//! [[clearing.routes]]          # tried in order; the first match names the network
//! method = "QUICK_PAY"         # or "*"
//! scenario = "TOP_UP"          # or "*"
//! bank = "ICBC"                # the card issuer's bank code, or "*"
//! network = "NETS_UNION"
//!
//! [[clearing.networks]]        # every network a route names, but on-us
//! network = "NETS_UNION"
//! address = "127.0.0.1:7070"   # host:port (the simulator's, in a sandbox)
//! timeout_ms = 3000            # no answer by then is an unknown outcome, never a failure
//!
//! [[clearing.issuers]]         # a card's bank, by the longest matching BIN prefix
//! bin_prefix = "622202"
//! bank = "ICBC"
//!
//! [clearing.recovery]          # the recovery worker of unanswered calls
//! first_query_after_ms = 30000 # then doubling up to query_backoff_max_ms
//! bound_ms = 300000            # then reversed and presumed failed
//! queries_concurrent_max = 32  # calls queried and settled at once
//! ```

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};

use super::{
    ClearingClient, Network, http::Endpoint, on_us::OnUsClient, registry::Reach, wire::WireClient,
};
use crate::clock::Clock;

/// Most routes in the table.
pub const ROUTES_MAX: usize = 1_000;
/// Longest network timeout.
pub const NETWORK_TIMEOUT_MS_MAX: u64 = 120_000;
/// Longest bank code.
pub const BANK_CODE_LEN_MAX: usize = 32;

/// How the payer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentMethod {
    /// Any method (in a route only).
    #[serde(rename = "*")]
    Any,
    /// Bound-card quick pay (快捷支付).
    QuickPay,
    /// A UnionPay QR code.
    UnionPayQr,
    /// Alipay or WeChat Pay, the bank as service provider.
    Wallet,
    /// An interbank transfer (CNAPS).
    BankTransfer,
}

impl PaymentMethod {
    /// Every method but `Any`.
    pub const CONCRETE: [PaymentMethod; 4] = [
        PaymentMethod::QuickPay,
        PaymentMethod::UnionPayQr,
        PaymentMethod::Wallet,
        PaymentMethod::BankTransfer,
    ];
}

/// What the movement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scenario {
    /// Any scenario (in a route only).
    #[serde(rename = "*")]
    Any,
    Pay,
    Refund,
    TopUp,
    Withdrawal,
}

impl Scenario {
    /// Every scenario but `Any`.
    pub const CONCRETE: [Scenario; 4] = [
        Scenario::Pay,
        Scenario::Refund,
        Scenario::TopUp,
        Scenario::Withdrawal,
    ];
}

/// One line of the routing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub method: PaymentMethod,
    pub scenario: Scenario,
    /// The card issuer's bank code, or `*`.
    pub bank: String,
    pub network: Network,
}

impl RouteConfig {
    fn matches(&self, method: PaymentMethod, scenario: Scenario, bank: &str) -> bool {
        (self.method == PaymentMethod::Any || self.method == method)
            && (self.scenario == Scenario::Any || self.scenario == scenario)
            && (self.bank == "*" || self.bank == bank)
    }

    fn matches_everything(&self) -> bool {
        self.method == PaymentMethod::Any && self.scenario == Scenario::Any && self.bank == "*"
    }
}

/// Where one network is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkEndpointConfig {
    pub network: Network,
    /// `host:port` of its front-end processor, or of `paygate netsim`.
    pub address: String,
    /// How long a call may take; no answer by then is an unknown outcome.
    pub timeout_ms: u64,
}

/// A card issuer by the leading digits of its cards (its BIN, 发卡行识别码).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// 1 to 6 leading digits of the card number; the longest prefix that matches wins.
    pub bin_prefix: String,
    /// The bank code routes name.
    pub bank: String,
}

/// `[clearing.recovery]`: how the recovery worker settles calls the network did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// How often the worker looks for unanswered calls.
    pub interval_ms: u64,
    /// How long after it was sent a call is first queried (longer than any network timeout,
    /// so the request that sent it settles it itself when it can).
    pub first_query_after_ms: u64,
    /// The longest wait between two queries of one call (the wait doubles from
    /// `first_query_after_ms` up to it).
    pub query_backoff_max_ms: u64,
    /// The bound: a call still unanswered this long after it was sent is reversed (冲正) and
    /// finalised as failed by the presumption rule, and flagged for reconciliation.
    pub bound_ms: u64,
    /// Most calls the worker queries and settles at once (after a network's outage thousands
    /// may be due together; one at a time, each unanswered query would cost a whole timeout).
    pub queries_concurrent_max: usize,
}

/// Ceiling of `clearing.recovery.queries_concurrent_max`.
pub const RECOVERY_QUERIES_CONCURRENT_MAX: usize = 1_024;

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            interval_ms: 1_000,
            first_query_after_ms: 30_000,
            query_backoff_max_ms: 60_000,
            bound_ms: 300_000,
            queries_concurrent_max: 32,
        }
    }
}

/// Most issuers in the BIN table.
pub const ISSUERS_MAX: usize = 10_000;

/// `[clearing]`: the routing table, the networks' endpoints, the card issuers, the recovery
/// worker and the listener of the networks' result notices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClearingConfig {
    /// Tried in order; the first route that matches names the network.
    pub routes: Vec<RouteConfig>,
    /// One per network a route names, but on-us.
    pub networks: Vec<NetworkEndpointConfig>,
    /// Card issuers by BIN prefix: a route's `bank` is matched against the bank of the card's
    /// first six digits (`""`, matched only by `*`, when no prefix matches).
    pub issuers: Vec<IssuerConfig>,
    pub recovery: RecoveryConfig,
    /// The listener of the networks' result notices.
    pub notices: super::notice::NoticesConfig,
}

impl Default for ClearingConfig {
    /// Everything on-us, as the gateway ran before the networks were wired.
    fn default() -> Self {
        ClearingConfig {
            routes: vec![RouteConfig {
                method: PaymentMethod::Any,
                scenario: Scenario::Any,
                bank: "*".to_owned(),
                network: Network::ON_US,
            }],
            networks: Vec::new(),
            issuers: Vec::new(),
            recovery: RecoveryConfig::default(),
            notices: super::notice::NoticesConfig::default(),
        }
    }
}

fn address_is_valid(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

impl ClearingConfig {
    /// Checks the table: bounded, every bank code well formed, no route after one that
    /// matches everything, every routed network but on-us with exactly one endpoint, every
    /// endpoint a `host:port` with a timeout within 1..=120000 ms.
    pub fn validate(&self) -> Result<(), String> {
        if self.routes.is_empty() || self.routes.len() > ROUTES_MAX {
            return Err(format!("clearing.routes: 1 to {ROUTES_MAX} routes"));
        }
        for (n, route) in self.routes.iter().enumerate() {
            let bank = &route.bank;
            let valid = bank == "*"
                || (!bank.is_empty()
                    && bank.len() <= BANK_CODE_LEN_MAX
                    && bank.bytes().all(|b| b.is_ascii_alphanumeric()));
            if !valid {
                return Err(format!(
                    "clearing.routes[{n}].bank {bank:?}: `*` or 1 to {BANK_CODE_LEN_MAX} letters or digits"
                ));
            }
            if route.matches_everything() && n + 1 < self.routes.len() {
                return Err(format!(
                    "clearing.routes[{n}] matches everything: the routes after it are never used"
                ));
            }
            if route.network.is_remote() && self.endpoint(route.network).is_none() {
                return Err(format!(
                    "clearing.routes[{n}] names {} but clearing.networks has no endpoint for it",
                    route.network.as_str()
                ));
            }
        }
        for method in PaymentMethod::CONCRETE {
            for scenario in Scenario::CONCRETE {
                if !self
                    .routes
                    .iter()
                    .any(|r| r.bank == "*" && r.matches(method, scenario, ""))
                {
                    return Err(format!(
                        "clearing.routes: nothing routes {method:?} × {scenario:?} for every bank: end the table with a route whose bank is `*`"
                    ));
                }
            }
        }
        for (n, endpoint) in self.networks.iter().enumerate() {
            let name = endpoint.network.as_str();
            if !endpoint.network.is_remote() {
                return Err(format!(
                    "clearing.networks[{n}]: {name} is in process, it has no endpoint"
                ));
            }
            if self.networks[..n]
                .iter()
                .any(|e| e.network == endpoint.network)
            {
                return Err(format!("clearing.networks: {name} is listed twice"));
            }
            if !address_is_valid(&endpoint.address) {
                return Err(format!(
                    "clearing.networks[{n}] ({name}).address {:?} is not host:port",
                    endpoint.address
                ));
            }
            if !(1..=NETWORK_TIMEOUT_MS_MAX).contains(&endpoint.timeout_ms) {
                return Err(format!(
                    "clearing.networks[{n}] ({name}).timeout_ms must be within 1..={NETWORK_TIMEOUT_MS_MAX}"
                ));
            }
        }
        self.validate_issuers()?;
        self.notices.validate()?;
        let r = &self.recovery;
        if !(1..=60_000).contains(&r.interval_ms)
            || r.first_query_after_ms == 0
            || r.query_backoff_max_ms < r.first_query_after_ms
            || r.bound_ms < r.first_query_after_ms
            || r.bound_ms > 86_400_000
            || !(1..=RECOVERY_QUERIES_CONCURRENT_MAX).contains(&r.queries_concurrent_max)
        {
            return Err(format!(
                "clearing.recovery: interval_ms within 1..=60000, first_query_after_ms > 0, \
                 query_backoff_max_ms and bound_ms (at most a day) not below first_query_after_ms, \
                 queries_concurrent_max within 1..={RECOVERY_QUERIES_CONCURRENT_MAX}"
            ));
        }
        let slowest_ms = self
            .networks
            .iter()
            .map(|e| e.timeout_ms)
            .max()
            .unwrap_or(0);
        if r.first_query_after_ms <= slowest_ms {
            return Err(format!(
                "clearing.recovery.first_query_after_ms ({}) must exceed every network's timeout_ms ({slowest_ms})",
                r.first_query_after_ms
            ));
        }
        Ok(())
    }

    fn validate_issuers(&self) -> Result<(), String> {
        if self.issuers.len() > ISSUERS_MAX {
            return Err(format!("clearing.issuers: at most {ISSUERS_MAX}"));
        }
        for (n, issuer) in self.issuers.iter().enumerate() {
            let prefix = &issuer.bin_prefix;
            if !(1..=6).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "clearing.issuers[{n}].bin_prefix {prefix:?}: 1 to 6 digits"
                ));
            }
            let bank = &issuer.bank;
            if bank.is_empty()
                || bank.len() > BANK_CODE_LEN_MAX
                || !bank.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(format!(
                    "clearing.issuers[{n}].bank {bank:?}: 1 to {BANK_CODE_LEN_MAX} letters or digits"
                ));
            }
            if self.issuers[..n].iter().any(|i| &i.bin_prefix == prefix) {
                return Err(format!("clearing.issuers: {prefix} is listed twice"));
            }
        }
        Ok(())
    }

    fn endpoint(&self, network: Network) -> Option<Endpoint> {
        self.networks
            .iter()
            .find(|e| e.network == network)
            .map(|e| Endpoint {
                address: e.address.clone(),
                timeout_ms: e.timeout_ms,
            })
    }
}

/// The client of `network`: in process, or its codec at `endpoint` (unused in process).
pub fn client(network: Network, endpoint: Endpoint, clock: Clock) -> Arc<dyn ClearingClient> {
    match network.spec().reach {
        Reach::InProcess(client) => client(),
        Reach::Wire(codec) => Arc::new(WireClient::new(codec(network), endpoint, clock)),
    }
}

/// The routing table with one client per routed network: built once at start.
pub struct Clearing {
    routes: Vec<RouteConfig>,
    clients: BTreeMap<Network, Arc<dyn ClearingClient>>,
    /// BIN prefix → bank code.
    issuers: BTreeMap<String, String>,
    recovery: RecoveryConfig,
}

impl Clearing {
    /// Validates `config` and builds a client for every network it routes to.
    pub fn from_config(config: &ClearingConfig, clock: &Clock) -> Result<Clearing, String> {
        config.validate()?;
        // A client for every routed network, and for every network with an endpoint even if
        // no route names it any more (its payments may still be refunded and recovered).
        let mut clients: BTreeMap<Network, Arc<dyn ClearingClient>> = BTreeMap::new();
        let networks = config
            .routes
            .iter()
            .map(|r| r.network)
            .chain(config.networks.iter().map(|e| e.network));
        for network in networks {
            if clients.contains_key(&network) {
                continue;
            }
            let endpoint = if network.is_remote() {
                config
                    .endpoint(network)
                    .ok_or(format!("no endpoint for {}", network.as_str()))?
            } else {
                Endpoint {
                    address: String::new(),
                    timeout_ms: 1,
                }
            };
            clients.insert(network, client(network, endpoint, clock.clone()));
        }
        Ok(Clearing {
            routes: config.routes.clone(),
            clients,
            issuers: config
                .issuers
                .iter()
                .map(|i| (i.bin_prefix.clone(), i.bank.clone()))
                .collect(),
            recovery: config.recovery.clone(),
        })
    }

    /// Everything on-us (the default table).
    pub fn on_us() -> Clearing {
        Clearing::only(Arc::new(OnUsClient))
    }

    /// Everything through one client (a test's scripted network, say).
    pub fn only(client: Arc<dyn ClearingClient>) -> Clearing {
        let network = client.network();
        let mut clients: BTreeMap<Network, Arc<dyn ClearingClient>> = BTreeMap::new();
        clients.insert(network, client);
        Clearing {
            routes: vec![RouteConfig {
                method: PaymentMethod::Any,
                scenario: Scenario::Any,
                bank: "*".to_owned(),
                network,
            }],
            clients,
            issuers: BTreeMap::new(),
            recovery: RecoveryConfig::default(),
        }
    }

    /// The bank that issued a card starting with `first_six`: the longest BIN prefix that
    /// matches; `""` (matched only by a route's `*`) when none does.
    pub fn bank_of(&self, first_six: &str) -> &str {
        (1..=first_six.len().min(6))
            .rev()
            .find_map(|n| first_six.get(..n).and_then(|p| self.issuers.get(p)))
            .map_or("", String::as_str)
    }

    /// The recovery worker's settings.
    pub fn recovery(&self) -> &RecoveryConfig {
        &self.recovery
    }

    /// The network of the first route that matches.
    /// The network of the first route that matches. Every table ends in a route for any bank
    /// of each method and scenario ([`ClearingConfig::validate`]), so one always does; on-us
    /// answers should one not.
    pub fn route(&self, method: PaymentMethod, scenario: Scenario, bank: &str) -> Network {
        debug_assert!(method != PaymentMethod::Any && scenario != Scenario::Any);
        let routed = self
            .routes
            .iter()
            .find(|r| r.matches(method, scenario, bank))
            .map(|r| r.network);
        debug_assert!(routed.is_some(), "no route: the table was validated");
        routed.unwrap_or(Network::ON_US)
    }

    /// The client of a routed network.
    /// The networks this gateway has a client for: every routed one and every one with an
    /// endpoint.
    pub fn networks(&self) -> impl Iterator<Item = Network> + '_ {
        self.clients.keys().copied()
    }

    pub fn client(&self, network: Network) -> Option<&Arc<dyn ClearingClient>> {
        self.clients.get(&network)
    }

    /// The client the table routes this movement to.
    pub fn client_for(
        &self,
        method: PaymentMethod,
        scenario: Scenario,
        bank: &str,
    ) -> Option<&Arc<dyn ClearingClient>> {
        self.client(self.route(method, scenario, bank))
    }
}

#[cfg(test)]
mod tests;

//! The registry of clearing networks: one [`NetworkSpec`] per network, declared by the network's
//! own module, and [`NETWORKS`], one line per network. Everything that differs between networks
//! — the code stored in the database, the contract's enum number, the suspense account, the path
//! prefix, the calendar, the codec the client and the simulator speak, the simulator's reference
//! prefix and decline code — is read from the spec; nothing else matches on a network.
//!
//! Adding a network: a module with its `SPEC` (and its `Codec`), its line in [`NETWORKS`], its
//! value in the contract's `ClearingNetwork` enum, and a route to it in the deployment's
//! `[clearing]` ([`docs/ARCHITECTURE.md`](../../docs/ARCHITECTURE.md), "A new clearing network").

use std::{cmp::Ordering, fmt, hash::Hash, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ClearingClient, wire::Codec};

/// Every network, on-us first, in the order of their contract numbers.
pub const NETWORKS: &[Network] = &[
    super::on_us::NETWORK,
    super::nets_union::NETWORK,
    super::union_pay_qr::NETWORK,
    super::cnaps::HVPS,
    super::cnaps::BEPS,
    super::cnaps::IBPS,
    super::wallets::ALIPAY,
    super::wallets::WECHAT_PAY,
    super::e_cny::NETWORK,
];

/// Everything about one network that the rest of the gateway needs.
#[derive(Debug)]
pub struct NetworkSpec {
    /// Its stable code (`NETS_UNION`): what the database, the configuration, the simulator's
    /// books and the reconciliation files spell. Never change a network's code.
    pub code: &'static str,
    /// Its value of the contract's `ClearingNetwork` enum (`proto/paygate/v1/common.proto`).
    pub contract_number: i32,
    /// How an operator names it (`NetsUnion (网联)`).
    pub display_name: &'static str,
    /// The name of its clearing suspense account (清算过渡户), as stored.
    pub suspense_account: &'static str,
    /// How the gateway reaches it.
    pub reach: Reach,
    /// The path prefix it is reached under on the simulator (and a front-end processor):
    /// `/netsunion`; empty for a network in process.
    pub path_prefix: &'static str,
    /// When its business date ends and how its reconciliation files are cut.
    pub calendar: Calendar,
    /// The prefix of the network's own references (`NU` + 12 digits in the simulator's books).
    pub reference_prefix: &'static str,
    /// The code it declines a movement with (the simulator's rejections).
    pub decline_code: &'static str,
    /// Whether it answers presumed outcomes (异常成功 / 异常失败): NetsUnion.
    pub presumed_outcomes: bool,
}

/// How the gateway reaches a network.
#[derive(Debug)]
pub enum Reach {
    /// In process (on-us): no endpoint, no simulator.
    InProcess(fn() -> Arc<dyn ClearingClient>),
    /// Over HTTP/1.1 at a configured endpoint, in its own message format: the codec of a
    /// network, which the client ([`super::wire::WireClient`]) and the simulator both speak.
    Wire(fn(Network) -> Box<dyn Codec>),
}

/// A network's calendar (Beijing time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    /// The hour its business date ends: 24 (midnight), or its cutover (UnionPay QR: 23, so an
    /// instant from 23:00 books under the next date).
    pub date_ends_at_hour: u8,
    /// Whether it also reconciles hourly batches (NetsUnion), besides its daily file.
    pub hourly_batches: bool,
}

impl Calendar {
    /// Daily files, the date ending at midnight.
    pub const MIDNIGHT: Calendar = Calendar {
        date_ends_at_hour: 24,
        hourly_batches: false,
    };
}

/// A clearing network: a handle on its [`NetworkSpec`]. Equal, ordered and hashed by its
/// contract number; stored, configured and serialised as its code.
#[derive(Clone, Copy)]
pub struct Network(&'static NetworkSpec);

impl Network {
    /// On-us (行内): the bank's own ledger.
    pub const ON_US: Network = super::on_us::NETWORK;

    /// The network `spec` declares (for its module's `NETWORK` constant).
    pub const fn of(spec: &'static NetworkSpec) -> Network {
        Network(spec)
    }

    /// Every network, on-us first.
    pub fn all() -> impl Iterator<Item = Network> {
        NETWORKS.iter().copied()
    }

    pub fn spec(self) -> &'static NetworkSpec {
        self.0
    }

    /// Its code ([`NetworkSpec::code`]).
    pub fn as_str(self) -> &'static str {
        self.0.code
    }

    /// The network whose code is `code`.
    pub fn parse(code: &str) -> Option<Network> {
        Network::all().find(|n| n.as_str() == code)
    }

    /// The network reached over the wire whose prefix `path` is under, and the rest of the
    /// path (`/netsunion/notify` → NetsUnion, `/notify`).
    pub fn under_path(path: &str) -> Option<(Network, &str)> {
        Network::all().find_map(|n| {
            let prefix = n.path_prefix();
            (!prefix.is_empty())
                .then(|| path.strip_prefix(prefix))
                .flatten()
                .filter(|rest| rest.starts_with('/'))
                .map(|rest| (n, rest))
        })
    }

    /// The network of the contract's `ClearingNetwork` value `number`.
    pub fn from_contract(number: i32) -> Option<Network> {
        Network::all().find(|n| n.0.contract_number == number)
    }

    pub fn contract_number(self) -> i32 {
        self.0.contract_number
    }

    /// Its path prefix ([`NetworkSpec::path_prefix`]).
    pub fn path_prefix(self) -> &'static str {
        self.0.path_prefix
    }

    /// Whether its reconciliation also comes in hourly batches (NetsUnion).
    pub fn hourly_batches(self) -> bool {
        self.0.calendar.hourly_batches
    }

    /// Whether it is reached over the wire (every network but on-us), so it needs an endpoint.
    pub fn is_remote(self) -> bool {
        matches!(self.0.reach, Reach::Wire(_))
    }

    /// The codec it speaks on the wire; `None` in process.
    pub fn codec(self) -> Option<Box<dyn Codec>> {
        match self.0.reach {
            Reach::Wire(codec) => Some(codec(self)),
            Reach::InProcess(_) => None,
        }
    }
}

impl PartialEq for Network {
    fn eq(&self, other: &Network) -> bool {
        self.0.contract_number == other.0.contract_number
    }
}

impl Eq for Network {}

impl PartialOrd for Network {
    fn partial_cmp(&self, other: &Network) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Network {
    fn cmp(&self, other: &Network) -> Ordering {
        self.0.contract_number.cmp(&other.0.contract_number)
    }
}

impl Hash for Network {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.contract_number.hash(state);
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.code)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Network, D::Error> {
        let code = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Network::parse(&code).ok_or_else(|| {
            let known: Vec<&str> = Network::all().map(Network::as_str).collect();
            serde::de::Error::custom(format!(
                "unknown clearing network {code:?}, expected one of {}",
                known.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_network_has_its_own_code_number_suspense_account_and_prefix() {
        let all: Vec<Network> = Network::all().collect();
        assert_eq!(all[0], Network::ON_US, "on-us first");
        for (n, network) in all.iter().enumerate() {
            let spec = network.spec();
            for other in &all[..n] {
                let o = other.spec();
                assert_ne!(spec.code, o.code);
                assert_ne!(spec.suspense_account, o.suspense_account);
                assert_ne!(spec.reference_prefix, o.reference_prefix);
                assert!(
                    spec.path_prefix.is_empty() || spec.path_prefix != o.path_prefix,
                    "{network:?}"
                );
                assert!(
                    o.contract_number < spec.contract_number,
                    "in contract order"
                );
            }
            assert!(
                spec.code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{network:?}"
            );
            assert_eq!(network.is_remote(), !spec.path_prefix.is_empty());
            assert!(spec.path_prefix.is_empty() || spec.path_prefix.starts_with('/'));
            assert!((1..=24).contains(&spec.calendar.date_ends_at_hour));
            assert!(!spec.presumed_outcomes || network.is_remote());
            if let Some(codec) = network.codec() {
                assert_eq!(codec.network(), *network, "its codec speaks for it");
            }
        }
    }

    #[test]
    fn a_network_is_stored_and_parsed_by_its_code() {
        for network in Network::all() {
            assert_eq!(Network::parse(network.as_str()), Some(network));
            assert_eq!(
                Network::from_contract(network.contract_number()),
                Some(network)
            );
            let json = serde_json::to_string(&network).unwrap();
            assert_eq!(json, format!("\"{}\"", network.as_str()));
            assert_eq!(serde_json::from_str::<Network>(&json).unwrap(), network);
        }
        assert_eq!(Network::parse("SWIFT"), None);
        for network in Network::all().filter(|n| n.is_remote()) {
            let path = format!("{}/notify", network.path_prefix());
            assert_eq!(Network::under_path(&path), Some((network, "/notify")));
        }
        assert_eq!(Network::under_path("/netsunionx/notify"), None);
        assert_eq!(Network::under_path("/notify"), None);
        assert_eq!(Network::from_contract(0), None);
        let refused = serde_json::from_str::<Network>("\"SWIFT\"").unwrap_err();
        assert!(
            refused.to_string().contains("ON_US, NETS_UNION"),
            "{refused}"
        );
    }

    #[test]
    fn the_codes_already_stored_are_unchanged() {
        let codes: Vec<(&str, i32, &str)> = Network::all()
            .map(|n| (n.as_str(), n.contract_number(), n.spec().suspense_account))
            .collect();
        let stored = [
            ("ON_US", 1, "CLEARING_SUSPENSE_ON_US"),
            ("NETS_UNION", 2, "CLEARING_SUSPENSE_NETS_UNION"),
            ("UNION_PAY_QR", 3, "CLEARING_SUSPENSE_UNION_PAY_QR"),
            ("CNAPS_HVPS", 4, "CLEARING_SUSPENSE_CNAPS_HVPS"),
            ("CNAPS_BEPS", 5, "CLEARING_SUSPENSE_CNAPS_BEPS"),
            ("CNAPS_IBPS", 6, "CLEARING_SUSPENSE_CNAPS_IBPS"),
            ("ALIPAY", 7, "CLEARING_SUSPENSE_ALIPAY"),
            ("WECHAT_PAY", 8, "CLEARING_SUSPENSE_WECHAT_PAY"),
        ];
        assert_eq!(codes[..stored.len()], stored);
    }
}

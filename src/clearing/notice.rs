//! Result notices (交易结果通知): what a network pushes when a movement it did not answer in
//! time completes — UnionPay QR's transaction notice, the wallets' `notify_url` callbacks,
//! NetsUnion's result notice, … Each network's codec reads its own ([`super::wire::Codec::
//! decode_notice`]) into a [`Notice`]; the gateway's receiver (`crate::notices`) settles the
//! recorded call with it, through the path the recovery worker uses.
//!
//! A notice is authenticated by a MAC the network and the bank share, one key per network:
//! HMAC-SHA256 of the body, in hex, in the [`MAC_HEADER`] header. The wire formats modelled here
//! carry no signature of their own, so the MAC is this gateway's addition, sent by the simulator
//! and required by the receiver.

use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Network, Outcome};
use crate::money::Money;

/// The header that carries a notice's MAC (lower case, as HTTP/1.1 headers compare).
pub const MAC_HEADER: &str = "x-paygate-notice-mac";
/// The path under a network's prefix that notices are posted to.
pub const NOTICE_PATH: &str = "/notify";

/// A network's result notice, in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Our reference of the movement (a submit or a refund).
    pub reference: String,
    /// Its outcome; the network's own reference is in it when it succeeded.
    pub outcome: Outcome,
    /// What the network moved: must be what we recorded, or the notice is refused.
    pub amount: Money,
}

/// One network's notice key (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct NoticeKey(pub [u8; 32]);

impl std::fmt::Debug for NoticeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NoticeKey(..)")
    }
}

impl NoticeKey {
    /// The MAC of `body`, as the header carries it: 64 lower-case hex digits.
    pub fn sign(&self, body: &[u8]) -> String {
        hex::encode(self.mac(body))
    }

    /// Whether `given` is the MAC of `body` (compared in constant time).
    pub fn verifies(&self, body: &[u8], given: &str) -> bool {
        let Ok(given) = hex::decode(given.trim()) else {
            return false;
        };
        let expected = self.mac(body);
        given.len() == expected.len()
            && given
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn mac(&self, body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// The key of each network that sends notices.
#[derive(Debug, Clone, Default)]
pub struct NoticeKeys(pub Vec<(Network, NoticeKey)>);

impl NoticeKeys {
    /// The key of every network reached over the wire, each derived from its code by `key_of`
    /// (the gateway's server secret: `Secrets::notice_key`).
    pub fn derive(key_of: impl Fn(&str) -> [u8; 32]) -> NoticeKeys {
        NoticeKeys(
            Network::all()
                .filter(|n| n.is_remote())
                .map(|n| (n, NoticeKey(key_of(n.as_str()))))
                .collect(),
        )
    }

    pub fn of(&self, network: Network) -> Option<&NoticeKey> {
        self.0.iter().find(|(n, _)| *n == network).map(|(_, k)| k)
    }
}

/// Most bytes a notice body may have (the configured limit is within it).
pub const NOTICE_BYTES_MAX: usize = 1024 * 1024;
/// Most notices handled at once (the configured limit is within it).
pub const NOTICES_IN_FLIGHT_MAX: usize = 4_096;

/// `[clearing.notices]`: the listener the networks post their result notices to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoticesConfig {
    /// Off by default: the default routes everything on-us, and no network posts anything.
    pub enabled: bool,
    /// `host:port`; plain HTTP only on a loopback address (a front-end processor or the
    /// simulator on the same host), anything else needs `client_ca`.
    pub listen: SocketAddr,
    /// The CA of the networks' client certificates: set, the listener speaks TLS with the
    /// gateway's server certificate (`tls.server_cert`) and requires a client certificate
    /// chaining to it (with the clientAuth usage); empty, plain HTTP.
    pub client_ca: std::path::PathBuf,
    /// A longer body is refused (413) unread.
    pub body_bytes_max: usize,
    /// Notices handled at once; one more is answered 503 (the network resends).
    pub in_flight_max: usize,
    /// Notices a second from one source address; more are answered 429 (0: no limit).
    pub rate_per_s_per_source: u32,
    /// How long a connection may stay open (a slow sender is cut).
    pub connection_timeout_ms: u64,
}

impl Default for NoticesConfig {
    fn default() -> Self {
        NoticesConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9091)),
            client_ca: std::path::PathBuf::new(),
            body_bytes_max: 64 * 1024,
            in_flight_max: 64,
            rate_per_s_per_source: 200,
            connection_timeout_ms: 10_000,
        }
    }
}

impl NoticesConfig {
    /// Limits within their bounds; plain HTTP only on loopback.
    pub fn validate(&self) -> Result<(), String> {
        if !(1024..=NOTICE_BYTES_MAX).contains(&self.body_bytes_max) {
            return Err(format!(
                "clearing.notices.body_bytes_max must be within 1024..={NOTICE_BYTES_MAX}"
            ));
        }
        if !(1..=NOTICES_IN_FLIGHT_MAX).contains(&self.in_flight_max) {
            return Err(format!(
                "clearing.notices.in_flight_max must be within 1..={NOTICES_IN_FLIGHT_MAX}"
            ));
        }
        if !(100..=600_000).contains(&self.connection_timeout_ms) {
            return Err(
                "clearing.notices.connection_timeout_ms must be within 100..=600000".into(),
            );
        }
        if self.enabled && self.client_ca.as_os_str().is_empty() && !self.listen.ip().is_loopback()
        {
            return Err(format!(
                "clearing.notices.listen {} is not a loopback address: plain HTTP is allowed only \
                 on loopback; set clearing.notices.client_ca for mutual TLS",
                self.listen
            ));
        }
        Ok(())
    }

    /// Whether the listener speaks mutual TLS.
    pub fn is_tls(&self) -> bool {
        !self.client_ca.as_os_str().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_verifies_its_body_and_nothing_else() {
        let key = NoticeKey([7; 32]);
        let mac = key.sign(b"respCode=00");
        assert_eq!(mac.len(), 64);
        assert!(key.verifies(b"respCode=00", &mac));
        assert!(!key.verifies(b"respCode=01", &mac));
        assert!(!NoticeKey([8; 32]).verifies(b"respCode=00", &mac));
        assert!(!key.verifies(b"respCode=00", "not hex"));
        assert!(!key.verifies(b"respCode=00", &mac[..62]));
        assert_eq!(format!("{key:?}"), "NoticeKey(..)");
    }

    #[test]
    fn plain_notices_are_refused_off_loopback() {
        let mut config = NoticesConfig {
            enabled: true,
            ..NoticesConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
        config.listen = "0.0.0.0:9091".parse().unwrap();
        assert!(config.validate().unwrap_err().contains("loopback"));
        config.client_ca = "certs/networks-ca.pem".into();
        assert_eq!(config.validate(), Ok(()));
        config.body_bytes_max = 10;
        assert!(config.validate().is_err());
    }
}

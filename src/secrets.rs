//! The gateway's one server secret and what is derived from it: card-number tokens, person
//! keys (a person's identity document, never stored in clear), tamper-evident page tokens and
//! each clearing network's notice key (the MAC of its result notices).

use std::{fs, io::Write, path::Path};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::private_fs;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the server secret.
const SECRET_LEN: usize = 32;
/// Hex characters of a page token's signature.
const PAGE_TOKEN_SIGNATURE_HEX_LEN: usize = 32;
/// Longest page token accepted (bounded before any parsing).
pub const PAGE_TOKEN_LEN_MAX: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: the secret file must hold {SECRET_LEN} bytes as hex")]
    Malformed { path: String },
    #[error("{path} does not exist and generating it is disabled")]
    Missing { path: String },
}

/// Keys derived from the server secret, one per purpose.
#[derive(Clone)]
pub struct Secrets {
    card_key: [u8; 32],
    request_key: [u8; 32],
    person_key: [u8; 32],
    page_key: [u8; 32],
    notice_key: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// Reads the secret file, creating it (mode 0600, and its folder 0700 if missing) on first
    /// start when allowed.
    pub fn load_or_create(path: &Path, generate_if_missing: bool) -> Result<Secrets, SecretError> {
        let name = path.display().to_string();
        if !path.exists() {
            if !generate_if_missing {
                return Err(SecretError::Missing { path: name });
            }
            let mut secret = [0u8; SECRET_LEN];
            rand::fill(&mut secret);
            write_private(path, hex::encode(secret).as_bytes()).map_err(|source| {
                SecretError::Io {
                    path: name.clone(),
                    source,
                }
            })?;
        } else {
            private_fs::warn_if_readable_by_others(path, "server secret file");
        }
        let text = fs::read_to_string(path).map_err(|source| SecretError::Io {
            path: name.clone(),
            source,
        })?;
        let bytes =
            hex::decode(text.trim()).map_err(|_| SecretError::Malformed { path: name.clone() })?;
        let secret: [u8; SECRET_LEN] = bytes
            .try_into()
            .map_err(|_| SecretError::Malformed { path: name })?;
        Ok(Secrets::from_secret(&secret))
    }

    pub fn from_secret(secret: &[u8; SECRET_LEN]) -> Secrets {
        Secrets {
            card_key: derive(secret, b"paygate card token v1"),
            request_key: derive(secret, b"paygate request fingerprint v1"),
            person_key: derive(secret, b"paygate person key v1"),
            page_key: derive(secret, b"paygate page token v1"),
            notice_key: derive(secret, b"paygate notice key v1"),
        }
    }

    /// A stable token for a card number: equal numbers give equal tokens; the number cannot be
    /// recovered from it.
    pub fn card_token(&self, card_number: &str) -> String {
        hex::encode(mac(&self.card_key, card_number.as_bytes()))
    }

    /// A keyed digest of a request's text for its idempotency fingerprint, when the text holds
    /// personal data (an identity document, a card number): equal texts give equal digests,
    /// and neither the text nor a guess at it can be checked against the digest without the key.
    pub fn request_digest(&self, text: &str) -> String {
        hex::encode(mac(&self.request_key, text.as_bytes()))
    }

    /// A stable key for a person's identity document (type and number). `document_number` is
    /// the normalised number (`account::identity::normalise`), so every spelling of one number
    /// gives one key. It is upper-cased here as keys were first derived, from the number as
    /// given: for a number already in normal form (a valid 18-character resident ID with `X` or
    /// `x`; letters and digits only for the other types) the key is the one stored before.
    pub fn person_key(&self, document_type: &str, document_number: &str) -> String {
        let material = format!(
            "{document_type}\u{1f}{}",
            document_number.to_ascii_uppercase()
        );
        hex::encode(mac(&self.person_key, material.as_bytes()))
    }

    /// The key a clearing network and the bank share for the MAC of its result notices
    /// (HMAC-SHA256 of the body), by the network's stored code: one key per network, so one
    /// network's key cannot vouch for another's notice. `paygate config notice-key` prints it
    /// for the network's operators.
    pub fn notice_key(&self, network_code: &str) -> [u8; 32] {
        mac(&self.notice_key, network_code.as_bytes())
    }

    /// Signs a page-token payload (`payload` must be ASCII without `.`).
    pub fn seal_page_token(&self, payload: &str) -> String {
        debug_assert!(payload.is_ascii() && !payload.contains('.'));
        let signature = hex::encode(mac(&self.page_key, payload.as_bytes()));
        format!("{payload}.{}", &signature[..PAGE_TOKEN_SIGNATURE_HEX_LEN])
    }

    /// The payload of a page token this gateway issued, or `None` if it was altered or forged.
    pub fn open_page_token<'t>(&self, token: &'t str) -> Option<&'t str> {
        if token.len() > PAGE_TOKEN_LEN_MAX {
            return None;
        }
        let (payload, signature) = token.rsplit_once('.')?;
        let expected = hex::encode(mac(&self.page_key, payload.as_bytes()));
        constant_time_eq(
            signature.as_bytes(),
            &expected.as_bytes()[..PAGE_TOKEN_SIGNATURE_HEX_LEN],
        )
        .then_some(payload)
    }
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    mac(secret, label)
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Writes a new secret file readable by its owner only, in a folder of the owner's only when
/// the folder is created here.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        private_fs::create_private_dir_all(dir)?;
    }
    let mut file = private_fs::new_private_file().open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        Secrets::from_secret(&[7u8; 32])
    }

    #[test]
    fn a_page_token_survives_a_round_trip_and_any_change_breaks_it() {
        let s = secrets();
        let token = s.seal_page_token("a:42");
        assert_eq!(s.open_page_token(&token), Some("a:42"));
        assert_eq!(s.open_page_token(&token.replace("42", "43")), None);
        assert_eq!(s.open_page_token("a:42"), None);
        assert_eq!(s.open_page_token(&"x".repeat(PAGE_TOKEN_LEN_MAX + 1)), None);
    }

    #[test]
    fn tokens_are_stable_and_hide_the_number() {
        let s = secrets();
        let a = s.card_token("6222021234567890123");
        assert_eq!(a, s.card_token("6222021234567890123"));
        assert_ne!(a, s.card_token("6222021234567890124"));
        assert!(!a.contains("6222"));
        assert_ne!(s.notice_key("NETS_UNION"), s.notice_key("UNION_PAY_QR"));
        assert_eq!(s.notice_key("E_CNY"), secrets().notice_key("E_CNY"));
        assert_eq!(
            s.person_key("RESIDENT_ID_CARD", "11010519491231002x"),
            s.person_key("RESIDENT_ID_CARD", "11010519491231002X")
        );
    }

    #[test]
    fn the_secret_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data/secret.key");
        let first = Secrets::load_or_create(&path, true).expect("created");
        let again = Secrets::load_or_create(&path, false).expect("read back");
        assert_eq!(first.card_token("1"), again.card_token("1"));
        assert!(matches!(
            Secrets::load_or_create(&dir.path().join("nope"), false),
            Err(SecretError::Missing { .. })
        ));
    }
}

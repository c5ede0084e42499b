//! The hash chain (哈希链): each journal transaction's hash is
//! SHA-256(previous hash ‖ canonical content), the first one chaining from 32 zero bytes.
//! The canonical content is a length-prefixed binary encoding, so no two different
//! transactions encode alike.

use sha2::{Digest, Sha256};

use super::{
    model::{Entry, Metadata, TransactionId, TransactionKind},
    store::StorageError,
};

/// The hash the first transaction chains from.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

const DOMAIN: &[u8] = b"paygate.ledger.transaction.v1\0";

fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

/// The hash of a transaction given the previous transaction's hash.
pub fn transaction_hash(
    prev: &[u8; 32],
    id: TransactionId,
    kind: TransactionKind,
    reverses: Option<TransactionId>,
    created_at_ms: i64,
    metadata: &Metadata,
    entries: &[Entry],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(DOMAIN);
    h.update(id.0.to_be_bytes());
    put_str(&mut h, kind.as_db());
    match reverses {
        Some(r) => {
            h.update([1]);
            h.update(r.0.to_be_bytes());
        }
        None => h.update([0]),
    }
    h.update(created_at_ms.to_be_bytes());
    h.update((metadata.len() as u64).to_be_bytes());
    for (k, v) in metadata {
        put_str(&mut h, k);
        put_str(&mut h, v);
    }
    h.update((entries.len() as u64).to_be_bytes());
    for e in entries {
        h.update(e.account.0.to_be_bytes());
        put_str(&mut h, e.side.as_str());
        put_str(&mut h, e.amount.currency.code());
        h.update(e.amount.minor.to_be_bytes());
    }
    h.finalize().into()
}

/// Hex of a 32-byte hash.
pub fn hash_to_hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

/// A 32-byte hash from its hex form.
pub fn hash_from_hex(text: &str) -> Result<[u8; 32], StorageError> {
    let bytes = hex::decode(text).map_err(|_| StorageError::corrupt("stored hash is not hex"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StorageError::corrupt("stored hash is not 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ledger::model::{AccountId, Side},
        money::{Currency, Money},
    };

    #[test]
    fn any_change_changes_the_hash() {
        let e = |minor| Entry {
            account: AccountId(1),
            side: Side::Debit,
            amount: Money::new(Currency::CNY, minor),
        };
        let m = Metadata::new();
        let base = transaction_hash(
            &GENESIS_HASH,
            TransactionId(1),
            TransactionKind::Posting,
            None,
            5,
            &m,
            &[e(1)],
        );
        let other = transaction_hash(
            &GENESIS_HASH,
            TransactionId(1),
            TransactionKind::Posting,
            None,
            5,
            &m,
            &[e(2)],
        );
        assert_ne!(base, other);
        let chained = transaction_hash(
            &base,
            TransactionId(1),
            TransactionKind::Posting,
            None,
            5,
            &m,
            &[e(1)],
        );
        assert_ne!(base, chained);
    }
}

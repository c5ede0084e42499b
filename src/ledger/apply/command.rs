//! The commands a batch applies, their answers, and the fingerprint a retry is compared by.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::model::{
    Account, AccountId, AccountStatus, BalanceCap, CounterCheck, CounterRelease, DocumentWrite,
    Hold, HoldId, IdempotencyKey, Metadata, NewAccount, NewHold, NewPending, NewTransaction,
    OutboxEvent, Pending, PendingId, Posted, TransactionId,
};
use crate::money::Money;

/// A mutating request, as the batcher receives it. Its JSON encoding is its canonical form for
/// the idempotency fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", tag = "command")]
pub enum Command {
    CreateAccount(NewAccount),
    Post(NewTransaction),
    PostLinked {
        transactions: Vec<NewTransaction>,
    },
    CreatePending(NewPending),
    PostPending {
        pending: PendingId,
        amount: Option<Money>,
    },
    VoidPending {
        pending: PendingId,
    },
    PlaceHold(NewHold),
    ReleaseHold {
        hold: HoldId,
    },
    CaptureHold {
        hold: HoldId,
        amount: Money,
        to: AccountId,
        metadata: Metadata,
    },
    Reverse {
        transaction: TransactionId,
        reason: String,
    },
    SetAccountStatus {
        account: AccountId,
        status: AccountStatus,
    },
    /// Adds (`freeze`) or lifts (`!freeze`) the blocked directions of an account's freeze,
    /// against its status as the batch sees it, so concurrent changes combine and a retry of
    /// the same change is the same command.
    ChangeFreeze {
        account: AccountId,
        no_debit: bool,
        no_credit: bool,
        freeze: bool,
        /// Why: kept on the account's profile while it stays frozen (empty once it is not).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// Internal (the sweeper): void a pending transfer whose deadline passed.
    ExpirePending {
        pending: PendingId,
    },
    /// Internal (the sweeper): release a hold whose deadline passed.
    ExpireHold {
        hold: HoldId,
    },
    /// Any other command with conditions checked in the same step: counters incremented within
    /// their caps, counters released, and balance caps on accounts the command credits; and
    /// versioned documents and outbox events written with it. If one condition fails (a
    /// document's version differs: `DocumentConflict`), the whole command fails and nothing of
    /// it is written. Not nestable.
    Guarded {
        inner: Box<Command>,
        counters: Vec<CounterCheck>,
        releases: Vec<CounterRelease>,
        caps: Vec<BalanceCap>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        documents: Vec<DocumentWrite>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        events: Vec<OutboxEvent>,
    },
    /// Moves no money: the inner command of a `Guarded` that only writes documents and events.
    NoOp,
}

/// What a command answered; stored (as JSON) under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "SCREAMING_SNAKE_CASE",
    tag = "outcome",
    content = "value"
)]
pub enum Outcome {
    Account(Account),
    Posted(Posted),
    Linked(Vec<Posted>),
    Pending(Pending),
    Hold(Hold),
    /// An internal expiry that found nothing (left) to do.
    Nothing,
}

/// SHA-256 (hex) of the command's canonical encoding.
pub fn fingerprint(command: &Command) -> String {
    let mut h = Sha256::new();
    h.update(b"paygate.ledger.command.v1\0");
    // A command is plain data with string-keyed maps: encoding cannot fail.
    h.update(serde_json::to_vec(command).unwrap_or_default());
    hex::encode(h.finalize())
}

/// One command of a batch with its idempotency key (none for internal commands).
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub key: Option<IdempotencyKey>,
    pub fingerprint: String,
    pub command: Command,
}

/// Limits the engine applies that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct ApplyLimits {
    pub pending_timeout_max_ms: u64,
    pub hold_timeout_max_ms: u64,
}

//! The commands a batch applies, their answers, and the fingerprint a retry is compared by.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::error::LedgerError;
use crate::ledger::model::{
    Account, AccountId, AccountStatus, Balance, BalanceCap, CounterCheck, CounterRelease,
    DocumentWrite, Hold, HoldId, IdempotencyKey, Metadata, NewAccount, NewHold, NewPending,
    NewTransaction, OutboxEvent, Pending, PendingId, Posted, StoredDocument, TransactionId,
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
    /// A refusal a service decided before the batch from the state it read (no bound card, a
    /// product not open …): moves nothing and answers `LedgerError::Refused`, stored under the
    /// key like the ledger's own refusals, so a retry answers it again (or the first answer,
    /// if the key already has one) and a concurrent copy meets it.
    Refuse(Refusal),
}

impl Command {
    /// `inner` with `documents` written in the same step (no counters, caps or events);
    /// `Command::NoOp` as `inner` writes documents only.
    pub fn with_documents(inner: Command, documents: Vec<DocumentWrite>) -> Command {
        Command::Guarded {
            inner: Box::new(inner),
            counters: Vec::new(),
            releases: Vec::new(),
            caps: Vec::new(),
            documents,
            events: Vec::new(),
        }
    }
}

/// Most bytes of a stored service refusal's body.
pub const REFUSAL_BODY_LEN_MAX: usize = 2_048;
/// Most accounts whose balances one request observes.
pub const OBSERVED_ACCOUNTS_MAX: usize = 4;
/// Most counters one request observes.
pub const OBSERVED_COUNTERS_MAX: usize = 16;
/// Most document kinds one request observes.
pub const OBSERVED_KINDS_MAX: usize = 4;

/// A service's refusal as the ledger stores it: its stable reason, and a body only that service
/// reads back (its own encoding of the error, which the caller saw the first time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub reason: String,
    pub body: String,
}

/// What a request's answer shows of the state its command leaves, recorded by the batch right
/// after the command and stored with its outcome, so a replay answers what the first answer
/// did rather than the state as it is later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observe {
    /// Accounts whose balances to record.
    pub accounts: Vec<AccountId>,
    /// Counters whose values to record (absent ones record as 0).
    pub counters: Vec<String>,
    /// Kinds of the documents the command writes whose bodies to record.
    pub document_kinds: Vec<String>,
}

impl Observe {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.counters.is_empty() && self.document_kinds.is_empty()
    }
}

/// The state a request's command left, as [`Observe`] asked for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// The batch's time (the time of every posting of the batch).
    pub at_ms: i64,
    pub balances: Vec<(AccountId, Balance)>,
    pub counters: Vec<(String, i64)>,
    /// The documents of the observed kinds the command wrote, as written.
    pub documents: Vec<StoredDocument>,
}

impl Observed {
    pub fn balance(&self, account: AccountId) -> Option<Balance> {
        self.balances
            .iter()
            .find(|(id, _)| *id == account)
            .map(|(_, b)| *b)
    }

    pub fn counter(&self, key: &str) -> i64 {
        self.counters
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, v)| *v)
    }

    /// The document of `kind` and `id` as the command wrote it.
    pub fn document(&self, kind: &str, id: &str) -> Option<&StoredDocument> {
        self.documents.iter().find(|d| d.kind == kind && d.id == id)
    }
}

/// A command's answer with what its request observed (`None` when it asked for nothing, or its
/// answer was stored before observations were).
#[derive(Debug, Clone)]
pub struct Answer {
    pub result: Result<Outcome, LedgerError>,
    pub observed: Option<Observed>,
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
    /// What to record of the state the command leaves (not part of the fingerprint).
    pub observe: Observe,
    /// The method its audit record names (the call's gRPC method, or `internal/…`).
    pub method: std::sync::Arc<str>,
}

/// Limits the engine applies that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct ApplyLimits {
    pub pending_timeout_max_ms: u64,
    pub hold_timeout_max_ms: u64,
}

//! The ledger's domain types: accounts, balances, journal transactions, two-phase pending
//! transfers, holds, counters and idempotency keys. No storage or transport types here.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::store::NewProfile;
use crate::money::{Currency, Money};

mod documents;
mod request_id;

pub use documents::*;
pub use request_id::*;

/// Most entries (legs) in one journal transaction.
pub const ENTRIES_PER_TRANSACTION_MAX: usize = 64;
/// Most transactions in one `post_linked` call.
pub const LINKED_TRANSACTIONS_MAX: usize = 16;
/// Most counter checks carried by one command.
pub const COUNTER_CHECKS_MAX: usize = 8;
/// Most metadata pairs on a transaction, account, pending or hold.
pub const METADATA_PAIRS_MAX: usize = 16;
/// Longest metadata key and value, in bytes.
pub const METADATA_KEY_LEN_MAX: usize = 64;
pub const METADATA_VALUE_LEN_MAX: usize = 256;
/// Longest idempotency scope, idempotency key, counter key, account kind, reversal reason (bytes).
pub const IDEMPOTENCY_SCOPE_LEN_MAX: usize = 64;
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 128;
pub const COUNTER_KEY_LEN_MAX: usize = 128;
pub const ACCOUNT_KIND_LEN_MAX: usize = 32;
pub const REASON_LEN_MAX: usize = 256;
/// Largest id the storage can hold (ids are stored as signed 64-bit integers).
pub const ID_MAX: u64 = i64::MAX as u64;
/// Most statement lines returned by one `entries` call.
pub const STATEMENT_PAGE_MAX: u32 = 1_000;

/// Small string map carried on accounts, transactions, pendings and holds. A `BTreeMap` so its
/// encoding (and so the hash chain and the idempotency fingerprint) is canonical.
pub type Metadata = BTreeMap<String, String>;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A ledger account, numbered from 1 in creation order.
    AccountId
);
id_type!(
    /// A journal transaction: its global sequence number (1, 2, 3 … with no gap).
    TransactionId
);
id_type!(
    /// A two-phase pending transfer, numbered from 1.
    PendingId
);
id_type!(
    /// A hold on an amount of one account, numbered from 1.
    HoldId
);

/// Debit or credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "D",
            Side::Credit => "C",
        }
    }

    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "D" => Some(Side::Debit),
            "C" => Some(Side::Credit),
            _ => None,
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        }
    }
}

/// Whether an account may be debited or credited now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", tag = "state")]
pub enum AccountStatus {
    Active,
    /// Frozen (冻结): no debit, no credit, or both. Neither flag set means Active.
    Frozen {
        no_debit: bool,
        no_credit: bool,
    },
    /// Closed (销户): permanently; only reachable at a zero balance with nothing pending or held.
    Closed,
}

impl AccountStatus {
    /// `Frozen` with neither flag is the same as `Active`.
    pub fn normalized(self) -> AccountStatus {
        match self {
            AccountStatus::Frozen {
                no_debit: false,
                no_credit: false,
            } => AccountStatus::Active,
            other => other,
        }
    }

    pub fn as_db(self) -> &'static str {
        match self.normalized() {
            AccountStatus::Active => "ACTIVE",
            AccountStatus::Frozen {
                no_debit: true,
                no_credit: false,
            } => "FROZEN_DEBIT",
            AccountStatus::Frozen {
                no_debit: false,
                no_credit: true,
            } => "FROZEN_CREDIT",
            AccountStatus::Frozen { .. } => "FROZEN_BOTH",
            AccountStatus::Closed => "CLOSED",
        }
    }

    pub fn from_db(s: &str) -> Option<AccountStatus> {
        Some(match s {
            "ACTIVE" => AccountStatus::Active,
            "FROZEN_DEBIT" => AccountStatus::Frozen {
                no_debit: true,
                no_credit: false,
            },
            "FROZEN_CREDIT" => AccountStatus::Frozen {
                no_debit: false,
                no_credit: true,
            },
            "FROZEN_BOTH" => AccountStatus::Frozen {
                no_debit: true,
                no_credit: true,
            },
            "CLOSED" => AccountStatus::Closed,
            _ => return None,
        })
    }
}

/// The balance invariant the ledger enforces on an account under any concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", tag = "kind")]
pub enum BalanceConstraint {
    None,
    /// A customer's liability account: posted_debits + pending_debits + held
    /// ≤ posted_credits + overdraft_minor.
    DebitsMustNotExceedCredits {
        overdraft_minor: i64,
    },
    /// The mirror: posted_credits + pending_credits + held ≤ posted_debits + limit_minor.
    CreditsMustNotExceedDebits {
        limit_minor: i64,
    },
}

impl BalanceConstraint {
    pub fn as_db(self) -> (&'static str, i64) {
        match self {
            BalanceConstraint::None => ("NONE", 0),
            BalanceConstraint::DebitsMustNotExceedCredits { overdraft_minor } => {
                ("DEBITS_LE_CREDITS", overdraft_minor)
            }
            BalanceConstraint::CreditsMustNotExceedDebits { limit_minor } => {
                ("CREDITS_LE_DEBITS", limit_minor)
            }
        }
    }

    pub fn from_db(kind: &str, minor: i64) -> Option<BalanceConstraint> {
        Some(match kind {
            "NONE" => BalanceConstraint::None,
            "DEBITS_LE_CREDITS" => BalanceConstraint::DebitsMustNotExceedCredits {
                overdraft_minor: minor,
            },
            "CREDITS_LE_DEBITS" => {
                BalanceConstraint::CreditsMustNotExceedDebits { limit_minor: minor }
            }
            _ => return None,
        })
    }
}

/// What a caller asks for when opening an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    pub currency: Currency,
    pub normal_side: Side,
    /// Free label: `customer`, `merchant`, `internal` … (at most 32 bytes).
    pub kind: String,
    pub constraint: BalanceConstraint,
    pub metadata: Metadata,
    /// The owning service's profile of the account, written in the same batch as the account
    /// (so an account never exists without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Box<NewProfile>>,
}

/// A ledger account (its balances are in [`Balance`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub currency: Currency,
    pub normal_side: Side,
    pub kind: String,
    pub status: AccountStatus,
    pub constraint: BalanceConstraint,
    pub metadata: Metadata,
    pub created_at_ms: i64,
}

/// Per-account running totals, in minor units of the account's currency. Totals only grow,
/// except pending and held which go down when resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub posted_debits_minor: i64,
    pub posted_credits_minor: i64,
    pub pending_debits_minor: i64,
    pub pending_credits_minor: i64,
    pub held_minor: i64,
}

impl Balance {
    /// Book balance (账面余额) on the account's normal side.
    pub fn posted_minor(&self, normal: Side) -> i128 {
        let d = i128::from(self.posted_debits_minor);
        let c = i128::from(self.posted_credits_minor);
        match normal {
            Side::Debit => d - c,
            Side::Credit => c - d,
        }
    }

    /// Available balance (可用余额): what can be spent now, on the normal side — posted, less
    /// what is pending out and held.
    pub fn available_minor(&self, normal: Side) -> i128 {
        let pending_out = match normal {
            Side::Debit => i128::from(self.pending_credits_minor),
            Side::Credit => i128::from(self.pending_debits_minor),
        };
        self.posted_minor(normal) - pending_out - i128::from(self.held_minor)
    }

    /// Whether nothing is posted, pending or held.
    pub fn is_zero(&self) -> bool {
        self.posted_debits_minor == self.posted_credits_minor
            && self.pending_debits_minor == 0
            && self.pending_credits_minor == 0
            && self.held_minor == 0
    }

    /// Headroom left under the constraint (how much more may be debited, resp. credited); `None`
    /// for an unconstrained account. Negative means the floor is broken.
    pub fn headroom_minor(&self, constraint: BalanceConstraint) -> Option<i128> {
        let d = i128::from(self.posted_debits_minor);
        let c = i128::from(self.posted_credits_minor);
        let pd = i128::from(self.pending_debits_minor);
        let pc = i128::from(self.pending_credits_minor);
        let h = i128::from(self.held_minor);
        match constraint {
            BalanceConstraint::None => None,
            BalanceConstraint::DebitsMustNotExceedCredits { overdraft_minor } => {
                Some(c + i128::from(overdraft_minor) - d - pd - h)
            }
            BalanceConstraint::CreditsMustNotExceedDebits { limit_minor } => {
                Some(d + i128::from(limit_minor) - c - pc - h)
            }
        }
    }
}

/// One leg of a journal transaction as the caller gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    pub account: AccountId,
    pub side: Side,
    /// Strictly positive, in the account's currency.
    pub amount: Money,
}

/// A counter with a cap, checked and incremented in the same database transaction as the
/// posting (daily and annual limits: the caller puts the business date in the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterCheck {
    pub key: String,
    pub amount_minor: i64,
    pub cap_minor: i64,
}

/// A balanced posting of two or more legs, all or nothing.
/// Lowers a counter by `amount_minor` (floored at zero), e.g. when an account closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterRelease {
    pub key: String,
    pub amount_minor: i64,
}

/// The highest balance (normal side, reserved inflows included) an account may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceCap {
    pub account: AccountId,
    pub max_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTransaction {
    pub entries: Vec<NewEntry>,
    pub metadata: Metadata,
    pub counters: Vec<CounterCheck>,
}

impl NewTransaction {
    /// The common two-leg posting: `amount` debited from `from` and credited to `to`, with no
    /// counters.
    pub fn transfer(from: AccountId, to: AccountId, amount: Money, metadata: Metadata) -> Self {
        NewTransaction {
            entries: vec![
                NewEntry {
                    account: from,
                    side: Side::Debit,
                    amount,
                },
                NewEntry {
                    account: to,
                    side: Side::Credit,
                    amount,
                },
            ],
            metadata,
            counters: Vec::new(),
        }
    }
}

/// What a journal transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionKind {
    Posting,
    PendingPost,
    Reversal,
    HoldCapture,
}

impl TransactionKind {
    pub fn as_db(self) -> &'static str {
        match self {
            TransactionKind::Posting => "POSTING",
            TransactionKind::PendingPost => "PENDING_POST",
            TransactionKind::Reversal => "REVERSAL",
            TransactionKind::HoldCapture => "HOLD_CAPTURE",
        }
    }

    pub fn from_db(s: &str) -> Option<TransactionKind> {
        Some(match s {
            "POSTING" => TransactionKind::Posting,
            "PENDING_POST" => TransactionKind::PendingPost,
            "REVERSAL" => TransactionKind::Reversal,
            "HOLD_CAPTURE" => TransactionKind::HoldCapture,
            _ => return None,
        })
    }
}

/// One stored leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub account: AccountId,
    pub side: Side,
    pub amount: Money,
}

/// A committed journal transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// Also the global sequence number.
    pub id: TransactionId,
    pub kind: TransactionKind,
    pub entries: Vec<Entry>,
    /// The transaction this one reverses (冲正), when it is a reversal.
    pub reverses: Option<TransactionId>,
    pub metadata: Metadata,
    pub created_at_ms: i64,
    /// SHA-256 over the previous transaction's hash and this one's canonical content (hex).
    pub hash: String,
}

/// A two-phase transfer request: reserve now, post or void later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPending {
    pub debit_account: AccountId,
    pub credit_account: AccountId,
    pub amount: Money,
    /// After this, the sweeper voids it and resolving it fails with `PendingExpired`.
    pub timeout_ms: u64,
    pub metadata: Metadata,
    pub counters: Vec<CounterCheck>,
}

/// Where a pending transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PendingState {
    Open,
    Posted,
    Voided,
    Expired,
}

impl PendingState {
    pub fn as_db(self) -> &'static str {
        match self {
            PendingState::Open => "OPEN",
            PendingState::Posted => "POSTED",
            PendingState::Voided => "VOIDED",
            PendingState::Expired => "EXPIRED",
        }
    }

    pub fn from_db(s: &str) -> Option<PendingState> {
        Some(match s {
            "OPEN" => PendingState::Open,
            "POSTED" => PendingState::Posted,
            "VOIDED" => PendingState::Voided,
            "EXPIRED" => PendingState::Expired,
            _ => return None,
        })
    }
}

/// A two-phase pending transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub id: PendingId,
    pub debit_account: AccountId,
    pub credit_account: AccountId,
    pub amount: Money,
    pub expires_at_ms: i64,
    pub metadata: Metadata,
    pub created_at_ms: i64,
    pub state: PendingState,
    /// Amount posted when `state` is `Posted` (≤ `amount`; the rest was released).
    pub posted_minor: i64,
    /// The journal transaction that posted it.
    pub transaction: Option<TransactionId>,
}

/// A request to hold (冻结金额 / 预授权) an amount of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewHold {
    pub account: AccountId,
    pub amount: Money,
    /// Released by the sweeper after this long; `None` holds until released or captured.
    pub timeout_ms: Option<u64>,
    pub metadata: Metadata,
}

/// Where a hold is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldState {
    Open,
    Released,
    Captured,
    Expired,
}

impl HoldState {
    pub fn as_db(self) -> &'static str {
        match self {
            HoldState::Open => "OPEN",
            HoldState::Released => "RELEASED",
            HoldState::Captured => "CAPTURED",
            HoldState::Expired => "EXPIRED",
        }
    }

    pub fn from_db(s: &str) -> Option<HoldState> {
        Some(match s {
            "OPEN" => HoldState::Open,
            "RELEASED" => HoldState::Released,
            "CAPTURED" => HoldState::Captured,
            "EXPIRED" => HoldState::Expired,
            _ => return None,
        })
    }
}

/// A hold on an amount of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: HoldId,
    pub account: AccountId,
    pub amount: Money,
    /// `None`: no expiry.
    pub expires_at_ms: Option<i64>,
    pub metadata: Metadata,
    pub created_at_ms: i64,
    pub state: HoldState,
    /// Amount captured when `state` is `Captured`.
    pub captured_minor: i64,
    pub transaction: Option<TransactionId>,
}

/// The caller-chosen key that makes a mutating request idempotent, scoped to the caller.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// The caller's name (from its certificate identity).
    pub scope: String,
    pub key: String,
}

impl IdempotencyKey {
    pub fn new(scope: impl Into<String>, key: impl Into<String>) -> IdempotencyKey {
        IdempotencyKey {
            scope: scope.into(),
            key: key.into(),
        }
    }
}

/// One line of an account statement, in (transaction, entry) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    pub transaction: TransactionId,
    pub index: u32,
    pub kind: TransactionKind,
    pub side: Side,
    pub amount: Money,
    /// Book balance on the account's normal side right after this line (running balance).
    pub balance_after: Money,
    pub created_at_ms: i64,
}

//! Plain records the services keep beside the ledger's own tables (strings and integers; each
//! service owns their meaning): account profiles and statement pages, and the page bounds of
//! document and outbox reads.

use serde::{Deserialize, Serialize};

/// Most profiles returned by one list query.
pub const PROFILE_PAGE_MAX: u32 = 1_000;

/// One account profile as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileRow {
    pub account_id: u64,
    pub kind: String,
    pub currency: String,
    pub owner_id: String,
    pub display_name: String,
    pub parent_id: Option<u64>,
    pub person_key: Option<String>,
    pub card_token: Option<String>,
    pub card_first_six: Option<String>,
    pub card_last_four: Option<String>,
    pub agreement_id: Option<String>,
    pub internal_purpose: Option<String>,
    pub opened_by: String,
    pub freeze_reason: String,
    pub opened_at_ms: i64,
    pub closed_at_ms: Option<i64>,
}

/// The descriptive part of a profile, given when the account is opened (see
/// [`crate::ledger::NewAccount::profile`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProfile {
    pub kind: String,
    pub currency: String,
    pub owner_id: String,
    pub display_name: String,
    pub parent_id: Option<u64>,
    pub person_key: Option<String>,
    pub card_token: Option<String>,
    pub card_first_six: Option<String>,
    pub card_last_four: Option<String>,
    pub agreement_id: Option<String>,
    pub internal_purpose: Option<String>,
    pub opened_by: String,
}

impl ProfileRow {
    /// The profile of an account the batch opens now.
    pub fn opened(account_id: u64, opened_at_ms: i64, p: &NewProfile) -> ProfileRow {
        ProfileRow {
            account_id,
            kind: p.kind.clone(),
            currency: p.currency.clone(),
            owner_id: p.owner_id.clone(),
            display_name: p.display_name.clone(),
            parent_id: p.parent_id,
            person_key: p.person_key.clone(),
            card_token: p.card_token.clone(),
            card_first_six: p.card_first_six.clone(),
            card_last_four: p.card_last_four.clone(),
            agreement_id: p.agreement_id.clone(),
            internal_purpose: p.internal_purpose.clone(),
            opened_by: p.opened_by.clone(),
            freeze_reason: String::new(),
            opened_at_ms,
            closed_at_ms: None,
        }
    }
}

/// Which profiles a list returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileFilter {
    Owner(String),
    Parent(u64),
}

/// A page of profiles: the filter, optionally one kind, open only or also closed, after an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileQuery {
    pub filter: ProfileFilter,
    pub kind: Option<String>,
    pub include_closed: bool,
    pub after_id: u64,
    pub limit: u32,
}

/// Most counters read at once.
pub const COUNTERS_READ_MAX: usize = 64;

/// One statement line: a posted entry of the account, with its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRow {
    /// The journal transaction (its sequence number is its id).
    pub seq: u64,
    pub idx: u32,
    /// `D` or `C`.
    pub side: String,
    pub currency: String,
    pub amount_minor: i64,
    pub balance_after_minor: i64,
    pub kind: String,
    pub reverses: Option<u64>,
    /// JSON object of the transaction's metadata.
    pub metadata: String,
    pub created_at_ms: i64,
}

/// A statement page: lines of one account after a (seq, idx) position, within a time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementQuery {
    pub account_id: u64,
    pub after: (u64, u32),
    pub from_ms: i64,
    pub until_ms: i64,
    pub limit: u32,
}

/// Most documents one page returns.
pub const DOCUMENTS_PAGE_MAX: u32 = 1_000;

/// Most streams one outbox read may follow.
pub const OUTBOX_STREAMS_MAX: usize = 1_000;

/// A change of an existing account's profile, written by the batch that changes the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileChange {
    /// Why the account is frozen now (empty once it is not).
    FreezeReason { account_id: u64, reason: String },
    /// The account closed at this time (the first close wins).
    Closed { account_id: u64, at_ms: i64 },
}

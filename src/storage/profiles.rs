//! What the account service stores and reads beside the ledger's own operations: account
//! profiles, statement pages with their transactions' metadata, and limit counters. Plain storage
//! types (strings and integers); the account service owns their meaning.

use async_trait::async_trait;

use super::StorageError;

/// Most profiles returned by one list query.
pub const PROFILE_PAGE_MAX: u32 = 1_000;

/// One account profile as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Most statement lines returned by one page.
pub const STATEMENT_PAGE_MAX: u32 = 1_000;
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

/// Storage of the account service, on both back ends.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Inserts the profile unless one exists for the account; returns the stored one.
    async fn insert_profile(&self, row: &ProfileRow) -> Result<ProfileRow, StorageError>;

    async fn profile(&self, account_id: u64) -> Result<Option<ProfileRow>, StorageError>;

    /// Profiles in account-id order.
    async fn profiles(&self, query: &ProfileQuery) -> Result<Vec<ProfileRow>, StorageError>;

    /// Records why the account is (or was) frozen.
    async fn set_freeze_reason(&self, account_id: u64, reason: &str) -> Result<(), StorageError>;

    /// Records the close time (first close wins).
    async fn set_closed(&self, account_id: u64, at_ms: i64) -> Result<(), StorageError>;

    /// Statement lines in (seq, idx) order.
    async fn statement_page(
        &self,
        query: &StatementQuery,
    ) -> Result<Vec<StatementRow>, StorageError>;

    /// Current values of ledger counters (absent counters are not returned).
    async fn counter_values(&self, keys: &[String]) -> Result<Vec<(String, i64)>, StorageError>;
}

// SQL shared by both back ends. This file is not a module: `sqlite.rs` and `postgres.rs` each
// `include!` it after defining `Db`, `DbConn`, `DbRow`, `LOCK_SUFFIX` and `lock_head`, so the
// same text is compiled once per back end with concrete sqlx types.
// The rest of that shared text is in `common_load.rs`, `common_write.rs` and `common_read.rs`,
// included right after this file.

use sqlx::{QueryBuilder, Row as _};

use crate::{
    ledger::model::{
        Account, AccountId, AccountStatus, Balance, BalanceConstraint, Entry, Hold, HoldId,
        HoldState, Metadata, Pending, PendingId, PendingState, Posted, Side, StatementLine,
        TransactionId, TransactionKind,
    },
    money::{Currency, Money},
    ledger::{
        hash::{hash_from_hex, hash_to_hex},
        store::{
            BatchNeeds, BatchWrites, ChainHead, EntryRow, ExpiryItem, LoadedAccount, LoadedBatch,
            ProfileChange, ProfileRow, ReversalTarget, StorageError, StoredIdempotency,
            TransactionRow,
        },
    },
    storage::BIND_PARAMS_MAX,
};

/// Longest SQL text kept in a connection's prepared-statement cache. The batch's statements are
/// built per batch (multi-row `VALUES`, `IN` lists; on SQLite all of a batch's statements joined
/// in one text), so their text changes with every batch's shape: cached, each would stay until
/// the cache's capacity pushed it out — hundreds of MiB of compiled statements, almost never
/// used twice. Short texts (the shapes of batches of one or two requests, which recur) are
/// cached; the rest are compiled, run and dropped.
const CACHED_SQL_BYTES_MAX: usize = 4_096;

/// `qb` as a query, kept in the statement cache only if its text is short
/// ([`CACHED_SQL_BYTES_MAX`]).
fn built<'q, 'args>(
    qb: &'q mut QueryBuilder<'args, Db>,
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'args>> {
    let cached = qb.sql().len() <= CACHED_SQL_BYTES_MAX;
    qb.build().persistent(cached)
}

const ACCOUNT_COLUMNS: &str = "id, currency, normal_side, kind, status, constraint_kind, \
     constraint_minor, metadata, created_at_ms, posted_debits_minor, posted_credits_minor, \
     pending_debits_minor, pending_credits_minor, held_minor, posted_through_seq";
const ACCOUNT_COLUMN_COUNT: usize = 15;

/// An account with its balances as of the last committed batch: the row's posted totals plus
/// the account's journal entries after the row's `posted_through_seq` (its tail, found through
/// `journal_entries_by_account`), and the tail's length. One statement, so one snapshot.
const ACCOUNT_SELECT: &str = "SELECT a.id, a.currency, a.normal_side, a.kind, a.status, \
     a.constraint_kind, a.constraint_minor, a.metadata, a.created_at_ms, \
     CAST(a.posted_debits_minor + COALESCE((SELECT SUM(e.amount_minor) FROM journal_entries e \
       WHERE e.account_id = a.id AND e.seq > a.posted_through_seq AND e.side = 'D'), 0) AS BIGINT) \
       AS posted_debits_minor, \
     CAST(a.posted_credits_minor + COALESCE((SELECT SUM(e.amount_minor) FROM journal_entries e \
       WHERE e.account_id = a.id AND e.seq > a.posted_through_seq AND e.side = 'C'), 0) AS BIGINT) \
       AS posted_credits_minor, \
     a.pending_debits_minor, a.pending_credits_minor, a.held_minor, \
     (SELECT COUNT(*) FROM journal_entries e \
       WHERE e.account_id = a.id AND e.seq > a.posted_through_seq) AS tail_entries \
     FROM accounts a";

/// Most terms of one OR chain (SQLite's expression depth limit is 1,000).
const EXPRESSION_TERMS_MAX: usize = 256;

const HEAD_SELECT: &str = "SELECT last_seq, last_hash, next_account_id, next_pending_id, \
     next_hold_id, batches_committed, audit_seq, audit_hash FROM ledger_head WHERE id = 1";

const PENDING_SELECT: &str = "SELECT p.id, p.debit_account, p.credit_account, p.currency, \
     p.amount_minor, p.expires_at_ms, p.metadata, p.created_at_ms, r.state, r.posted_minor, \
     r.transaction_seq FROM pendings p LEFT JOIN pending_resolutions r ON r.pending_id = p.id";

const HOLD_SELECT: &str = "SELECT h.id, h.account_id, h.currency, h.amount_minor, \
     h.expires_at_ms, h.metadata, h.created_at_ms, r.state, r.captured_minor, r.transaction_seq \
     FROM holds h LEFT JOIN hold_resolutions r ON r.hold_id = h.id";

const STATEMENT_SELECT: &str = "SELECT e.seq, e.idx, e.side, e.currency, e.amount_minor, \
     e.balance_after_minor, t.kind, t.created_at_ms FROM journal_entries e \
     JOIN journal_transactions t ON t.seq = e.seq";

fn to_i64(v: u64) -> i64 {
    debug_assert!(v <= i64::MAX as u64, "id beyond the storable range");
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64, what: &str) -> Result<u64, StorageError> {
    u64::try_from(v).map_err(|_| StorageError::corrupt(format!("negative {what} in storage")))
}

fn corrupt(what: &str) -> StorageError {
    StorageError::corrupt(format!("unreadable {what} in storage"))
}

fn currency_of(code: &str) -> Result<Currency, StorageError> {
    Currency::from_code(code).map_err(|_| corrupt("currency"))
}

fn metadata_of(text: &str) -> Result<Metadata, StorageError> {
    serde_json::from_str(text).map_err(|_| corrupt("metadata"))
}

fn metadata_text(m: &Metadata) -> String {
    // A BTreeMap of strings always serialises.
    serde_json::to_string(m).unwrap_or_else(|_| "{}".to_owned())
}

fn side_of(text: &str) -> Result<Side, StorageError> {
    Side::parse(text).ok_or_else(|| corrupt("side"))
}

fn head_of(row: &DbRow) -> Result<ChainHead, StorageError> {
    Ok(ChainHead {
        last_seq: to_u64(row.try_get("last_seq")?, "seq")?,
        last_hash: hash_from_hex(&row.try_get::<String, _>("last_hash")?)?,
        next_account_id: to_u64(row.try_get("next_account_id")?, "id")?,
        next_pending_id: to_u64(row.try_get("next_pending_id")?, "id")?,
        next_hold_id: to_u64(row.try_get("next_hold_id")?, "id")?,
        batches_committed: to_u64(row.try_get("batches_committed")?, "batch count")?,
        audit_seq: to_u64(row.try_get("audit_seq")?, "audit seq")?,
        audit_hash: hash_from_hex(&row.try_get::<String, _>("audit_hash")?)?,
    })
}

fn account_of(row: &DbRow) -> Result<(Account, Balance), StorageError> {
    let status: String = row.try_get("status")?;
    let constraint_kind: String = row.try_get("constraint_kind")?;
    let account = Account {
        id: AccountId(to_u64(row.try_get("id")?, "id")?),
        currency: currency_of(&row.try_get::<String, _>("currency")?)?,
        normal_side: side_of(&row.try_get::<String, _>("normal_side")?)?,
        kind: row.try_get("kind")?,
        status: AccountStatus::from_db(&status).ok_or_else(|| corrupt("status"))?,
        constraint: BalanceConstraint::from_db(&constraint_kind, row.try_get("constraint_minor")?)
            .ok_or_else(|| corrupt("constraint"))?,
        metadata: metadata_of(&row.try_get::<String, _>("metadata")?)?,
        created_at_ms: row.try_get("created_at_ms")?,
    };
    let balance = Balance {
        posted_debits_minor: row.try_get("posted_debits_minor")?,
        posted_credits_minor: row.try_get("posted_credits_minor")?,
        pending_debits_minor: row.try_get("pending_debits_minor")?,
        pending_credits_minor: row.try_get("pending_credits_minor")?,
        held_minor: row.try_get("held_minor")?,
    };
    Ok((account, balance))
}

fn loaded_account_of(row: &DbRow) -> Result<LoadedAccount, StorageError> {
    let (account, balance) = account_of(row)?;
    let tail: i64 = row.try_get("tail_entries")?;
    Ok(LoadedAccount {
        account,
        balance,
        tail_entries: u32::try_from(tail).map_err(|_| corrupt("journal tail length"))?,
    })
}

fn pending_of(row: &DbRow) -> Result<Pending, StorageError> {
    let currency = currency_of(&row.try_get::<String, _>("currency")?)?;
    let state: Option<String> = row.try_get("state")?;
    let state = match state {
        None => PendingState::Open,
        Some(s) => PendingState::from_db(&s).ok_or_else(|| corrupt("pending state"))?,
    };
    let tx: Option<i64> = row.try_get("transaction_seq")?;
    Ok(Pending {
        id: PendingId(to_u64(row.try_get("id")?, "id")?),
        debit_account: AccountId(to_u64(row.try_get("debit_account")?, "id")?),
        credit_account: AccountId(to_u64(row.try_get("credit_account")?, "id")?),
        amount: Money::new(currency, row.try_get("amount_minor")?),
        expires_at_ms: row.try_get("expires_at_ms")?,
        metadata: metadata_of(&row.try_get::<String, _>("metadata")?)?,
        created_at_ms: row.try_get("created_at_ms")?,
        state,
        posted_minor: row.try_get::<Option<i64>, _>("posted_minor")?.unwrap_or(0),
        transaction: tx.map(|t| to_u64(t, "seq")).transpose()?.map(TransactionId),
    })
}

fn hold_of(row: &DbRow) -> Result<Hold, StorageError> {
    let currency = currency_of(&row.try_get::<String, _>("currency")?)?;
    let state: Option<String> = row.try_get("state")?;
    let state = match state {
        None => HoldState::Open,
        Some(s) => HoldState::from_db(&s).ok_or_else(|| corrupt("hold state"))?,
    };
    let tx: Option<i64> = row.try_get("transaction_seq")?;
    Ok(Hold {
        id: HoldId(to_u64(row.try_get("id")?, "id")?),
        account: AccountId(to_u64(row.try_get("account_id")?, "id")?),
        amount: Money::new(currency, row.try_get("amount_minor")?),
        expires_at_ms: row.try_get("expires_at_ms")?,
        metadata: metadata_of(&row.try_get::<String, _>("metadata")?)?,
        created_at_ms: row.try_get("created_at_ms")?,
        state,
        captured_minor: row
            .try_get::<Option<i64>, _>("captured_minor")?
            .unwrap_or(0),
        transaction: tx.map(|t| to_u64(t, "seq")).transpose()?.map(TransactionId),
    })
}

fn entry_row_of(row: &DbRow) -> Result<EntryRow, StorageError> {
    let currency = currency_of(&row.try_get::<String, _>("currency")?)?;
    Ok(EntryRow {
        seq: to_u64(row.try_get("seq")?, "seq")?,
        index: u32::try_from(row.try_get::<i64, _>("idx")?).map_err(|_| corrupt("index"))?,
        entry: Entry {
            account: AccountId(to_u64(row.try_get("account_id")?, "id")?),
            side: side_of(&row.try_get::<String, _>("side")?)?,
            amount: Money::new(currency, row.try_get("amount_minor")?),
        },
        balance_after_minor: row.try_get("balance_after_minor")?,
    })
}

fn statement_line_of(row: &DbRow) -> Result<StatementLine, StorageError> {
    let currency = currency_of(&row.try_get::<String, _>("currency")?)?;
    let kind: String = row.try_get("kind")?;
    Ok(StatementLine {
        transaction: TransactionId(to_u64(row.try_get("seq")?, "seq")?),
        index: u32::try_from(row.try_get::<i64, _>("idx")?).map_err(|_| corrupt("index"))?,
        kind: TransactionKind::from_db(&kind).ok_or_else(|| corrupt("kind"))?,
        side: side_of(&row.try_get::<String, _>("side")?)?,
        amount: Money::new(currency, row.try_get("amount_minor")?),
        balance_after: Money::new(currency, row.try_get("balance_after_minor")?),
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

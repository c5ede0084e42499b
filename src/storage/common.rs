// SQL shared by both back ends. This file is not a module: `sqlite.rs` and `postgres.rs` each
// `include!` it after defining `Db`, `DbConn`, `DbRow`, `LOCK_SUFFIX` and `lock_head`, so the
// same text is compiled once per back end with concrete sqlx types.

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
     next_hold_id, batches_committed FROM ledger_head WHERE id = 1";

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
    u64::try_from(v).map_err(|_| StorageError::new(format!("negative {what} in storage")))
}

fn corrupt(what: &str) -> StorageError {
    StorageError::new(format!("unreadable {what} in storage"))
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

/// `SELECT … WHERE <column> IN (…)` over `ids`, chunked under the bind limit.
async fn select_in_i64(
    conn: &mut DbConn,
    select: &str,
    column: &str,
    ids: &[i64],
    tail: &str,
) -> Result<Vec<DbRow>, StorageError> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(BIND_PARAMS_MAX) {
        let mut qb = QueryBuilder::<'static, Db>::new(select);
        qb.push(" WHERE ");
        qb.push(column);
        qb.push(" IN (");
        let mut sep = qb.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        qb.push(")");
        qb.push(tail);
        rows.extend(qb.build().fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

async fn read_idempotency(
    conn: &mut DbConn,
    key: &crate::ledger::model::IdempotencyKey,
) -> Result<Option<StoredIdempotency>, StorageError> {
    let row = sqlx::query(
        "SELECT scope, key, request_hash, outcome, created_at_ms FROM idempotency_keys \
         WHERE scope = $1 AND key = $2",
    )
    .bind(key.scope.clone())
    .bind(key.key.clone())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(stored_idempotency_of).transpose()
}

fn stored_idempotency_of(row: &DbRow) -> Result<StoredIdempotency, StorageError> {
    Ok(StoredIdempotency {
        key: crate::ledger::model::IdempotencyKey {
            scope: row.try_get("scope")?,
            key: row.try_get("key")?,
        },
        request_hash: row.try_get("request_hash")?,
        outcome: row.try_get("outcome")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

/// Loads what a batch needs. The caller has locked the head already.
async fn load_needs(
    conn: &mut DbConn,
    head: ChainHead,
    needs: &BatchNeeds,
    cache: &mut crate::storage::AccountCache,
) -> Result<LoadedBatch, StorageError> {
    cache.validate(&head);
    let mut loaded = LoadedBatch {
        head,
        accounts: Vec::new(),
        idempotency: Vec::new(),
        pendings: Vec::new(),
        holds: Vec::new(),
        transactions: Vec::new(),
        counters: Vec::new(),
        documents: Vec::new(),
    };
    let keys: Vec<_> = needs.idempotency.iter().collect();
    for chunk in keys.chunks(BIND_PARAMS_MAX / 2) {
        // The keys drive the join (one primary-key probe each): SQLite answers
        // `(scope, key) IN (VALUES …)` with a scan of the whole table.
        let mut qb = QueryBuilder::<'static, Db>::new(
            "SELECT i.scope, i.key, i.request_hash, i.outcome, i.created_at_ms FROM (",
        );
        qb.push_values(chunk, |mut b, k| {
            b.push_bind(k.scope.clone());
            b.push_bind(k.key.clone());
        });
        qb.push(
            ") AS v CROSS JOIN idempotency_keys i \
             WHERE i.scope = v.column1 AND i.key = v.column2",
        );
        for row in qb.build().fetch_all(&mut *conn).await? {
            loaded.idempotency.push(stored_idempotency_of(&row)?);
        }
    }

    let mut account_ids: std::collections::BTreeSet<i64> =
        needs.accounts.iter().map(|a| to_i64(a.0)).collect();

    if !needs.pendings.is_empty() {
        let ids: Vec<i64> = needs.pendings.iter().map(|p| to_i64(p.0)).collect();
        for row in select_in_i64(conn, PENDING_SELECT, "p.id", &ids, "").await? {
            let p = pending_of(&row)?;
            account_ids.insert(to_i64(p.debit_account.0));
            account_ids.insert(to_i64(p.credit_account.0));
            loaded.pendings.push(p);
        }
    }
    if !needs.holds.is_empty() {
        let ids: Vec<i64> = needs.holds.iter().map(|h| to_i64(h.0)).collect();
        for row in select_in_i64(conn, HOLD_SELECT, "h.id", &ids, "").await? {
            let h = hold_of(&row)?;
            account_ids.insert(to_i64(h.account.0));
            loaded.holds.push(h);
        }
    }
    if !needs.transactions.is_empty() {
        let ids: Vec<i64> = needs.transactions.iter().map(|t| to_i64(t.0)).collect();
        let heads = select_in_i64(
            conn,
            "SELECT t.seq, r.seq AS reversed_by FROM journal_transactions t \
             LEFT JOIN journal_transactions r ON r.reverses = t.seq",
            "t.seq",
            &ids,
            "",
        )
        .await?;
        let entries = select_in_i64(
            conn,
            "SELECT seq, idx, account_id, side, currency, amount_minor, balance_after_minor \
             FROM journal_entries",
            "seq",
            &ids,
            " ORDER BY seq, idx",
        )
        .await?;
        let mut by_seq: std::collections::BTreeMap<u64, Vec<Entry>> = Default::default();
        for row in &entries {
            let e = entry_row_of(row)?;
            account_ids.insert(to_i64(e.entry.account.0));
            by_seq.entry(e.seq).or_default().push(e.entry);
        }
        for row in &heads {
            let seq = to_u64(row.try_get("seq")?, "seq")?;
            let reversed_by: Option<i64> = row.try_get("reversed_by")?;
            loaded.transactions.push(ReversalTarget {
                id: TransactionId(seq),
                entries: by_seq.remove(&seq).unwrap_or_default(),
                reversed_by: reversed_by
                    .map(|r| to_u64(r, "seq"))
                    .transpose()?
                    .map(TransactionId),
            });
        }
    }
    if !needs.counters.is_empty() {
        let keys: Vec<&String> = needs.counters.iter().collect();
        for chunk in keys.chunks(BIND_PARAMS_MAX) {
            let mut qb = QueryBuilder::<'static, Db>::new(
                "SELECT key, used_minor FROM counters WHERE key IN (",
            );
            let mut sep = qb.separated(", ");
            for k in chunk {
                sep.push_bind((*k).clone());
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut *conn).await? {
                loaded
                    .counters
                    .push((row.try_get("key")?, row.try_get("used_minor")?));
            }
        }
    }
    let doc_keys: Vec<&(String, String)> = needs.documents.iter().collect();
    for chunk in doc_keys.chunks(BIND_PARAMS_MAX / 2) {
        let mut qb = QueryBuilder::<'static, Db>::new("SELECT d.kind, d.id, d.version FROM (");
        qb.push_values(chunk, |mut b, (kind, id)| {
            b.push_bind(kind.clone());
            b.push_bind(id.clone());
        });
        qb.push(") AS v CROSS JOIN documents d WHERE d.kind = v.column1 AND d.id = v.column2");
        for row in qb.build().fetch_all(&mut *conn).await? {
            loaded.documents.push((
                row.try_get("kind")?,
                row.try_get("id")?,
                to_u64(row.try_get("version")?, "document version")?,
            ));
        }
    }
    // Accounts this process already holds as of this very head come from its cache; the rest
    // are read (sorted ids, locked in that order on PostgreSQL, so batches never deadlock).
    let mut missing: Vec<i64> = Vec::new();
    for id in account_ids {
        match cache.get(AccountId(to_u64(id, "account id")?)) {
            Some(a) => loaded.accounts.push(a.clone()),
            None => missing.push(id),
        }
    }
    if !missing.is_empty() {
        let tail = format!(" ORDER BY a.id{LOCK_SUFFIX}");
        let mut read = Vec::with_capacity(missing.len());
        for row in select_in_i64(conn, ACCOUNT_SELECT, "a.id", &missing, &tail).await? {
            read.push(loaded_account_of(&row)?);
        }
        cache.insert_loaded(&read);
        loaded.accounts.extend(read);
        loaded.accounts.sort_by_key(|a| a.account.id);
    }
    Ok(loaded)
}

/// Writes a batch: multi-row INSERTs chunked under the bind limit, one upsert of the touched
/// accounts, then the head.
/// Write statements of a batch. Where the back end runs several statements per round trip
/// (`STATEMENTS_PER_ROUND_TRIP`, SQLite) they are joined into one text; otherwise each is sent
/// on its own. Either way they run in order inside the batch's transaction.
struct Statements {
    done: Vec<QueryBuilder<'static, Db>>,
    current: QueryBuilder<'static, Db>,
    current_empty: bool,
}

impl Statements {
    fn new() -> Statements {
        Statements {
            done: Vec::new(),
            current: QueryBuilder::new(""),
            current_empty: true,
        }
    }

    fn start(&mut self, sql: impl Into<String>) -> &mut QueryBuilder<'static, Db> {
        if !self.current_empty {
            if STATEMENTS_PER_ROUND_TRIP {
                self.current.push("; ");
            } else {
                let full = std::mem::replace(&mut self.current, QueryBuilder::new(""));
                self.done.push(full);
            }
        }
        self.current_empty = false;
        self.current.push(sql.into());
        &mut self.current
    }

    async fn run(mut self, conn: &mut DbConn) -> Result<(), StorageError> {
        for mut qb in self.done.drain(..) {
            qb.build().execute(&mut *conn).await?;
        }
        if !self.current_empty {
            self.current.build().execute(&mut *conn).await?;
        }
        Ok(())
    }
}

async fn write_batch(
    conn: &mut DbConn,
    w: &BatchWrites,
    tail: Option<&str>,
) -> Result<(), StorageError> {
    let mut stmts = Statements::new();
    // A written row holds the account's full balances as of the batch's new head.
    let posted_through_seq = match (&w.head, w.accounts.is_empty()) {
        (Some(head), _) => to_i64(head.last_seq),
        (None, true) => 0,
        (None, false) => return Err(StorageError::new("account rows to write without a head")),
    };
    for chunk in w.accounts.chunks(BIND_PARAMS_MAX / ACCOUNT_COLUMN_COUNT) {
        let qb = stmts.start(format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) "));
        qb.push_values(chunk, |mut b, (a, bal)| {
            let (ck, cm) = a.constraint.as_db();
            b.push_bind(to_i64(a.id.0))
                .push_bind(a.currency.code().to_owned())
                .push_bind(a.normal_side.as_str())
                .push_bind(a.kind.clone())
                .push_bind(a.status.as_db())
                .push_bind(ck)
                .push_bind(cm)
                .push_bind(metadata_text(&a.metadata))
                .push_bind(a.created_at_ms)
                .push_bind(bal.posted_debits_minor)
                .push_bind(bal.posted_credits_minor)
                .push_bind(bal.pending_debits_minor)
                .push_bind(bal.pending_credits_minor)
                .push_bind(bal.held_minor)
                .push_bind(posted_through_seq);
        });
        qb.push(
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
             posted_through_seq = excluded.posted_through_seq, \
             posted_debits_minor = excluded.posted_debits_minor, \
             posted_credits_minor = excluded.posted_credits_minor, \
             pending_debits_minor = excluded.pending_debits_minor, \
             pending_credits_minor = excluded.pending_credits_minor, \
             held_minor = excluded.held_minor",
        );
    }
    push_profile_writes(&mut stmts, w);
    for chunk in w.transactions.chunks(BIND_PARAMS_MAX / 7) {
        let qb = stmts.start(
            "INSERT INTO journal_transactions \
             (seq, kind, reverses, metadata, created_at_ms, prev_hash, hash) ",
        );
        qb.push_values(chunk, |mut b, t| {
            b.push_bind(to_i64(t.posted.id.0))
                .push_bind(t.posted.kind.as_db())
                .push_bind(t.posted.reverses.map(|r| to_i64(r.0)))
                .push_bind(metadata_text(&t.posted.metadata))
                .push_bind(t.posted.created_at_ms)
                .push_bind(t.prev_hash.clone())
                .push_bind(t.posted.hash.clone());
        });
    }
    for chunk in w.entries.chunks(BIND_PARAMS_MAX / 7) {
        let qb = stmts.start(
            "INSERT INTO journal_entries \
             (seq, idx, account_id, side, currency, amount_minor, balance_after_minor) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(to_i64(e.seq))
                .push_bind(i64::from(e.index))
                .push_bind(to_i64(e.entry.account.0))
                .push_bind(e.entry.side.as_str())
                .push_bind(e.entry.amount.currency.code().to_owned())
                .push_bind(e.entry.amount.minor)
                .push_bind(e.balance_after_minor);
        });
    }
    for chunk in w.new_pendings.chunks(BIND_PARAMS_MAX / 8) {
        let qb = stmts.start(
            "INSERT INTO pendings (id, debit_account, credit_account, currency, amount_minor, \
             expires_at_ms, metadata, created_at_ms) ",
        );
        qb.push_values(chunk, |mut b, p| {
            b.push_bind(to_i64(p.id.0))
                .push_bind(to_i64(p.debit_account.0))
                .push_bind(to_i64(p.credit_account.0))
                .push_bind(p.amount.currency.code().to_owned())
                .push_bind(p.amount.minor)
                .push_bind(p.expires_at_ms)
                .push_bind(metadata_text(&p.metadata))
                .push_bind(p.created_at_ms);
        });
    }
    for chunk in w.new_holds.chunks(BIND_PARAMS_MAX / 7) {
        let qb = stmts.start(
            "INSERT INTO holds (id, account_id, currency, amount_minor, expires_at_ms, metadata, \
             created_at_ms) ",
        );
        qb.push_values(chunk, |mut b, h| {
            b.push_bind(to_i64(h.id.0))
                .push_bind(to_i64(h.account.0))
                .push_bind(h.amount.currency.code().to_owned())
                .push_bind(h.amount.minor)
                .push_bind(h.expires_at_ms)
                .push_bind(metadata_text(&h.metadata))
                .push_bind(h.created_at_ms);
        });
    }
    for chunk in w.pending_resolutions.chunks(BIND_PARAMS_MAX / 5) {
        let qb = stmts.start(
            "INSERT INTO pending_resolutions (pending_id, state, posted_minor, transaction_seq, \
             resolved_at_ms) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(to_i64(r.pending.0))
                .push_bind(r.state.as_db())
                .push_bind(r.posted_minor)
                .push_bind(r.transaction.map(|t| to_i64(t.0)))
                .push_bind(r.resolved_at_ms);
        });
    }
    for chunk in w.hold_resolutions.chunks(BIND_PARAMS_MAX / 5) {
        let qb = stmts.start(
            "INSERT INTO hold_resolutions (hold_id, state, captured_minor, transaction_seq, \
             resolved_at_ms) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(to_i64(r.hold.0))
                .push_bind(r.state.as_db())
                .push_bind(r.captured_minor)
                .push_bind(r.transaction.map(|t| to_i64(t.0)))
                .push_bind(r.resolved_at_ms);
        });
    }
    for chunk in w.expiries_added.chunks(BIND_PARAMS_MAX / 3) {
        let qb = stmts.start("INSERT INTO expiry_queue (item_kind, item_id, expires_at_ms) ");
        qb.push_values(chunk, |mut b, (item, at)| {
            let (kind, id) = item.db_parts();
            b.push_bind(kind).push_bind(id).push_bind(*at);
        });
    }
    // Short chunks: each item is one term of an OR chain (SQLite limits expression depth).
    for chunk in w.expiries_removed.chunks(EXPRESSION_TERMS_MAX) {
        // One primary-key probe per item (a row-value IN list is a scan on SQLite).
        let qb = stmts.start("DELETE FROM expiry_queue WHERE ");
        let mut first = true;
        for item in chunk {
            let (kind, id) = item.db_parts();
            qb.push(if first { "(item_kind = " } else { " OR (item_kind = " });
            qb.push_bind(kind);
            qb.push(" AND item_id = ");
            qb.push_bind(id);
            qb.push(")");
            first = false;
        }
    }
    let updated_at_ms = w
        .idempotency
        .first()
        .map(|i| i.created_at_ms)
        .unwrap_or_default();
    for chunk in w.counters.chunks(BIND_PARAMS_MAX / 3) {
        let qb = stmts.start("INSERT INTO counters (key, used_minor, updated_at_ms) ");
        qb.push_values(chunk, |mut b, (key, used)| {
            b.push_bind(key.clone())
                .push_bind(*used)
                .push_bind(updated_at_ms);
        });
        qb.push(
            " ON CONFLICT (key) DO UPDATE SET used_minor = excluded.used_minor, \
             updated_at_ms = excluded.updated_at_ms",
        );
    }
    for chunk in w.idempotency.chunks(BIND_PARAMS_MAX / 5) {
        let qb = stmts.start(
            "INSERT INTO idempotency_keys (scope, key, request_hash, outcome, created_at_ms) ",
        );
        qb.push_values(chunk, |mut b, i| {
            b.push_bind(i.key.scope.clone())
                .push_bind(i.key.key.clone())
                .push_bind(i.request_hash.clone())
                .push_bind(i.outcome.clone())
                .push_bind(i.created_at_ms);
        });
    }
    for chunk in w.documents.chunks(BIND_PARAMS_MAX / 6) {
        let qb = stmts.start(
            "INSERT INTO documents (kind, id, version, body, updated_at_ms, transaction_seq) ",
        );
        qb.push_values(chunk, |mut b, d| {
            b.push_bind(d.kind.clone())
                .push_bind(d.id.clone())
                .push_bind(to_i64(d.version))
                .push_bind(d.body.clone())
                .push_bind(d.updated_at_ms)
                .push_bind(d.transaction.map(|t| to_i64(t.0)));
        });
        qb.push(
            " ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version, \
             body = excluded.body, updated_at_ms = excluded.updated_at_ms, \
             transaction_seq = excluded.transaction_seq",
        );
    }
    for chunk in w.events.chunks(BIND_PARAMS_MAX / 5) {
        let qb = stmts.start(
            "INSERT INTO outbox (stream, event_key, body, created_at_ms, transaction_seq) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(e.stream.clone())
                .push_bind(e.key.clone())
                .push_bind(e.body.clone())
                .push_bind(e.created_at_ms)
                .push_bind(e.transaction.map(|t| to_i64(t.0)));
        });
    }
    if let Some(head) = &w.head {
        let qb = stmts.start("UPDATE ledger_head SET batches_committed = batches_committed + 1, last_seq = ");
        qb.push_bind(to_i64(head.last_seq));
        qb.push(", last_hash = ");
        qb.push_bind(hash_to_hex(&head.last_hash));
        qb.push(", next_account_id = ");
        qb.push_bind(to_i64(head.next_account_id));
        qb.push(", next_pending_id = ");
        qb.push_bind(to_i64(head.next_pending_id));
        qb.push(", next_hold_id = ");
        qb.push_bind(to_i64(head.next_hold_id));
        qb.push(" WHERE id = 1");
    }
    if let Some(tail) = tail {
        stmts.start(tail);
    }
    stmts.run(conn).await
}

async fn read_head(conn: &mut DbConn) -> Result<ChainHead, StorageError> {
    let row = sqlx::query(HEAD_SELECT).fetch_one(&mut *conn).await?;
    head_of(&row)
}

async fn read_account(
    conn: &mut DbConn,
    id: AccountId,
) -> Result<Option<(Account, Balance)>, StorageError> {
    let sql = format!("{ACCOUNT_SELECT} WHERE a.id = $1");
    let row = sqlx::query(&sql)
        .bind(to_i64(id.0))
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(account_of).transpose()
}

async fn read_statement(
    conn: &mut DbConn,
    id: AccountId,
    after_seq: Option<u64>,
    limit: u32,
) -> Result<Vec<StatementLine>, StorageError> {
    let sql = format!(
        "{STATEMENT_SELECT} WHERE e.account_id = $1 AND e.seq > $2 ORDER BY e.seq, e.idx LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(to_i64(id.0))
        .bind(after_seq.map(to_i64).unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    let mut lines = rows
        .iter()
        .map(statement_line_of)
        .collect::<Result<Vec<_>, _>>()?;
    if lines.len() == limit as usize
        && let Some(last) = lines.last().cloned()
    {
        // Complete the last transaction so that a page never splits one.
        let sql = format!(
            "{STATEMENT_SELECT} WHERE e.account_id = $1 AND e.seq = $2 AND e.idx > $3 \
             ORDER BY e.idx"
        );
        let rest = sqlx::query(&sql)
            .bind(to_i64(id.0))
            .bind(to_i64(last.transaction.0))
            .bind(i64::from(last.index))
            .fetch_all(&mut *conn)
            .await?;
        for row in &rest {
            lines.push(statement_line_of(row)?);
        }
    }
    Ok(lines)
}

async fn read_pending(conn: &mut DbConn, id: PendingId) -> Result<Option<Pending>, StorageError> {
    let rows = select_in_i64(conn, PENDING_SELECT, "p.id", &[to_i64(id.0)], "").await?;
    rows.first().map(pending_of).transpose()
}

async fn read_hold(conn: &mut DbConn, id: HoldId) -> Result<Option<Hold>, StorageError> {
    let rows = select_in_i64(conn, HOLD_SELECT, "h.id", &[to_i64(id.0)], "").await?;
    rows.first().map(hold_of).transpose()
}

async fn read_due_expiries(
    conn: &mut DbConn,
    now_ms: i64,
    limit: u32,
) -> Result<Vec<ExpiryItem>, StorageError> {
    let rows = sqlx::query(
        "SELECT item_kind, item_id FROM expiry_queue WHERE expires_at_ms <= $1 \
         ORDER BY expires_at_ms, item_kind, item_id LIMIT $2",
    )
    .bind(now_ms)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("item_kind")?;
            let id = to_u64(row.try_get("item_id")?, "id")?;
            match kind.as_str() {
                "PENDING" => Ok(ExpiryItem::Pending(PendingId(id))),
                "HOLD" => Ok(ExpiryItem::Hold(HoldId(id))),
                _ => Err(corrupt("expiry kind")),
            }
        })
        .collect()
}

async fn delete_old_idempotency(
    conn: &mut DbConn,
    cutoff_ms: i64,
    limit: u32,
) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (scope, key) IN \
         (SELECT scope, key FROM idempotency_keys WHERE created_at_ms < $1 LIMIT $2)",
    )
    .bind(cutoff_ms)
    .bind(i64::from(limit))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

async fn read_transactions_page(
    conn: &mut DbConn,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<(TransactionRow, Vec<EntryRow>)>, StorageError> {
    let rows = sqlx::query(
        "SELECT seq, kind, reverses, metadata, created_at_ms, prev_hash, hash \
         FROM journal_transactions WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(to_i64(after_seq))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let Some(last) = rows.last() else {
        return Ok(Vec::new());
    };
    let last_seq: i64 = last.try_get("seq")?;
    let entry_rows = sqlx::query(
        "SELECT seq, idx, account_id, side, currency, amount_minor, balance_after_minor \
         FROM journal_entries WHERE seq > $1 AND seq <= $2 ORDER BY seq, idx",
    )
    .bind(to_i64(after_seq))
    .bind(last_seq)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_seq: std::collections::BTreeMap<u64, Vec<EntryRow>> = Default::default();
    for row in &entry_rows {
        let e = entry_row_of(row)?;
        by_seq.entry(e.seq).or_default().push(e);
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq = to_u64(row.try_get("seq")?, "seq")?;
        let kind: String = row.try_get("kind")?;
        let reverses: Option<i64> = row.try_get("reverses")?;
        let entries = by_seq.remove(&seq).unwrap_or_default();
        let posted = Posted {
            id: TransactionId(seq),
            kind: TransactionKind::from_db(&kind).ok_or_else(|| corrupt("kind"))?,
            entries: entries.iter().map(|e| e.entry.clone()).collect(),
            reverses: reverses
                .map(|r| to_u64(r, "seq"))
                .transpose()?
                .map(TransactionId),
            metadata: metadata_of(&row.try_get::<String, _>("metadata")?)?,
            created_at_ms: row.try_get("created_at_ms")?,
            hash: row.try_get("hash")?,
        };
        out.push((
            TransactionRow {
                posted,
                prev_hash: row.try_get("prev_hash")?,
            },
            entries,
        ));
    }
    Ok(out)
}

async fn read_accounts_page(
    conn: &mut DbConn,
    after_id: u64,
    limit: u32,
) -> Result<Vec<(Account, Balance)>, StorageError> {
    let sql = format!("{ACCOUNT_SELECT} WHERE a.id > $1 ORDER BY a.id LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(to_i64(after_id))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(account_of).collect()
}

async fn read_open_pendings_page(
    conn: &mut DbConn,
    after_id: u64,
    limit: u32,
) -> Result<Vec<Pending>, StorageError> {
    let sql =
        format!("{PENDING_SELECT} WHERE r.pending_id IS NULL AND p.id > $1 ORDER BY p.id LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(to_i64(after_id))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(pending_of).collect()
}

async fn read_open_holds_page(
    conn: &mut DbConn,
    after_id: u64,
    limit: u32,
) -> Result<Vec<Hold>, StorageError> {
    let sql = format!("{HOLD_SELECT} WHERE r.hold_id IS NULL AND h.id > $1 ORDER BY h.id LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(to_i64(after_id))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(hold_of).collect()
}

/// The [`LedgerReads`](crate::ledger::store::LedgerReads) of this back end: each read on a pooled connection.
macro_rules! impl_ledger_reads {
    ($storage:ty) => {
        #[async_trait]
        impl crate::ledger::store::LedgerReads for $storage {
            async fn account(&self, id: AccountId) -> Result<Option<(Account, Balance)>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_account(&mut conn, id).await
            }

            async fn idempotency(
                &self,
                key: &crate::ledger::model::IdempotencyKey,
            ) -> Result<Option<StoredIdempotency>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_idempotency(&mut conn, key).await
            }

            async fn statement(
                &self,
                id: AccountId,
                after_seq: Option<u64>,
                limit: u32,
            ) -> Result<Vec<StatementLine>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_statement(&mut conn, id, after_seq, limit).await
            }

            async fn pending(&self, id: PendingId) -> Result<Option<Pending>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_pending(&mut conn, id).await
            }

            async fn hold(&self, id: HoldId) -> Result<Option<Hold>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_hold(&mut conn, id).await
            }

            async fn due_expiries(&self, now_ms: i64, limit: u32) -> Result<Vec<ExpiryItem>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_due_expiries(&mut conn, now_ms, limit).await
            }

            async fn purge_idempotency(&self, cutoff_ms: i64, limit: u32) -> Result<u64, StorageError> {
                let mut conn = self.pool.acquire().await?;
                delete_old_idempotency(&mut conn, cutoff_ms, limit).await
            }

            async fn chain_head(&self) -> Result<ChainHead, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_head(&mut conn).await
            }

            async fn transactions_page(
                &self,
                after_seq: u64,
                limit: u32,
            ) -> Result<Vec<(TransactionRow, Vec<EntryRow>)>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_transactions_page(&mut conn, after_seq, limit).await
            }

            async fn accounts_page(
                &self,
                after_id: u64,
                limit: u32,
            ) -> Result<Vec<(Account, Balance)>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_accounts_page(&mut conn, after_id, limit).await
            }

            async fn open_pendings_page(
                &self,
                after_id: u64,
                limit: u32,
            ) -> Result<Vec<Pending>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_open_pendings_page(&mut conn, after_id, limit).await
            }

            async fn open_holds_page(&self, after_id: u64, limit: u32) -> Result<Vec<Hold>, StorageError> {
                let mut conn = self.pool.acquire().await?;
                read_open_holds_page(&mut conn, after_id, limit).await
            }
        }
    };
}

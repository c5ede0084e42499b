//! The journal verifier (`paygate::ledger::verify`) over an in-memory store built from the
//! input: any journal gives a report (clean, or findings by name), never a panic; a journal
//! built consistently is clean, and one edit to it is found.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use async_trait::async_trait;
use paygate::{
    ledger::{
        Account, AccountId, AccountStatus, Balance, BalanceConstraint, Entry, Hold, HoldId,
        HoldState, IdempotencyKey, Metadata, Pending, PendingId, PendingState, Posted, Side,
        StatementLine, StoredDocument, StoredEvent, TransactionId, TransactionKind, VerifyReport,
        hash::{self, GENESIS_HASH, hash_to_hex},
        store::{
            AccountReads, ApplyFn, Backend, BatchNeeds, ChainHead, DocumentReads, DurabilityRisk,
            EntryRow, LedgerReads, LedgerStore, PoolConnections, ProfileQuery, ProfileRow,
            StatementQuery, StatementRow, StorageError, StoredIdempotency, TransactionRow,
        },
        verify,
    },
    money::{Currency, Money},
};

use super::bytes::{Bytes, CURRENCY_CODES};

/// Most rows of each kind an input builds (inputs stay small and fast).
const ROWS_MAX: u8 = 12;

/// Input: a mode byte (even: a consistent journal and one edit; odd: arbitrary rows).
pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    if input.u8().is_multiple_of(2) {
        consistent(&mut input);
    } else {
        let store = arbitrary(&mut input);
        let report = run_verify(&store);
        assert!(report.problem_count >= report.problems.len() as u64);
        assert_eq!(report.is_clean(), report.problems.is_empty());
        // Every row is read once, but one at key 0: scans page from "after 0" (the SQL
        // adapters do the same; sequences and ids start at 1, and such a row is outside every
        // balance and statement too).
        let scanned = store
            .transactions
            .iter()
            .filter(|(t, _)| t.posted.id.0 > 0)
            .count();
        assert_eq!(report.transactions, scanned as u64);
        // The report prints whatever it holds.
        assert!(!report.to_string().is_empty());
    }
}

/// Runs `verify` to the end: the store answers at once, so one poll suffices.
pub fn run_verify(store: &MemoryStore) -> VerifyReport {
    let mut future = pin!(verify(store));
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(Ok(report)) => report,
        Poll::Ready(Err(e)) => panic!("verify failed on a store that never fails: {e}"),
        Poll::Pending => panic!("verify waited on a store that never waits"),
    }
}

fn currency(code: &str) -> Currency {
    match Currency::from_code(code) {
        Ok(c) => c,
        Err(e) => panic!("{code}: {e}"),
    }
}

/// Accounts 1..=k in CNY, transfers among them, open pendings and holds, every stored figure
/// as the ledger would write it: verify must find nothing. Then one edit, which it must find.
fn consistent(input: &mut Bytes) {
    let cny = currency("CNY");
    let k = 2 + u64::from(input.u8() % 5);
    let mut store = MemoryStore::default();
    for id in 1..=k {
        let normal_side = if input.bool() {
            Side::Debit
        } else {
            Side::Credit
        };
        store.accounts.push((
            account(id, cny, normal_side, BalanceConstraint::None),
            Balance::default(),
        ));
    }
    let mut prev = GENESIS_HASH;
    for seq in 1..=u64::from(input.u8() % ROWS_MAX) {
        let from = AccountId(1 + u64::from(input.u8()) % k);
        let to = AccountId(1 + u64::from(input.u8()) % k);
        let amount = Money::new(cny, 1 + i64::from(input.u8()));
        let entries = vec![
            Entry {
                account: from,
                side: Side::Debit,
                amount,
            },
            Entry {
                account: to,
                side: Side::Credit,
                amount,
            },
        ];
        let created_at_ms = i64::from(input.u8());
        let mut rows = Vec::new();
        for (index, e) in (0u32..).zip(&entries) {
            let balance = store.post(e);
            rows.push(EntryRow {
                seq,
                index,
                entry: e.clone(),
                balance_after_minor: balance,
            });
        }
        let metadata = Metadata::new();
        let id = TransactionId(seq);
        let h = hash::transaction_hash(
            &prev,
            id,
            TransactionKind::Posting,
            None,
            created_at_ms,
            &metadata,
            &entries,
        );
        let posted = Posted {
            id,
            kind: TransactionKind::Posting,
            entries,
            reverses: None,
            metadata,
            created_at_ms,
            hash: hash_to_hex(&h),
        };
        store.transactions.push((
            TransactionRow {
                posted,
                prev_hash: hash_to_hex(&prev),
            },
            rows,
        ));
        prev = h;
    }
    for n in 1..=u64::from(input.u8() % 4) {
        let amount = Money::new(cny, 1 + i64::from(input.u8()));
        let (debit, credit) = (
            AccountId(1 + u64::from(input.u8()) % k),
            AccountId(1 + u64::from(input.u8()) % k),
        );
        store.balance(debit).pending_debits_minor += amount.minor;
        store.balance(credit).pending_credits_minor += amount.minor;
        store.pendings.push(pending(n, debit, credit, amount));
    }
    for n in 1..=u64::from(input.u8() % 4) {
        let amount = Money::new(cny, 1 + i64::from(input.u8()));
        let on = AccountId(1 + u64::from(input.u8()) % k);
        store.balance(on).held_minor += amount.minor;
        store.holds.push(hold(n, on, amount));
    }
    store.head = head(store.transactions.len() as u64, prev);
    let report = run_verify(&store);
    assert!(
        report.is_clean(),
        "a consistent journal reported:\n{report}"
    );
    assert!(report.net_by_currency.values().all(|n| *n == 0));
    if edit(input, &mut store) {
        let report = run_verify(&store);
        assert!(!report.is_clean(), "an edited journal verified clean");
    }
}

/// One edit a tamperer or a torn write could make; false when the journal has nothing to edit.
fn edit(input: &mut Bytes, store: &mut MemoryStore) -> bool {
    let n = store.transactions.len();
    match input.u8() % 5 {
        0 => false,
        1 if n > 0 => {
            // An entry's amount changed in place (both the row and what the hash covers).
            let (row, entries) = &mut store.transactions[usize::from(input.u8()) % n];
            row.posted.entries[0].amount.minor += 1;
            entries[0].entry.amount.minor += 1;
            true
        }
        2 if n > 0 => {
            store.transactions.remove(usize::from(input.u8()) % n);
            true
        }
        3 => {
            let k = store.accounts.len();
            store.accounts[usize::from(input.u8()) % k]
                .1
                .posted_credits_minor += 1;
            true
        }
        4 => {
            store.head.last_seq += 1;
            true
        }
        _ => false,
    }
}

/// Rows as a damaged database could hold them: ids colliding or huge, amounts of any sign,
/// entries of unknown accounts, hashes right or wrong, a head that says anything.
fn arbitrary(input: &mut Bytes) -> MemoryStore {
    let mut store = MemoryStore::default();
    for _ in 0..input.u8() % ROWS_MAX {
        let c = currency(input.pick(CURRENCY_CODES));
        let side = input.pick(&[Side::Debit, Side::Credit]);
        let constraint = match input.u8() % 3 {
            0 => BalanceConstraint::None,
            1 => BalanceConstraint::DebitsMustNotExceedCredits {
                overdraft_minor: input.minor(),
            },
            _ => BalanceConstraint::CreditsMustNotExceedDebits {
                limit_minor: input.minor(),
            },
        };
        let balance = Balance {
            posted_debits_minor: input.minor(),
            posted_credits_minor: input.minor(),
            pending_debits_minor: input.minor(),
            pending_credits_minor: input.minor(),
            held_minor: input.minor(),
        };
        store
            .accounts
            .push((account(input.id(), c, side, constraint), balance));
    }
    let mut prev = GENESIS_HASH;
    for _ in 0..input.u8() % ROWS_MAX {
        let seq = input.id();
        let mut entries = Vec::new();
        let mut rows = Vec::new();
        for i in 0..input.u8() % 5 {
            let entry = Entry {
                account: AccountId(input.id()),
                side: input.pick(&[Side::Debit, Side::Credit]),
                amount: Money::new(currency(input.pick(CURRENCY_CODES)), input.minor()),
            };
            let index = if input.bool() {
                u32::from(input.u8())
            } else {
                u32::from(i)
            };
            rows.push(EntryRow {
                seq,
                index,
                entry: entry.clone(),
                balance_after_minor: input.minor(),
            });
            entries.push(entry);
        }
        let kind = input.pick(&[
            TransactionKind::Posting,
            TransactionKind::PendingPost,
            TransactionKind::Reversal,
            TransactionKind::HoldCapture,
        ]);
        let reverses = input.bool().then(|| TransactionId(input.id()));
        let created_at_ms = input.minor();
        let mut metadata = Metadata::new();
        if input.bool() {
            metadata.insert(input.text(8), input.text(8));
        }
        let id = TransactionId(seq);
        let h = hash::transaction_hash(
            &prev,
            id,
            kind,
            reverses,
            created_at_ms,
            &metadata,
            &entries,
        );
        let hash_text = if input.bool() {
            hash_to_hex(&h)
        } else {
            input.text(64)
        };
        let prev_text = if input.bool() {
            hash_to_hex(&prev)
        } else {
            input.text(64)
        };
        let posted = Posted {
            id,
            kind,
            entries,
            reverses,
            metadata,
            created_at_ms,
            hash: hash_text,
        };
        store.transactions.push((
            TransactionRow {
                posted,
                prev_hash: prev_text,
            },
            rows,
        ));
        prev = h;
    }
    for _ in 0..input.u8() % 4 {
        let amount = Money::new(currency(input.pick(CURRENCY_CODES)), input.minor());
        store.pendings.push(pending(
            input.id(),
            AccountId(input.id()),
            AccountId(input.id()),
            amount,
        ));
    }
    for _ in 0..input.u8() % 4 {
        let amount = Money::new(currency(input.pick(CURRENCY_CODES)), input.minor());
        store
            .holds
            .push(hold(input.id(), AccountId(input.id()), amount));
    }
    let last_hash = if input.bool() { prev } else { [input.u8(); 32] };
    store.head = head(input.id(), last_hash);
    store.settle();
    store
}

fn account(
    id: u64,
    currency: Currency,
    normal_side: Side,
    constraint: BalanceConstraint,
) -> Account {
    Account {
        id: AccountId(id),
        currency,
        normal_side,
        kind: "customer".to_owned(),
        status: AccountStatus::Active,
        constraint,
        metadata: Metadata::new(),
        created_at_ms: 0,
    }
}

fn pending(id: u64, debit_account: AccountId, credit_account: AccountId, amount: Money) -> Pending {
    Pending {
        id: PendingId(id),
        debit_account,
        credit_account,
        amount,
        expires_at_ms: i64::MAX,
        metadata: Metadata::new(),
        created_at_ms: 0,
        state: PendingState::Open,
        posted_minor: 0,
        transaction: None,
    }
}

fn hold(id: u64, account: AccountId, amount: Money) -> Hold {
    Hold {
        id: HoldId(id),
        account,
        amount,
        expires_at_ms: None,
        metadata: Metadata::new(),
        created_at_ms: 0,
        state: HoldState::Open,
        captured_minor: 0,
        transaction: None,
    }
}

fn head(last_seq: u64, last_hash: [u8; 32]) -> ChainHead {
    ChainHead {
        last_seq,
        last_hash,
        next_account_id: 1,
        next_pending_id: 1,
        next_hold_id: 1,
        batches_committed: 0,
        audit_seq: 0,
        audit_hash: [0; 32],
    }
}

/// The rows a verify reads, answered from memory in key order like the SQL adapters. Writes and
/// the reads verify does not make are refused.
pub struct MemoryStore {
    pub accounts: Vec<(Account, Balance)>,
    pub transactions: Vec<(TransactionRow, Vec<EntryRow>)>,
    pub pendings: Vec<Pending>,
    pub holds: Vec<Hold>,
    pub head: ChainHead,
}

impl MemoryStore {
    /// Keys are unique and ordered, as primary keys are: the first row of a key stays.
    fn settle(&mut self) {
        self.accounts.sort_by_key(|(a, _)| a.id);
        self.accounts.dedup_by_key(|(a, _)| a.id);
        self.transactions.sort_by_key(|(t, _)| t.posted.id);
        self.transactions.dedup_by_key(|(t, _)| t.posted.id);
        self.pendings.sort_by_key(|p| p.id);
        self.pendings.dedup_by_key(|p| p.id);
        self.holds.sort_by_key(|h| h.id);
        self.holds.dedup_by_key(|h| h.id);
    }

    fn balance(&mut self, id: AccountId) -> &mut Balance {
        match self.accounts.iter_mut().find(|(a, _)| a.id == id) {
            Some((_, b)) => b,
            None => panic!("no account {id}"),
        }
    }

    /// Adds a leg to its account's posted totals; the book balance after it.
    fn post(&mut self, e: &Entry) -> i64 {
        let normal = match self.accounts.iter().find(|(a, _)| a.id == e.account) {
            Some((a, _)) => a.normal_side,
            None => panic!("no account {}", e.account),
        };
        let b = self.balance(e.account);
        match e.side {
            Side::Debit => b.posted_debits_minor += e.amount.minor,
            Side::Credit => b.posted_credits_minor += e.amount.minor,
        }
        match i64::try_from(b.posted_minor(normal)) {
            Ok(v) => v,
            Err(_) => panic!("a small journal overflowed"),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            accounts: Vec::new(),
            transactions: Vec::new(),
            pendings: Vec::new(),
            holds: Vec::new(),
            head: head(0, GENESIS_HASH),
        }
    }
}

fn page<T: Clone>(rows: &[T], key: impl Fn(&T) -> u64, after: u64, limit: u32) -> Vec<T> {
    rows.iter()
        .filter(|r| key(r) > after)
        .take(limit as usize)
        .cloned()
        .collect()
}

fn unused<T>(what: &str) -> Result<T, StorageError> {
    Err(StorageError::new(format!("{what}: not read by verify")))
}

#[async_trait]
impl LedgerReads for MemoryStore {
    async fn account(&self, _: AccountId) -> Result<Option<(Account, Balance)>, StorageError> {
        unused("account")
    }
    async fn idempotency(
        &self,
        _: &IdempotencyKey,
    ) -> Result<Option<StoredIdempotency>, StorageError> {
        unused("idempotency")
    }
    async fn statement(
        &self,
        _: AccountId,
        _: Option<u64>,
        _: u32,
    ) -> Result<Vec<StatementLine>, StorageError> {
        unused("statement")
    }
    async fn pending(&self, _: PendingId) -> Result<Option<Pending>, StorageError> {
        unused("pending")
    }
    async fn hold(&self, _: HoldId) -> Result<Option<Hold>, StorageError> {
        unused("hold")
    }
    async fn due_expiries(
        &self,
        _: i64,
        _: u32,
    ) -> Result<Vec<paygate::ledger::store::ExpiryItem>, StorageError> {
        unused("due_expiries")
    }
    async fn idempotency_keys_count(&self) -> Result<u64, StorageError> {
        unused("idempotency_keys_count")
    }
    async fn purge_idempotency(&self, _: i64, _: u32) -> Result<u64, StorageError> {
        unused("purge_idempotency")
    }
    async fn chain_head(&self) -> Result<ChainHead, StorageError> {
        Ok(self.head)
    }
    async fn transactions_page(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<(TransactionRow, Vec<EntryRow>)>, StorageError> {
        Ok(page(
            &self.transactions,
            |(t, _)| t.posted.id.0,
            after_seq,
            limit,
        ))
    }
    async fn accounts_page(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<(Account, Balance)>, StorageError> {
        Ok(page(&self.accounts, |(a, _)| a.id.0, after_id, limit))
    }
    async fn open_pendings_page(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<Pending>, StorageError> {
        Ok(page(&self.pendings, |p| p.id.0, after_id, limit))
    }
    async fn open_holds_page(&self, after_id: u64, limit: u32) -> Result<Vec<Hold>, StorageError> {
        Ok(page(&self.holds, |h| h.id.0, after_id, limit))
    }
    async fn audit_page(
        &self,
        _: u64,
        _: u32,
    ) -> Result<Vec<paygate::ledger::audit::AuditRow>, StorageError> {
        unused("audit_page")
    }
}

#[async_trait]
impl AccountReads for MemoryStore {
    async fn profile(&self, _: u64) -> Result<Option<ProfileRow>, StorageError> {
        unused("profile")
    }
    async fn profiles(&self, _: &ProfileQuery) -> Result<Vec<ProfileRow>, StorageError> {
        unused("profiles")
    }
    async fn statement_page(&self, _: &StatementQuery) -> Result<Vec<StatementRow>, StorageError> {
        unused("statement_page")
    }
    async fn counter_values(&self, _: &[String]) -> Result<Vec<(String, i64)>, StorageError> {
        unused("counter_values")
    }
}

#[async_trait]
impl DocumentReads for MemoryStore {
    async fn document(&self, _: &str, _: &str) -> Result<Option<StoredDocument>, StorageError> {
        unused("document")
    }
    async fn documents_after(
        &self,
        _: &str,
        _: &str,
        _: u32,
    ) -> Result<Vec<StoredDocument>, StorageError> {
        unused("documents_after")
    }
    async fn outbox_after(
        &self,
        _: &[String],
        _: u64,
        _: u32,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        unused("outbox_after")
    }
}

#[async_trait]
impl LedgerStore for MemoryStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }
    async fn execute_batch(&self, _: &BatchNeeds, _: &mut ApplyFn<'_>) -> Result<(), StorageError> {
        unused("execute_batch")
    }
    fn pool_connections(&self) -> PoolConnections {
        PoolConnections { open: 0, idle: 0 }
    }
    async fn durability_risks(&self) -> Result<Vec<DurabilityRisk>, StorageError> {
        Ok(Vec::new())
    }
    async fn close(&self) {}
}

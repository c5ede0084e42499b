//! `paygate ledger verify`: recomputes the hash chain and every balance from the journal and the
//! open pendings and holds, and checks the double-entry and floor invariants. Reads in pages,
//! so it runs beside a live gateway (each page is consistent; run it on a quiet ledger for an
//! exact cross-check of balances).

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
};

use super::{
    error::LedgerError,
    hash::{self, hash_to_hex},
    model::{Account, AccountId, Balance, Side, TransactionId},
    store::{EntryRow, LedgerStore, SCAN_PAGE_ROWS_MAX, TransactionRow},
};
use crate::money::Currency;

/// Most problems listed in a report (the count goes on).
const PROBLEMS_LISTED_MAX: usize = 50;

/// What `verify` found.
#[derive(Debug, Default, Clone)]
pub struct VerifyReport {
    pub transactions: u64,
    pub entries: u64,
    pub accounts: u64,
    pub open_pendings: u64,
    pub open_holds: u64,
    /// Net posted debits − credits per currency over all accounts (must be zero).
    pub net_by_currency: BTreeMap<String, i128>,
    pub problem_count: u64,
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < PROBLEMS_LISTED_MAX {
            self.problems.push(text);
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ledger verify: {} transactions, {} entries, {} accounts, {} open pendings, {} open holds",
            self.transactions, self.entries, self.accounts, self.open_pendings, self.open_holds
        )?;
        for (currency, net) in &self.net_by_currency {
            writeln!(f, "  {currency}: net debits - credits = {net}")?;
        }
        if self.is_clean() {
            write!(
                f,
                "OK: hash chain intact, balances match the journal, all sums zero"
            )
        } else {
            writeln!(f, "BROKEN: {} problem(s)", self.problem_count)?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
            if self.problem_count as usize > self.problems.len() {
                writeln!(
                    f,
                    "  … and {} more",
                    self.problem_count as usize - self.problems.len()
                )?;
            }
            Ok(())
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Recomputed {
    posted_debits: i128,
    posted_credits: i128,
    pending_debits: i128,
    pending_credits: i128,
    held: i128,
}

/// Recomputes everything; problems go into the report, storage failures are errors.
pub async fn verify(store: &dyn LedgerStore) -> Result<VerifyReport, LedgerError> {
    let mut report = VerifyReport::default();
    let accounts = load_accounts(store).await?;
    report.accounts = accounts.len() as u64;
    let mut chain = JournalPass::default();
    check_journal(store, &accounts, &mut chain, &mut report).await?;
    check_chain_head(store, &chain, &mut report).await?;
    let mut sums = chain.sums;
    sum_open_pendings(store, &mut sums, &mut report).await?;
    sum_open_holds(store, &mut sums, &mut report).await?;
    compare_accounts(&accounts, &sums, &mut report);
    check_currency_nets(&mut report);
    Ok(report)
}

/// Every account with its stored balance, by id.
async fn load_accounts(
    store: &dyn LedgerStore,
) -> Result<HashMap<AccountId, (Account, Balance)>, LedgerError> {
    let mut accounts: HashMap<AccountId, (Account, Balance)> = HashMap::new();
    let mut after = 0u64;
    loop {
        let page = store.accounts_page(after, SCAN_PAGE_ROWS_MAX).await?;
        let Some(last) = page.last() else { break };
        after = last.0.id.0;
        for (a, b) in page {
            accounts.insert(a.id, (a, b));
        }
    }
    Ok(accounts)
}

/// The running state of the pass over the journal: the per-account sums so far, the hash the
/// next transaction must chain from, and the sequence of the last one (0 before the first).
struct JournalPass {
    sums: HashMap<AccountId, Recomputed>,
    prev_hash: [u8; 32],
    last_seq: u64,
}

impl Default for JournalPass {
    fn default() -> Self {
        JournalPass {
            sums: HashMap::new(),
            prev_hash: hash::GENESIS_HASH,
            last_seq: 0,
        }
    }
}

/// The journal pass: every transaction in sequence order, page by page.
async fn check_journal(
    store: &dyn LedgerStore,
    accounts: &HashMap<AccountId, (Account, Balance)>,
    chain: &mut JournalPass,
    report: &mut VerifyReport,
) -> Result<(), LedgerError> {
    let mut after_seq = 0u64;
    loop {
        let page = store
            .transactions_page(after_seq, SCAN_PAGE_ROWS_MAX)
            .await?;
        let Some(last) = page.last() else { break };
        after_seq = last.0.posted.id.0;
        for (row, entries) in page {
            check_transaction(&row, &entries, accounts, chain, report);
        }
    }
    Ok(())
}

/// One transaction: its sequence, its place in the hash chain, and its entries.
fn check_transaction(
    row: &TransactionRow,
    entries: &[EntryRow],
    accounts: &HashMap<AccountId, (Account, Balance)>,
    chain: &mut JournalPass,
    report: &mut VerifyReport,
) {
    let t = &row.posted;
    report.transactions += 1;
    report.entries += entries.len() as u64;
    // Checked: a store may hand over any `u64` (the largest has no successor).
    match chain.last_seq.checked_add(1) {
        Some(expected) if expected == t.id.0 => {}
        Some(expected) => {
            report.problem(format!("sequence gap: expected {expected}, found {}", t.id));
        }
        None => report.problem(format!("sequence {} follows the largest sequence", t.id)),
    }
    chain.last_seq = t.id.0;
    if row.prev_hash != hash_to_hex(&chain.prev_hash) {
        report.problem(format!(
            "transaction {}: previous hash does not chain",
            t.id
        ));
    }
    let computed = hash::transaction_hash(
        &chain.prev_hash,
        t.id,
        t.kind,
        t.reverses,
        t.created_at_ms,
        &t.metadata,
        &t.entries,
    );
    if hash_to_hex(&computed) != t.hash {
        report.problem(format!("transaction {}: hash mismatch", t.id));
    }
    chain.prev_hash = computed;
    if entries.len() < 2 {
        report.problem(format!("transaction {}: fewer than two entries", t.id));
    }
    let mut net: BTreeMap<Currency, i128> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        check_entry(t.id, i, e, accounts, &mut chain.sums, &mut net, report);
    }
    if net.values().any(|n| *n != 0) {
        report.problem(format!("transaction {} does not balance", t.id));
    }
}

/// The `i`th entry of transaction `id`: adds it to its account's sums and the transaction's
/// net, and checks it against its account and its running balance.
fn check_entry(
    id: TransactionId,
    i: usize,
    e: &EntryRow,
    accounts: &HashMap<AccountId, (Account, Balance)>,
    sums: &mut HashMap<AccountId, Recomputed>,
    net: &mut BTreeMap<Currency, i128>,
    report: &mut VerifyReport,
) {
    if e.index as usize != i {
        report.problem(format!("transaction {id}: entry index gap"));
    }
    if e.entry.amount.minor <= 0 {
        report.problem(format!("transaction {id}: non-positive amount"));
    }
    let signed = i128::from(e.entry.amount.minor);
    let s = sums.entry(e.entry.account).or_default();
    match e.entry.side {
        Side::Debit => {
            *net.entry(e.entry.amount.currency).or_default() += signed;
            s.posted_debits += signed;
        }
        Side::Credit => {
            *net.entry(e.entry.amount.currency).or_default() -= signed;
            s.posted_credits += signed;
        }
    }
    match accounts.get(&e.entry.account) {
        None => report.problem(format!(
            "transaction {id}: unknown account {}",
            e.entry.account
        )),
        Some((a, _)) => {
            if a.currency != e.entry.amount.currency {
                report.problem(format!(
                    "transaction {id}: currency differs from account {}",
                    a.id
                ));
            }
            let running = match a.normal_side {
                Side::Debit => s.posted_debits - s.posted_credits,
                Side::Credit => s.posted_credits - s.posted_debits,
            };
            if running != i128::from(e.balance_after_minor) {
                report.problem(format!(
                    "transaction {id} entry {}: running balance of account {} is {}, \
                     recomputed {running}",
                    e.index, a.id, e.balance_after_minor
                ));
            }
        }
    }
}

/// The chain head must name the journal's last transaction and hash.
async fn check_chain_head(
    store: &dyn LedgerStore,
    chain: &JournalPass,
    report: &mut VerifyReport,
) -> Result<(), LedgerError> {
    let head = store.chain_head().await?;
    if head.last_seq != chain.last_seq {
        report.problem(format!(
            "chain head says {} transactions, journal has {}",
            head.last_seq, chain.last_seq
        ));
    }
    if head.last_hash != chain.prev_hash {
        report.problem("chain head hash differs from the last transaction's".to_owned());
    }
    Ok(())
}

/// Adds every open pending to its two accounts' pending sums.
async fn sum_open_pendings(
    store: &dyn LedgerStore,
    sums: &mut HashMap<AccountId, Recomputed>,
    report: &mut VerifyReport,
) -> Result<(), LedgerError> {
    let mut after_id = 0u64;
    loop {
        let page = store
            .open_pendings_page(after_id, SCAN_PAGE_ROWS_MAX)
            .await?;
        let Some(last) = page.last() else { break };
        after_id = last.id.0;
        for p in page {
            report.open_pendings += 1;
            sums.entry(p.debit_account).or_default().pending_debits += i128::from(p.amount.minor);
            sums.entry(p.credit_account).or_default().pending_credits += i128::from(p.amount.minor);
        }
    }
    Ok(())
}

/// Adds every open hold to its account's held sum.
async fn sum_open_holds(
    store: &dyn LedgerStore,
    sums: &mut HashMap<AccountId, Recomputed>,
    report: &mut VerifyReport,
) -> Result<(), LedgerError> {
    let mut after_id = 0u64;
    loop {
        let page = store.open_holds_page(after_id, SCAN_PAGE_ROWS_MAX).await?;
        let Some(last) = page.last() else { break };
        after_id = last.id.0;
        for h in page {
            report.open_holds += 1;
            sums.entry(h.account).or_default().held += i128::from(h.amount.minor);
        }
    }
    Ok(())
}

/// Each account, in id order: its stored balance against the recomputed sums, its floor, and
/// its share of its currency's net.
fn compare_accounts(
    accounts: &HashMap<AccountId, (Account, Balance)>,
    sums: &HashMap<AccountId, Recomputed>,
    report: &mut VerifyReport,
) {
    let mut ids: Vec<&AccountId> = accounts.keys().collect();
    ids.sort();
    for id in ids {
        let Some((a, b)) = accounts.get(id) else {
            continue;
        };
        let r = sums.get(id).copied().unwrap_or_default();
        let stored = [
            ("posted debits", b.posted_debits_minor, r.posted_debits),
            ("posted credits", b.posted_credits_minor, r.posted_credits),
            ("pending debits", b.pending_debits_minor, r.pending_debits),
            (
                "pending credits",
                b.pending_credits_minor,
                r.pending_credits,
            ),
            ("held", b.held_minor, r.held),
        ];
        for (what, stored, recomputed) in stored {
            if i128::from(stored) != recomputed {
                report.problem(format!(
                    "account {id}: stored {what} {stored}, recomputed {recomputed}"
                ));
            }
        }
        if let Some(headroom) = b.headroom_minor(a.constraint)
            && headroom < 0
        {
            report.problem(format!("account {id} is below its floor by {}", -headroom));
        }
        *report
            .net_by_currency
            .entry(a.currency.code().to_owned())
            .or_default() += r.posted_debits - r.posted_credits;
    }
}

/// Every currency's net posted debits − credits must be zero.
fn check_currency_nets(report: &mut VerifyReport) {
    let broken: Vec<String> = report
        .net_by_currency
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(c, n)| format!("{c} balances sum to {n}, not zero"))
        .collect();
    for b in broken {
        report.problem(b);
    }
}

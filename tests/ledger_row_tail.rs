//! How account rows are kept, on both back ends: a transfer between quiet accounts appends to
//! the journal without rewriting their rows (reads add the row's journal tail), a long tail is
//! folded back into the row, and a process's account cache never outlives another process's
//! write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ledger::*;
use paygate::{
    ledger::store::ROW_TAIL_ENTRIES_MAX,
    ledger::{AccountId, LedgerError, Metadata, NewHold, verify},
    storage,
};

async fn row_column(db: &TestDb, column: &str, id: AccountId) -> i64 {
    db.query_i64(&format!(
        "SELECT {column} FROM accounts WHERE id = {}",
        id.0
    ))
    .await
}

async fn tail_len(db: &TestDb, id: AccountId) -> i64 {
    db.query_i64(&format!(
        "SELECT COUNT(*) FROM journal_entries e JOIN accounts a ON a.id = e.account_id \
         WHERE a.id = {} AND e.seq > a.posted_through_seq",
        id.0
    ))
    .await
}

async fn finish_clean(db: TestDb) {
    let report = verify(db.storage.as_ref()).await.expect("verify runs");
    assert!(report.is_clean(), "{report}");
    db.cleanup().await;
}

async fn a_transfer_between_quiet_accounts_rewrites_no_row(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ledger = start(&db).await;
    let source = internal(&ledger).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 10_000).await;
    ledger.post(key(), transfer(a, b, 2_500)).await.unwrap();

    // The rows still hold what they held when the accounts were opened...
    assert_eq!(row_column(&db, "posted_credits_minor", a).await, 0);
    assert_eq!(row_column(&db, "posted_credits_minor", b).await, 0);
    assert_eq!(tail_len(&db, a).await, 2);
    assert_eq!(tail_len(&db, b).await, 1);
    // ...and every read adds the tail: the ledger, a fresh connection, verify.
    assert_eq!(posted(&ledger, a).await, 7_500);
    assert_eq!(posted(&ledger, b).await, 2_500);
    let other = storage::connect(&database_config(&db.url)).await.unwrap();
    let (_, bal) = other.account(a).await.unwrap().unwrap();
    assert_eq!(
        (bal.posted_debits_minor, bal.posted_credits_minor),
        (2_500, 10_000)
    );
    other.close().await;

    // A hold changes more than posted totals: the row is rewritten, tail and all.
    ledger
        .place_hold(
            key(),
            NewHold {
                account: a,
                amount: cny(1_000),
                timeout_ms: None,
                metadata: Metadata::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(tail_len(&db, a).await, 0);
    assert_eq!(row_column(&db, "posted_credits_minor", a).await, 10_000);
    assert_eq!(row_column(&db, "posted_debits_minor", a).await, 2_500);
    assert_eq!(row_column(&db, "held_minor", a).await, 1_000);
    ledger.shutdown().await;
    finish_clean(db).await;
}

async fn a_long_tail_is_folded_back_into_the_row(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ledger = start(&db).await;
    let source = internal(&ledger).await;
    let hot = customer(&ledger, 0).await;
    let transfers = i64::from(ROW_TAIL_ENTRIES_MAX) * 2 + 7;
    for _ in 0..transfers {
        fund(&ledger, source, hot, 3).await;
    }
    let tail = tail_len(&db, hot).await;
    assert!(
        tail <= i64::from(ROW_TAIL_ENTRIES_MAX),
        "the tail stays bounded, found {tail}"
    );
    assert!(row_column(&db, "posted_through_seq", hot).await > 0);
    assert_eq!(
        i64::try_from(posted(&ledger, hot).await).unwrap(),
        transfers * 3
    );
    assert_eq!(
        row_column(&db, "posted_credits_minor", hot).await + tail * 3,
        transfers * 3
    );
    ledger.shutdown().await;
    finish_clean(db).await;
}

/// Two storages on one database stand for two gateway processes, each with its own cache.
async fn another_process_write_is_never_hidden_by_the_cache(backend: Backend) {
    let db = TestDb::new(backend).await;
    let first = start(&db).await;
    let second_storage = storage::connect(&database_config(&db.url)).await.unwrap();
    let second = paygate::ledger::Ledger::start(
        second_storage.clone(),
        &ledger_config(),
        paygate::clock::Clock::system(),
    )
    .await
    .unwrap();
    let source = internal(&first).await;
    let a = customer(&first, 0).await;
    let b = customer(&first, 0).await;
    fund(&first, source, a, 100).await;
    // The first process now holds a = 1.00 in its cache.
    first.post(key(), transfer(a, b, 10)).await.unwrap();

    // The second process empties a...
    second.post(key(), transfer(a, b, 90)).await.unwrap();
    // ...so the first must refuse what its cache alone would allow.
    let refused = first.post(key(), transfer(a, b, 50)).await.unwrap_err();
    assert!(
        matches!(refused, LedgerError::InsufficientFunds { .. }),
        "{refused:?}"
    );
    // And the other way round: money the second process adds is there for the first.
    fund(&second, source, a, 70).await;
    first.post(key(), transfer(a, b, 70)).await.unwrap();
    assert_eq!(posted(&first, a).await, 0);
    assert_eq!(posted(&second, b).await, 170);

    first.shutdown().await;
    second.shutdown().await;
    second_storage.close().await;
    finish_clean(db).await;
}

both_backends!(multi_thread:
    a_transfer_between_quiet_accounts_rewrites_no_row,
    a_long_tail_is_folded_back_into_the_row,
    another_process_write_is_never_hidden_by_the_cache,
);

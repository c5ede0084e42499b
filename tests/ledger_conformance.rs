//! Conformance of the ledger on both back ends: every operation, and every error variant with
//! its own test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ledger::*;
use paygate::{
    ledger::{
        AccountStatus, BalanceConstraint, Command, CounterCheck, HoldState, IdempotencyKey, Ledger,
        LedgerError, Metadata, NewAccount, NewHold, NewPending, PendingState, Side,
        TransactionKind, verify,
    },
    money::{Currency, Money, Sign},
};

fn pending_spec(
    from: paygate::ledger::AccountId,
    to: paygate::ledger::AccountId,
    minor: i64,
) -> NewPending {
    NewPending {
        debit_account: from,
        credit_account: to,
        amount: cny(minor),
        timeout_ms: 60_000,
        metadata: Metadata::new(),
        counters: Vec::new(),
    }
}

fn hold_spec(account: paygate::ledger::AccountId, minor: i64) -> NewHold {
    NewHold {
        account,
        amount: cny(minor),
        timeout_ms: None,
        metadata: Metadata::new(),
    }
}

async fn setup(backend: Backend) -> (TestDb, Ledger, paygate::ledger::AccountId) {
    let db = TestDb::new(backend).await;
    let ledger = start(&db).await;
    let source = internal(&ledger).await;
    (db, ledger, source)
}

async fn finish(db: TestDb, ledger: Ledger) {
    ledger.shutdown().await;
    let report = verify(db.storage.as_ref()).await.expect("verify runs");
    assert!(report.is_clean(), "{report}");
    db.cleanup().await;
}

// ---------------------------------------------------------------- operations

async fn transfer_moves_money_and_keeps_a_running_statement(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 10_000).await;
    let p = ledger.post(key(), transfer(a, b, 2_550)).await.unwrap();
    assert_eq!(p.kind, TransactionKind::Posting);
    assert_eq!(p.entries.len(), 2);
    assert_eq!(posted(&ledger, a).await, 7_450);
    assert_eq!(posted(&ledger, b).await, 2_550);
    // The source is debit-normal: lending out 100.00 shows as +100.00 on its side.
    assert_eq!(posted(&ledger, source).await, 10_000);
    let lines = ledger.entries(a, None, 100).await.unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].balance_after.minor, 10_000);
    assert_eq!(lines[1].balance_after.minor, 7_450);
    assert_eq!(lines[1].side, Side::Debit);
    assert_eq!(lines[1].balance_after.to_decimal_string(), "74.50");
    // Paging after the first line gives the second.
    let page = ledger
        .entries(a, Some(lines[0].transaction.0), 1)
        .await
        .unwrap();
    assert_eq!(page, vec![lines[1].clone()]);
    finish(db, ledger).await;
}

async fn multi_leg_posting_is_atomic(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let payer = customer(&ledger, 0).await;
    let merchant = customer(&ledger, 0).await;
    let fees = customer(&ledger, 0).await;
    fund(&ledger, source, payer, 1_000).await;
    // Payment of 10.00 with a 0.06 fee split off to the bank's fee income.
    let p = ledger
        .post(
            key(),
            tx(vec![
                leg(payer, Side::Debit, 1_000),
                leg(merchant, Side::Credit, 994),
                leg(fees, Side::Credit, 6),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(p.entries.len(), 3);
    assert_eq!(posted(&ledger, merchant).await, 994);
    assert_eq!(posted(&ledger, fees).await, 6);
    // A second one fails as a whole: nothing of it is written.
    let err = ledger
        .post(
            key(),
            tx(vec![
                leg(payer, Side::Debit, 1),
                leg(merchant, Side::Credit, 1),
            ]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::InsufficientFunds { .. }));
    assert_eq!(posted(&ledger, merchant).await, 994);
    finish(db, ledger).await;
}

async fn linked_postings_are_all_or_nothing(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    let c = customer(&ledger, 0).await;
    fund(&ledger, source, a, 100).await;
    // b is empty, but the first leg funds it before the second spends it: order matters.
    let posted_all = ledger
        .post_linked(key(), vec![transfer(a, b, 100), transfer(b, c, 100)])
        .await
        .unwrap();
    assert_eq!(posted_all.len(), 2);
    assert_eq!(posted_all[1].id.0, posted_all[0].id.0 + 1);
    assert_eq!(posted(&ledger, c).await, 100);
    // Second transaction fails: the first is not applied either.
    let err = ledger
        .post_linked(key(), vec![transfer(c, a, 50), transfer(b, a, 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::InsufficientFunds { account, .. } if account == b));
    assert_eq!(posted(&ledger, c).await, 100);
    assert_eq!(posted(&ledger, a).await, 0);
    finish(db, ledger).await;
}

async fn pending_posts_partially_and_releases_the_rest(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 1_000).await;
    let p = ledger
        .create_pending(key(), pending_spec(a, b, 800))
        .await
        .unwrap();
    assert_eq!(p.state, PendingState::Open);
    let (acct, bal) = ledger.account(a).await.unwrap();
    assert_eq!(bal.pending_debits_minor, 800);
    assert_eq!(bal.available_minor(acct.normal_side), 200);
    // The reservation is honoured: 300 more cannot be spent.
    let err = ledger.post(key(), transfer(a, b, 300)).await.unwrap_err();
    assert!(matches!(err, LedgerError::InsufficientFunds { .. }));
    let posted_tx = ledger
        .post_pending(key(), p.id, Some(cny(500)))
        .await
        .unwrap();
    assert_eq!(posted_tx.kind, TransactionKind::PendingPost);
    let (_, bal) = ledger.account(a).await.unwrap();
    assert_eq!(bal.pending_debits_minor, 0);
    assert_eq!(posted(&ledger, a).await, 500);
    assert_eq!(posted(&ledger, b).await, 500);
    let stored = ledger.pending(p.id).await.unwrap();
    assert_eq!(stored.state, PendingState::Posted);
    assert_eq!(stored.posted_minor, 500);
    assert_eq!(stored.transaction, Some(posted_tx.id));
    // Void releases everything.
    let q = ledger
        .create_pending(key(), pending_spec(a, b, 100))
        .await
        .unwrap();
    let voided = ledger.void_pending(key(), q.id).await.unwrap();
    assert_eq!(voided.state, PendingState::Voided);
    let (_, bal) = ledger.account(b).await.unwrap();
    assert_eq!(bal.pending_credits_minor, 0);
    finish(db, ledger).await;
}

async fn holds_are_placed_released_and_captured(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let merchant = customer(&ledger, 0).await;
    fund(&ledger, source, a, 1_000).await;
    let h = ledger.place_hold(key(), hold_spec(a, 600)).await.unwrap();
    let (acct, bal) = ledger.account(a).await.unwrap();
    assert_eq!(bal.held_minor, 600);
    assert_eq!(bal.available_minor(acct.normal_side), 400);
    let err = ledger
        .post(key(), transfer(a, merchant, 401))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::InsufficientFunds { .. }));
    let captured = ledger
        .capture_hold(key(), h.id, cny(250), merchant, Metadata::new())
        .await
        .unwrap();
    assert_eq!(captured.kind, TransactionKind::HoldCapture);
    let (_, bal) = ledger.account(a).await.unwrap();
    assert_eq!(bal.held_minor, 0);
    assert_eq!(posted(&ledger, a).await, 750);
    assert_eq!(posted(&ledger, merchant).await, 250);
    let stored = ledger.hold(h.id).await.unwrap();
    assert_eq!(stored.state, HoldState::Captured);
    assert_eq!(stored.captured_minor, 250);
    let h2 = ledger.place_hold(key(), hold_spec(a, 700)).await.unwrap();
    let released = ledger.release_hold(key(), h2.id).await.unwrap();
    assert_eq!(released.state, HoldState::Released);
    let (_, bal) = ledger.account(a).await.unwrap();
    assert_eq!(bal.held_minor, 0);
    finish(db, ledger).await;
}

async fn reversal_restores_balances_and_points_at_the_original(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 1_000).await;
    let original = ledger.post(key(), transfer(a, b, 300)).await.unwrap();
    let rev = ledger
        .reverse(key(), original.id, "wrong payee".into())
        .await
        .unwrap();
    assert_eq!(rev.kind, TransactionKind::Reversal);
    assert_eq!(rev.reverses, Some(original.id));
    assert_eq!(
        rev.metadata.get("reason").map(String::as_str),
        Some("wrong payee")
    );
    assert_eq!(posted(&ledger, a).await, 1_000);
    assert_eq!(posted(&ledger, b).await, 0);
    finish(db, ledger).await;
}

async fn replay_returns_the_first_answer_including_a_failure(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    let k = key();
    let first = ledger
        .post(k.clone(), transfer(a, b, 100))
        .await
        .unwrap_err();
    assert!(matches!(first, LedgerError::InsufficientFunds { .. }));
    fund(&ledger, source, a, 1_000).await;
    // Funds are there now, but the stored answer stands.
    let again = ledger
        .post(k.clone(), transfer(a, b, 100))
        .await
        .unwrap_err();
    assert_eq!(first, again);
    let k2 = key();
    let ok = ledger.post(k2.clone(), transfer(a, b, 100)).await.unwrap();
    let ok_again = ledger.post(k2.clone(), transfer(a, b, 100)).await.unwrap();
    assert_eq!(ok, ok_again);
    assert_eq!(posted(&ledger, b).await, 100);
    // The same key string under another caller's scope is another request.
    let other_scope = IdempotencyKey::new("other-caller", k2.key.clone());
    ledger.post(other_scope, transfer(a, b, 100)).await.unwrap();
    assert_eq!(posted(&ledger, b).await, 200);
    finish(db, ledger).await;
}

async fn concurrent_identical_requests_execute_once(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 1_000).await;
    let k = key();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (ledger, k) = (ledger.clone(), k.clone());
            tokio::spawn(async move { ledger.post(k, transfer(a, b, 10)).await })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap().id);
    }
    assert_eq!(ids.len(), 1, "one transaction for all duplicates");
    assert_eq!(posted(&ledger, b).await, 10);
    finish(db, ledger).await;
}

async fn counters_accumulate_under_their_cap(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 10_000).await;
    let with_limit = |minor| {
        let mut t = transfer(a, b, minor);
        t.counters = vec![CounterCheck {
            key: "class2:out:2024-06-01:a".into(),
            amount_minor: minor,
            cap_minor: 1_000,
        }];
        t
    };
    ledger.post(key(), with_limit(600)).await.unwrap();
    ledger.post(key(), with_limit(400)).await.unwrap();
    let err = ledger.post(key(), with_limit(1)).await.unwrap_err();
    assert_eq!(
        err,
        LedgerError::LimitExceeded {
            key: "class2:out:2024-06-01:a".into(),
            cap_minor: 1_000,
            used_minor: 1_000,
            requested_minor: 1,
        }
    );
    assert_eq!(
        posted(&ledger, b).await,
        1_000,
        "the refused posting wrote nothing"
    );
    finish(db, ledger).await;
}

async fn account_status_freeze_unfreeze_close(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 100).await;
    let frozen = ledger
        .set_account_status(
            key(),
            a,
            AccountStatus::Frozen {
                no_debit: true,
                no_credit: false,
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        frozen.status,
        AccountStatus::Frozen { no_debit: true, .. }
    ));
    // Credits still arrive on a no-debit freeze.
    fund(&ledger, source, a, 1).await;
    let a2 = ledger
        .set_account_status(
            key(),
            a,
            AccountStatus::Frozen {
                no_debit: false,
                no_credit: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(a2.status, AccountStatus::Active);
    ledger.post(key(), transfer(a, b, 101)).await.unwrap();
    let closed = ledger
        .set_account_status(key(), a, AccountStatus::Closed)
        .await
        .unwrap();
    assert_eq!(closed.status, AccountStatus::Closed);
    finish(db, ledger).await;
}

async fn expired_pendings_and_holds_are_swept(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 1_000).await;
    let mut spec = pending_spec(a, b, 500);
    spec.timeout_ms = 1;
    let p = ledger.create_pending(key(), spec).await.unwrap();
    let mut hs = hold_spec(a, 300);
    hs.timeout_ms = Some(1);
    let h = ledger.place_hold(key(), hs).await.unwrap();
    ledger.clock().advance_ms(20);
    ledger.sweep_expired().await.unwrap();
    assert_eq!(
        ledger.pending(p.id).await.unwrap().state,
        PendingState::Expired
    );
    assert_eq!(ledger.hold(h.id).await.unwrap().state, HoldState::Expired);
    let (_, bal) = ledger.account(a).await.unwrap();
    assert_eq!((bal.pending_debits_minor, bal.held_minor), (0, 0));
    assert_eq!(ledger.sweep_expired().await.unwrap(), 0);
    finish(db, ledger).await;
}

async fn verify_detects_tampering(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    fund(&ledger, source, a, 1_000).await;
    ledger.shutdown().await;
    assert!(verify(db.storage.as_ref()).await.unwrap().is_clean());
    db.exec_raw("UPDATE journal_entries SET amount_minor = 999 WHERE seq = 1 AND idx = 1")
        .await;
    let report = verify(db.storage.as_ref()).await.unwrap();
    assert!(!report.is_clean());
    let text = report.to_string();
    assert!(text.contains("hash mismatch"), "{text}");
    assert!(text.contains("does not balance"), "{text}");
    db.cleanup().await;
}

async fn storage_connects_twice_and_keeps_data(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    fund(&ledger, source, a, 42).await;
    ledger.shutdown().await;
    // Migrations are applied once; a second connect finds them done.
    let again = paygate::storage::connect(&database_config(&db.url))
        .await
        .unwrap();
    let (_, bal) = again.account(a).await.unwrap().unwrap();
    assert_eq!(bal.posted_credits_minor, 42);
    again.close().await;
    db.cleanup().await;
}

// ---------------------------------------------------------------- one test per error

async fn error_unknown_account(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let missing = paygate::ledger::AccountId(9_999);
    let err = ledger
        .post(key(), transfer(source, missing, 1))
        .await
        .unwrap_err();
    assert_eq!(err, LedgerError::UnknownAccount { account: missing });
    assert_eq!(err.reason(), "UNKNOWN_ACCOUNT");
    assert_eq!(
        ledger.account(missing).await.unwrap_err(),
        LedgerError::UnknownAccount { account: missing }
    );
    finish(db, ledger).await;
}

async fn error_currency_mismatch(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let mut t = transfer(source, a, 1);
    t.entries[1].amount = Money::new(Currency::USD, 1);
    t.entries[0].amount = Money::new(Currency::USD, 1);
    let err = ledger.post(key(), t).await.unwrap_err();
    assert!(matches!(
        err,
        LedgerError::CurrencyMismatch { expected, actual, .. }
            if expected == Currency::CNY && actual == Currency::USD
    ));
    assert_eq!(err.reason(), "CURRENCY_MISMATCH");
    finish(db, ledger).await;
}

async fn error_amount_not_positive(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    for minor in [0, -5] {
        let err = ledger
            .post(key(), transfer(source, a, minor))
            .await
            .unwrap_err();
        assert_eq!(err, LedgerError::AmountNotPositive);
    }
    let err: LedgerError = Money::parse(Currency::CNY, "0.00", Sign::Positive)
        .unwrap_err()
        .into();
    assert_eq!(err.reason(), "AMOUNT_NOT_POSITIVE");
    finish(db, ledger).await;
}

async fn error_overflow(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    fund(&ledger, source, a, i64::MAX).await;
    let err = ledger
        .post(key(), transfer(source, a, 1))
        .await
        .unwrap_err();
    assert_eq!(err, LedgerError::Overflow);
    assert_eq!(err.reason(), "OVERFLOW");
    finish(db, ledger).await;
}

async fn error_insufficient_funds(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 50).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 100).await;
    // 100 posted + 50 overdraft: 150 may go, 151 may not.
    let err = ledger.post(key(), transfer(a, b, 151)).await.unwrap_err();
    assert_eq!(
        err,
        LedgerError::InsufficientFunds {
            account: a,
            available: cny(150),
            requested: cny(151),
        }
    );
    ledger.post(key(), transfer(a, b, 150)).await.unwrap();
    assert_eq!(posted(&ledger, a).await, -50);
    finish(db, ledger).await;
}

async fn error_account_frozen(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 100).await;
    let freeze = |no_debit, no_credit| AccountStatus::Frozen {
        no_debit,
        no_credit,
    };
    ledger
        .set_account_status(key(), a, freeze(true, false))
        .await
        .unwrap();
    let err = ledger.post(key(), transfer(a, b, 1)).await.unwrap_err();
    assert_eq!(err, LedgerError::AccountFrozen { account: a });
    ledger
        .set_account_status(key(), b, freeze(false, true))
        .await
        .unwrap();
    let err = ledger
        .post(key(), transfer(source, b, 1))
        .await
        .unwrap_err();
    assert_eq!(err, LedgerError::AccountFrozen { account: b });
    let err = ledger.place_hold(key(), hold_spec(a, 1)).await.unwrap_err();
    assert_eq!(err.reason(), "ACCOUNT_FROZEN");
    finish(db, ledger).await;
}

async fn error_account_closed(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    ledger
        .set_account_status(key(), a, AccountStatus::Closed)
        .await
        .unwrap();
    let err = ledger
        .post(key(), transfer(source, a, 1))
        .await
        .unwrap_err();
    assert_eq!(err, LedgerError::AccountClosed { account: a });
    // A closed account stays closed.
    let err = ledger
        .set_account_status(key(), a, AccountStatus::Active)
        .await
        .unwrap_err();
    assert_eq!(err, LedgerError::AccountClosed { account: a });
    finish(db, ledger).await;
}

async fn error_account_not_empty(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 10).await;
    let err = ledger
        .set_account_status(key(), a, AccountStatus::Closed)
        .await
        .unwrap_err();
    assert_eq!(err, LedgerError::AccountNotEmpty { account: a });
    // Zero balance but an open hold (within the overdraft): still not empty.
    let c = customer(&ledger, 100).await;
    ledger.place_hold(key(), hold_spec(c, 15)).await.unwrap();
    let err = ledger
        .set_account_status(key(), c, AccountStatus::Closed)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "ACCOUNT_NOT_EMPTY");
    let _ = b;
    finish(db, ledger).await;
}

async fn error_pending_not_found(backend: Backend) {
    let (db, ledger, _source) = setup(backend).await;
    let id = paygate::ledger::PendingId(77);
    let err = ledger.post_pending(key(), id, None).await.unwrap_err();
    assert_eq!(err, LedgerError::PendingNotFound { pending: id });
    let err = ledger.void_pending(key(), id).await.unwrap_err();
    assert_eq!(err, LedgerError::PendingNotFound { pending: id });
    finish(db, ledger).await;
}

async fn error_pending_already_resolved(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 100).await;
    let p = ledger
        .create_pending(key(), pending_spec(a, b, 60))
        .await
        .unwrap();
    ledger.post_pending(key(), p.id, None).await.unwrap();
    let err = ledger.post_pending(key(), p.id, None).await.unwrap_err();
    assert_eq!(
        err,
        LedgerError::PendingAlreadyResolved {
            pending: p.id,
            state: PendingState::Posted
        }
    );
    let err = ledger.void_pending(key(), p.id).await.unwrap_err();
    assert_eq!(err.reason(), "PENDING_ALREADY_RESOLVED");
    let q = ledger
        .create_pending(key(), pending_spec(a, b, 10))
        .await
        .unwrap();
    ledger.void_pending(key(), q.id).await.unwrap();
    let err = ledger.post_pending(key(), q.id, None).await.unwrap_err();
    assert_eq!(
        err,
        LedgerError::PendingAlreadyResolved {
            pending: q.id,
            state: PendingState::Voided
        }
    );
    assert_eq!(posted(&ledger, b).await, 60, "posted exactly once");
    finish(db, ledger).await;
}

async fn error_pending_expired(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let b = customer(&ledger, 0).await;
    fund(&ledger, source, a, 100).await;
    let mut spec = pending_spec(a, b, 60);
    spec.timeout_ms = 1;
    let p = ledger.create_pending(key(), spec).await.unwrap();
    ledger.clock().advance_ms(10);
    // Past its deadline, before or after the sweeper ran: always PendingExpired.
    let err = ledger.post_pending(key(), p.id, None).await.unwrap_err();
    assert_eq!(err, LedgerError::PendingExpired { pending: p.id });
    ledger.sweep_expired().await.unwrap();
    let err = ledger.void_pending(key(), p.id).await.unwrap_err();
    assert_eq!(err, LedgerError::PendingExpired { pending: p.id });
    finish(db, ledger).await;
}

async fn error_hold_not_found(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let id = paygate::ledger::HoldId(5);
    let err = ledger.release_hold(key(), id).await.unwrap_err();
    assert_eq!(err, LedgerError::HoldNotFound { hold: id });
    let err = ledger
        .capture_hold(key(), id, cny(1), source, Metadata::new())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "HOLD_NOT_FOUND");
    finish(db, ledger).await;
}

async fn error_hold_already_resolved(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    fund(&ledger, source, a, 100).await;
    let h = ledger.place_hold(key(), hold_spec(a, 10)).await.unwrap();
    ledger.release_hold(key(), h.id).await.unwrap();
    let err = ledger.release_hold(key(), h.id).await.unwrap_err();
    assert_eq!(
        err,
        LedgerError::HoldAlreadyResolved {
            hold: h.id,
            state: HoldState::Released
        }
    );
    let err = ledger
        .capture_hold(key(), h.id, cny(1), source, Metadata::new())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "HOLD_ALREADY_RESOLVED");
    finish(db, ledger).await;
}

async fn error_capture_exceeds_hold(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    fund(&ledger, source, a, 100).await;
    let h = ledger.place_hold(key(), hold_spec(a, 40)).await.unwrap();
    let err = ledger
        .capture_hold(key(), h.id, cny(41), source, Metadata::new())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::CaptureExceedsHold {
            hold: h.id,
            held: cny(40),
            requested: cny(41)
        }
    );
    assert_eq!(ledger.hold(h.id).await.unwrap().state, HoldState::Open);
    finish(db, ledger).await;
}

async fn error_transaction_not_found(backend: Backend) {
    let (db, ledger, _source) = setup(backend).await;
    let id = paygate::ledger::TransactionId(12_345);
    let err = ledger.reverse(key(), id, String::new()).await.unwrap_err();
    assert_eq!(err, LedgerError::TransactionNotFound { transaction: id });
    finish(db, ledger).await;
}

async fn error_already_reversed(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let p = ledger.post(key(), transfer(source, a, 10)).await.unwrap();
    ledger.reverse(key(), p.id, "once".into()).await.unwrap();
    let err = ledger
        .reverse(key(), p.id, "twice".into())
        .await
        .unwrap_err();
    assert_eq!(err, LedgerError::AlreadyReversed { transaction: p.id });
    finish(db, ledger).await;
}

async fn error_unbalanced(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let err = ledger
        .post(
            key(),
            tx(vec![leg(source, Side::Debit, 10), leg(a, Side::Credit, 9)]),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::Unbalanced {
            currency: Currency::CNY
        }
    );
    finish(db, ledger).await;
}

async fn error_too_few_entries(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let err = ledger
        .post(key(), tx(vec![leg(source, Side::Debit, 10)]))
        .await
        .unwrap_err();
    assert_eq!(err, LedgerError::TooFewEntries { count: 1 });
    finish(db, ledger).await;
}

async fn error_limit_exceeded(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let mut t = transfer(source, a, 2_001);
    t.counters = vec![CounterCheck {
        key: "class3:in:2024-06-01".into(),
        amount_minor: 2_001,
        cap_minor: 2_000,
    }];
    let err = ledger.post(key(), t).await.unwrap_err();
    assert_eq!(err.reason(), "LIMIT_EXCEEDED");
    assert_eq!(posted(&ledger, a).await, 0);
    finish(db, ledger).await;
}

async fn error_idempotency_key_reused(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let k = key();
    ledger
        .post(k.clone(), transfer(source, a, 10))
        .await
        .unwrap();
    let err = ledger
        .post(k.clone(), transfer(source, a, 11))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::IdempotencyKeyReused { key: k.key.clone() }
    );
    assert_eq!(posted(&ledger, a).await, 10);
    finish(db, ledger).await;
}

async fn a_stored_request_is_answered_without_submitting(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let (paid, refused) = (key(), key());
    assert_eq!(
        ledger.answered_request(&paid, "pay a 10").await.unwrap(),
        None
    );
    let posted_first = ledger
        .submit_request(
            paid.clone(),
            "pay a 10",
            Command::Post(transfer(source, a, 10)),
        )
        .await
        .unwrap();
    let err = ledger
        .submit_request(
            refused.clone(),
            "a pays 99",
            Command::Post(transfer(a, source, 99)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "INSUFFICIENT_FUNDS");
    // The first answers, success and refusal alike, and nothing moved by asking.
    assert_eq!(
        ledger.answered_request(&paid, "pay a 10").await.unwrap(),
        Some(Ok(posted_first))
    );
    assert_eq!(
        ledger
            .answered_request(&refused, "a pays 99")
            .await
            .unwrap(),
        Some(Err(err))
    );
    assert_eq!(
        ledger
            .answered_request(&paid, "pay a 11")
            .await
            .unwrap_err(),
        LedgerError::IdempotencyKeyReused {
            key: paid.key.clone()
        }
    );
    assert_eq!(posted(&ledger, a).await, 10);
    finish(db, ledger).await;
}

async fn error_invalid_request(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    let mut t = transfer(source, a, 1);
    t.metadata.insert("k".repeat(65), "v".into());
    let err = ledger.post(key(), t).await.unwrap_err();
    assert_eq!(err.reason(), "INVALID_REQUEST");
    let err = ledger
        .post(IdempotencyKey::new("", "x"), transfer(source, a, 1))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "INVALID_REQUEST");
    let err = ledger
        .create_account(
            key(),
            NewAccount {
                currency: Currency::CNY,
                normal_side: Side::Credit,
                kind: String::new(),
                constraint: BalanceConstraint::None,
                metadata: Metadata::new(),
                profile: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "INVALID_REQUEST");
    finish(db, ledger).await;
}

async fn error_overloaded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let config = paygate::config::LedgerConfig {
        queue_depth_max: 1,
        batch_size_max: 1,
        ..ledger_config()
    };
    let ledger = Ledger::start(db.storage.clone(), &config, paygate::clock::Clock::system())
        .await
        .unwrap();
    let source = internal(&ledger).await;
    let a = customer(&ledger, 0).await;
    let answers =
        futures::future::join_all((0..64).map(|_| ledger.post(key(), transfer(source, a, 1))))
            .await;
    let overloaded = answers
        .iter()
        .filter(|r| matches!(r, Err(LedgerError::Overloaded)))
        .count();
    let ok = answers.iter().filter(|r| r.is_ok()).count();
    assert!(overloaded > 0, "a full queue refuses at once");
    assert_eq!(ok + overloaded, 64);
    assert_eq!(posted(&ledger, a).await, ok as i128);
    finish(db, ledger).await;
}

async fn error_shutting_down(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    ledger.shutdown().await;
    let err = ledger
        .post(key(), transfer(source, a, 1))
        .await
        .unwrap_err();
    assert_eq!(err, LedgerError::ShuttingDown);
    db.cleanup().await;
}

async fn error_storage(backend: Backend) {
    let (db, ledger, source) = setup(backend).await;
    let a = customer(&ledger, 0).await;
    db.storage.close().await;
    let err = ledger
        .post(key(), transfer(source, a, 1))
        .await
        .unwrap_err();
    assert_eq!(err, LedgerError::Storage);
    // The outward text names no SQL, table or driver detail.
    assert_eq!(err.to_string(), "internal storage error");
    ledger.shutdown().await;
    db.cleanup().await;
}

#[test]
fn error_amount_scale() {
    let err: LedgerError = Money::parse(Currency::CNY, "1.234", Sign::Positive)
        .unwrap_err()
        .into();
    assert_eq!(
        err,
        LedgerError::AmountScale {
            currency: Currency::CNY,
            scale: 2
        }
    );
    assert_eq!(err.reason(), "AMOUNT_SCALE");
    let jpy = Currency::from_code("JPY").unwrap();
    assert!(Money::parse(jpy, "1.5", Sign::Positive).is_err());
}

#[test]
fn error_unknown_currency() {
    let err: LedgerError = Currency::from_code("XYZ").unwrap_err().into();
    assert_eq!(err.reason(), "UNKNOWN_CURRENCY");
    assert!(serde_json::from_str::<Currency>("\"XYZ\"").is_err());
}

#[test]
fn error_invalid_amount() {
    let err: LedgerError = Money::parse(Currency::CNY, "12,50", Sign::Positive)
        .unwrap_err()
        .into();
    assert_eq!(err, LedgerError::InvalidAmount);
}

#[test]
fn errors_round_trip_through_their_stored_form() {
    let errors = vec![
        LedgerError::InsufficientFunds {
            account: paygate::ledger::AccountId(1),
            available: cny(5),
            requested: cny(6),
        },
        LedgerError::PendingAlreadyResolved {
            pending: paygate::ledger::PendingId(3),
            state: PendingState::Voided,
        },
        LedgerError::LimitExceeded {
            key: "k".into(),
            cap_minor: 1,
            used_minor: 1,
            requested_minor: 1,
        },
        LedgerError::Overloaded,
    ];
    for e in errors {
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<LedgerError>(&text).unwrap(), e);
    }
}

both_backends!(multi_thread:
    transfer_moves_money_and_keeps_a_running_statement,
    multi_leg_posting_is_atomic,
    linked_postings_are_all_or_nothing,
    pending_posts_partially_and_releases_the_rest,
    holds_are_placed_released_and_captured,
    reversal_restores_balances_and_points_at_the_original,
    replay_returns_the_first_answer_including_a_failure,
    a_stored_request_is_answered_without_submitting,
    concurrent_identical_requests_execute_once,
    counters_accumulate_under_their_cap,
    account_status_freeze_unfreeze_close,
    expired_pendings_and_holds_are_swept,
    verify_detects_tampering,
    storage_connects_twice_and_keeps_data,
    error_unknown_account,
    error_currency_mismatch,
    error_amount_not_positive,
    error_overflow,
    error_insufficient_funds,
    error_account_frozen,
    error_account_closed,
    error_account_not_empty,
    error_pending_not_found,
    error_pending_already_resolved,
    error_pending_expired,
    error_hold_not_found,
    error_hold_already_resolved,
    error_capture_exceeds_hold,
    error_transaction_not_found,
    error_already_reversed,
    error_unbalanced,
    error_too_few_entries,
    error_limit_exceeded,
    error_idempotency_key_reused,
    error_invalid_request,
    error_overloaded,
    error_shutting_down,
    error_storage,
);

/// PostgreSQL gives the ledger's batches a connection of their own, held for the process's life.
/// When the server drops it (a restart, an administrator, an idle timeout), the batch that finds
/// it broken fails without writing anything, and the next batch connects afresh.
#[tokio::test]
async fn postgres_batches_reconnect_after_the_server_drops_their_connection() {
    if !common::postgres_available().await {
        return;
    }
    let (db, ledger, source) = setup(Backend::Postgres).await;
    let a = customer(&ledger, 0).await;
    fund(&ledger, source, a, 1_000).await;
    db.exec_raw(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    let k = key();
    let first = ledger.post(k.clone(), transfer(source, a, 1)).await;
    if let Err(e) = &first {
        assert_eq!(
            *e,
            LedgerError::Unavailable,
            "a dropped connection is the database's absence: retryable"
        );
    }
    // Whether the first try met the dead connection or not, the retry under the same key
    // moves the money exactly once.
    let retried = ledger
        .post(k, transfer(source, a, 1))
        .await
        .expect("reconnects");
    if let Ok(answer) = first {
        assert_eq!(answer, retried);
    }
    assert_eq!(posted(&ledger, a).await, 1_001);
    finish(db, ledger).await;
}

//! Unit tests of the pure apply step: a batch loaded in memory, [`apply_batch`] called directly,
//! no database.

use super::{
    ApplyLimits, BatchItem, Command, Observe, Observed, Outcome, Refusal, apply_batch,
    apply_batch_observed, fingerprint,
};
use crate::ledger::{
    error::LedgerError,
    hash::{self, hash_from_hex, hash_to_hex},
    model::{
        Account, AccountId, AccountStatus, Balance, BalanceConstraint, CounterCheck, DocumentWrite,
        Hold, HoldId, HoldState, IdempotencyKey, Metadata, NewAccount, NewEntry, NewHold,
        NewPending, NewTransaction, OutboxEvent, PendingId, PendingState, Side, TransactionId,
        TransactionKind,
    },
    store::{
        BatchWrites, ChainHead, LoadedAccount, LoadedBatch, NewProfile, ProfileChange,
        StoredIdempotency,
    },
};
use crate::money::{Currency, Money};

const NOW_MS: i64 = 1_700_000_000_000;
const LIMITS: ApplyLimits = ApplyLimits {
    pending_timeout_max_ms: 3_600_000,
    hold_timeout_max_ms: 3_600_000,
};
const HEAD_HASH: [u8; 32] = [7; 32];
/// The accounts every test starts with: an unconstrained source, and two customers who may not
/// go below zero (Alice holds 100.00, Bob nothing).
const SOURCE: AccountId = AccountId(1);
const ALICE: AccountId = AccountId(2);
const BOB: AccountId = AccountId(3);

fn cny(minor: i64) -> Money {
    Money::new(Currency::CNY, minor)
}

fn loaded_account(id: AccountId, constraint: BalanceConstraint, credits: i64) -> LoadedAccount {
    LoadedAccount {
        account: Account {
            id,
            currency: Currency::CNY,
            normal_side: Side::Credit,
            kind: "customer".into(),
            status: AccountStatus::Active,
            constraint,
            metadata: Metadata::new(),
            created_at_ms: NOW_MS - 1_000,
        },
        balance: Balance {
            posted_credits_minor: credits,
            ..Balance::default()
        },
        tail_entries: 0,
    }
}

fn no_overdraft() -> BalanceConstraint {
    BalanceConstraint::DebitsMustNotExceedCredits { overdraft_minor: 0 }
}

fn loaded() -> LoadedBatch {
    LoadedBatch {
        head: ChainHead {
            last_seq: 10,
            last_hash: HEAD_HASH,
            next_account_id: 4,
            next_pending_id: 1,
            next_hold_id: 1,
            batches_committed: 5,
            audit_seq: 0,
            audit_hash: [0; 32],
        },
        accounts: vec![
            loaded_account(SOURCE, BalanceConstraint::None, 0),
            loaded_account(ALICE, no_overdraft(), 10_000),
            loaded_account(BOB, no_overdraft(), 0),
        ],
        idempotency: vec![],
        pendings: vec![],
        holds: vec![],
        transactions: vec![],
        counters: vec![],
        documents: vec![],
    }
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new("tests", k)
}

fn keyed(k: &str, command: Command) -> BatchItem {
    BatchItem {
        key: Some(key(k)),
        fingerprint: fingerprint(&command),
        command,
        observe: Default::default(),
        method: "tests".into(),
    }
}

fn transfer(from: AccountId, to: AccountId, minor: i64) -> Command {
    Command::Post(NewTransaction {
        entries: vec![
            NewEntry {
                account: from,
                side: Side::Debit,
                amount: cny(minor),
            },
            NewEntry {
                account: to,
                side: Side::Credit,
                amount: cny(minor),
            },
        ],
        metadata: Metadata::new(),
        counters: vec![],
    })
}

fn run(
    loaded: LoadedBatch,
    items: &[BatchItem],
) -> (Vec<Result<Outcome, LedgerError>>, BatchWrites) {
    let items: Vec<&BatchItem> = items.iter().collect();
    apply_batch(loaded, &items, NOW_MS, LIMITS)
}

/// The account as the batch leaves it (only accounts the batch changed).
fn left(w: &BatchWrites, id: AccountId) -> Balance {
    w.account_states
        .iter()
        .find(|a| a.account.id == id)
        .map(|a| a.balance)
        .expect("the batch changed the account")
}

fn posted(r: &Result<Outcome, LedgerError>) -> crate::ledger::model::Posted {
    match r {
        Ok(Outcome::Posted(p)) => p.clone(),
        other => panic!("expected a posting, got {other:?}"),
    }
}

#[test]
fn a_balanced_posting_moves_balances_and_chains_its_hash_from_the_head() {
    let (answers, w) = run(loaded(), &[keyed("t1", transfer(ALICE, BOB, 2_500))]);
    let p = posted(&answers[0]);
    assert_eq!(p.id, TransactionId(11));
    assert_eq!(left(&w, ALICE).posted_debits_minor, 2_500);
    assert_eq!(left(&w, BOB).posted_credits_minor, 2_500);
    assert_eq!(w.entries.len(), 2);
    assert_eq!(w.entries[0].balance_after_minor, 7_500);
    assert_eq!(w.entries[1].balance_after_minor, 2_500);
    assert_eq!(w.transactions.len(), 1);
    assert_eq!(w.transactions[0].prev_hash, hash_to_hex(&HEAD_HASH));
    let expected = hash::transaction_hash(
        &HEAD_HASH,
        p.id,
        TransactionKind::Posting,
        None,
        NOW_MS,
        &p.metadata,
        &p.entries,
    );
    assert_eq!(hash_from_hex(&p.hash).ok(), Some(expected));
    let head = w.head.expect("a new head");
    assert_eq!((head.last_seq, head.last_hash), (11, expected));
    assert_eq!(w.idempotency.len(), 1);
}

#[test]
fn an_overdraft_is_refused_and_the_next_command_still_applies() {
    let (answers, w) = run(
        loaded(),
        &[
            keyed("big", transfer(ALICE, BOB, 10_001)),
            keyed("small", transfer(ALICE, BOB, 100)),
        ],
    );
    assert!(matches!(
        answers[0],
        Err(LedgerError::InsufficientFunds { account: ALICE, .. })
    ));
    // The refused command took no sequence number and wrote no entry of its own.
    assert_eq!(posted(&answers[1]).id, TransactionId(11));
    assert_eq!(w.transactions.len(), 1);
    assert_eq!(w.entries.len(), 2);
    assert_eq!(left(&w, ALICE).posted_debits_minor, 100);
}

#[test]
fn an_unbalanced_posting_is_refused_and_writes_nothing() {
    let mut unbalanced = transfer(ALICE, BOB, 100);
    if let Command::Post(tx) = &mut unbalanced {
        tx.entries[1].amount = cny(90);
    }
    let (answers, w) = run(loaded(), &[keyed("u", unbalanced)]);
    assert!(matches!(answers[0], Err(LedgerError::Unbalanced { .. })));
    assert!(w.is_empty());
}

#[test]
fn a_replay_answers_the_first_outcome_and_writes_nothing_new() {
    let command = transfer(ALICE, BOB, 300);
    let (first, w) = run(loaded(), &[keyed("r", command.clone())]);
    let mut again = loaded();
    again.idempotency = w.idempotency.clone();
    let (answers, w) = run(again, &[keyed("r", command)]);
    assert_eq!(answers[0], first[0]);
    assert!(w.is_empty());
}

#[test]
fn the_same_key_with_another_request_is_refused_as_reused() {
    let (_, w) = run(loaded(), &[keyed("r", transfer(ALICE, BOB, 300))]);
    let mut again = loaded();
    again.idempotency = w.idempotency;
    let (answers, w) = run(again, &[keyed("r", transfer(ALICE, BOB, 301))]);
    assert_eq!(
        answers[0],
        Err(LedgerError::IdempotencyKeyReused { key: "r".into() })
    );
    assert!(w.is_empty());
}

#[test]
fn an_unreadable_stored_answer_is_corrupt_data() {
    let command = transfer(ALICE, BOB, 300);
    let mut batch = loaded();
    batch.idempotency = vec![StoredIdempotency {
        key: key("r"),
        request_hash: fingerprint(&command),
        outcome: "{not json".into(),
        observed: None,
        created_at_ms: NOW_MS,
    }];
    let (answers, w) = run(batch, &[keyed("r", command)]);
    assert_eq!(answers[0], Err(LedgerError::Corrupt));
    assert!(w.is_empty());
}

#[test]
fn a_refusal_that_depends_on_state_is_stored_but_a_malformed_request_is_not() {
    let mut unbalanced = transfer(ALICE, BOB, 100);
    if let Command::Post(tx) = &mut unbalanced {
        tx.entries[1].amount = cny(90);
    }
    let (_, w) = run(
        loaded(),
        &[
            keyed("funds", transfer(ALICE, BOB, 10_001)),
            keyed("malformed", unbalanced),
        ],
    );
    let stored: Vec<&str> = w.idempotency.iter().map(|s| s.key.key.as_str()).collect();
    assert_eq!(stored, ["funds"]);
    assert!(w.idempotency[0].outcome.contains("INSUFFICIENT_FUNDS"));
}

fn guarded(inner: Command, documents: Vec<DocumentWrite>) -> Command {
    Command::Guarded {
        inner: Box::new(inner),
        counters: vec![CounterCheck {
            key: "daily".into(),
            amount_minor: 100,
            cap_minor: 1_000,
        }],
        releases: vec![],
        caps: vec![],
        documents,
        events: vec![OutboxEvent {
            stream: "merchant-1".into(),
            key: "order-1".into(),
            body: "{}".into(),
        }],
    }
}

fn order(expected_version: u64) -> DocumentWrite {
    DocumentWrite {
        kind: "order".into(),
        id: "order-1".into(),
        expected_version,
        body: r#"{"state":"PAID"}"#.into(),
    }
}

#[test]
fn a_guarded_command_whose_document_version_conflicts_fails_whole() {
    let mut batch = loaded();
    batch.documents = vec![("order".into(), "order-1".into(), 2)];
    let command = guarded(transfer(ALICE, BOB, 100), vec![order(1)]);
    let (answers, w) = run(batch, &[keyed("g", command)]);
    assert!(matches!(
        answers[0],
        Err(LedgerError::DocumentConflict { .. })
    ));
    // No posting, no counter, no document, no event, and no stored answer (a retry may win).
    assert!(w.is_empty());
}

#[test]
fn a_guarded_document_and_event_name_the_transaction_their_command_posted() {
    let mut batch = loaded();
    batch.documents = vec![("order".into(), "order-1".into(), 1)];
    let command = guarded(transfer(ALICE, BOB, 100), vec![order(1)]);
    let (answers, w) = run(batch, &[keyed("g", command)]);
    let id = posted(&answers[0]).id;
    assert_eq!(w.documents.len(), 1);
    assert_eq!(w.documents[0].version, 2);
    assert_eq!(w.documents[0].transaction, Some(id));
    assert_eq!(w.events.len(), 1);
    assert_eq!(w.events[0].transaction, Some(id));
    assert_eq!(w.counters, [("daily".to_owned(), 100)]);
}

#[test]
fn a_counter_refuses_beyond_its_cap() {
    let mut batch = loaded();
    batch.counters = vec![("daily".into(), 950)];
    let command = guarded(transfer(ALICE, BOB, 100), vec![]);
    let (answers, w) = run(batch, &[keyed("c", command)]);
    assert!(matches!(
        answers[0],
        Err(LedgerError::LimitExceeded { ref key, cap_minor: 1_000, used_minor: 950, requested_minor: 100 })
            if key == "daily"
    ));
    assert!(w.transactions.is_empty() && w.counters.is_empty());
}

fn profile() -> NewProfile {
    NewProfile {
        kind: "customer".into(),
        currency: "CNY".into(),
        owner_id: "person-1".into(),
        display_name: "Alice".into(),
        parent_id: None,
        person_key: None,
        card_token: None,
        card_first_six: None,
        card_last_four: None,
        agreement_id: None,
        internal_purpose: None,
        opened_by: "tests".into(),
    }
}

#[test]
fn creating_an_account_with_a_profile_writes_the_profile_with_the_new_id_and_time() {
    let command = Command::CreateAccount(NewAccount {
        currency: Currency::CNY,
        normal_side: Side::Credit,
        kind: "customer".into(),
        constraint: no_overdraft(),
        metadata: Metadata::new(),
        profile: Some(Box::new(profile())),
    });
    let (answers, w) = run(loaded(), &[keyed("open", command)]);
    let Ok(Outcome::Account(account)) = &answers[0] else {
        panic!("expected an account, got {:?}", answers[0]);
    };
    assert_eq!(account.id, AccountId(4));
    assert_eq!(w.profiles.len(), 1);
    assert_eq!(w.profiles[0].account_id, 4);
    assert_eq!(w.profiles[0].opened_at_ms, NOW_MS);
    assert_eq!(w.head.map(|h| h.next_account_id), Some(5));
}

fn freeze(freeze: bool, reason: &str) -> Command {
    Command::ChangeFreeze {
        account: ALICE,
        no_debit: true,
        no_credit: false,
        freeze,
        reason: reason.into(),
    }
}

#[test]
fn a_freeze_writes_its_reason_and_an_unfreeze_empties_it() {
    let (answers, w) = run(
        loaded(),
        &[
            keyed("f", freeze(true, "court order")),
            keyed("u", freeze(false, "lifted")),
        ],
    );
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(
        w.profile_changes,
        [
            ProfileChange::FreezeReason {
                account_id: ALICE.0,
                reason: "court order".into()
            },
            ProfileChange::FreezeReason {
                account_id: ALICE.0,
                reason: String::new()
            },
        ]
    );
}

#[test]
fn closing_an_empty_account_writes_its_close_time() {
    let command = Command::SetAccountStatus {
        account: BOB,
        status: AccountStatus::Closed,
    };
    let (answers, w) = run(loaded(), &[keyed("close", command)]);
    assert!(answers[0].is_ok());
    assert_eq!(
        w.profile_changes,
        [ProfileChange::Closed {
            account_id: BOB.0,
            at_ms: NOW_MS
        }]
    );
}

#[test]
fn a_pending_transfer_reserves_then_posts_partly_and_releases_the_rest() {
    let reserve = Command::CreatePending(NewPending {
        debit_account: ALICE,
        credit_account: BOB,
        amount: cny(1_000),
        timeout_ms: 60_000,
        metadata: Metadata::new(),
        counters: vec![],
    });
    let (answers, w) = run(loaded(), &[keyed("p", reserve)]);
    assert!(matches!(&answers[0], Ok(Outcome::Pending(p)) if p.id == PendingId(1)));
    assert_eq!(left(&w, ALICE).pending_debits_minor, 1_000);
    assert_eq!(left(&w, BOB).pending_credits_minor, 1_000);

    let mut batch = loaded();
    batch.head = w.head.expect("a new head");
    batch.accounts = w.account_states.clone();
    batch
        .accounts
        .push(loaded_account(SOURCE, BalanceConstraint::None, 0));
    batch.pendings = w.new_pendings.clone();
    let post = Command::PostPending {
        pending: PendingId(1),
        amount: Some(cny(600)),
    };
    let (answers, w) = run(batch, &[keyed("pp", post)]);
    let p = posted(&answers[0]);
    assert_eq!(p.kind, TransactionKind::PendingPost);
    let (alice, bob) = (left(&w, ALICE), left(&w, BOB));
    assert_eq!(
        (alice.pending_debits_minor, alice.posted_debits_minor),
        (0, 600)
    );
    assert_eq!(
        (bob.pending_credits_minor, bob.posted_credits_minor),
        (0, 600)
    );
    assert_eq!(w.pending_resolutions.len(), 1);
    assert_eq!(w.pending_resolutions[0].state, PendingState::Posted);
    assert_eq!(w.pending_resolutions[0].posted_minor, 600);
    assert_eq!(w.pending_resolutions[0].transaction, Some(p.id));
}

#[test]
fn a_hold_is_captured_at_most_once() {
    let place = Command::PlaceHold(NewHold {
        account: ALICE,
        amount: cny(500),
        timeout_ms: None,
        metadata: Metadata::new(),
    });
    let capture = |k: &str| {
        keyed(
            k,
            Command::CaptureHold {
                hold: HoldId(1),
                amount: cny(200),
                to: BOB,
                metadata: Metadata::new(),
            },
        )
    };
    let (answers, w) = run(loaded(), &[keyed("h", place), capture("c1"), capture("c2")]);
    assert!(matches!(&answers[0], Ok(Outcome::Hold(h)) if h.id == HoldId(1)));
    let p = posted(&answers[1]);
    assert_eq!(
        answers[2],
        Err(LedgerError::HoldAlreadyResolved {
            hold: HoldId(1),
            state: HoldState::Captured
        })
    );
    let alice = left(&w, ALICE);
    assert_eq!((alice.held_minor, alice.posted_debits_minor), (0, 200));
    assert_eq!(w.hold_resolutions.len(), 1);
    assert_eq!(w.hold_resolutions[0].transaction, Some(p.id));
    assert_eq!(w.hold_resolutions[0].captured_minor, 200);
}

#[test]
fn a_hold_already_captured_in_storage_is_not_captured_again() {
    let mut batch = loaded();
    batch.holds = vec![Hold {
        id: HoldId(9),
        account: ALICE,
        amount: cny(500),
        expires_at_ms: None,
        metadata: Metadata::new(),
        created_at_ms: NOW_MS - 10,
        state: HoldState::Captured,
        captured_minor: 500,
        transaction: Some(TransactionId(10)),
    }];
    let capture = Command::CaptureHold {
        hold: HoldId(9),
        amount: cny(100),
        to: BOB,
        metadata: Metadata::new(),
    };
    let (answers, w) = run(batch, &[keyed("c", capture)]);
    assert!(matches!(
        answers[0],
        Err(LedgerError::HoldAlreadyResolved { .. })
    ));
    assert!(w.transactions.is_empty());
}

#[test]
fn a_request_observes_the_balance_its_command_left_not_the_batch_end() {
    let mut first = keyed("t1", transfer(ALICE, BOB, 1_000));
    first.observe = Observe {
        accounts: vec![ALICE],
        counters: vec!["c".into()],
        document_kinds: vec![],
    };
    let later = keyed("t2", transfer(ALICE, BOB, 2_000));
    let items = [first.clone(), later, first];
    let refs: Vec<&BatchItem> = items.iter().collect();
    let (answers, w) = apply_batch_observed(loaded(), &refs, NOW_MS, LIMITS);
    let seen = answers[0].observed.clone().expect("observed");
    assert_eq!(seen.at_ms, NOW_MS);
    assert_eq!(seen.balance(ALICE).unwrap().posted_debits_minor, 1_000);
    assert_eq!(seen.counter("c"), 0);
    assert_eq!(answers[1].observed, None, "asked for nothing");
    assert_eq!(
        answers[2].observed,
        Some(seen.clone()),
        "a replay in the same batch observes what the first did"
    );
    let stored = w.idempotency.iter().find(|i| i.key == key("t1")).unwrap();
    let text = stored.observed.as_deref().expect("stored with the outcome");
    assert_eq!(serde_json::from_str::<Observed>(text).unwrap(), seen);
}

#[test]
fn a_refusal_decided_before_the_batch_claims_the_key() {
    let refusal = Refusal {
        reason: "account".into(),
        body: "{}".into(),
    };
    let item = |print: &str, command: Command| BatchItem {
        key: Some(key("r")),
        fingerprint: print.into(),
        command,
        observe: Observe::default(),
        method: "tests".into(),
    };
    let (answers, w) = run(
        loaded(),
        &[
            item("print", Command::Refuse(refusal.clone())),
            item("print", transfer(ALICE, BOB, 1)),
            item("another", transfer(ALICE, BOB, 1)),
        ],
    );
    let refused = Err(LedgerError::Refused { refusal });
    assert_eq!(answers[0], refused);
    assert_eq!(
        answers[1], refused,
        "the request meets the refusal it claimed"
    );
    assert_eq!(
        answers[2],
        Err(LedgerError::IdempotencyKeyReused { key: "r".into() })
    );
    assert!(w.transactions.is_empty());
    assert_eq!(w.idempotency.len(), 1);
}

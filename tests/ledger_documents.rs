//! Documents and the outbox on both back ends: a ledger command writes versioned documents and
//! outbox events in the same database transaction as its posting — all of it or none of it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ledger::*;
use paygate::ledger::{
    Command, DocumentWrite, IdempotencyKey, LedgerError, OutboxEvent, Outcome, verify,
};

fn guarded(inner: Command, documents: Vec<DocumentWrite>, events: Vec<OutboxEvent>) -> Command {
    Command::Guarded {
        inner: Box::new(inner),
        counters: Vec::new(),
        releases: Vec::new(),
        caps: Vec::new(),
        documents,
        events,
    }
}

fn doc(id: &str, expected_version: u64, body: &str) -> DocumentWrite {
    DocumentWrite {
        kind: "order".into(),
        id: id.into(),
        expected_version,
        body: body.into(),
    }
}

fn event(stream: &str, key: &str, body: &str) -> OutboxEvent {
    OutboxEvent {
        stream: stream.into(),
        key: key.into(),
        body: body.into(),
    }
}

async fn bodies(db: &TestDb, stream: &str, after: u64) -> Vec<(u64, String)> {
    db.storage
        .outbox_after(&[stream.to_owned()], after, 100)
        .await
        .expect("outbox reads")
        .into_iter()
        .map(|e| (e.seq, e.body))
        .collect()
}

async fn finish(db: TestDb, ledger: paygate::ledger::Ledger) {
    ledger.shutdown().await;
    let report = verify(db.storage.as_ref()).await.expect("verify runs");
    assert!(report.is_clean(), "{report}");
    db.cleanup().await;
}

async fn a_document_is_created_once_then_written_only_at_its_current_version(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ledger = start(&db).await;
    let created = ledger
        .submit(
            key(),
            guarded(Command::NoOp, vec![doc("o1", 0, "{\"v\":1}")], vec![]),
        )
        .await
        .expect("created");
    assert_eq!(created, Outcome::Nothing);
    let stored = db
        .storage
        .document("order", "o1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!((stored.version, stored.body.as_str()), (1, "{\"v\":1}"));

    // Creating it again, or writing from a stale version, is a conflict and changes nothing.
    for stale in [0, 2] {
        let err = ledger
            .submit(
                key(),
                guarded(Command::NoOp, vec![doc("o1", stale, "{}")], vec![]),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err,
            LedgerError::DocumentConflict {
                kind: "order".into(),
                id: "o1".into()
            }
        );
        assert_eq!(err.reason(), "DOCUMENT_CONFLICT");
    }
    ledger
        .submit(
            key(),
            guarded(Command::NoOp, vec![doc("o1", 1, "{\"v\":2}")], vec![]),
        )
        .await
        .expect("written at version 1");
    let stored = db
        .storage
        .document("order", "o1")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!((stored.version, stored.body.as_str()), (2, "{\"v\":2}"));
    assert!(
        db.storage
            .document("order", "nope")
            .await
            .unwrap()
            .is_none()
    );
    finish(db, ledger).await;
}

async fn a_conflict_rolls_back_the_posting_and_the_events_of_its_command(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ledger = start(&db).await;
    let source = internal(&ledger).await;
    let payer = customer(&ledger, 0).await;
    let payee = customer(&ledger, 0).await;
    fund(&ledger, source, payer, 1_000).await;
    ledger
        .submit(
            key(),
            guarded(Command::NoOp, vec![doc("o2", 0, "{}")], vec![]),
        )
        .await
        .unwrap();
    let err = ledger
        .submit(
            key(),
            guarded(
                Command::Post(transfer(payer, payee, 400)),
                vec![doc("o2", 0, "{}")],
                vec![event("m1", "o2", "paid")],
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::DocumentConflict { .. }));
    assert_eq!(posted(&ledger, payer).await, 1_000);
    assert_eq!(posted(&ledger, payee).await, 0);
    assert!(bodies(&db, "m1", 0).await.is_empty());
    // A refused posting writes neither its document nor its event.
    let err = ledger
        .submit(
            key(),
            guarded(
                Command::Post(transfer(payer, payee, 5_000)),
                vec![doc("o2", 1, "{\"paid\":true}")],
                vec![event("m1", "o2", "paid")],
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::InsufficientFunds { .. }));
    assert_eq!(
        db.storage
            .document("order", "o2")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    assert!(bodies(&db, "m1", 0).await.is_empty());
    finish(db, ledger).await;
}

async fn concurrent_writers_of_one_version_post_exactly_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ledger = start(&db).await;
    let source = internal(&ledger).await;
    let payer = customer(&ledger, 0).await;
    let payee = customer(&ledger, 0).await;
    fund(&ledger, source, payer, 100_000).await;
    ledger
        .submit(
            key(),
            guarded(Command::NoOp, vec![doc("o3", 0, "{}")], vec![]),
        )
        .await
        .unwrap();
    let attempts = (0..24).map(|i| {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            ledger
                .submit(
                    key(),
                    guarded(
                        Command::Post(transfer(payer, payee, 1_000)),
                        vec![doc("o3", 1, &format!("{{\"by\":{i}}}"))],
                        vec![event("m3", "o3", &format!("paid by {i}"))],
                    ),
                )
                .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let wins = results
        .iter()
        .filter(|r| matches!(r, Ok(Ok(Outcome::Posted(_)))))
        .count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(LedgerError::DocumentConflict { .. }))))
        .count();
    assert_eq!((wins, conflicts), (1, 23));
    assert_eq!(posted(&ledger, payee).await, 1_000);
    assert_eq!(bodies(&db, "m3", 0).await.len(), 1);
    assert_eq!(
        db.storage
            .document("order", "o3")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    finish(db, ledger).await;
}

async fn events_are_read_per_stream_in_order_after_a_cursor(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ledger = start(&db).await;
    for i in 0..5 {
        ledger
            .submit(
                key(),
                guarded(
                    Command::NoOp,
                    vec![],
                    vec![
                        event("a", "k", &format!("a{i}")),
                        event("b", "k", &format!("b{i}")),
                    ],
                ),
            )
            .await
            .unwrap();
    }
    let a = bodies(&db, "a", 0).await;
    assert_eq!(
        a.iter().map(|(_, b)| b.as_str()).collect::<Vec<_>>(),
        ["a0", "a1", "a2", "a3", "a4"]
    );
    assert!(
        a.windows(2).all(|w| w[0].0 < w[1].0),
        "sequence increases: {a:?}"
    );
    let rest = bodies(&db, "a", a[1].0).await;
    assert_eq!(rest, a[2..].to_vec());
    let both = db
        .storage
        .outbox_after(&["a".to_owned(), "b".to_owned()], 0, 4)
        .await
        .unwrap();
    assert_eq!(
        both.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        ["a0", "b0", "a1", "b1"]
    );
    assert!(bodies(&db, "c", 0).await.is_empty());
    finish(db, ledger).await;
}

async fn a_replayed_request_answers_first_and_appends_no_second_event(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ledger = start(&db).await;
    let k = IdempotencyKey::new("tests", "replay-doc");
    let command = || {
        guarded(
            Command::NoOp,
            vec![doc("o5", 0, "{}")],
            vec![event("m5", "o5", "c")],
        )
    };
    let first = ledger.submit(k.clone(), command()).await.unwrap();
    let again = ledger.submit(k.clone(), command()).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(bodies(&db, "m5", 0).await.len(), 1);
    // Judged on a request fingerprint: same request same answer, another request refused.
    let k2 = IdempotencyKey::new("tests", "replay-request");
    let first = ledger
        .submit_request(
            k2.clone(),
            "req-a",
            guarded(Command::NoOp, vec![doc("o6", 0, "{\"t\":1}")], vec![]),
        )
        .await
        .unwrap();
    let again = ledger
        .submit_request(
            k2.clone(),
            "req-a",
            guarded(Command::NoOp, vec![doc("o6", 0, "{\"t\":2}")], vec![]),
        )
        .await
        .unwrap();
    assert_eq!(first, again);
    let err = ledger
        .submit_request(
            k2,
            "req-b",
            guarded(Command::NoOp, vec![doc("o7", 0, "{}")], vec![]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::IdempotencyKeyReused { .. }));
    assert_eq!(
        db.storage
            .document("order", "o6")
            .await
            .unwrap()
            .unwrap()
            .body,
        "{\"t\":1}"
    );
    finish(db, ledger).await;
}

async fn malformed_documents_and_events_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ledger = start(&db).await;
    for command in [
        guarded(Command::NoOp, vec![doc("", 0, "{}")], vec![]),
        guarded(
            Command::NoOp,
            vec![doc("x", 0, "{}"), doc("x", 0, "{}")],
            vec![],
        ),
        guarded(Command::NoOp, vec![doc(&"x".repeat(200), 0, "{}")], vec![]),
        guarded(Command::NoOp, vec![], vec![event("", "k", "b")]),
        guarded(
            Command::NoOp,
            vec![],
            (0..9).map(|_| event("s", "k", "b")).collect(),
        ),
    ] {
        let err = ledger.submit(key(), command).await.unwrap_err();
        assert!(matches!(err, LedgerError::InvalidRequest { .. }), "{err:?}");
    }
    finish(db, ledger).await;
}

both_backends!(multi_thread:
    a_document_is_created_once_then_written_only_at_its_current_version,
    a_conflict_rolls_back_the_posting_and_the_events_of_its_command,
    concurrent_writers_of_one_version_post_exactly_once,
    events_are_read_per_stream_in_order_after_a_cursor,
    a_replayed_request_answers_first_and_appends_no_second_event,
    malformed_documents_and_events_are_refused,
);

//! The audit log of mutating calls (issue 15), black-box over mutual TLS on both back ends:
//! every stored answer — accepted or refused by the state it met — is one hash-chained record
//! (caller, method, request id, outcome, journal transaction) written in its batch's
//! transaction; a retry adds none; `paygate audit export` writes JSON lines with no card or ID
//! number; `paygate audit verify` finds an edited, deleted, swapped or truncated record by its
//! sequence, and the chain verifies after a crash in the middle of a load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    Accounts, Backend, TestApp, assert_refused, card_number, open_class_ii, resident_id, spawn_app,
    spawn_app_crashable, top_up, transfer_req,
};
use sqlx::{AnyConnection, Connection};
use tonic::Code;

const CALLER: &str = "core-banking";
const TRANSFER: &str = "paygate.v1.AccountService/Transfer";

/// The exported log, one JSON value a record.
fn export(app: &TestApp) -> Vec<serde_json::Value> {
    let out = app.dir().join("audit.jsonl");
    let url = app.config.database.url.clone();
    let out_text = out.to_str().expect("utf-8 path").to_owned();
    let (code, text) = app.paygate(&[
        "audit",
        "export",
        "--database-url",
        &url,
        "--out",
        &out_text,
    ]);
    assert_eq!(code, Some(0), "{text}");
    std::fs::read_to_string(&out)
        .expect("exported file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// `paygate audit verify`: exit code and output.
fn verify(app: &TestApp) -> (Option<i32>, String) {
    let url = app.config.database.url.clone();
    app.paygate(&["audit", "verify", "--database-url", &url])
}

#[track_caller]
fn assert_broken(app: &TestApp, at: &str, what: &str) {
    let (code, text) = verify(app);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("BROKEN at seq {at}: {what}")),
        "{text}"
    );
}

async fn db(app: &TestApp) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&app.config.database.url)
        .await
        .expect("database")
}

/// Changes the database behind the gateway's back, as an intruder with database access would.
async fn tamper(app: &TestApp, statements: &[&str]) {
    let mut c = db(app).await;
    for sql in statements {
        sqlx::query(sql).execute(&mut c).await.expect(sql);
    }
}

fn records_of<'a>(log: &'a [serde_json::Value], request_id: &str) -> Vec<&'a serde_json::Value> {
    log.iter()
        .filter(|r| r["request_id"] == request_id)
        .collect()
}

/// Two funded accounts (the first with 100.00), and their client.
async fn two_accounts(app: &TestApp) -> (Accounts, String, String) {
    let mut c = app.accounts(CALLER).await;
    let a = open_class_ii(&mut c, 1).await;
    let b = open_class_ii(&mut c, 2).await;
    top_up(&mut c, &a, "100.00").await;
    (c, a, b)
}

// ----- what is recorded ----------------------------------------------------------------------

both_backends!(a_refusal_of_a_malformed_request_writes_no_record);
async fn a_refusal_of_a_malformed_request_writes_no_record(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut c, a, b) = two_accounts(&app).await;
    let before = export(&app).len();

    let mut garbage = transfer_req(&a, &b, "1.00");
    garbage.amount = None;
    let refused = c.transfer(garbage.clone()).await;

    assert_eq!(refused.unwrap_err().code(), Code::InvalidArgument);
    let log = export(&app);
    assert_eq!(
        log.len(),
        before,
        "an INVALID_ARGUMENT refusal is not a write"
    );
    assert!(records_of(&log, &garbage.request_id).is_empty());
}

both_backends!(accepted_calls_and_a_stored_refusal_each_appear_once_and_a_retry_adds_nothing);
async fn accepted_calls_and_a_stored_refusal_each_appear_once_and_a_retry_adds_nothing(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (mut c, a, b) = two_accounts(&app).await;
    let over = transfer_req(&a, &b, "500.00");
    let refused = c.transfer(over.clone()).await;
    assert_refused(refused, Code::FailedPrecondition, "INSUFFICIENT_FUNDS");
    let ok = transfer_req(&a, &b, "10.00");
    c.transfer(ok.clone()).await.expect("transfer");

    c.transfer(ok.clone()).await.expect("the retry answers");
    let again = c.transfer(over.clone()).await;
    assert_refused(again, Code::FailedPrecondition, "INSUFFICIENT_FUNDS");

    let log = export(&app);
    let accepted = records_of(&log, &ok.request_id);
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0]["caller"], CALLER);
    assert_eq!(accepted[0]["method"], TRANSFER);
    assert_eq!(accepted[0]["outcome"], "OK");
    assert!(
        accepted[0]["transaction"].as_u64().is_some(),
        "{accepted:?}"
    );
    let refusal = records_of(&log, &over.request_id);
    assert_eq!(refusal.len(), 1, "{refusal:?}");
    assert_eq!(refusal[0]["caller"], CALLER);
    assert_eq!(refusal[0]["method"], TRANSFER);
    assert_eq!(refusal[0]["outcome"], "INSUFFICIENT_FUNDS");
    assert!(refusal[0]["transaction"].is_null());
    let seqs: Vec<u64> = log.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=log.len() as u64).collect::<Vec<_>>());
    let (code, text) = verify(&app);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("OK: audit chain intact"), "{text}");
}

both_backends!(no_card_number_or_id_number_appears_in_the_exported_log);
async fn no_card_number_or_id_number_appears_in_the_exported_log(backend: Backend) {
    let app = spawn_app(backend).await;
    let (mut c, a, b) = two_accounts(&app).await;
    c.transfer(transfer_req(&a, &b, "1.00"))
        .await
        .expect("transfer");

    let log = export(&app);

    let text = serde_json::to_string(&log).unwrap();
    assert!(log.len() >= 4, "{text}");
    for n in [1, 2] {
        assert!(!text.contains(&card_number(n)), "card number in {text}");
        assert!(
            !text.contains(&card_number(n)[..12]),
            "card digits in {text}"
        );
        assert!(!text.contains(&resident_id(n)), "ID number in {text}");
    }
    assert!(!text.contains("张三"), "a name in {text}");
}

// ----- what verify finds ---------------------------------------------------------------------

/// An app with a few records; returns the last sequence.
async fn app_with_records(backend: Backend) -> (TestApp, u64) {
    let app = spawn_app(backend).await;
    let (mut c, a, b) = two_accounts(&app).await;
    for _ in 0..3 {
        c.transfer(transfer_req(&a, &b, "1.00"))
            .await
            .expect("transfer");
    }
    let last = export(&app).len() as u64;
    assert!(last >= 6, "{last} records");
    let (code, text) = verify(&app);
    assert_eq!(code, Some(0), "{text}");
    (app, last)
}

both_backends!(an_edited_record_is_found_by_its_sequence);
async fn an_edited_record_is_found_by_its_sequence(backend: Backend) {
    let (app, _) = app_with_records(backend).await;

    tamper(
        &app,
        &["UPDATE audit_log SET outcome = 'INSUFFICIENT_FUNDS' WHERE seq = 3"],
    )
    .await;

    assert_broken(&app, "3", "edited");
}

both_backends!(a_deleted_middle_record_is_found_by_its_sequence);
async fn a_deleted_middle_record_is_found_by_its_sequence(backend: Backend) {
    let (app, _) = app_with_records(backend).await;

    tamper(&app, &["DELETE FROM audit_log WHERE seq = 4"]).await;

    assert_broken(&app, "4", "missing");
}

both_backends!(two_swapped_records_are_found_by_their_sequence);
async fn two_swapped_records_are_found_by_their_sequence(backend: Backend) {
    let (app, _) = app_with_records(backend).await;

    tamper(
        &app,
        &[
            "UPDATE audit_log SET seq = 0 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = 0",
        ],
    )
    .await;

    assert_broken(&app, "2", "reordered");
}

both_backends!(a_deleted_tail_is_found_by_its_sequence);
async fn a_deleted_tail_is_found_by_its_sequence(backend: Backend) {
    let (app, last) = app_with_records(backend).await;

    let sql = format!("DELETE FROM audit_log WHERE seq >= {}", last - 1);
    tamper(&app, &[&sql]).await;

    assert_broken(&app, &(last - 1).to_string(), "truncated");
}

both_backends!(a_forged_record_past_the_chain_head_is_found);
async fn a_forged_record_past_the_chain_head_is_found(backend: Backend) {
    let (app, last) = app_with_records(backend).await;

    let sql = format!(
        "INSERT INTO audit_log (seq, at_ms, caller, method, request_id, outcome, \
         transaction_seq, prev_hash, hash) SELECT seq + 1, at_ms, caller, method, request_id, \
         outcome, transaction_seq, hash, hash FROM audit_log WHERE seq = {last}"
    );
    tamper(&app, &[&sql]).await;

    assert_broken(&app, &(last + 1).to_string(), "head mismatch");
}

// ----- crash ---------------------------------------------------------------------------------

const LOAD_CLIENTS: usize = 8;
const LOAD_CALLS: usize = 200;

both_backends!(the_chain_verifies_after_a_crash_in_the_middle_of_a_load);
async fn the_chain_verifies_after_a_crash_in_the_middle_of_a_load(backend: Backend) {
    let mut app = spawn_app_crashable(backend).await;
    let (c, a, b) = two_accounts(&app).await;
    let mut load = Vec::new();
    for _ in 0..LOAD_CLIENTS {
        let mut c = c.clone();
        let (a, b) = (a.clone(), b.clone());
        load.push(tokio::spawn(async move {
            for _ in 0..LOAD_CALLS {
                if c.transfer(transfer_req(&a, &b, "0.01")).await.is_err() {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    drop(c);
    app.crash().await;
    for task in load {
        let _ = task.await;
    }

    let (mut c, a2, b2) = (app.accounts(CALLER).await, a, b);
    c.transfer(transfer_req(&a2, &b2, "0.01"))
        .await
        .expect("the restarted gateway answers");
    let (code, text) = verify(&app);
    assert_eq!(code, Some(0), "{text}");
    let log = export(&app);
    let mut ids: Vec<&str> = log
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    let n = ids.len();
    let transfers = log.iter().filter(|r| r["method"] == TRANSFER).count();
    assert!(
        (2..=LOAD_CLIENTS * LOAD_CALLS).contains(&transfers),
        "the crash came in the middle of the load: {transfers} transfers recorded"
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "one record per request id");
    let (code, text) = app.ledger_verify();
    assert_eq!(code, Some(0), "{text}");
}

//! Concurrency: many tasks, and two `paygate ledger stress` processes on one database, hammer a
//! few accounts with transfers that would overdraw them if interleaved wrongly. Afterwards
//! `verify` is clean, no balance is negative and money is conserved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{process::Stdio, sync::Arc};

use common::ledger::*;
use paygate::ledger::{LedgerError, verify};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::process::Command;

const ACCOUNTS: usize = 4;
const FUNDING_MINOR: i64 = 10_000;

async fn many_tasks_never_overdraw(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ledger = start(&db).await;
    let source = internal(&ledger).await;
    let mut ids = Vec::new();
    for _ in 0..ACCOUNTS {
        let c = customer(&ledger, 0).await;
        fund(&ledger, source, c, FUNDING_MINOR).await;
        ids.push(c);
    }
    let ids = Arc::new(ids);
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            let (ledger, ids) = (ledger.clone(), ids.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(t);
                let (mut ok, mut refused) = (0u32, 0u32);
                for _ in 0..40 {
                    let from = rng.random_range(0..ACCOUNTS);
                    let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
                    let minor = rng.random_range(FUNDING_MINOR / 4..=FUNDING_MINOR * 3 / 4);
                    match ledger
                        .post(key(), transfer(ids[from], ids[to], minor))
                        .await
                    {
                        Ok(_) => ok += 1,
                        Err(LedgerError::InsufficientFunds { .. }) => refused += 1,
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                (ok, refused)
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (o, r) = t.await.unwrap();
        ok += o;
        refused += r;
    }
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
    let mut total = 0i128;
    for id in ids.iter() {
        let p = posted(&ledger, *id).await;
        assert!(p >= 0, "account {id} went negative: {p}");
        total += p;
    }
    assert_eq!(total, i128::from(FUNDING_MINOR) * ACCOUNTS as i128);
    ledger.shutdown().await;
    let report = verify(db.storage.as_ref()).await.unwrap();
    assert!(report.is_clean(), "{report}");
    db.cleanup().await;
}

fn paygate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paygate"));
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

async fn two_processes_never_overdraw(backend: Backend) {
    let db = TestDb::new(backend).await;
    let url = db.url.clone();
    let run_stress = || {
        paygate()
            .args([
                "ledger",
                "stress",
                "--scratch-database",
                "--force",
                "--database-url",
                &url,
                "--accounts",
                "4",
                "--transfers",
                "1500",
                "--concurrency",
                "32",
                "--funding-minor",
                "10000",
            ])
            .output()
    };
    let (a, b) = tokio::join!(run_stress(), run_stress());
    for out in [a.unwrap(), b.unwrap()] {
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "stress failed: {text}");
        assert!(text.contains("0 failed"), "{text}");
    }
    let out = paygate()
        .args(["ledger", "verify", "--database-url", &url])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "verify failed: {text}");
    assert!(text.contains("OK"), "{text}");
    // Both processes shared one setup (idempotent keys): 1 source + 4 customers, each funded once.
    let mut after = 0;
    let mut customers = 0;
    let mut total = 0i128;
    loop {
        let page = db.storage.accounts_page(after, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.0.id.0;
        for (a, b) in page {
            if a.kind == "customer" {
                customers += 1;
                let p = b.posted_minor(a.normal_side);
                assert!(p >= 0, "account {} went negative: {p}", a.id);
                total += p;
            }
        }
    }
    assert_eq!(customers, 4);
    assert_eq!(total, 4 * 10_000);
    db.cleanup().await;
}

both_backends!(multi_thread: many_tasks_never_overdraw, two_processes_never_overdraw);

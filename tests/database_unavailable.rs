//! When the database goes away under the gateway (a restart, a failover that cuts every
//! connection), a call answers UNAVAILABLE with a stable reason — retryable, never INTERNAL —
//! and the same request id retried afterwards is applied exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, book, open_class_ii, spawn_app, top_up, transfer_req};
use sqlx::Connection;
use tonic::Code;

/// Cuts every connection the gateway holds to its database, as a restart of PostgreSQL would.
async fn cut_connections(url: &str) {
    let mut admin = sqlx::PgConnection::connect(url).await.expect("admin");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await
    .expect("terminate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_while_the_database_is_cut_off_is_retryable_and_lands_once() {
    if !common::postgres_available().await {
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let mut client = app.accounts("core-banking").await;
    let payer = open_class_ii(&mut client, 1).await;
    let payee = open_class_ii(&mut client, 2).await;
    top_up(&mut client, &payer, "10.00").await;

    cut_connections(&app.config.database.url).await;
    let request = transfer_req(&payer, &payee, "1.00");
    let mut answers = Vec::new();
    for _ in 0..20 {
        match client.transfer(request.clone()).await {
            Ok(done) => {
                answers.push(Ok(done.into_inner().transaction_id));
                break;
            }
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Code::Unavailable,
                    "a lost database is retryable, never INTERNAL: {status:?}"
                );
                assert_eq!(common::reason_of(&status), "DATABASE_UNAVAILABLE");
                answers.push(Err(status.code()));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    let Some(Ok(transaction)) = answers.last().cloned() else {
        panic!("the retries never went through: {answers:?}");
    };
    // The same request id once more: the same transaction, not a second one.
    let again = client.transfer(request).await.expect("replay").into_inner();
    assert_eq!(again.transaction_id, transaction);
    assert_eq!(book(&mut client, &payer).await, "9.00");
    assert_eq!(book(&mut client, &payee).await, "1.00");
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "ledger verify: {out}");
}

//! libpq's multi-host URL (`h1:p1,h2:p2/db?target_session_attrs=read-write`): the gateway
//! connects to the first host that takes writes, a URL that does not parse says so (never
//! printing its password), and a database that turns read-only under the gateway (a demoted
//! primary, SQLSTATE 25006) answers UNAVAILABLE and is served again without a restart.
//! PostgreSQL only: a SQLite URL names a file, not hosts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, book, open_class_ii, spawn_app, spawn_app_with, top_up, transfer_req};
use paygate::{config::Config, server::Gateway};
use sqlx::Connection;
use tonic::Code;

/// `url` (one host) as a host list whose first host is a port nothing listens on.
fn behind_a_dead_host(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let at = rest.find('@').map_or(0, |i| i + 1);
    let sep = if rest.contains('?') { '&' } else { '?' };
    format!(
        "{scheme}://{}127.0.0.1:1,{}{sep}target_session_attrs=read-write",
        &rest[..at],
        &rest[at..]
    )
}

#[tokio::test]
async fn a_url_that_does_not_parse_is_refused_with_its_reason_and_without_its_password() {
    let mut config = Config::default();
    config.database.url = "postgres://paygate:s3cret@db1:5432,db2:notaport/paygate".to_owned();
    let refused = config
        .validate()
        .expect_err("a bad port is a configuration error");
    let text = refused.to_string();
    assert!(
        text.contains("did not parse") && text.contains("port"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "the password leaked: {text}");

    let e = Gateway::bind(config)
        .await
        .err()
        .expect("the gateway does not start");
    let text = e.to_string();
    assert!(text.contains("did not parse"), "the cause is named: {text}");
    assert!(!text.contains("s3cret"), "the password leaked: {text}");
}

#[tokio::test]
async fn a_session_target_other_than_read_write_or_any_is_a_configuration_error() {
    let mut config = Config::default();
    config.database.url =
        "postgres://postgres@127.0.0.1:5432/db?target_session_attrs=prefer-standby".to_owned();
    let text = config.validate().expect_err("refused").to_string();
    assert!(
        text.contains("prefer-standby") && text.contains("read-write"),
        "{text}"
    );
}

#[tokio::test]
async fn a_host_list_with_no_host_taking_writes_names_each_host_at_start() {
    let mut config = Config::default();
    config.database.url =
        "postgres://postgres:pw@127.0.0.1:1,127.0.0.1:2/db?target_session_attrs=read-write"
            .to_owned();
    config.database.acquire_timeout_ms = 2_000;
    let text = Gateway::bind(config)
        .await
        .err()
        .expect("the gateway does not start")
        .to_string();
    assert!(
        text.contains("127.0.0.1:1") && text.contains("127.0.0.1:2"),
        "every host's reason is named: {text}"
    );
    assert!(!text.contains(":pw@"), "the password leaked: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_first_host_is_dead_starts_on_the_second_and_serves() {
    if !common::postgres_available().await {
        return;
    }
    let app = spawn_app_with(Backend::Postgres, |config| {
        config.database.url = behind_a_dead_host(&config.database.url);
    })
    .await;
    assert!(app.config.database.url.contains("127.0.0.1:1,"));
    let mut client = app.accounts("core-banking").await;
    let payer = open_class_ii(&mut client, 1).await;
    let payee = open_class_ii(&mut client, 2).await;
    top_up(&mut client, &payer, "10.00").await;
    client
        .transfer(transfer_req(&payer, &payee, "2.50"))
        .await
        .expect("a transfer through the second host");
    assert_eq!(book(&mut client, &payer).await, "7.50");
    assert_eq!(book(&mut client, &payee).await, "2.50");
    // The command line takes the same URL.
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "ledger verify: {out}");
}

/// Makes every new session of the database `name` read-only (or writable again) and cuts the
/// sessions open on it now, as a primary demoted to a standby would (from the admin database).
async fn demote(name: &str, read_only: bool) {
    let mut admin = sqlx::PgConnection::connect(&common::db::pg_admin_url())
        .await
        .expect("admin");
    let setting = if read_only { "on" } else { "off" };
    sqlx::raw_sql(&format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = {setting}"
    ))
    .execute(&mut admin)
    .await
    .expect("alter database");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .execute(&mut admin)
    .await
    .expect("terminate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_turned_read_only_answers_unavailable_then_serves_again_without_a_restart() {
    if !common::postgres_available().await {
        return;
    }
    let app = spawn_app_with(Backend::Postgres, |config| {
        config.database.url = format!("{}?target_session_attrs=read-write", config.database.url);
        config.database.acquire_timeout_ms = 1_000;
    })
    .await;
    let url = app.config.database.url.split('?').next().unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let mut client = app.accounts("core-banking").await;
    let payer = open_class_ii(&mut client, 1).await;
    let payee = open_class_ii(&mut client, 2).await;
    top_up(&mut client, &payer, "10.00").await;

    demote(&name, true).await;
    let request = transfer_req(&payer, &payee, "1.00");
    let status = client
        .transfer(request.clone())
        .await
        .expect_err("a read-only database takes no transfer");
    assert_eq!(
        status.code(),
        Code::Unavailable,
        "retryable, never INTERNAL: {status:?}"
    );
    assert_eq!(common::reason_of(&status), "DATABASE_UNAVAILABLE");

    demote(&name, false).await;
    let mut answer = None;
    for _ in 0..50 {
        match client.transfer(request.clone()).await {
            Ok(done) => {
                answer = Some(done.into_inner().transaction_id);
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    let transaction = answer.expect("served again once the database takes writes");
    let again = client.transfer(request).await.expect("replay").into_inner();
    assert_eq!(again.transaction_id, transaction);
    assert_eq!(book(&mut client, &payer).await, "9.00");
    let (code, out) = app.ledger_verify();
    assert_eq!(code, Some(0), "ledger verify: {out}");
}

#[tokio::test]
async fn a_sqlite_gateway_is_untouched_by_host_lists() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.accounts("core-banking").await;
    let payer = open_class_ii(&mut client, 1).await;
    top_up(&mut client, &payer, "1.00").await;
    assert_eq!(book(&mut client, &payer).await, "1.00");
}

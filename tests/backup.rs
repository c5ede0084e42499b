//! `paygate backup`: an online copy of the SQLite database, taken while the gateway serves and
//! money moves, restores to a ledger that verifies and shows every balance acknowledged before
//! the backup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, TestApp, book, open_class_ii, spawn_app, top_up, transfer_req};
use paygate::server::Gateway;

/// The book balances (minor units) of `accounts` as a gateway serving the database at `url`
/// (with the app's configuration and PKI otherwise) answers them.
async fn books_served_from<const N: usize>(
    app: &TestApp,
    url: &str,
    accounts: [&str; N],
) -> [i64; N] {
    let mut config = app.config.clone();
    config.database.url = url.to_owned();
    let restored = Gateway::bind(config).await.expect("serves from the copy");
    let port = restored.local_addr().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(restored.run(async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(app.client_tls(Some("core-banking")))
        .unwrap()
        .connect()
        .await
        .expect("connects to the gateway on the copy");
    let mut r = paygate::grpc::pb::account_service_client::AccountServiceClient::new(channel);
    let mut books = [0; N];
    for (i, account) in accounts.iter().enumerate() {
        books[i] = common::yields::minor(&book(&mut r, account).await);
    }
    drop(r);
    let _ = stop.send(());
    server
        .await
        .unwrap()
        .expect("the gateway on the copy stops");
    books
}

/// Two Class II accounts: a topped up with 500.00, then 120.00 transferred to b.
async fn two_accounts(app: &TestApp) -> (common::Accounts, String, String) {
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let b = open_class_ii(&mut c, 2).await;
    top_up(&mut c, &a, "500.00").await;
    c.transfer(transfer_req(&a, &b, "120.00"))
        .await
        .expect("transfer");
    (c, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_backup_restores_to_a_ledger_that_verifies() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mut c, a, b) = two_accounts(&app).await;
    // Money keeps moving while the backup runs.
    let mut busy = c.clone();
    let (from, to) = (b.clone(), a.clone());
    let traffic = tokio::spawn(async move {
        for _ in 0..40 {
            busy.transfer(transfer_req(&from, &to, "0.01"))
                .await
                .expect("transfer during the backup");
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("backup.db");

    let (code, out) = app.paygate(&[
        "backup",
        "--database-url",
        &app.config.database.url,
        "--to",
        copy.to_str().unwrap(),
    ]);
    traffic.await.expect("traffic");

    assert_eq!(code, Some(0), "{out}");
    let copy_url = format!("sqlite://{}", copy.display());
    let (code, out) = app.paygate(&["ledger", "verify", "--database-url", &copy_url]);
    assert_eq!(code, Some(0), "the backup verifies: {out}");
    // Served from the backup: the two accounts hold the 500.00, moved by the transfers the
    // snapshot holds (0 to 40 of them), and nothing else.
    let [in_a, in_b] = books_served_from(&app, &copy_url, [&a, &b]).await;
    assert_eq!(in_a + in_b, 50_000, "a {in_a} + b {in_b}");
    assert!((38_000..=38_040).contains(&in_a), "a holds {in_a}");
    assert_eq!(
        book(&mut c, &a).await,
        "380.40",
        "the original, after all traffic"
    );
}

#[tokio::test]
async fn a_backup_refuses_an_existing_file_and_postgres() {
    let app = spawn_app(Backend::Sqlite).await;
    let existing = app.dir().join("taken.db");
    std::fs::write(&existing, b"x").unwrap();

    let (code, out) = app.paygate(&[
        "backup",
        "--database-url",
        &app.config.database.url,
        "--to",
        existing.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("exists"), "{out}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"x", "left untouched");

    let (code, out) = app.paygate(&[
        "backup",
        "--database-url",
        "postgres://postgres@127.0.0.1:5432/test",
        "--to",
        app.dir().join("pg.db").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("pg_basebackup"), "{out}");
}

/// PostgreSQL is backed up with its own tools; the documented logical path (pg_dump, then
/// pg_restore into an empty database) gives a ledger that verifies and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_dump_restores_to_a_ledger_that_verifies() {
    if !common::postgres_available().await {
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let (_, a, b) = two_accounts(&app).await;
    let dump = app.dir().join("paygate.dump");
    let out = std::process::Command::new("pg_dump")
        .args(["--format=custom", "--file", dump.to_str().unwrap()])
        .arg(&app.config.database.url)
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = common::db::FreshDatabase::new(Backend::Postgres).await;

    let out = std::process::Command::new("pg_restore")
        .args([
            "--no-owner",
            "--dbname",
            &target.url,
            dump.to_str().unwrap(),
        ])
        .output()
        .expect("pg_restore runs");

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, text) = app.paygate(&["ledger", "verify", "--database-url", &target.url]);
    assert_eq!(code, Some(0), "the restored database verifies: {text}");
    assert_eq!(
        books_served_from(&app, &target.url, [&a, &b]).await,
        [38_000, 12_000]
    );
}

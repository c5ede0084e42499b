//! Crash safety of the account service: the real `paygate` binary on one database, killed with
//! SIGKILL at random moments while concurrent clients open, freeze, unfreeze and close accounts;
//! restarted on the same database while the clients retry every unanswered request with its own
//! request id. Afterwards every account the ledger has has its profile, ledger and profile agree
//! on the status, every answered request answers the same on retry, and nothing exists that no
//! answer names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{
    client_tls,
    process::{kill, ledger_verify, retryable, start_serve},
};
use paygate::{
    grpc::pb::{self, account_service_client::AccountServiceClient},
    tls::DevPkiLayout,
};
use sqlx::Row;
use tonic::{
    Status,
    transport::{ClientTlsConfig, Endpoint},
};

const CLIENTS: usize = 8;
const ACCOUNTS_PER_CLIENT: usize = 10;
const KILLS: usize = 4;
/// How long one request may keep being retried before the test gives up.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// Where the server listens now; `None` while it is down.
type Port = Arc<Mutex<Option<String>>>;

/// One request of a client, with its own request id.
#[derive(Debug, Clone)]
enum Op {
    Open {
        request_id: String,
        owner: String,
    },
    Freeze {
        request_id: String,
        account: String,
        mode: pb::FreezeMode,
        reason: String,
    },
    Unfreeze {
        request_id: String,
        account: String,
    },
    Close {
        request_id: String,
        account: String,
    },
}

impl Op {
    fn request_id(&self) -> &str {
        match self {
            Op::Open { request_id, .. }
            | Op::Freeze { request_id, .. }
            | Op::Unfreeze { request_id, .. }
            | Op::Close { request_id, .. } => request_id,
        }
    }
}

async fn try_call(port: &str, tls: &ClientTlsConfig, op: &Op) -> Result<pb::Account, Status> {
    let channel = Endpoint::from_shared(format!("https://localhost:{port}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .tls_config(tls.clone())
        .expect("tls")
        .connect()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut client = AccountServiceClient::new(channel);
    let account = match op.clone() {
        Op::Open { request_id, owner } => {
            client
                .open_account(pb::OpenAccountRequest {
                    request_id,
                    kind: pb::AccountKind::MerchantSettlement as i32,
                    owner_id: owner.clone(),
                    display_name: owner,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .account
        }
        Op::Freeze {
            request_id,
            account,
            mode,
            reason,
        } => {
            client
                .freeze_account(pb::FreezeAccountRequest {
                    request_id,
                    account_id: account,
                    mode: mode as i32,
                    reason,
                })
                .await?
                .into_inner()
                .account
        }
        Op::Unfreeze {
            request_id,
            account,
        } => {
            client
                .unfreeze_account(pb::UnfreezeAccountRequest {
                    request_id,
                    account_id: account,
                    mode: pb::FreezeMode::Both as i32,
                    reason: "lifted".to_owned(),
                })
                .await?
                .into_inner()
                .account
        }
        Op::Close {
            request_id,
            account,
        } => {
            client
                .close_account(pb::CloseAccountRequest {
                    request_id,
                    account_id: account,
                    reason: "crash test".to_owned(),
                })
                .await?
                .into_inner()
                .account
        }
    };
    Ok(account.expect("an answer carries the account"))
}

/// Sends `op` until it is answered, retrying with the same request id across crashes.
async fn call(port: &Port, tls: &ClientTlsConfig, op: &Op, retries: &AtomicUsize) -> pb::Account {
    let deadline = Instant::now() + RETRY_FOR;
    loop {
        assert!(Instant::now() < deadline, "{op:?} never answered");
        let now = port.lock().unwrap().clone();
        if let Some(now) = now {
            match try_call(&now, tls, op).await {
                Ok(account) => return account,
                Err(status) if retryable(&status) => {
                    retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(status) => panic!("{op:?} refused: {status:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// The first answer of every request, by request id, with the request.
type Answers = Arc<Mutex<BTreeMap<String, (Op, pb::Account)>>>;

/// One client's work: open accounts, freeze, unfreeze, then close the even ones and freeze the
/// odd ones again (so both end states are checked).
async fn client(
    c: usize,
    port: Port,
    tls: ClientTlsConfig,
    answers: Answers,
    retries: Arc<AtomicUsize>,
) {
    let owner = format!("crash-owner-{c}");
    for k in 0..ACCOUNTS_PER_CLIENT {
        let rid = |step: &str| format!("crash-{c}-{k}-{step}");
        let mut ops = vec![Op::Open {
            request_id: rid("open"),
            owner: owner.clone(),
        }];
        let mut account = String::new();
        for step in 0..4 {
            let op = match step {
                0 => ops[0].clone(),
                1 => Op::Freeze {
                    request_id: rid("freeze"),
                    account: account.clone(),
                    mode: pb::FreezeMode::Both,
                    reason: format!("review {c}/{k}"),
                },
                2 => Op::Unfreeze {
                    request_id: rid("unfreeze"),
                    account: account.clone(),
                },
                _ if k % 2 == 0 => Op::Close {
                    request_id: rid("close"),
                    account: account.clone(),
                },
                _ => Op::Freeze {
                    request_id: rid("refreeze"),
                    account: account.clone(),
                    mode: pb::FreezeMode::NoDebit,
                    reason: format!("final {c}/{k}"),
                },
            };
            let answer = call(&port, &tls, &op, &retries).await;
            account.clone_from(&answer.account_id);
            answers
                .lock()
                .unwrap()
                .insert(op.request_id().to_owned(), (op.clone(), answer));
            ops.push(op);
            tokio::time::sleep(Duration::from_millis(rand::random_range(5..30))).await;
        }
    }
}

/// Every ledger account the account service opened (its kinds: the yield service keeps ledger
/// accounts of its own, without profiles) has a profile, and the ledger's status agrees with the
/// profile's close time and freeze reason — read straight from the database, so a profile
/// written outside the account's batch (and lost to a crash) shows up here even if no answer
/// mentions it.
async fn check_rows(database_url: &str) -> usize {
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(database_url)
        .await
        .expect("database");
    let rows = sqlx::query(
        "SELECT a.id, a.status, p.account_id, p.closed_at_ms, p.freeze_reason \
         FROM accounts a LEFT JOIN account_profiles p ON p.account_id = a.id \
         WHERE a.kind IN ('CLASS_II', 'CLASS_III', 'MERCHANT_SETTLEMENT', 'PLATFORM_MASTER', \
         'PLATFORM_SUB', 'BANK_INTERNAL')",
    )
    .fetch_all(&mut db)
    .await
    .expect("accounts");
    for row in &rows {
        let id: i64 = row.get(0);
        let status: String = row.get(1);
        let profile: Option<i64> = row.get(2);
        let closed_at: Option<i64> = row.get(3);
        let reason: Option<String> = row.get(4);
        assert!(profile.is_some(), "ledger account {id} has no profile");
        assert_eq!(
            status == "CLOSED",
            closed_at.is_some(),
            "account {id}: {status} vs close time {closed_at:?}"
        );
        assert_eq!(
            status.starts_with("FROZEN"),
            !reason.unwrap_or_default().is_empty(),
            "account {id}: {status} vs freeze reason"
        );
    }
    rows.len()
}

async fn run(dir: PathBuf, database_url: String) {
    let started = Instant::now();
    let (child, first_port) = start_serve(&dir, &database_url, &[]);
    let pki = DevPkiLayout::new(dir.join("certs"));
    let tls = client_tls(&pki, &pki, Some("core-banking"));
    let port: Port = Arc::new(Mutex::new(Some(first_port)));
    let answers: Answers = Arc::default();
    let retries = Arc::new(AtomicUsize::new(0));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            tokio::spawn(client(
                c,
                port.clone(),
                tls.clone(),
                answers.clone(),
                retries.clone(),
            ))
        })
        .collect();
    // The killer: SIGKILL at random moments, restart on the same database.
    let mut child = child;
    let mut kills_during_work = 0;
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rand::random_range(100..300))).await;
        if clients.iter().all(|c| c.is_finished()) {
            break;
        }
        *port.lock().unwrap() = None;
        kill(&mut child);
        kills_during_work += 1;
        let (dir2, url2) = (dir.clone(), database_url.clone());
        let (next, next_port) = tokio::task::spawn_blocking(move || start_serve(&dir2, &url2, &[]))
            .await
            .expect("restart");
        child = next;
        *port.lock().unwrap() = Some(next_port);
    }
    for c in clients {
        c.await.expect("client");
    }
    let answers = answers.lock().unwrap().clone();
    let operations = answers.len();
    assert_eq!(operations, CLIENTS * ACCOUNTS_PER_CLIENT * 4);

    // Every request answers the same on retry.
    let no_retries = AtomicUsize::new(0);
    for (op, first) in answers.values() {
        let again = call(&port, &tls, op, &no_retries).await;
        assert_eq!(again.account_id, first.account_id, "{op:?}");
        assert_eq!(again.owner_id, first.owner_id, "{op:?}");
        if !matches!(op, Op::Open { .. }) {
            assert_eq!(again.status, first.status, "{op:?}");
            assert_eq!(again.freeze_mode, first.freeze_mode, "{op:?}");
            assert_eq!(again.freeze_reason, first.freeze_reason, "{op:?}");
        }
    }

    // What exists is exactly what the answers name, in the state the last answer left it.
    let mut opened: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (op, answer) in answers.values() {
        if let Op::Open { owner, .. } = op {
            opened
                .entry(owner.clone())
                .or_default()
                .insert(answer.account_id.clone());
        }
    }
    let channel = Endpoint::from_shared(format!(
        "https://localhost:{}",
        port.lock().unwrap().clone().expect("up")
    ))
    .expect("endpoint")
    .tls_config(tls.clone())
    .expect("tls")
    .connect()
    .await
    .expect("connects");
    let mut accounts = AccountServiceClient::new(channel);
    for (owner, ids) in &opened {
        let listed = accounts
            .list_accounts(pb::ListAccountsRequest {
                filter: Some(pb::list_accounts_request::Filter::OwnerId(owner.clone())),
                include_closed: true,
                page_size: 100,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        let listed: BTreeSet<String> = listed.accounts.into_iter().map(|a| a.account_id).collect();
        assert_eq!(&listed, ids, "accounts of {owner}");
        assert_eq!(ids.len(), ACCOUNTS_PER_CLIENT);
    }
    for (op, _) in answers.values() {
        let (id, closed) = match op {
            Op::Close { account, .. } => (account, true),
            Op::Freeze { account, mode, .. } if *mode == pb::FreezeMode::NoDebit => {
                (account, false)
            }
            _ => continue,
        };
        let now = accounts
            .get_account(pb::GetAccountRequest {
                account_id: id.clone(),
            })
            .await
            .expect("get")
            .into_inner()
            .account
            .expect("account");
        if closed {
            assert_eq!(now.status, pb::AccountStatus::Closed as i32, "{id}");
            assert!(now.close_time.is_some(), "{id} closed without a close time");
        } else {
            assert_eq!(now.status, pb::AccountStatus::Active as i32, "{id}");
            assert_eq!(now.freeze_mode, pb::FreezeMode::NoDebit as i32, "{id}");
            assert!(now.freeze_reason.starts_with("final "), "{id}: {now:?}");
            assert!(now.close_time.is_none(), "{id}");
        }
    }
    drop(accounts);
    kill(&mut child);

    ledger_verify(&dir, &database_url);
    let rows = check_rows(&database_url).await;
    // The clients' accounts and the bank's internal ones (fee income, on-us clearing
    // suspense, fund settlement, rounding: the default routes everything on-us); nothing else.
    assert_eq!(rows, CLIENTS * ACCOUNTS_PER_CLIENT + 4);
    let retried = retries.load(Ordering::Relaxed);
    eprintln!(
        "account_crash: {kills_during_work} kills, {operations} operations, {retried} retried sends, \
         {rows} ledger accounts, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        kills_during_work >= 3,
        "only {kills_during_work} kills landed during the work"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_account_lifecycles_loses_nothing_answered_and_leaves_nothing_half_done_on_sqlite()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/crash.db", dir.path().display());
    run(dir.path().to_path_buf(), url).await;
}

/// The PostgreSQL server to use (`PAYGATE_TEST_PG_URL` overrides).
fn pg_admin_url() -> String {
    std::env::var("PAYGATE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `admin` with its database name replaced by `name`.
fn pg_url_of(admin: &str, name: &str) -> String {
    let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = base[scheme_end..]
        .find('/')
        .map_or(base, |i| &base[..scheme_end + i]);
    if query.is_empty() {
        format!("{root}/{name}")
    } else {
        format!("{root}/{name}?{query}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_account_lifecycles_loses_nothing_answered_and_leaves_nothing_half_done_on_postgres()
 {
    use sqlx::Connection as _;
    let admin = pg_admin_url();
    let required = std::env::var_os("CI").is_some()
        || std::env::var("PAYGATE_TEST_PG").as_deref() == Ok("required");
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(conn) => conn,
        Err(e) if required => panic!("PostgreSQL at {admin} is required here: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: PostgreSQL at {admin} is unreachable ({e})");
            return;
        }
    };
    let name = format!("crash_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = pg_url_of(&admin, &name);
    let outcome = tokio::spawn(run(dir.path().to_path_buf(), url)).await;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

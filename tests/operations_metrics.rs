//! The metrics an operator alerts on, scraped from the admin listener of a real gateway after
//! real traffic over mutual TLS: the process, the build, the ledger's batches and queue, the
//! database pool, streams and limit refusals by caller, and TLS handshake failures by reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, client_tls, health_check, open_class_ii, open_stream, spawn_app_with, top_up,
    transfer_req,
};
use paygate::tls::{DevPkiLayout, generate_dev_pki};

/// The value of the one sample named exactly `sample` (name and labels) in a scrape.
fn value(scrape: &str, sample: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let rest = line.strip_prefix(sample)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

fn value_of(scrape: &str, sample: &str) -> f64 {
    value(scrape, sample).unwrap_or_else(|| panic!("no sample {sample} in:\n{scrape}"))
}

#[tokio::test]
async fn the_process_and_build_figures_are_there_from_the_first_scrape() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;

    let (_, scrape) = app.admin_get("/metrics").await;

    assert!(value_of(&scrape, "paygate_process_resident_memory_bytes") > 1_000_000.0);
    assert!(value_of(&scrape, "paygate_process_open_fds") >= 3.0);
    assert!(
        value_of(&scrape, "paygate_process_max_fds")
            >= value_of(&scrape, "paygate_process_open_fds")
    );
    assert!(value_of(&scrape, "paygate_process_threads") >= 1.0);
    assert!(value_of(&scrape, "paygate_process_cpu_seconds_total") > 0.0);
    let build = format!(
        "paygate_build_info{{version=\"{}\",git_commit=",
        env!("CARGO_PKG_VERSION")
    );
    assert!(scrape.contains(&build), "{scrape}");
    assert!(value_of(&scrape, "paygate_db_pool_connections") >= 1.0);
    assert!(
        value_of(&scrape, "paygate_db_pool_idle_connections")
            <= value_of(&scrape, "paygate_db_pool_connections")
    );
    assert_eq!(value_of(&scrape, "paygate_ledger_queue_depth"), 0.0);
}

#[tokio::test]
async fn after_a_transfer_the_ledger_batches_and_idempotency_records_show() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let mut accounts = app.accounts("core-banking").await;
    let (from, to) = (
        open_class_ii(&mut accounts, 1).await,
        open_class_ii(&mut accounts, 2).await,
    );
    top_up(&mut accounts, &from, "100.00").await;

    accounts
        .transfer(transfer_req(&from, &to, "25.00"))
        .await
        .expect("transfer");
    let (_, scrape) = app.admin_get("/metrics").await;

    let batches = value_of(&scrape, "paygate_ledger_batch_size_count");
    assert!(batches >= 1.0, "{scrape}");
    assert!(value_of(&scrape, "paygate_ledger_batch_size_sum") >= batches);
    assert_eq!(
        value_of(
            &scrape,
            "paygate_ledger_batch_commit_duration_seconds_count"
        ),
        batches
    );
    assert!(value_of(&scrape, "paygate_ledger_batch_wait_duration_seconds_count") >= batches);
    assert!(
        value_of(&scrape, "paygate_ledger_idempotency_keys") >= 1.0,
        "{scrape}"
    );
}

#[tokio::test]
async fn open_streams_and_limit_refusals_are_counted_by_caller() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        let mobile = config
            .callers
            .iter_mut()
            .find(|c| c.name == "mobile-backend")
            .expect("sample caller");
        mobile.rate_per_s = Some(1);
        mobile.burst = Some(1);
    })
    .await;
    let watch = open_stream(app.channel("core-banking").await).await;
    let mut mobile = app.accounts("mobile-backend").await;
    let mut refusals = 0;
    for n in 0..3 {
        if mobile
            .get_balance(paygate::grpc::pb::GetBalanceRequest {
                account_id: format!("no-such-account-{n}"),
            })
            .await
            .is_err_and(|s| s.code() == tonic::Code::ResourceExhausted)
        {
            refusals += 1;
        }
    }

    let (_, scrape) = app.admin_get("/metrics").await;

    assert_eq!(
        value_of(
            &scrape,
            r#"paygate_grpc_caller_open_streams{caller="core-banking"}"#
        ),
        1.0
    );
    assert!(refusals >= 1);
    assert_eq!(
        value_of(
            &scrape,
            r#"paygate_grpc_caller_refused_total{caller="mobile-backend",reason="RATE_LIMITED"}"#
        ),
        f64::from(refusals)
    );
    drop(watch);
}

#[tokio::test]
async fn a_handshake_with_a_forged_certificate_is_counted_by_its_reason() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let forger_dir = tempfile::tempdir().expect("tempdir");
    let forger = DevPkiLayout::new(forger_dir.path());
    generate_dev_pki(&forger, "forged CA", &["core-banking"], false).expect("forged PKI");

    let tls = client_tls(&app.pki, &forger, Some("core-banking"));
    let refused = match app.try_channel(tls).await {
        Err(_) => true,
        Ok(channel) => health_check(channel, "").await.is_err(),
    };
    let (_, scrape) = app.admin_get("/metrics").await;

    assert!(refused);
    assert!(
        value_of(
            &scrape,
            r#"paygate_tls_handshake_failures_total{reason="unknown_issuer"}"#
        ) >= 1.0,
        "{scrape}"
    );
}

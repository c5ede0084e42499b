//! Calls a clearing network did not answer, end to end: the gateway routes bound-card
//! movements to NetsUnion on a real `paygate netsim` process, the simulator books them but
//! never answers, and the recovery worker settles every one from the network's books — posted
//! when the network booked it, voided when it never received it, presumed failed past the
//! bound — including after the gateway crashed with them PROCESSING. A retry under the same
//! request id answers what the worker settled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Accounts, Backend, balance, netsim::Sim, open_class_ii, request_id, spawn_app_crashable_with,
};
use paygate::{
    clearing::nets_union,
    config::Config,
    grpc::pb::{ClearingNetwork, ProcessingStatus, TopUpRequest, TopUpResponse, WithdrawRequest},
};

/// The recovery settings of these tests: a query 600 ms after the call (the network's timeout
/// is 300 ms), every 100 ms, presumed failed 30 s after it was sent.
const FIRST_QUERY_AFTER_MS: u64 = 600;
const BOUND_MS: u64 = 30_000;

/// A simulator whose NetsUnion books every movement and answers none (queries it answers).
const BOOKS_BUT_NEVER_ANSWERS: &str =
    "seed = 11\n[[networks]]\nnetwork = \"NETS_UNION\"\nno_answer_rate = 1.0\n";

/// Routes every quick-pay movement to NetsUnion on `sim`, with this file's recovery settings.
fn routed_to(sim: &Sim) -> impl FnOnce(&mut Config) + use<> {
    sim.routing_quick_pay_recovered(nets_union::NETWORK, FIRST_QUERY_AFTER_MS)
}

fn top_up_req(id: &str, account: &str, amount: &str) -> TopUpRequest {
    TopUpRequest {
        request_id: id.to_owned(),
        account_id: account.to_owned(),
        amount: Some(common::cny(amount)),
        memo: String::new(),
    }
}

async fn top_up(client: &mut Accounts, req: TopUpRequest) -> TopUpResponse {
    client
        .top_up(req)
        .await
        .expect("top-up accepted")
        .into_inner()
}

/// Polls until `account`'s available balance is `amount` (at most 20 s).
async fn until_available(client: &mut Accounts, account: &str, amount: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view = balance(client, account).await;
        if view.available.as_ref().map(|m| m.amount.as_str()) == Some(amount) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{account} never reached {amount} available: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends!(an_on_us_movement_is_answered_at_once_and_leaves_no_call_to_recover);
async fn an_on_us_movement_is_answered_at_once_and_leaves_no_call_to_recover(backend: Backend) {
    let app = common::spawn_app(backend).await;
    let mut client = app.accounts("core-banking").await;
    let account = open_class_ii(&mut client, 4).await;
    let id = request_id("topup");
    let first = top_up(&mut client, top_up_req(&id, &account, "5.00")).await;
    assert_eq!(first.status, ProcessingStatus::Succeeded as i32);
    assert_eq!(first.network, ClearingNetwork::OnUs as i32);
    let again = top_up(&mut client, top_up_req(&id, &account, "5.00")).await;
    assert_eq!(again, first, "the replay answers the first answer");
    sqlx::any::install_default_drivers();
    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.config.database.url)
        .await
        .unwrap();
    let (calls,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM documents WHERE kind IN ('outbound', 'outbound_queue')",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(calls, 0, "the bank's own book is not a call to recover");
}

both_backends!(
    multi_thread: a_top_up_the_network_booked_but_never_answered_is_posted_by_the_recovery_worker,
    a_withdrawal_the_network_never_received_is_voided_and_the_money_returns,
    a_call_unanswered_past_the_bound_is_presumed_failed,
    a_crash_with_calls_processing_is_recovered_after_the_restart,
);

async fn a_top_up_the_network_booked_but_never_answered_is_posted_by_the_recovery_worker(
    backend: Backend,
) {
    let sim = Sim::start(BOOKS_BUT_NEVER_ANSWERS).await;
    let app = spawn_app_crashable_with(backend, routed_to(&sim)).await;
    let mut client = app.accounts("core-banking").await;
    let account = open_class_ii(&mut client, 1).await;
    let id = request_id("topup");

    let first = top_up(&mut client, top_up_req(&id, &account, "100.00")).await;
    assert_eq!(
        first.status,
        ProcessingStatus::Processing as i32,
        "{first:?}"
    );
    assert_eq!(first.network, ClearingNetwork::Netsunion as i32);
    assert_eq!(
        balance(&mut client, &account)
            .await
            .pending_in
            .unwrap()
            .amount,
        "100.00",
        "the funds are reserved while the outcome is unknown"
    );

    app.clock.advance_ms(FIRST_QUERY_AFTER_MS);
    until_available(&mut client, &account, "100.00").await;

    let again = top_up(&mut client, top_up_req(&id, &account, "100.00")).await;
    assert_eq!(
        again.status,
        ProcessingStatus::Succeeded as i32,
        "{again:?}"
    );
    assert!(!again.network_reference.is_empty(), "{again:?}");
    assert!(!again.transaction_id.is_empty(), "{again:?}");
    let books = sim.books().await;
    assert_eq!(
        books.len(),
        1,
        "the retry did not reach the network twice as a new movement"
    );
    assert_eq!(app.ledger_verify().0, Some(0));
}

async fn a_withdrawal_the_network_never_received_is_voided_and_the_money_returns(backend: Backend) {
    // NetsUnion answers for its first 6 s, then refuses every connection for 2 s.
    let sim = Sim::start(
        "seed = 12\n[[networks]]\nnetwork = \"NETS_UNION\"\n\
         [[networks.outages]]\nafter_ms = 6000\nfor_ms = 2000\nmode = \"refuse\"\n",
    )
    .await;
    let outage_at = Instant::now() + Duration::from_millis(6_100);
    let app = spawn_app_crashable_with(backend, routed_to(&sim)).await;
    let mut client = app.accounts("core-banking").await;
    let account = open_class_ii(&mut client, 2).await;
    let funded = top_up(
        &mut client,
        top_up_req(&request_id("fund"), &account, "50.00"),
    )
    .await;
    assert_eq!(
        funded.status,
        ProcessingStatus::Succeeded as i32,
        "{funded:?}"
    );
    assert!(
        Instant::now() < outage_at,
        "the setup outlasted the simulator's quiet start"
    );
    tokio::time::sleep_until(outage_at.into()).await;

    let id = request_id("withdraw");
    let withdraw = |id: String| WithdrawRequest {
        request_id: id,
        account_id: account.clone(),
        amount: Some(common::cny("20.00")),
        memo: String::new(),
    };
    let first = client
        .withdraw(withdraw(id.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.status,
        ProcessingStatus::Processing as i32,
        "{first:?}"
    );
    assert_eq!(
        balance(&mut client, &account)
            .await
            .available
            .unwrap()
            .amount,
        "30.00",
        "the withdrawal's funds are reserved while its outcome is unknown"
    );

    // The worker queries through the outage (no answer: it waits), then finds nothing booked,
    // reverses to void a late arrival, and voids the reservation.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.clock.advance_ms(700);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let view = balance(&mut client, &account).await;
        if view.available.as_ref().unwrap().amount == "50.00" {
            break;
        }
        assert!(Instant::now() < deadline, "never voided: {view:?}");
    }
    let again = client.withdraw(withdraw(id)).await.unwrap().into_inner();
    assert_eq!(again.status, ProcessingStatus::Failed as i32, "{again:?}");
    let books = sim.books().await;
    assert_eq!(
        books.len(),
        1,
        "only the top-up reached the network: {books:?}"
    );
    assert_eq!(app.ledger_verify().0, Some(0));
}

async fn a_call_unanswered_past_the_bound_is_presumed_failed(backend: Backend) {
    // NetsUnion is down for the whole test: no submit, query or reversal is answered.
    let sim = Sim::start(
        "seed = 14\n[[networks]]\nnetwork = \"NETS_UNION\"\n\
         [[networks.outages]]\nafter_ms = 0\nfor_ms = 600000\nmode = \"refuse\"\n",
    )
    .await;
    let app = spawn_app_crashable_with(backend, routed_to(&sim)).await;
    let mut client = app.accounts("core-banking").await;
    let account = open_class_ii(&mut client, 3).await;
    let id = request_id("topup");
    let first = top_up(&mut client, top_up_req(&id, &account, "10.00")).await;
    assert_eq!(
        first.status,
        ProcessingStatus::Processing as i32,
        "{first:?}"
    );

    // Before the bound, the worker keeps waiting: the call stays PROCESSING.
    app.clock.advance_ms(FIRST_QUERY_AFTER_MS);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = top_up(&mut client, top_up_req(&id, &account, "10.00")).await;
    assert_eq!(
        waiting.status,
        ProcessingStatus::Processing as i32,
        "{waiting:?}"
    );

    app.clock.advance_ms(BOUND_MS);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let view = balance(&mut client, &account).await;
        if view.pending_in.as_ref().unwrap().amount == "0.00" {
            assert_eq!(view.book.unwrap().amount, "0.00", "nothing was posted");
            break;
        }
        assert!(Instant::now() < deadline, "never presumed: {view:?}");
    }
    let settled = top_up(&mut client, top_up_req(&id, &account, "10.00")).await;
    assert_eq!(
        settled.status,
        ProcessingStatus::Failed as i32,
        "{settled:?}"
    );
    assert_eq!(app.ledger_verify().0, Some(0));
}

async fn a_crash_with_calls_processing_is_recovered_after_the_restart(backend: Backend) {
    let sim = Sim::start(BOOKS_BUT_NEVER_ANSWERS).await;
    let mut app = spawn_app_crashable_with(backend, routed_to(&sim)).await;
    let mut client = app.accounts("core-banking").await;
    let mut accounts = Vec::new();
    for n in 0..4 {
        accounts.push(open_class_ii(&mut client, 10 + n).await);
    }
    let mut sent = Vec::new();
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..20 {
        let account = accounts[n % accounts.len()].clone();
        let id = request_id("topup");
        sent.push((id.clone(), account.clone()));
        let mut client = client.clone();
        calls.spawn(async move { top_up(&mut client, top_up_req(&id, &account, "1.00")).await });
    }
    while let Some(answer) = calls.join_next().await {
        let answer = answer.unwrap();
        assert_eq!(
            answer.status,
            ProcessingStatus::Processing as i32,
            "{answer:?}"
        );
    }

    // SIGKILL-like: every task dropped where it stands; then a new gateway on the database.
    drop(client);
    app.crash().await;
    let mut client = app.accounts("core-banking").await;
    app.clock.advance_ms(FIRST_QUERY_AFTER_MS);
    for account in &accounts {
        until_available(&mut client, account, "5.00").await;
    }
    for (id, account) in sent {
        let again = top_up(&mut client, top_up_req(&id, &account, "1.00")).await;
        assert_eq!(
            again.status,
            ProcessingStatus::Succeeded as i32,
            "{again:?}"
        );
    }
    assert_eq!(sim.books().await.len(), 20, "each movement booked once");
    assert_eq!(app.ledger_verify().0, Some(0));
}

//! No caller can starve the others, black-box over mutual TLS: each caller has its own limits of
//! unary calls and of open streams beside the gateway's, streams are counted apart from calls,
//! and every refusal is RESOURCE_EXHAUSTED with a stable reason and the limit in its metadata.
//! Only the front door is under test, so it runs on the embedded SQLite only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Accounts, Backend, TestApp, caller, hold_a_unary_call, metadata_of, once_not_refused,
    open_class_ii, reason_of, spawn_app_with, until_in_flight,
};
use paygate::{
    config::Config,
    grpc::pb::{GetBalanceRequest, GetBalanceResponse, WatchAccountRequest, WatchAccountResponse},
};
use tonic::{Code, Status, Streaming};

const GREEDY: &str = "greedy";

/// A gateway where the caller `greedy` (every grant) may hold `streams_max` streams and run
/// `calls_max` unary calls at once (`adjust` may change the rest), with an account opened by
/// core-banking, the other caller, for both to watch.
struct Greedy {
    app: TestApp,
    account: String,
    greedy: Accounts,
    other: Accounts,
}

async fn with_greedy(
    streams_max: usize,
    calls_max: usize,
    adjust: impl FnOnce(&mut Config),
) -> Greedy {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        let mut greedy = caller(GREEDY, &["*"]);
        greedy.streams_max = Some(streams_max);
        greedy.concurrent_calls_max = Some(calls_max);
        c.callers.push(greedy);
        adjust(c);
    })
    .await;
    let mut other = app.accounts("core-banking").await;
    let account = open_class_ii(&mut other, 1).await;
    let greedy = app.accounts(GREEDY).await;
    Greedy {
        app,
        account,
        greedy,
        other,
    }
}

/// A WatchAccount stream, open once its first snapshot arrived.
async fn watch(
    client: &Accounts,
    account: &str,
) -> Result<Streaming<WatchAccountResponse>, Status> {
    let mut stream = client
        .clone()
        .watch_account(WatchAccountRequest {
            account_id: account.to_owned(),
            cursor: String::new(),
        })
        .await?
        .into_inner();
    stream.message().await?.expect("the first snapshot");
    Ok(stream)
}

async fn get_balance(client: &Accounts, account: &str) -> Result<GetBalanceResponse, Status> {
    client
        .clone()
        .get_balance(GetBalanceRequest {
            account_id: account.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_caller_beyond_its_streams_max_is_refused_and_no_one_else_is() {
    let Greedy {
        app,
        account,
        greedy,
        other,
    } = with_greedy(2, 8, |_| {}).await;
    let _first = watch(&greedy, &account).await.expect("first stream");
    let second = watch(&greedy, &account).await.expect("second stream");

    let refused = watch(&greedy, &account)
        .await
        .expect_err("a third is over 2");
    let greedy_call = get_balance(&greedy, &account).await;
    let other_stream = watch(&other, &account).await;
    let other_call = get_balance(&other, &account).await;

    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason_of(&refused), "CALLER_STREAMS_EXCEEDED");
    assert_eq!(metadata_of(&refused)["streams_max"], "2");
    assert_eq!(metadata_of(&refused)["caller"], GREEDY);
    assert!(
        greedy_call.is_ok(),
        "its unary calls go on: {greedy_call:?}"
    );
    assert!(
        other_stream.is_ok(),
        "another caller streams: {other_stream:?}"
    );
    assert!(other_call.is_ok(), "another caller calls: {other_call:?}");
    let (_, metrics) = app.admin_get("/metrics").await;
    assert!(
        metrics.contains(r#"paygate_grpc_refused_total{reason="CALLER_STREAMS_EXCEEDED"} 1"#),
        "refused at the front door:\n{metrics}"
    );

    drop(second);
    let reopened = once_not_refused("CALLER_STREAMS_EXCEEDED", || watch(&greedy, &account)).await;
    assert!(
        reopened.is_ok(),
        "a closed stream frees its permit: {reopened:?}"
    );
}

#[tokio::test]
async fn a_caller_beyond_its_concurrent_calls_max_is_refused_and_no_one_else_is() {
    let Greedy {
        app,
        account,
        greedy,
        other,
    } = with_greedy(8, 1, |_| {}).await;
    let held = hold_a_unary_call(app.channel(GREEDY).await);
    until_in_flight(&app, 1).await;

    let refused = get_balance(&greedy, &account)
        .await
        .expect_err("its one call is taken");
    let greedy_stream = watch(&greedy, &account).await;
    let other_call = get_balance(&other, &account).await;

    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason_of(&refused), "CALLER_CONCURRENCY_EXCEEDED");
    assert_eq!(metadata_of(&refused)["concurrent_calls_max"], "1");
    assert_eq!(metadata_of(&refused)["caller"], GREEDY);
    assert!(
        greedy_stream.is_ok(),
        "a stream is no call: {greedy_stream:?}"
    );
    assert!(other_call.is_ok(), "another caller calls: {other_call:?}");

    held.abort();
    let after = once_not_refused("CALLER_CONCURRENCY_EXCEEDED", || {
        get_balance(&greedy, &account)
    })
    .await;
    assert!(after.is_ok(), "the ended call frees its permit: {after:?}");
}

#[tokio::test]
async fn streams_beyond_the_gateways_streams_max_are_refused_and_hold_no_call_permit() {
    let Greedy {
        app: _running,
        account,
        greedy,
        other,
    } = with_greedy(8, 8, |c| {
        c.limits.streams_max = 2;
        c.limits.inflight_calls_max = 1;
    })
    .await;
    let _greedy_stream = watch(&greedy, &account).await.expect("greedy's stream");
    let _other_stream = watch(&other, &account).await.expect("the other's stream");

    let refused = watch(&other, &account)
        .await
        .expect_err("a third is over 2");
    let call = get_balance(&other, &account).await;

    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason_of(&refused), "STREAMS_EXHAUSTED");
    assert_eq!(metadata_of(&refused)["streams_max"], "2");
    assert!(
        call.is_ok(),
        "two open streams leave the one call slot free: {call:?}"
    );
}

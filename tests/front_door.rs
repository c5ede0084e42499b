//! The front door, black-box over mutual TLS: who gets in, who is refused, and how. Nothing
//! here depends on the database, so it runs on the embedded SQLite only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    Backend, STRANGER, caller, client_tls, health_check, hold_a_unary_call, metadata_of,
    once_not_refused, reason_of, spawn_app, spawn_app_with, until_in_flight,
};
use paygate::{
    grpc::pb::{
        GetAccountRequest, GetProductRequest, TransferRequest,
        account_service_client::AccountServiceClient, yield_service_client::YieldServiceClient,
    },
    tls::{DevPkiLayout, generate_dev_pki},
};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test]
async fn a_client_without_a_certificate_never_reaches_a_handler() {
    let app = spawn_app(Backend::Sqlite).await;

    let refused = match app.try_channel(app.client_tls(None)).await {
        Err(_) => true,
        Ok(channel) => health_check(channel, "").await.is_err(),
    };

    assert!(
        refused,
        "a connection without a client certificate must fail"
    );
    let (_, metrics) = app.admin_get("/metrics").await;
    assert!(
        !metrics.contains("paygate_grpc_calls_total{"),
        "no call may have been handled:\n{metrics}"
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_never_reaches_a_handler() {
    let app = spawn_app(Backend::Sqlite).await;
    let foreign_dir = tempfile::tempdir().expect("tempdir");
    let foreign = DevPkiLayout::new(foreign_dir.path());
    generate_dev_pki(&foreign, "foreign CA", &["core-banking"], false).expect("foreign PKI");

    let tls = client_tls(&app.pki, &foreign, Some("core-banking"));
    let refused = match app.try_channel(tls).await {
        Err(_) => true,
        Ok(channel) => health_check(channel, "").await.is_err(),
    };

    assert!(refused, "a certificate from a foreign CA must fail");
    let (_, metrics) = app.admin_get("/metrics").await;
    assert!(!metrics.contains("paygate_grpc_calls_total{"), "{metrics}");
}

#[tokio::test]
async fn an_authorized_caller_sees_serving_health_and_reaches_the_services() {
    let app = spawn_app(Backend::Sqlite).await;
    let channel = app.channel("core-banking").await;

    let overall = health_check(channel.clone(), "").await.expect("health");
    let account = health_check(channel.clone(), "paygate.v1.AccountService")
        .await
        .expect("health of AccountService");
    let invalid = YieldServiceClient::new(channel)
        .get_product(GetProductRequest::default())
        .await
        .expect_err("an empty product id is refused by the handler");

    assert_eq!(overall, ServingStatus::Serving as i32);
    assert_eq!(account, ServingStatus::Serving as i32);
    assert_eq!(invalid.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_caller_without_the_grant_is_permission_denied() {
    let app = spawn_app(Backend::Sqlite).await;
    let channel = app.channel("auditor").await;

    let denied = AccountServiceClient::new(channel.clone())
        .transfer(TransferRequest::default())
        .await
        .expect_err("the auditor is read-only");
    let allowed = YieldServiceClient::new(channel)
        .get_product(GetProductRequest::default())
        .await
        .expect_err("reaches the handler, which refuses an empty product id");

    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&denied), "METHOD_NOT_GRANTED");
    assert_eq!(allowed.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_certificate_of_our_ca_that_names_no_caller_is_permission_denied() {
    let app = spawn_app(Backend::Sqlite).await;
    let channel = app.channel(STRANGER).await;

    let denied = AccountServiceClient::new(channel.clone())
        .get_account(GetAccountRequest::default())
        .await
        .expect_err("unknown caller");
    let health = health_check(channel, "")
        .await
        .expect("health is open to valid certificates");

    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&denied), "CALLER_UNKNOWN");
    assert_eq!(health, ServingStatus::Serving as i32);
}

#[tokio::test]
async fn an_oversize_message_is_refused() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.limits.message_size_max_bytes = 64 * 1024
    })
    .await;
    let client = AccountServiceClient::new(app.channel("core-banking").await);

    let refused = client
        .clone()
        .get_account(GetAccountRequest {
            account_id: "x".repeat(128 * 1024),
        })
        .await
        .expect_err("128 KiB is over the 64 KiB limit");
    let small = client
        .clone()
        .get_account(GetAccountRequest {
            account_id: "x".repeat(32 * 1024),
        })
        .await
        .expect_err("not an account id");

    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert_eq!(reason_of(&refused), "MESSAGE_TOO_LARGE");
    assert_eq!(metadata_of(&refused)["message_size_max_bytes"], "65536");
    assert!(
        metadata_of(&refused)["message_size_bytes"]
            .parse::<usize>()
            .unwrap()
            > 128 * 1024,
        "{refused:?}"
    );
    assert_eq!(
        small.code(),
        Code::InvalidArgument,
        "decoded and answered by the handler"
    );
}

#[tokio::test]
async fn a_caller_over_its_rate_is_resource_exhausted() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        let mut slow = caller("slow-caller", &["*"]);
        slow.rate_per_s = Some(1);
        slow.burst = Some(2);
        c.callers.push(slow);
    })
    .await;
    let client = YieldServiceClient::new(app.channel("slow-caller").await);

    let mut codes = Vec::new();
    for _ in 0..3 {
        let status = client
            .clone()
            .get_product(GetProductRequest::default())
            .await
            .expect_err("invalid or limited");
        codes.push((status.code(), reason_of(&status)));
    }

    assert_eq!(codes[0].0, Code::InvalidArgument);
    assert_eq!(codes[1].0, Code::InvalidArgument);
    assert_eq!(
        codes[2],
        (Code::ResourceExhausted, "RATE_LIMITED".to_owned())
    );
}

#[tokio::test]
async fn calls_beyond_the_inflight_limit_are_shed() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.limits.inflight_calls_max = 1).await;
    let channel = app.channel("core-banking").await;
    let held = hold_a_unary_call(channel.clone());

    until_in_flight(&app, 1).await;

    let shed = health_check(channel.clone(), "")
        .await
        .expect_err("the only slot is taken");
    held.abort();
    let after = once_not_refused("OVERLOADED", || health_check(channel.clone(), ""))
        .await
        .expect("the slot is free again");

    assert_eq!(shed.code(), Code::ResourceExhausted);
    assert_eq!(reason_of(&shed), "OVERLOADED");
    assert_eq!(metadata_of(&shed)["inflight_calls_max"], "1");
    assert_eq!(after, ServingStatus::Serving as i32);
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_call_finish_and_refuses_new_ones() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let channel = app.channel("core-banking").await;
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: "paygate.v1.AccountService".to_owned(),
        })
        .await
        .expect("watch opens")
        .into_inner();
    let before = watch.message().await.expect("stream").expect("status");

    let server = app.begin_shutdown();
    let during = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the in-flight call is still served")
        .expect("stream")
        .expect("status");
    let newcomer = app.try_channel(app.client_tls(Some("core-banking"))).await;
    drop(watch);
    let stopped = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("drains well within the grace period")
        .expect("task");

    assert_eq!(before.status, ServingStatus::Serving as i32);
    assert_eq!(during.status, ServingStatus::NotServing as i32);
    assert!(newcomer.is_err(), "no new connection after shutdown began");
    assert!(stopped.is_ok(), "{stopped:?}");
}

#[tokio::test]
async fn on_shutdown_an_open_account_watch_ends_at_once_with_unavailable() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let mut accounts = app.accounts("core-banking").await;
    let account = common::open_class_ii(&mut accounts, 1).await;
    let mut watch = accounts
        .watch_account(paygate::grpc::pb::WatchAccountRequest {
            account_id: account,
            cursor: String::new(),
        })
        .await
        .expect("watch opens")
        .into_inner();
    watch.message().await.expect("stream").expect("snapshot");

    let server = app.begin_shutdown();
    // The grace period is 30 s here: the stream must not last until it ends.
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("the stream ends promptly")
        .expect_err("it ends with a status");
    let stopped = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops well within the grace period")
        .expect("task");

    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert_eq!(reason_of(&ended), "SHUTTING_DOWN");
    assert!(stopped.is_ok(), "{stopped:?}");
}

#[tokio::test]
async fn every_call_gets_an_id_and_is_counted_by_method_and_status() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = YieldServiceClient::new(app.channel("core-banking").await);
    let mut request = tonic::Request::new(GetProductRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "it-123".parse().expect("ascii"));

    let status = client
        .get_product(request)
        .await
        .expect_err("an empty product id is invalid");
    let (live_status, live) = app.admin_get("/livez").await;
    let (_, metrics) = app.admin_get("/metrics").await;

    assert_eq!(
        status
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("it-123")
    );
    assert!(live_status.contains("200"), "{live_status}");
    assert_eq!(live.trim(), "ok");
    assert!(
        metrics.contains(r#"paygate_grpc_calls_total{method="paygate.v1.YieldService/GetProduct",code="INVALID_ARGUMENT"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn reflection_lists_the_paygate_services_health_and_reflection() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = ServerReflectionClient::new(app.channel("auditor").await);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.message().await.expect("stream").expect("answer");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected answer {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();

    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "paygate.v1.AccountService",
            "paygate.v1.CashierService",
            "paygate.v1.CreditService",
            "paygate.v1.OperationsService",
            "paygate.v1.YieldService",
        ]
    );
}

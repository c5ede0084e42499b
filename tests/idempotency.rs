//! The idempotency contract to the letter, black-box over mutual TLS: every field that changes
//! a request's effect is part of it, so the same request id with another value is another
//! request (ALREADY_EXISTS `IDEMPOTENCY_KEY_REUSED`), and a replay answers the first answer and
//! never changes state, however much has happened since.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Accounts, Backend, assert_refused, open_class_ii, request_id, spawn_app};
use paygate::grpc::pb::{
    self, CloseAccountRequest, FreezeAccountRequest, FreezeMode, GetAccountRequest,
    UnfreezeAccountRequest,
};
use tonic::Code;

fn freeze(account: &str, reason: &str) -> FreezeAccountRequest {
    FreezeAccountRequest {
        request_id: request_id("freeze"),
        account_id: account.to_owned(),
        mode: FreezeMode::NoDebit as i32,
        reason: reason.to_owned(),
    }
}

fn unfreeze(account: &str, reason: &str) -> UnfreezeAccountRequest {
    UnfreezeAccountRequest {
        request_id: request_id("unfreeze"),
        account_id: account.to_owned(),
        mode: FreezeMode::NoDebit as i32,
        reason: reason.to_owned(),
    }
}

async fn account(c: &mut Accounts, id: &str) -> pb::Account {
    c.get_account(GetAccountRequest {
        account_id: id.to_owned(),
    })
    .await
    .expect("account reads")
    .into_inner()
    .account
    .expect("account")
}

both_backends!(a_freeze_or_unfreeze_retried_with_another_reason_is_another_request);
async fn a_freeze_or_unfreeze_retried_with_another_reason_is_another_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let first = freeze(&a, "court order 2026-001");
    c.freeze_account(first.clone()).await.expect("frozen");
    let mut other = first.clone();
    other.reason = "court order 2026-999".into();
    let refused = c.freeze_account(other).await;
    assert_refused(refused, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        account(&mut c, &a).await.freeze_reason,
        "court order 2026-001"
    );

    let lift = unfreeze(&a, "order lifted");
    c.unfreeze_account(lift.clone()).await.expect("unfrozen");
    let mut other = lift;
    other.reason = "mistake".into();
    let refused = c.unfreeze_account(other).await;
    assert_refused(refused, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
}

both_backends!(a_replayed_unfreeze_after_a_later_freeze_changes_nothing);
async fn a_replayed_unfreeze_after_a_later_freeze_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    c.freeze_account(freeze(&a, "court order 1"))
        .await
        .expect("frozen");
    let lift = unfreeze(&a, "order 1 lifted");
    let first = c
        .unfreeze_account(lift.clone())
        .await
        .expect("unfrozen")
        .into_inner()
        .account
        .expect("account");
    c.freeze_account(freeze(&a, "court order 2"))
        .await
        .expect("frozen again");

    // The unfreeze is retried (its answer was lost): it answers as it did, and the judicial
    // freeze placed since stays, reason and all.
    let replay = c
        .unfreeze_account(lift)
        .await
        .expect("the replay answers")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(replay.status, first.status);
    let now = account(&mut c, &a).await;
    assert_eq!(now.status, pb::AccountStatus::Active as i32);
    assert_eq!(now.freeze_reason, "court order 2");
    assert_eq!(now.freeze_mode, FreezeMode::NoDebit as i32);
}

both_backends!(a_close_retried_with_another_reason_is_another_request);
async fn a_close_retried_with_another_reason_is_another_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let close = CloseAccountRequest {
        request_id: request_id("close"),
        account_id: a.clone(),
        reason: "customer request".into(),
    };
    c.close_account(close.clone()).await.expect("closed");
    c.close_account(close.clone())
        .await
        .expect("the same request replays");
    let mut other = close;
    other.reason = "fraud".into();
    let refused = c.close_account(other).await;
    assert_refused(refused, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
}

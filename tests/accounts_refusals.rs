//! AccountService refusals, black-box over mutual TLS: each with its exact gRPC code and
//! `ErrorInfo.reason`, and nothing moved. Class limits are in `accounts_limits.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Accounts, Backend, assert_refused, book, cny, metadata_of, open, open_class_ii, open_merchant,
    open_plain, request_id, spawn_app, top_up, transfer_req,
};
use paygate::grpc::pb::{
    AccountKind, CaptureHoldRequest, CloseAccountRequest, FreezeAccountRequest, FreezeMode,
    GetAccountRequest, GetBalanceRequest, HoldKind, ListAccountsRequest, ListEntriesRequest,
    PlaceHoldRequest, TopUpRequest, UnfreezeAccountRequest, WithdrawRequest,
    list_accounts_request::Filter,
};
use tonic::Code;

async fn freeze(c: &mut Accounts, account: &str, mode: FreezeMode) {
    c.freeze_account(FreezeAccountRequest {
        request_id: request_id("freeze"),
        account_id: account.to_owned(),
        mode: mode as i32,
        reason: "investigation".into(),
    })
    .await
    .expect("frozen");
}

fn place_hold(account: &str, amount: &str) -> PlaceHoldRequest {
    PlaceHoldRequest {
        request_id: request_id("hold"),
        account_id: account.to_owned(),
        amount: Some(cny(amount)),
        kind: HoldKind::Judicial as i32,
        reason: "court order".into(),
        ..Default::default()
    }
}

// ----- freezes -------------------------------------------------------------------------------

both_backends!(an_account_frozen_for_debits_cannot_send_but_still_receives);
async fn an_account_frozen_for_debits_cannot_send_but_still_receives(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let b = open_class_ii(&mut c, 2).await;
    top_up(&mut c, &a, "100.00").await;
    top_up(&mut c, &b, "100.00").await;
    freeze(&mut c, &a, FreezeMode::NoDebit).await;

    let out = c.transfer(transfer_req(&a, &b, "10.00")).await;
    let withdraw = c
        .withdraw(WithdrawRequest {
            request_id: request_id("w"),
            account_id: a.clone(),
            amount: Some(cny("10.00")),
            memo: String::new(),
        })
        .await;

    assert_refused(out, Code::FailedPrecondition, "ACCOUNT_FROZEN");
    assert_refused(withdraw, Code::FailedPrecondition, "ACCOUNT_FROZEN");
    c.transfer(transfer_req(&b, &a, "5.00"))
        .await
        .expect("credits still arrive");
    assert_eq!(book(&mut c, &a).await, "105.00");
}

both_backends!(an_account_frozen_for_credits_cannot_receive_but_still_sends);
async fn an_account_frozen_for_credits_cannot_receive_but_still_sends(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let b = open_class_ii(&mut c, 2).await;
    top_up(&mut c, &a, "100.00").await;
    top_up(&mut c, &b, "100.00").await;
    freeze(&mut c, &a, FreezeMode::NoCredit).await;

    let into = c.transfer(transfer_req(&b, &a, "10.00")).await;
    let up = c
        .top_up(TopUpRequest {
            request_id: request_id("up"),
            account_id: a.clone(),
            amount: Some(cny("10.00")),
            memo: String::new(),
        })
        .await;

    assert_refused(into, Code::FailedPrecondition, "ACCOUNT_FROZEN");
    assert_refused(up, Code::FailedPrecondition, "ACCOUNT_FROZEN");
    c.transfer(transfer_req(&a, &b, "5.00"))
        .await
        .expect("debits still leave");
    assert_eq!(book(&mut c, &a).await, "95.00");
    assert_eq!(book(&mut c, &b).await, "105.00");
}

both_backends!(an_account_frozen_both_ways_neither_sends_nor_receives_until_unfrozen);
async fn an_account_frozen_both_ways_neither_sends_nor_receives_until_unfrozen(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let b = open_class_ii(&mut c, 2).await;
    top_up(&mut c, &a, "100.00").await;
    top_up(&mut c, &b, "100.00").await;
    freeze(&mut c, &a, FreezeMode::Both).await;

    let out = c.transfer(transfer_req(&a, &b, "1.00")).await;
    let into = c.transfer(transfer_req(&b, &a, "1.00")).await;

    assert_refused(out, Code::FailedPrecondition, "ACCOUNT_FROZEN");
    assert_refused(into, Code::FailedPrecondition, "ACCOUNT_FROZEN");
    c.unfreeze_account(UnfreezeAccountRequest {
        request_id: request_id("unfreeze"),
        account_id: a.clone(),
        mode: FreezeMode::Both as i32,
        reason: "released".into(),
    })
    .await
    .expect("unfrozen");
    c.transfer(transfer_req(&a, &b, "1.00"))
        .await
        .expect("moves again");
    assert_eq!(book(&mut c, &a).await, "99.00");
}

// ----- holds ---------------------------------------------------------------------------------

both_backends!(a_hold_larger_than_the_available_balance_is_refused);
async fn a_hold_larger_than_the_available_balance_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    top_up(&mut c, &a, "100.00").await;
    c.place_hold(place_hold(&a, "70.00"))
        .await
        .expect("first hold");

    let over = c.place_hold(place_hold(&a, "30.01")).await;

    let status = assert_refused(over, Code::FailedPrecondition, "INSUFFICIENT_FUNDS");
    let md = metadata_of(&status);
    assert_eq!(
        md.get("available").map(String::as_str),
        Some("30.00"),
        "{md:?}"
    );
    c.place_hold(place_hold(&a, "30.00"))
        .await
        .expect("exactly what is available");
}

both_backends!(capturing_more_than_was_held_is_refused_and_the_hold_stays_active);
async fn capturing_more_than_was_held_is_refused_and_the_hold_stays_active(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "100.00").await;
    let hold = c
        .place_hold(place_hold(&a, "40.00"))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold")
        .hold_id;
    let capture = |amount: &str| CaptureHoldRequest {
        request_id: request_id("capture"),
        hold_id: hold.clone(),
        amount: Some(cny(amount)),
        to_account_id: m.clone(),
        memo: String::new(),
    };

    let over = c.capture_hold(capture("40.01")).await;

    assert_refused(over, Code::FailedPrecondition, "CAPTURE_EXCEEDS_HOLD");
    assert_eq!(book(&mut c, &m).await, "0.00");
    c.capture_hold(capture("40.00"))
        .await
        .expect("the whole hold can still be captured");
    assert_eq!(book(&mut c, &m).await, "40.00");
}

// ----- closing -------------------------------------------------------------------------------

both_backends!(an_account_with_a_balance_cannot_be_closed);
async fn an_account_with_a_balance_cannot_be_closed(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    top_up(&mut c, &a, "0.01").await;

    let close = c
        .close_account(CloseAccountRequest {
            request_id: request_id("close"),
            account_id: a.clone(),
            reason: "customer request".into(),
        })
        .await;

    assert_refused(close, Code::FailedPrecondition, "ACCOUNT_NOT_EMPTY");
    assert_eq!(book(&mut c, &a).await, "0.01");
}

both_backends!(a_platform_master_with_open_sub_accounts_cannot_be_closed);
async fn a_platform_master_with_open_sub_accounts_cannot_be_closed(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let master = open(&mut c, open_plain(AccountKind::PlatformMaster, "p", "")).await;
    open(&mut c, open_plain(AccountKind::PlatformSub, "p", &master)).await;

    let close = c
        .close_account(CloseAccountRequest {
            request_id: request_id("close"),
            account_id: master,
            reason: "platform left".into(),
        })
        .await;

    assert_refused(close, Code::FailedPrecondition, "ACCOUNT_NOT_EMPTY");
}

// ----- request shape -------------------------------------------------------------------------

both_backends!(an_account_cannot_transfer_to_itself);
async fn an_account_cannot_transfer_to_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    top_up(&mut c, &a, "10.00").await;

    let selfie = c.transfer(transfer_req(&a, &a, "1.00")).await;

    assert_refused(selfie, Code::InvalidArgument, "TRANSFER_TO_SELF");
    assert_eq!(book(&mut c, &a).await, "10.00");
}

both_backends!(an_amount_in_another_currency_than_the_accounts_is_refused);
async fn an_amount_in_another_currency_than_the_accounts_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "10.00").await;
    let mut req = transfer_req(&a, &m, "1.00");
    req.amount = Some(paygate::grpc::pb::Money {
        currency: "USD".into(),
        amount: "1.00".into(),
    });

    let usd = c.transfer(req).await;

    assert_refused(usd, Code::FailedPrecondition, "CURRENCY_MISMATCH");
    assert_eq!(book(&mut c, &a).await, "10.00");
}

both_backends!(an_amount_with_more_decimals_than_the_currency_has_is_refused);
async fn an_amount_with_more_decimals_than_the_currency_has_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "10.00").await;

    let fractional = c.transfer(transfer_req(&a, &m, "1.005")).await;

    let status = assert_refused(fractional, Code::InvalidArgument, "AMOUNT_SCALE");
    assert_eq!(
        metadata_of(&status).get("scale").map(String::as_str),
        Some("2"),
        "the scale the currency allows"
    );
    assert_eq!(book(&mut c, &a).await, "10.00");
}

both_backends!(a_zero_or_malformed_amount_is_refused);
async fn a_zero_or_malformed_amount_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "10.00").await;

    let zero = c.transfer(transfer_req(&a, &m, "0.00")).await;
    let negative = c.transfer(transfer_req(&a, &m, "-1.00")).await;
    let float = c.transfer(transfer_req(&a, &m, "1e2")).await;

    assert_refused(zero, Code::InvalidArgument, "AMOUNT_NOT_POSITIVE");
    assert_refused(negative, Code::InvalidArgument, "AMOUNT_NOT_POSITIVE");
    assert_refused(float, Code::InvalidArgument, "INVALID_AMOUNT");
    assert_eq!(book(&mut c, &a).await, "10.00");
}

both_backends!(an_unknown_account_is_not_found);
async fn an_unknown_account_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    top_up(&mut c, &a, "10.00").await;
    let unknown = "987654321".to_owned();

    let get = c
        .get_account(GetAccountRequest {
            account_id: unknown.clone(),
        })
        .await;
    let bal = c
        .get_balance(GetBalanceRequest {
            account_id: unknown.clone(),
        })
        .await;
    let to_unknown = c.transfer(transfer_req(&a, &unknown, "1.00")).await;
    let statement = c
        .list_entries(ListEntriesRequest {
            account_id: unknown.clone(),
            ..Default::default()
        })
        .await;

    for status in [
        assert_refused(get, Code::NotFound, "ACCOUNT_NOT_FOUND"),
        assert_refused(bal, Code::NotFound, "ACCOUNT_NOT_FOUND"),
        assert_refused(to_unknown, Code::NotFound, "ACCOUNT_NOT_FOUND"),
        assert_refused(statement, Code::NotFound, "ACCOUNT_NOT_FOUND"),
    ] {
        assert_eq!(metadata_of(&status)["account_id"], unknown);
    }
    assert_eq!(book(&mut c, &a).await, "10.00");
}

both_backends!(a_malformed_account_id_is_an_invalid_argument);
async fn a_malformed_account_id_is_an_invalid_argument(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;

    let bad = c
        .get_account(GetAccountRequest {
            account_id: "12; DROP TABLE".into(),
        })
        .await;

    let status = assert_refused(bad, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(metadata_of(&status)["field"], "account_id");
}

both_backends!(a_tampered_page_token_is_refused);
async fn a_tampered_page_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    for _ in 0..3 {
        open_merchant(&mut c, "m-pages").await;
    }
    let a = open_class_ii(&mut c, 1).await;
    for _ in 0..3 {
        top_up(&mut c, &a, "1.00").await;
    }
    let list = |owner: &str, token: String| ListAccountsRequest {
        filter: Some(Filter::OwnerId(owner.into())),
        page_size: 1,
        page_token: token,
        ..Default::default()
    };
    let token = c
        .list_accounts(list("m-pages", String::new()))
        .await
        .expect("first page")
        .into_inner()
        .next_page_token;
    let entries_token = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner()
        .next_page_token;
    assert!(!token.is_empty() && !entries_token.is_empty());
    let tamper = |t: &str| {
        // Change one character of the signed payload.
        let mut bytes = t.as_bytes().to_vec();
        let i = t.find(':').map_or(0, |i| i + 1);
        bytes[i] = if bytes[i] == b'9' { b'8' } else { b'9' };
        String::from_utf8(bytes).expect("ascii")
    };

    let tampered = c.list_accounts(list("m-pages", tamper(&token))).await;
    let forged = c
        .list_accounts(list("m-pages", "accounts:x:0.deadbeef".into()))
        .await;
    let other_query = c.list_accounts(list("someone-else", token.clone())).await;
    let tampered_entries = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            page_size: 1,
            page_token: tamper(&entries_token),
            ..Default::default()
        })
        .await;
    let accounts_token_for_entries = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            page_size: 1,
            page_token: token.clone(),
            ..Default::default()
        })
        .await;

    assert_refused(tampered, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
    assert_refused(forged, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
    assert_refused(other_query, Code::InvalidArgument, "INVALID_PAGE_TOKEN");
    assert_refused(
        tampered_entries,
        Code::InvalidArgument,
        "INVALID_PAGE_TOKEN",
    );
    assert_refused(
        accounts_token_for_entries,
        Code::InvalidArgument,
        "INVALID_PAGE_TOKEN",
    );
    c.list_accounts(list("m-pages", token))
        .await
        .expect("the untouched token still works");
}

both_backends!(a_negative_page_size_is_an_invalid_argument);
async fn a_negative_page_size_is_an_invalid_argument(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;

    let bad = c
        .list_accounts(ListAccountsRequest {
            filter: Some(Filter::OwnerId("anyone".into())),
            page_size: -1,
            ..Default::default()
        })
        .await;

    let status = assert_refused(bad, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(metadata_of(&status)["field"], "page_size");
}

// ----- kinds and cards -----------------------------------------------------------------------

both_backends!(a_transfer_into_a_platform_master_account_is_refused);
async fn a_transfer_into_a_platform_master_account_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let master = open(&mut c, open_plain(AccountKind::PlatformMaster, "p", "")).await;
    top_up(&mut c, &a, "10.00").await;

    let into_master = c.transfer(transfer_req(&a, &master, "1.00")).await;
    let hold_on_master = c.place_hold(place_hold(&master, "1.00")).await;

    assert_refused(
        into_master,
        Code::FailedPrecondition,
        "MASTER_ACCOUNT_NOT_POSTABLE",
    );
    assert_refused(
        hold_on_master,
        Code::FailedPrecondition,
        "MASTER_ACCOUNT_NOT_POSTABLE",
    );
    assert_eq!(book(&mut c, &a).await, "10.00");
}

both_backends!(a_sub_account_needs_an_open_platform_master_as_its_parent);
async fn a_sub_account_needs_an_open_platform_master_as_its_parent(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let merchant = open_merchant(&mut c, "m").await;

    let under_merchant = c
        .open_account(open_plain(AccountKind::PlatformSub, "p", &merchant))
        .await;
    let orphan = c
        .open_account(open_plain(AccountKind::PlatformSub, "p", ""))
        .await;

    assert_refused(under_merchant, Code::FailedPrecondition, "INVALID_PARENT");
    assert_refused(orphan, Code::InvalidArgument, "INVALID_ARGUMENT");
}

both_backends!(a_bank_internal_account_cannot_be_opened_by_a_caller);
async fn a_bank_internal_account_cannot_be_opened_by_a_caller(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;

    let internal = c
        .open_account(open_plain(AccountKind::BankInternal, "bank", ""))
        .await;

    assert_refused(internal, Code::InvalidArgument, "KIND_NOT_OPENABLE");
}

both_backends!(a_personal_account_needs_an_identity_and_a_valid_card);
async fn a_personal_account_needs_an_identity_and_a_valid_card(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let mut no_identity = common::open_personal(
        AccountKind::ClassIi,
        "cust",
        "110101199001010007",
        &common::card_number(1),
    );
    no_identity.identity = None;
    let mut no_card = common::open_personal(
        AccountKind::ClassIii,
        "cust",
        "110101199001010007",
        &common::card_number(1),
    );
    no_card.bound_card_number = String::new();
    let mut bad_card = no_card.clone();
    bad_card.request_id = request_id("open");
    bad_card.bound_card_number = "6222021234567890123".into();

    let mut fields = Vec::new();
    for req in [no_identity, no_card, bad_card] {
        let status = assert_refused(
            c.open_account(req).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        fields.push(metadata_of(&status)["field"].clone());
    }

    assert_eq!(
        fields,
        ["identity", "bound_card_number", "bound_card_number"]
    );
}

both_backends!(a_withdrawal_from_an_account_without_a_bound_card_is_refused);
async fn a_withdrawal_from_an_account_without_a_bound_card_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "10.00").await;
    c.transfer(transfer_req(&a, &m, "5.00"))
        .await
        .expect("merchant funded");

    let withdraw = c
        .withdraw(WithdrawRequest {
            request_id: request_id("w"),
            account_id: m.clone(),
            amount: Some(cny("1.00")),
            memo: String::new(),
        })
        .await;
    let top = c
        .top_up(TopUpRequest {
            request_id: request_id("up"),
            account_id: m.clone(),
            amount: Some(cny("1.00")),
            memo: String::new(),
        })
        .await;

    assert_refused(withdraw, Code::FailedPrecondition, "NO_BOUND_CARD");
    assert_refused(top, Code::FailedPrecondition, "NO_BOUND_CARD");
    assert_eq!(book(&mut c, &m).await, "5.00");
}

// ----- funds ---------------------------------------------------------------------------------

both_backends!(money_beyond_the_available_balance_cannot_leave);
async fn money_beyond_the_available_balance_cannot_leave(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "50.00").await;
    c.place_hold(place_hold(&a, "20.00")).await.expect("hold");

    let transfer = c.transfer(transfer_req(&a, &m, "30.01")).await;
    let withdraw = c
        .withdraw(WithdrawRequest {
            request_id: request_id("w"),
            account_id: a.clone(),
            amount: Some(cny("30.01")),
            memo: String::new(),
        })
        .await;

    let status = assert_refused(transfer, Code::FailedPrecondition, "INSUFFICIENT_FUNDS");
    let md = metadata_of(&status);
    assert_eq!(
        md.get("available").map(String::as_str),
        Some("30.00"),
        "{md:?}"
    );
    assert_eq!(
        md.get("requested").map(String::as_str),
        Some("30.01"),
        "{md:?}"
    );
    assert_refused(withdraw, Code::FailedPrecondition, "INSUFFICIENT_FUNDS");
    assert_eq!(book(&mut c, &a).await, "50.00");
    let usage = common::balance(&mut c, &a).await.limits;
    assert!(
        usage
            .iter()
            .all(|l| l.used.as_ref().is_some_and(|m| m.amount == "0.00")),
        "a refused outflow uses no limit: {usage:?}"
    );
    c.transfer(transfer_req(&a, &m, "30.00"))
        .await
        .expect("exactly the available amount leaves");
}

both_backends!(a_missing_or_overlong_request_id_is_an_invalid_argument);
async fn a_missing_or_overlong_request_id_is_an_invalid_argument(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let m = open_merchant(&mut c, "m").await;
    top_up(&mut c, &a, "10.00").await;
    let mut empty = transfer_req(&a, &m, "1.00");
    empty.request_id = String::new();
    let mut long = transfer_req(&a, &m, "1.00");
    long.request_id = "k".repeat(65);

    for req in [empty, long] {
        let status = assert_refused(
            c.transfer(req).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(metadata_of(&status)["field"], "request_id");
    }
    assert_eq!(book(&mut c, &a).await, "10.00");
}

both_backends!(an_unknown_hold_is_not_found);
async fn an_unknown_hold_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;

    let release = c
        .release_hold(paygate::grpc::pb::ReleaseHoldRequest {
            request_id: request_id("release"),
            hold_id: "424242".into(),
            reason: "r".into(),
        })
        .await;

    assert_refused(release, Code::NotFound, "HOLD_NOT_FOUND");
}

both_backends!(a_malformed_watch_cursor_and_an_empty_statement_range_are_invalid_arguments);
async fn a_malformed_watch_cursor_and_an_empty_statement_range_are_invalid_arguments(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;

    let cursor = c
        .watch_account(paygate::grpc::pb::WatchAccountRequest {
            account_id: a.clone(),
            cursor: "not-a-cursor".into(),
        })
        .await
        .map(|_| "a stream");
    let range = c
        .list_entries(ListEntriesRequest {
            account_id: a.clone(),
            start_time: Some(prost_types::Timestamp {
                seconds: 2_000_000_000,
                nanos: 0,
            }),
            end_time: Some(prost_types::Timestamp {
                seconds: 1_000_000_000,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await;

    let cursor = assert_refused(cursor, Code::InvalidArgument, "INVALID_ARGUMENT");
    let range = assert_refused(range, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(metadata_of(&cursor)["field"], "cursor");
    assert_eq!(metadata_of(&range)["field"], "end_time");
}

//! Free text (memos, subjects, names, reasons), black-box over mutual TLS: a card number in any
//! of them is refused with `CARD_NUMBER_IN_TEXT` naming the field, and never echoed back;
//! control and bidirectional characters are refused; anything else is kept as written.
//! Failure paths first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Accounts, Backend, TestApp, assert_refused, book, card_number, cny, metadata_of, open_class_ii,
    open_merchant, open_personal, open_plain, request_id, spawn_app, top_up, transfer_req,
};
use paygate::grpc::pb::{
    self, AccountKind, CloseAccountRequest, CloseOrderRequest, CreateOrderRequest,
    FreezeAccountRequest, FreezeMode, HoldKind, ListEntriesRequest, MerchantType,
    PaymentMethodType, PaymentProduct, PlaceHoldRequest, RefundRequest, RegisterMerchantRequest,
    RegisterProductRequest, Scenario, TopUpRequest, cashier_service_client::CashierServiceClient,
    yield_service_client::YieldServiceClient,
};
use tonic::{Code, Status};

/// A Luhn-valid card number, and the same written in groups of four as people write it.
fn card() -> String {
    card_number(77)
}

fn card_in_groups() -> String {
    let digits = card();
    let groups: Vec<&str> = digits
        .as_bytes()
        .chunks(4)
        .map(|g| std::str::from_utf8(g).unwrap())
        .collect();
    groups.join(" ")
}

/// Asserts an INVALID_ARGUMENT refusal with `reason` that names `field`.
#[track_caller]
fn assert_field_refused<T: std::fmt::Debug>(
    result: Result<T, Status>,
    reason: &str,
    field: &str,
) -> Status {
    let status = assert_refused(result, Code::InvalidArgument, reason);
    assert_eq!(
        metadata_of(&status).get("field").map(String::as_str),
        Some(field),
        "{status:?}"
    );
    status
}

/// Asserts a `CARD_NUMBER_IN_TEXT` refusal of `field` that shows no part of the number.
#[track_caller]
fn assert_card_refused<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    let status = assert_field_refused(result, "CARD_NUMBER_IN_TEXT", field);
    let shown = format!("{} {:?}", status.message(), metadata_of(&status));
    let digits = card();
    assert!(
        !shown.contains(&digits[..6]) && !shown.contains(&digits[digits.len() - 4..]),
        "the refusal echoes the number: {shown}"
    );
}

/// A gateway with two Class II accounts, the first topped up with `amount`.
async fn two_accounts(backend: Backend, amount: &str) -> (TestApp, Accounts, String, String) {
    let app = spawn_app(backend).await;
    let mut c = app.accounts("core-banking").await;
    let a = open_class_ii(&mut c, 1).await;
    let b = open_class_ii(&mut c, 2).await;
    top_up(&mut c, &a, amount).await;
    (app, c, a, b)
}

both_backends!(a_card_number_in_any_account_text_is_refused_by_field_and_nothing_moves);
async fn a_card_number_in_any_account_text_is_refused_by_field_and_nothing_moves(backend: Backend) {
    let (_app, mut c, a, b) = two_accounts(backend, "100.00").await;
    let with_card = format!("rent, card {}", card_in_groups());

    let mut transfer = transfer_req(&a, &b, "1.00");
    transfer.memo = with_card.clone();
    assert_card_refused(c.transfer(transfer).await, "memo");
    let top_up_memo = TopUpRequest {
        request_id: request_id("topup"),
        account_id: a.clone(),
        amount: Some(cny("1.00")),
        memo: format!("from {}", card()),
    };
    assert_card_refused(c.top_up(top_up_memo).await, "memo");
    let mut display = open_plain(AccountKind::MerchantSettlement, "m-1", "");
    display.display_name = with_card.clone();
    assert_card_refused(c.open_account(display).await, "display_name");
    let mut owner = open_plain(AccountKind::MerchantSettlement, &card(), "");
    owner.display_name = "shop".into();
    assert_card_refused(c.open_account(owner).await, "owner_id");
    let mut named = open_personal(
        AccountKind::ClassIi,
        "cust-9",
        "11010519491231002X",
        &card_number(9),
    );
    named.identity.as_mut().unwrap().full_name = format!("张三 {}", card());
    assert_card_refused(c.open_account(named).await, "identity.full_name");
    let freeze = FreezeAccountRequest {
        request_id: request_id("freeze"),
        account_id: a.clone(),
        mode: FreezeMode::Both as i32,
        reason: with_card.clone(),
    };
    assert_card_refused(c.freeze_account(freeze).await, "reason");
    let hold = PlaceHoldRequest {
        request_id: request_id("hold"),
        account_id: a.clone(),
        amount: Some(cny("1.00")),
        kind: HoldKind::Judicial as i32,
        reason: "court order".into(),
        external_reference: with_card.clone(),
        expire_time: None,
    };
    assert_card_refused(c.place_hold(hold).await, "external_reference");
    let close = CloseAccountRequest {
        request_id: request_id("close"),
        account_id: b.clone(),
        reason: with_card,
    };
    assert_card_refused(c.close_account(close).await, "reason");

    assert_eq!(book(&mut c, &a).await, "100.00");
    assert_eq!(book(&mut c, &b).await, "0.00");
}

both_backends!(a_card_number_in_a_merchant_name_order_subject_or_refund_reason_is_refused);
async fn a_card_number_in_a_merchant_name_order_subject_or_refund_reason_is_refused(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mut accounts = app.accounts("core-banking").await;
    let settlement = open_merchant(&mut accounts, "tea-shop").await;
    let mut bank = CashierServiceClient::new(app.channel("core-banking").await);
    let register = |name: String| RegisterMerchantRequest {
        request_id: request_id("merchant"),
        name,
        merchant_type: MerchantType::Normal as i32,
        service_provider_id: String::new(),
        settlement_account_id: settlement.clone(),
        products: vec![PaymentProduct {
            method: PaymentMethodType::Balance as i32,
            scenario: Scenario::App as i32,
            fee_rate: "0.006".into(),
        }],
        allowed_callers: vec!["core-banking".into()],
    };

    let named = bank.register_merchant(register(format!("Tea {}", card_in_groups())));
    assert_card_refused(named.await, "name");
    let merchant = bank
        .register_merchant(register("Tea shop".into()))
        .await
        .expect("registers")
        .into_inner()
        .merchant
        .expect("merchant");
    let order = CreateOrderRequest {
        request_id: request_id("order"),
        merchant_id: merchant.merchant_id.clone(),
        merchant_order_no: "T-1".into(),
        amount: Some(cny("1.00")),
        subject: format!("tea for card {}", card()),
        scenario: Scenario::App as i32,
        expire_time: None,
    };
    assert_card_refused(bank.create_order(order).await, "subject");
    let refund = RefundRequest {
        request_id: request_id("refund"),
        order_id: "O-unknown".into(),
        merchant_refund_no: String::new(),
        amount: Some(cny("1.00")),
        reason: format!("to {}", card_in_groups().replace(' ', "-")),
    };
    assert_card_refused(bank.refund(refund).await, "reason");
    let close = CloseOrderRequest {
        request_id: request_id("close"),
        order_id: "O-unknown".into(),
        reason: card(),
    };
    assert_card_refused(bank.close_order(close).await, "reason");
}

both_backends!(a_card_number_in_a_yield_product_name_is_refused);
async fn a_card_number_in_a_yield_product_name_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut y = YieldServiceClient::new(app.channel("core-banking").await);

    let product = RegisterProductRequest {
        request_id: request_id("register"),
        product_id: "MMF1".into(),
        name: "money fund".into(),
        fund_code: "000198".into(),
        fund_manager: format!("manager {}", card()),
        status: pb::ProductStatus::Open as i32,
        min_subscription: Some(cny("1.00")),
        fast_redeem_daily_cap: None,
    };

    assert_card_refused(y.register_product(product).await, "fund_manager");
}

both_backends!(control_and_bidirectional_characters_are_refused_in_free_text);
async fn control_and_bidirectional_characters_are_refused_in_free_text(backend: Backend) {
    let (_app, mut c, a, b) = two_accounts(backend, "10.00").await;

    for memo in [
        "two\nlines",
        "tab\there",
        "bell\u{7}",
        "evil\u{202E}txt.exe",
        "iso\u{2066}late",
    ] {
        let mut transfer = transfer_req(&a, &b, "1.00");
        transfer.memo = memo.to_owned();
        assert_field_refused(c.transfer(transfer).await, "INVALID_ARGUMENT", "memo");
    }
    let mut display = open_plain(AccountKind::MerchantSettlement, "m-1", "");
    display.display_name = "shop\u{202D}".into();
    assert_field_refused(
        c.open_account(display).await,
        "INVALID_ARGUMENT",
        "display_name",
    );

    assert_eq!(book(&mut c, &a).await, "10.00");
}

both_backends!(text_with_chinese_and_long_reference_numbers_is_kept_as_written);
async fn text_with_chinese_and_long_reference_numbers_is_kept_as_written(backend: Backend) {
    let (app, mut c, a, b) = two_accounts(backend, "10.00").await;
    // 28 digits in one run are a reference, not a card; a 13-digit run failing Luhn neither.
    let memo = "房租 11月 ref 2026113000012345678901234567 tel 1234567890123";

    let mut transfer = transfer_req(&a, &b, "1.00");
    transfer.memo = memo.to_owned();
    c.transfer(transfer)
        .await
        .expect("a plain memo is accepted");

    assert_eq!(last_memo(&app, &b).await, memo);
}

async fn last_memo(app: &TestApp, account: &str) -> String {
    let mut c = app.accounts("core-banking").await;
    let entries = c
        .list_entries(ListEntriesRequest {
            account_id: account.to_owned(),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    entries.last().expect("an entry").memo.clone()
}

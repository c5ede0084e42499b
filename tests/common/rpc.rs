//! Helpers of the gRPC clients: requests with fresh ids, accounts opened in one line, and
//! assertions on refusals.

use tonic::transport::Channel;

/// An AccountService client over mTLS.
pub type Accounts = paygate::grpc::pb::account_service_client::AccountServiceClient<Channel>;

/// The health of `service` ("" for the whole server) as the health service answers it.
pub async fn health_check(channel: Channel, service: &str) -> Result<i32, tonic::Status> {
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map(|r| r.into_inner().status)
}

/// The `ErrorInfo.reason` of a status, or "" when it has none.
pub fn reason_of(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// `Money` in CNY.
pub fn cny(amount: &str) -> paygate::grpc::pb::Money {
    paygate::grpc::pb::Money {
        currency: "CNY".to_owned(),
        amount: amount.to_owned(),
    }
}

/// A fresh idempotency key, unique within the test process.
pub fn request_id(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{tag}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The Luhn check digit that completes `partial` (the number without its last digit).
pub fn luhn_check_digit(partial: &str) -> char {
    let sum: u32 = partial
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            // The check digit will take position 0 from the right, so position i here is i + 1.
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    char::from_digit((10 - sum % 10) % 10, 10).expect("a digit")
}

/// A Luhn-valid 19-digit card number with BIN 622202, distinct for each `n`.
pub fn card_number(n: u64) -> String {
    let partial = format!("622202{n:012}");
    let mut number = partial.clone();
    number.push(luhn_check_digit(&partial));
    number
}

/// A valid resident ID number (GB 11643-1999 check digit), distinct for each `n` below 10,000:
/// region 110101, born on 1 January of 1990 + `n / 1000`, sequence `n % 1000`.
pub fn resident_id(n: u64) -> String {
    const WEIGHTS: [u64; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    assert!(n < 10_000, "resident_id takes n below 10,000");
    let body = format!("110101{}0101{:03}", 1990 + n / 1000, n % 1000);
    let sum: u64 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u64::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize];
    format!("{body}{}", char::from(check))
}

/// A resident identity of a person, distinct for each `document_number`.
pub fn identity(document_number: &str) -> paygate::grpc::pb::PersonIdentity {
    paygate::grpc::pb::PersonIdentity {
        full_name: "张三".to_owned(),
        document_type: paygate::grpc::pb::IdDocumentType::ResidentIdCard as i32,
        document_number: document_number.to_owned(),
        mobile: "13800000000".to_owned(),
    }
}

/// A request to open a Class II or Class III account for a person with a bound card.
pub fn open_personal(
    kind: paygate::grpc::pb::AccountKind,
    owner_id: &str,
    document_number: &str,
    card: &str,
) -> paygate::grpc::pb::OpenAccountRequest {
    paygate::grpc::pb::OpenAccountRequest {
        request_id: request_id("open"),
        kind: kind as i32,
        currency: "CNY".to_owned(),
        owner_id: owner_id.to_owned(),
        identity: Some(identity(document_number)),
        bound_card_number: card.to_owned(),
        parent_account_id: String::new(),
        display_name: String::new(),
    }
}

/// A request to open an account of a kind without identity or card (merchant, platform).
pub fn open_plain(
    kind: paygate::grpc::pb::AccountKind,
    owner_id: &str,
    parent: &str,
) -> paygate::grpc::pb::OpenAccountRequest {
    paygate::grpc::pb::OpenAccountRequest {
        request_id: request_id("open"),
        kind: kind as i32,
        currency: "CNY".to_owned(),
        owner_id: owner_id.to_owned(),
        identity: None,
        bound_card_number: String::new(),
        parent_account_id: parent.to_owned(),
        display_name: format!("{owner_id} account"),
    }
}

/// Opens an account and returns its id, panicking on refusal.
pub async fn open(client: &mut Accounts, req: paygate::grpc::pb::OpenAccountRequest) -> String {
    client
        .open_account(req)
        .await
        .expect("account opens")
        .into_inner()
        .account
        .expect("account")
        .account_id
}

/// Opens a Class II account for a fresh person (document and card derived from `n`).
/// The payment methods the cashier lists for `payer` on `order` (it must answer).
pub async fn payment_methods(
    client: &mut paygate::grpc::pb::cashier_service_client::CashierServiceClient<Channel>,
    order: &str,
    payer: &str,
) -> Vec<paygate::grpc::pb::PaymentMethodOption> {
    client
        .list_payment_methods(paygate::grpc::pb::ListPaymentMethodsRequest {
            order_id: order.to_owned(),
            payer_account_id: payer.to_owned(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("methods")
        .into_inner()
        .methods
}

/// A CreditService client over mTLS.
pub type Credit = paygate::grpc::pb::credit_service_client::CreditServiceClient<Channel>;

/// The credit line `line` as it stands (it must read).
pub async fn line_now(bank: &mut Credit, line: &str) -> paygate::grpc::pb::CreditLine {
    bank.get_credit_line(paygate::grpc::pb::GetCreditLineRequest {
        credit_line_id: line.to_owned(),
    })
    .await
    .expect("line reads")
    .into_inner()
    .credit_line
    .expect("line")
}

/// A line of `limit` at `rate` APR for `account`: no grace days, repayments due on the 10th,
/// no auto-repay.
pub fn line_req(
    account: &str,
    limit: &str,
    rate: &str,
) -> paygate::grpc::pb::OpenCreditLineRequest {
    paygate::grpc::pb::OpenCreditLineRequest {
        request_id: request_id("open"),
        account_id: account.to_owned(),
        limit: Some(cny(limit)),
        annual_rate: rate.to_owned(),
        grace_days: 0,
        repayment_day: 10,
        auto_repay: false,
    }
}

/// A Class II customer (person 1) of `app` with a line of `limit` at `rate` (see [`line_req`]),
/// opened by core banking: (core banking's credit client, the customer's account, the line).
pub async fn borrower(
    app: &super::app::TestApp,
    limit: &str,
    rate: &str,
) -> (Credit, String, String) {
    let mut bank = Credit::new(app.channel("core-banking").await);
    let account = open_class_ii(&mut app.accounts("mobile-backend").await, 1).await;
    let line = open_line(&mut bank, line_req(&account, limit, rate)).await;
    (bank, account, line)
}

/// A manual clock at 01:00 in Beijing on `date`.
pub fn clock_on(date: time::Date) -> paygate::clock::Clock {
    let at = date
        .with_hms(1, 0, 0)
        .expect("time")
        .assume_offset(time::UtcOffset::from_hms(8, 0, 0).expect("offset"));
    paygate::clock::Clock::manual(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("ms"))
}

/// Opens the credit line `req` asks for (it must open): its id.
pub async fn open_line(bank: &mut Credit, req: paygate::grpc::pb::OpenCreditLineRequest) -> String {
    bank.open_credit_line(req)
        .await
        .expect("line opens")
        .into_inner()
        .credit_line
        .expect("line")
        .credit_line_id
}

pub async fn open_class_ii(client: &mut Accounts, n: u64) -> String {
    open(
        client,
        open_personal(
            paygate::grpc::pb::AccountKind::ClassIi,
            &format!("customer-{n}"),
            &resident_id(n),
            &card_number(n),
        ),
    )
    .await
}

/// The agreement id (快捷支付协议号) of `account`'s bound card.
pub async fn bound_card_agreement(client: &mut Accounts, account: &str) -> String {
    client
        .get_account(paygate::grpc::pb::GetAccountRequest {
            account_id: account.to_owned(),
        })
        .await
        .expect("account reads")
        .into_inner()
        .account
        .and_then(|a| a.bound_card)
        .expect("a bound card")
        .agreement_id
}

/// Opens a Class III account for a fresh person (document and card derived from `n`).
pub async fn open_class_iii(client: &mut Accounts, n: u64) -> String {
    open(
        client,
        open_personal(
            paygate::grpc::pb::AccountKind::ClassIii,
            &format!("customer-{n}"),
            &resident_id(n),
            &card_number(n),
        ),
    )
    .await
}

/// Opens a merchant settlement account.
pub async fn open_merchant(client: &mut Accounts, merchant: &str) -> String {
    open(
        client,
        open_plain(
            paygate::grpc::pb::AccountKind::MerchantSettlement,
            merchant,
            "",
        ),
    )
    .await
}

/// Tops `account` up from its bound card, panicking on refusal.
pub async fn top_up(client: &mut Accounts, account: &str, amount: &str) {
    let r = client
        .top_up(paygate::grpc::pb::TopUpRequest {
            request_id: request_id("topup"),
            account_id: account.to_owned(),
            amount: Some(cny(amount)),
            memo: String::new(),
        })
        .await
        .expect("top-up accepted")
        .into_inner();
    assert_eq!(
        r.status,
        paygate::grpc::pb::ProcessingStatus::Succeeded as i32,
        "the on-us network always succeeds"
    );
}

/// A transfer request with a fresh request id.
pub fn transfer_req(from: &str, to: &str, amount: &str) -> paygate::grpc::pb::TransferRequest {
    paygate::grpc::pb::TransferRequest {
        request_id: request_id("transfer"),
        from_account_id: from.to_owned(),
        to_account_id: to.to_owned(),
        amount: Some(cny(amount)),
        memo: String::new(),
    }
}

/// The balance view of `account`.
pub async fn balance(client: &mut Accounts, account: &str) -> paygate::grpc::pb::Balance {
    client
        .get_balance(paygate::grpc::pb::GetBalanceRequest {
            account_id: account.to_owned(),
        })
        .await
        .expect("balance")
        .into_inner()
        .balance
        .expect("balance view")
}

/// The book balance of `account` as a decimal string.
pub async fn book(client: &mut Accounts, account: &str) -> String {
    balance(client, account).await.book.expect("book").amount
}

/// The `ErrorInfo.metadata` of a status (empty when it has none).
pub fn metadata_of(status: &tonic::Status) -> std::collections::HashMap<String, String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|info| info.metadata.clone())
        .unwrap_or_default()
}

/// Asserts a refusal's gRPC code and `ErrorInfo.reason`.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    reason: &str,
) -> tonic::Status {
    match result {
        Ok(answer) => panic!("expected {code:?}/{reason}, got an answer: {answer:?}"),
        Err(status) => {
            assert_eq!(
                (status.code(), reason_of(&status).as_str()),
                (code, reason),
                "{status:?}"
            );
            status
        }
    }
}

/// Starts a GetBalance call as `channel`'s caller that the gateway admits but never answers: its
/// one request message is followed by a body that never ends (a unary call is answered only
/// once its request is complete), so the call holds its permits until the task is aborted.
pub fn hold_a_unary_call(
    channel: Channel,
) -> tokio::task::JoinHandle<
    Result<tonic::Response<paygate::grpc::pb::GetBalanceResponse>, tonic::Status>,
> {
    use futures::StreamExt;
    tokio::spawn(async move {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let request = paygate::grpc::pb::GetBalanceRequest {
            account_id: "held".to_owned(),
        };
        let body = futures::stream::once(async move { request }).chain(futures::stream::pending());
        grpc.client_streaming(
            tonic::Request::new(body),
            http::uri::PathAndQuery::from_static("/paygate.v1.AccountService/GetBalance"),
            tonic_prost::ProstCodec::default(),
        )
        .await
    })
}

/// Waits until the gateway reports `calls` unary calls in flight (a held call is admitted a
/// moment after it starts); panics after 5 s.
pub async fn until_in_flight(app: &super::app::TestApp, calls: usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let line = format!("paygate_grpc_inflight_calls {calls}\n");
    loop {
        let (_, metrics) = app.admin_get("/metrics").await;
        if metrics.contains(&line) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {calls} calls in flight:\n{metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Retries `call` while it is refused with `reason` (the gateway frees a permit once it has seen
/// the client go); gives up after 5 s with the last answer.
pub async fn once_not_refused<T, F>(
    reason: &str,
    mut call: impl FnMut() -> F,
) -> Result<T, tonic::Status>
where
    F: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match call().await {
            Err(status)
                if reason_of(&status) == reason && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            answer => return answer,
        }
    }
}

/// A request to register a normal merchant that settles to `settlement`, signed for
/// `products`, acted for by `callers`.
pub fn merchant_req(
    name: &str,
    settlement: &str,
    products: Vec<paygate::grpc::pb::PaymentProduct>,
    callers: &[&str],
) -> paygate::grpc::pb::RegisterMerchantRequest {
    paygate::grpc::pb::RegisterMerchantRequest {
        request_id: request_id("merchant"),
        name: name.to_owned(),
        merchant_type: paygate::grpc::pb::MerchantType::Normal as i32,
        service_provider_id: String::new(),
        settlement_account_id: settlement.to_owned(),
        products,
        allowed_callers: callers.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// A merchant (its own settlement account) signed for `methods` in apps, acted for by
/// `callers`; registered by the bank, its id.
pub async fn app_merchant(
    app: &super::app::TestApp,
    name: &str,
    methods: &[paygate::grpc::pb::PaymentMethodType],
    callers: &[&str],
) -> String {
    use paygate::grpc::pb::{
        PaymentProduct, Scenario, cashier_service_client::CashierServiceClient,
    };
    let mut accounts = app.accounts("core-banking").await;
    let settlement = open_merchant(&mut accounts, name).await;
    let products = methods
        .iter()
        .map(|method| PaymentProduct {
            method: *method as i32,
            scenario: Scenario::App as i32,
            fee_rate: "0.006".to_owned(),
        })
        .collect();
    CashierServiceClient::new(app.channel("core-banking").await)
        .register_merchant(merchant_req(name, &settlement, products, callers))
        .await
        .expect("merchant registers")
        .into_inner()
        .merchant
        .expect("merchant")
        .merchant_id
}

/// An order of a cup of tea in an app.
pub fn app_order_req(
    merchant: &str,
    no: &str,
    amount: &str,
) -> paygate::grpc::pb::CreateOrderRequest {
    paygate::grpc::pb::CreateOrderRequest {
        request_id: request_id("order"),
        merchant_id: merchant.to_owned(),
        merchant_order_no: no.to_owned(),
        amount: Some(cny(amount)),
        subject: "a cup of tea".to_owned(),
        scenario: paygate::grpc::pb::Scenario::App as i32,
        expire_time: None,
    }
}

/// Pays an order of `amount` (merchant order `no`, at a new shop signed for CREDIT) with
/// `payer`'s credit `line`: (the order's id, the payment's drawdown id).
pub async fn pay_with_credit(
    app: &super::app::TestApp,
    payer: &str,
    line: &str,
    no: &str,
    amount: &str,
) -> (String, String) {
    use paygate::grpc::pb::{
        CreditPayment, PaymentMethodType, cashier_service_client::CashierServiceClient, pay_request,
    };
    let merchant = app_merchant(
        app,
        &format!("shop {no}"),
        &[PaymentMethodType::Credit],
        &["merchant-gateway"],
    )
    .await;
    let mut shop = CashierServiceClient::new(app.channel("merchant-gateway").await);
    let order = shop
        .create_order(app_order_req(&merchant, no, amount))
        .await
        .expect("order")
        .into_inner()
        .order
        .expect("order")
        .order_id;
    let drawdown = CashierServiceClient::new(app.channel("mobile-backend").await)
        .pay(pay_req(
            &order,
            payer,
            pay_request::Method::Credit(CreditPayment {
                credit_line_id: line.to_owned(),
                ..Default::default()
            }),
        ))
        .await
        .expect("paid with credit")
        .into_inner()
        .order
        .expect("order")
        .payment
        .expect("payment")
        .credit_drawdown_id;
    (order, drawdown)
}

/// A payment of `order` by `payer` with `method`, under a new request id.
pub fn pay_req(
    order: &str,
    payer: &str,
    method: paygate::grpc::pb::pay_request::Method,
) -> paygate::grpc::pb::PayRequest {
    paygate::grpc::pb::PayRequest {
        request_id: request_id("pay"),
        order_id: order.to_owned(),
        payer_account_id: payer.to_owned(),
        method: Some(method),
    }
}

/// An open health watch on `channel`, its first status read: a stream in flight.
pub async fn open_stream(
    channel: tonic::transport::Channel,
) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
    let mut watch = tonic_health::pb::health_client::HealthClient::new(channel)
        .watch(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("watch opens")
        .into_inner();
    watch
        .message()
        .await
        .expect("stream")
        .expect("first status");
    watch
}

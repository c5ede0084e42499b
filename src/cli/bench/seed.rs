//! Seeding through the public RPCs, concurrently and not measured: funded Class II accounts
//! (open, then top up from the bound card), merchants with their settlement accounts, unpaid
//! orders and payment codes. Every request carries a request id unique to the run; a call the
//! server could not take (UNAVAILABLE, RESOURCE_EXHAUSTED) is sent again with the same id.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use time::{Date, Month};
use tonic::{Code, Status, transport::Channel};

use crate::grpc::pb::{
    self, AccountKind, AuthFactor, CreateOrderRequest, IdDocumentType, IssuePaymentCodeRequest,
    Money, OpenAccountRequest, PaymentMethodType, PaymentProduct, PersonIdentity, ProcessingStatus,
    RegisterMerchantRequest, Scenario, TopUpRequest, account_service_client::AccountServiceClient,
    cashier_service_client::CashierServiceClient,
};

/// What every seeded Class II account is topped up with.
const TOP_UP_AMOUNT: &str = "1000000.00";
/// Sends of one seeding call before the run gives up.
const SEND_ATTEMPTS_MAX: u32 = 8;
/// How often progress is printed while seeding many items.
const PROGRESS_EVERY_S: u64 = 5;
/// Most items seeded in one go.
pub const SEED_ITEMS_MAX: usize = 10_000_000;

/// Amounts in the run's currency.
pub fn cny(amount: &str) -> Option<Money> {
    Some(Money {
        currency: "CNY".to_owned(),
        amount: amount.to_owned(),
    })
}

/// Runs `op(channel, i)` for every `i` below `count`, `concurrency` at a time spread over
/// `channels`; the answers in the order of `i`. Stops at the first call that fails for good.
pub async fn fan_out<T, F, Fut>(
    what: &str,
    channels: &[Channel],
    concurrency: usize,
    count: usize,
    op: F,
) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(Channel, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, Status>> + Send + 'static,
{
    assert!(!channels.is_empty() && concurrency > 0);
    if count > SEED_ITEMS_MAX {
        return Err(format!("{count} {what} is more than {SEED_ITEMS_MAX}"));
    }
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency.min(count) {
        let (op, next, failed) = (op.clone(), next.clone(), failed.clone());
        let channel = channels[t % channels.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while !failed.load(Ordering::Acquire) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                match with_retries(|| op(channel.clone(), i)).await {
                    Ok(value) => done.push((i, value)),
                    Err(status) => {
                        failed.store(true, Ordering::Release);
                        return Err(status);
                    }
                }
            }
            Ok(done)
        }));
    }
    let progress = (count >= 10_000).then(|| {
        let (next, what) = (next.clone(), what.to_owned());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(PROGRESS_EVERY_S)).await;
                let at = next.load(Ordering::Relaxed).min(count);
                eprintln!(
                    "  seeding {what}: {at}/{count} ({:.0}/s)",
                    at as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    });
    let mut all: Vec<(usize, T)> = Vec::with_capacity(count);
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(done)) => all.extend(done),
            Ok(Err(status)) => {
                first_error.get_or_insert_with(|| format!("seeding {what}: {status:?}"));
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("seeding {what}: a task failed: {e}"));
            }
        }
    }
    if let Some(progress) = progress {
        progress.abort();
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    all.sort_unstable_by_key(|(i, _)| *i);
    assert_eq!(all.len(), count, "every {what} seeded once");
    Ok(all.into_iter().map(|(_, value)| value).collect())
}

/// Sends again (the same request, so the same request id) while the server could not take it.
async fn with_retries<T, Fut>(mut send: impl FnMut() -> Fut) -> Result<T, Status>
where
    Fut: Future<Output = Result<T, Status>>,
{
    let mut attempt = 1;
    loop {
        match send().await {
            Err(status)
                if attempt < SEND_ATTEMPTS_MAX
                    && matches!(status.code(), Code::Unavailable | Code::ResourceExhausted) =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            answer => return answer,
        }
    }
}

/// A valid resident ID number (GB 11643-1999 check character), distinct for each `person` below
/// 20,000,000: region 110101, born `person / 1000` days after 1 January 1950, sequence
/// `person % 1000`.
pub fn resident_id(person: u64) -> String {
    const WEIGHTS: [u64; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    assert!(person < 20_000_000, "resident ids run out at 20,000,000");
    let first = Date::from_calendar_date(1950, Month::January, 1).unwrap_or(Date::MIN);
    let born = first
        .checked_add(time::Duration::days((person / 1000) as i64))
        .unwrap_or(first);
    let body = format!(
        "110101{:04}{:02}{:02}{:03}",
        born.year(),
        u8::from(born.month()),
        born.day(),
        person % 1000
    );
    let sum: u64 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u64::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize];
    format!("{body}{}", char::from(check))
}

/// A Luhn-valid 19-digit card number with BIN 622202, distinct for each `n`.
pub fn card_number(n: u64) -> String {
    let partial = format!("622202{:012}", n % 1_000_000_000_000);
    let sum: u32 = partial
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            // The check digit takes position 0 from the right, so position i here is i + 1.
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    format!("{partial}{}", (10 - sum % 10) % 10)
}

/// Opens `count` Class II accounts for distinct persons (`first_person` on) and tops each up
/// from its bound card; their ids.
pub async fn funded_accounts(
    channels: &[Channel],
    concurrency: usize,
    run: &str,
    first_person: u64,
    count: usize,
) -> Result<Vec<String>, String> {
    let run = run.to_owned();
    fan_out(
        "accounts",
        channels,
        concurrency,
        count,
        move |channel, i| {
            let person = first_person + i as u64;
            let run = run.clone();
            async move {
                let mut accounts = AccountServiceClient::new(channel);
                let account = accounts
                    .open_account(OpenAccountRequest {
                        request_id: format!("{run}-open-{i}"),
                        kind: AccountKind::ClassIi as i32,
                        currency: "CNY".to_owned(),
                        owner_id: format!("bench-{run}-{i}"),
                        display_name: format!("bench payer {i}"),
                        identity: Some(PersonIdentity {
                            full_name: "Bench Payer".to_owned(),
                            document_type: IdDocumentType::ResidentIdCard as i32,
                            document_number: resident_id(person),
                            mobile: String::new(),
                        }),
                        bound_card_number: card_number(person),
                        parent_account_id: String::new(),
                    })
                    .await?
                    .into_inner()
                    .account
                    .ok_or_else(|| Status::internal("OpenAccount answered without the account"))?
                    .account_id;
                let topped = accounts
                    .top_up(TopUpRequest {
                        request_id: format!("{run}-fund-{i}"),
                        account_id: account.clone(),
                        amount: cny(TOP_UP_AMOUNT),
                        memo: String::new(),
                    })
                    .await?
                    .into_inner();
                if topped.status != ProcessingStatus::Succeeded as i32 {
                    return Err(Status::internal(format!(
                        "the top-up of {account} ended {:?}",
                        topped.status
                    )));
                }
                Ok(account)
            }
        },
    )
    .await
}

/// Registers `count` merchants, each on a settlement account of its own, signed for balance
/// payments in apps and payment codes at the point of sale; their ids.
pub async fn merchants(
    channels: &[Channel],
    concurrency: usize,
    run: &str,
    count: usize,
) -> Result<Vec<String>, String> {
    let run = run.to_owned();
    fan_out(
        "merchants",
        channels,
        concurrency,
        count,
        move |channel, i| {
            let run = run.clone();
            async move {
                let settlement = AccountServiceClient::new(channel.clone())
                    .open_account(OpenAccountRequest {
                        request_id: format!("{run}-shop-{i}"),
                        kind: AccountKind::MerchantSettlement as i32,
                        currency: "CNY".to_owned(),
                        owner_id: format!("bench-{run}-shop-{i}"),
                        display_name: format!("bench shop {i}"),
                        ..OpenAccountRequest::default()
                    })
                    .await?
                    .into_inner()
                    .account
                    .ok_or_else(|| Status::internal("OpenAccount answered without the account"))?
                    .account_id;
                let product = |method: PaymentMethodType, scenario: Scenario| PaymentProduct {
                    method: method as i32,
                    scenario: scenario as i32,
                    fee_rate: "0.006".to_owned(),
                };
                CashierServiceClient::new(channel)
                    .register_merchant(RegisterMerchantRequest {
                        request_id: format!("{run}-merchant-{i}"),
                        name: format!("bench shop {i}"),
                        merchant_type: pb::MerchantType::Normal as i32,
                        service_provider_id: String::new(),
                        settlement_account_id: settlement,
                        products: vec![
                            product(PaymentMethodType::Balance, Scenario::App),
                            product(PaymentMethodType::PaymentCode, Scenario::Pos),
                        ],
                        allowed_callers: vec!["loadtest".to_owned()],
                    })
                    .await?
                    .into_inner()
                    .merchant
                    .map(|m| m.merchant_id)
                    .ok_or_else(|| {
                        Status::internal("RegisterMerchant answered without the merchant")
                    })
            }
        },
    )
    .await
}

/// Creates `count` unpaid orders of 1.00 in apps, the i-th of `merchants[i % len]`; their ids.
pub async fn orders(
    channels: &[Channel],
    concurrency: usize,
    tag: &str,
    merchants: Arc<Vec<String>>,
    count: usize,
) -> Result<Vec<String>, String> {
    assert!(!merchants.is_empty());
    let tag = tag.to_owned();
    fan_out("orders", channels, concurrency, count, move |channel, i| {
        let request_id = format!("{tag}-{i}");
        let merchant_id = merchants[i % merchants.len()].clone();
        async move {
            CashierServiceClient::new(channel)
                .create_order(CreateOrderRequest {
                    merchant_order_no: request_id.clone(),
                    request_id,
                    merchant_id,
                    amount: cny("1.00"),
                    subject: "bench".to_owned(),
                    scenario: Scenario::App as i32,
                    expire_time: None,
                })
                .await?
                .into_inner()
                .order
                .map(|o| o.order_id)
                .ok_or_else(|| Status::internal("CreateOrder answered without the order"))
        }
    })
    .await
}

/// Issues `count` payment codes (two factors verified), the i-th for `payers[i % len]`; the codes.
pub async fn payment_codes(
    channels: &[Channel],
    concurrency: usize,
    tag: &str,
    payers: Arc<Vec<String>>,
    count: usize,
) -> Result<Vec<String>, String> {
    assert!(!payers.is_empty());
    let tag = tag.to_owned();
    fan_out(
        "payment codes",
        channels,
        concurrency,
        count,
        move |channel, i| {
            let request = IssuePaymentCodeRequest {
                request_id: format!("{tag}-{i}"),
                payer_account_id: payers[i % payers.len()].clone(),
                verified_factors: vec![AuthFactor::Password as i32, AuthFactor::SmsOtp as i32],
            };
            async move {
                CashierServiceClient::new(channel)
                    .issue_payment_code(request)
                    .await?
                    .into_inner()
                    .payment_code
                    .map(|c| c.code)
                    .ok_or_else(|| Status::internal("IssuePaymentCode answered without the code"))
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_persons_have_valid_distinct_documents_and_cards() {
        assert_eq!(resident_id(0), "110101195001010009");
        assert_eq!(&resident_id(1_000)[6..14], "19500102");
        assert_eq!(&resident_id(365_000)[6..14], "19510101");
        assert_ne!(resident_id(7), resident_id(8));
        // The tests' helper gives 6222020000000000018 for n = 1 (Luhn check digit 8).
        assert_eq!(card_number(1), "6222020000000000018");
    }
}

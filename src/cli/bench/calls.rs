//! The call each workload makes, built from what was seeded: which accounts, merchants, orders
//! or payment codes it uses and how its answer counts. Every call carries a request id unique
//! to the run.

use std::sync::Arc;

use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::{
    drive::{self, Failure, Load, Measured},
    seed::cny,
    workload::Workload,
};
use crate::grpc::pb::{
    BalancePayment, GetBalanceRequest, OrderStatus, PayRequest, ScanPayRequest, Scenario,
    TransferRequest, account_service_client::AccountServiceClient,
    cashier_service_client::CashierServiceClient, pay_request,
};

/// What the workloads call with.
#[derive(Clone, Default)]
pub struct Seeded {
    /// Funded Class II accounts (payers, transfer ends).
    pub accounts: Arc<Vec<String>>,
    /// Registered merchants.
    pub merchants: Arc<Vec<String>>,
}

/// A random index below `n` (n > 0).
fn any(n: usize) -> usize {
    rand::random_range(0..n)
}

/// Two distinct random indices below `n` (n ≥ 2).
fn two(n: usize) -> (usize, usize) {
    let from = any(n);
    let to = (from + 1 + any(n - 1)) % n;
    (from, to)
}

/// Drives `workload` on `channels`, reading `pid`'s figures; `pool` holds the pre-seeded
/// orders (pay, pay-hot) or payment codes (scan-pay), one per call. `run` prefixes request ids.
pub async fn measure(
    workload: Workload,
    channels: &[Channel],
    load: Load,
    pid: u32,
    seeded: &Seeded,
    pool: Arc<Vec<String>>,
    run: &str,
) -> Measured {
    let accounts = seeded.accounts.clone();
    let merchants = seeded.merchants.clone();
    let tag: Arc<str> = Arc::from(format!("{run}-{}", workload.name()));
    match workload {
        Workload::Echo | Workload::Health => {
            drive::measure(channels, load, pid, |channel, _| async move {
                let answer = HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await;
                Some(answer.map(|_| ()).map_err(Failure::from))
            })
            .await
        }
        Workload::GetBalance => {
            drive::measure(channels, load, pid, move |channel, _| {
                let account_id = accounts[any(accounts.len())].clone();
                async move {
                    let answer = AccountServiceClient::new(channel)
                        .get_balance(GetBalanceRequest { account_id })
                        .await;
                    Some(answer.map(|_| ()).map_err(Failure::from))
                }
            })
            .await
        }
        Workload::Transfer | Workload::TransferHot => {
            let hot = workload == Workload::TransferHot;
            drive::measure(channels, load, pid, move |channel, n| {
                let (from, to) = if hot {
                    (1 + any(accounts.len() - 1), 0)
                } else {
                    two(accounts.len())
                };
                let request = TransferRequest {
                    request_id: format!("{tag}-{n}"),
                    from_account_id: accounts[from].clone(),
                    to_account_id: accounts[to].clone(),
                    amount: cny("0.01"),
                    memo: String::new(),
                };
                async move {
                    let answer = AccountServiceClient::new(channel).transfer(request).await;
                    Some(answer.map(|_| ()).map_err(Failure::from))
                }
            })
            .await
        }
        Workload::Pay | Workload::PayHot => {
            drive::measure(channels, load, pid, move |channel, n| {
                let order_id = usize::try_from(n).ok().and_then(|i| pool.get(i)).cloned();
                let payer = accounts[any(accounts.len())].clone();
                let tag = tag.clone();
                async move {
                    let request = PayRequest {
                        request_id: format!("{tag}-{n}"),
                        order_id: order_id?,
                        payer_account_id: payer,
                        method: Some(pay_request::Method::Balance(BalancePayment {})),
                    };
                    let answer = CashierServiceClient::new(channel).pay(request).await;
                    Some(paid(answer.map(|a| a.into_inner().order.map(|o| o.status))))
                }
            })
            .await
        }
        Workload::ScanPay => {
            drive::measure(channels, load, pid, move |channel, n| {
                let code = usize::try_from(n).ok().and_then(|i| pool.get(i)).cloned();
                let merchant_id = merchants[any(merchants.len())].clone();
                let tag = tag.clone();
                async move {
                    let request = ScanPayRequest {
                        request_id: format!("{tag}-{n}"),
                        merchant_id,
                        merchant_order_no: format!("{tag}-{n}"),
                        payment_code: code?,
                        amount: cny("1.00"),
                        subject: "bench".to_owned(),
                        scenario: Scenario::Pos as i32,
                    };
                    let answer = CashierServiceClient::new(channel).scan_pay(request).await;
                    Some(paid(answer.map(|a| a.into_inner().order.map(|o| o.status))))
                }
            })
            .await
        }
    }
}

/// A payment counts when the order it answers with SUCCEEDED.
fn paid(answer: Result<Option<i32>, tonic::Status>) -> Result<(), Failure> {
    match answer {
        Ok(Some(status)) if status == OrderStatus::Succeeded as i32 => Ok(()),
        Ok(status) => {
            let name = status
                .and_then(|s| OrderStatus::try_from(s).ok())
                .map_or("UNKNOWN", |s| s.as_str_name());
            Err(Failure {
                kind: name.to_owned(),
                message: "answered OK, but the order did not succeed".to_owned(),
            })
        }
        Err(status) => Err(Failure::from(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_never_goes_to_its_own_account() {
        for _ in 0..1000 {
            let (from, to) = two(3);
            assert!(from < 3 && to < 3 && from != to);
        }
        let (from, to) = two(2);
        assert_eq!((from + to, from == to), (1, false));
    }

    #[test]
    fn only_a_succeeded_order_counts_as_paid() {
        assert!(paid(Ok(Some(OrderStatus::Succeeded as i32))).is_ok());
        let failed = paid(Ok(Some(OrderStatus::Processing as i32))).unwrap_err();
        assert_eq!(failed.kind, "ORDER_STATUS_PROCESSING");
        let refused = paid(Err(tonic::Status::failed_precondition("no"))).unwrap_err();
        assert_eq!(refused.kind, "FailedPrecondition");
    }
}

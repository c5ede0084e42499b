//! Pay: the payer pays an order (balance, merchant QR, bound card). Each method is its own
//! file; every balance-funded one (yield too) ends in the one balance charge of `balance.rs`.

mod balance;
mod codes;
mod credit;
mod payment_code;
mod qr;
mod quick_pay;
mod yield_balance;

pub(in crate::cashier) use balance::{Charge, signed_product};
pub use codes::{PAYMENT_CODE_LEN_MAX, QrTarget, check_payment_code};

use super::*;

impl CashierService {
    pub async fn pay(&self, caller: &Caller, req: PayOrder) -> Result<Order, CashierError> {
        let print = fingerprint("Pay", &req);
        let paid_id = paid_order_id(caller, &req);
        let key = req.request_id.key(&caller.name);
        // One trip on the happy path: the checks read the read cache, and the batch answers a
        // retry whose first answer it stored (a success, or its own refusal) without applying
        // anything. Only a refusal met before the batch asks whether this is a retry.
        let e = match self
            .pay_once(caller, &req, print.clone(), Replaying::No)
            .await
        {
            Ok(order) => return Ok(order),
            Err(e) => e,
        };
        // A refusal claimed before a batch (no bound card, an order closed …) is this request's
        // answer, whatever happened to the order since (and a card is never charged for it).
        // One the batch decided answers again, named as the first time, from a batch that skips
        // the order's state (which the first request's outcome may have changed since).
        match self.inner.ledger.answered_request(&key, &print).await? {
            Some(Err(e @ LedgerError::Refused { .. })) => return Err(CashierError::from_ledger(e)),
            Some(Err(_)) => {
                return self
                    .pay_once(caller, &req, print, Replaying::StoredRefusal)
                    .await;
            }
            Some(Ok(_)) | None => {}
        }
        let Some(order_id) = &paid_id else {
            return Err(e);
        };
        // A retry of a payment that went through (or a copy of this very request that paid the
        // order while this one was on its way) answers the order as that payment left it.
        if let Some(observed) = self.first_payment(caller, &req, &print, order_id).await? {
            return self.replayed_order(order_id, observed.as_ref()).await;
        }
        // A refusal met before the batch from state claims the request id like the batch's own
        // (and meets a copy's success if one committed meanwhile).
        let (_, observed) = self.claim(key, &print, e).await?;
        self.replayed_order(order_id, observed.as_ref()).await
    }

    /// What the first success of this payment request observed, if it succeeded: for a
    /// bound-card payment, its settlement's (the order as it was paid or declined) once there
    /// is one, else its reservation's.
    async fn first_payment(
        &self,
        caller: &Caller,
        req: &PayOrder,
        print: &str,
        order_id: &str,
    ) -> Result<Option<Option<crate::ledger::Observed>>, CashierError> {
        let key = req.request_id.key(&caller.name);
        let Some(first) = self.first_success(&key, print).await? else {
            return Ok(None);
        };
        if let PayWith::BoundCard { .. } = req.with {
            let settle = req.request_id.step_key(&caller.name, "settle");
            if let Some(settled) = self
                .first_success(&settle, &format!("settle:{order_id}"))
                .await?
            {
                return Ok(Some(settled));
            }
        }
        Ok(Some(first))
    }

    async fn pay_once(
        &self,
        caller: &Caller,
        req: &PayOrder,
        print: String,
        replaying: Replaying,
    ) -> Result<Order, CashierError> {
        match &req.with {
            PayWith::YieldBalance { product_id } => {
                self.pay_yield_balance(caller, req, product_id, print, replaying)
                    .await
            }
            PayWith::Balance => self.pay_balance(caller, req, print, replaying).await,
            PayWith::Credit {
                line_id,
                instalments,
            } => {
                self.pay_credit(caller, req, (line_id, *instalments), print, replaying)
                    .await
            }
            PayWith::MerchantQr {
                qr_payload,
                amount,
                factors,
            } => {
                let qr = MerchantQrPay {
                    payload: qr_payload,
                    amount: *amount,
                    risk: RiskLevel::from_factors(factors),
                };
                self.pay_merchant_qr(caller, req, qr, print, replaying)
                    .await
            }
            PayWith::BoundCard { agreement_id } => {
                let (order, version) = self.payable_order(&req.order_id, replaying).await?;
                let (merchant, _) = self.merchant_checked(&order.merchant_id).await?;
                let payer = self.payer(caller, req.payer_account_id, &order).await?;
                let card = quick_pay::CardPay {
                    caller,
                    request_id: &req.request_id,
                    print,
                    merchant: &merchant,
                    payer: &payer,
                    agreement_id,
                };
                self.quick_pay(card, order, version).await
            }
        }
    }
}

/// What a payment funded by another service (yield, credit) has checked before asking it.
pub(in crate::cashier) struct Funded {
    pub(in crate::cashier) order: Order,
    pub(in crate::cashier) version: u64,
    pub(in crate::cashier) merchant: Merchant,
    pub(in crate::cashier) payer: AccountFacts,
    /// The order's amount, which the funding must cover.
    pub(in crate::cashier) amount: Money,
}

impl CashierService {
    /// The checks of a funded payment of an existing order: payable, its merchant signed for
    /// `method` in the order's scenario, the payer in the caller's scope.
    pub(in crate::cashier) async fn funded(
        &self,
        caller: &Caller,
        req: &PayOrder,
        method: Method,
        replaying: Replaying,
    ) -> Result<Funded, CashierError> {
        let (order, version) = self.payable_order(&req.order_id, replaying).await?;
        let (merchant, _) = self.merchant_checked(&order.merchant_id).await?;
        signed_product(&merchant, method, order.scenario)?;
        let payer = self.payer(caller, req.payer_account_id, &order).await?;
        let amount = Money::new(self.inner.currency, order.amount_minor);
        Ok(Funded {
            order,
            version,
            merchant,
            payer,
            amount,
        })
    }
}

/// A merchant-QR payment as the request states it.
pub(in crate::cashier) struct MerchantQrPay<'a> {
    pub(in crate::cashier) payload: &'a str,
    pub(in crate::cashier) amount: Option<Money>,
    pub(in crate::cashier) risk: RiskLevel,
}

/// The order a `Pay` request pays (for a static merchant code, the one it creates); `None`
/// when the request names none it could have paid.
fn paid_order_id(caller: &Caller, req: &PayOrder) -> Option<String> {
    let id = match &req.with {
        PayWith::Balance
        | PayWith::BoundCard { .. }
        | PayWith::YieldBalance { .. }
        | PayWith::Credit { .. } => req.order_id.clone(),
        PayWith::MerchantQr { qr_payload, .. } => match QrTarget::parse(qr_payload)? {
            QrTarget::Order(id) => id.to_owned(),
            QrTarget::Merchant(_) => derive_id("O", &caller.name, &req.request_id),
        },
    };
    (!id.is_empty()).then_some(id)
}

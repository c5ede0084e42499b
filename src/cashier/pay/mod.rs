//! Pay: the payer pays an order (balance, merchant QR, bound card). Each method is its own
//! file; every balance-funded one (yield too) ends in the one balance charge of `balance.rs`.

mod balance;
mod payment_code;
mod qr;
mod quick_pay;
mod yield_balance;

pub(in crate::cashier) use balance::{Charge, signed_product};

use super::*;

impl CashierService {
    pub async fn pay(&self, caller: &Caller, req: PayOrder) -> Result<Order, CashierError> {
        let print = fingerprint("Pay", &req);
        let key = req.request_id.key(&caller.name);
        let paid_id = paid_order_id(caller, &req);
        // A retry of a payment that went through answers the order as it stands: checked
        // before `payable_order`, which the first request's own payment now fails.
        if let Some(order_id) = &paid_id
            && self.succeeded_before(&key, &print).await?
        {
            return self.replayed_order(order_id).await;
        }
        match self.pay_once(caller, &req, print.clone()).await {
            Ok(order) => Ok(order),
            // A copy of this very request may have paid the order while this one was on its
            // way (identical requests sent at once): every copy answers what the first did.
            Err(e) => match &paid_id {
                Some(order_id) if self.succeeded_before(&key, &print).await? => {
                    self.replayed_order(order_id).await
                }
                _ => Err(e),
            },
        }
    }

    async fn pay_once(
        &self,
        caller: &Caller,
        req: &PayOrder,
        print: String,
    ) -> Result<Order, CashierError> {
        match &req.with {
            PayWith::YieldBalance { product_id } => {
                self.pay_yield_balance(caller, req, product_id, print).await
            }
            PayWith::Balance => self.pay_balance(caller, req, print).await,
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
                self.pay_merchant_qr(caller, req, qr, print).await
            }
            PayWith::BoundCard { agreement_id } => {
                let (order, version) = self.payable_order(&req.order_id).await?;
                let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
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
        PayWith::Balance | PayWith::BoundCard { .. } | PayWith::YieldBalance { .. } => {
            req.order_id.clone()
        }
        PayWith::MerchantQr { qr_payload, .. } => {
            if let Some(id) = qr_payload.strip_prefix(QR_ORDER_PREFIX) {
                id.to_owned()
            } else if qr_payload.starts_with(QR_MERCHANT_PREFIX) {
                derive_id("O", &caller.name, &req.request_id)
            } else {
                return None;
            }
        }
    };
    (!id.is_empty()).then_some(id)
}

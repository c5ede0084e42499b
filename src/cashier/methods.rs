//! ListPaymentMethods: every method for an order and payer, with why one is unavailable.

use super::*;

impl CashierService {
    /// Every payment method for an order and payer, available ones first, each unavailable one
    /// with its reason.
    // Over 70 lines: its steps (validate, build the documents and postings, submit, answer)
    // share many locals; breaking it into named steps is pending (architecture issue, item 1).
    pub async fn payment_methods(
        &self,
        caller: &Caller,
        order_id: &str,
        payer_id: AccountId,
    ) -> Result<Vec<MethodOption>, CashierError> {
        let (stored, _) = self.order_doc(order_id).await?;
        let order = stored.as_of(self.now_ms());
        let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
        let payer = self.inner.accounts.facts_in_scope(caller, payer_id).await?;
        let order_refusal = match order.status {
            OrderStatus::Created => None,
            OrderStatus::Closed => Some(("ORDER_CLOSED", "the order is closed")),
            OrderStatus::Processing | OrderStatus::Succeeded | OrderStatus::Failed => Some((
                "ORDER_ALREADY_PAID",
                "the order is already paid or being paid",
            )),
        };
        let payer_refusal = if payer.closed || payer.status == AccountStatus::Closed {
            Some(("ACCOUNT_CLOSED", "the payer account is closed"))
        } else if matches!(payer.status, AccountStatus::Frozen { no_debit: true, .. }) {
            Some(("ACCOUNT_FROZEN", "the payer account is frozen for debits"))
        } else if !payer.kind.is_electronic() {
            Some((
                "INVALID_ARGUMENT",
                "the payer is not a personal electronic account",
            ))
        } else {
            None
        };
        let headroom = self.outflow_headroom(&payer).await?;
        let mut options = Vec::new();
        for method in [
            Method::Balance,
            Method::BoundCard,
            Method::MerchantQr,
            Method::YieldBalance,
        ] {
            let mut o = MethodOption {
                method,
                available: true,
                unavailable_reason: String::new(),
                unavailable_message: String::new(),
                spendable_minor: None,
                agreement_id: String::new(),
                masked_card_number: String::new(),
            };
            let mut refuse = |reason: &str, message: &str| {
                if o.available {
                    o.available = false;
                    o.unavailable_reason = reason.to_owned();
                    o.unavailable_message = message.to_owned();
                }
            };
            if let Some((r, m)) = order_refusal {
                refuse(r, m);
            }
            if let Some((r, m)) = payer_refusal {
                refuse(r, m);
            }
            if merchant.product(method, order.scenario).is_none() {
                refuse(
                    "PRODUCT_NOT_SIGNED",
                    "the merchant is not signed for this method in this scenario",
                );
            }
            match method {
                Method::YieldBalance => refuse(
                    "METHOD_NOT_AVAILABLE",
                    "the yield service (余额增值) is not available on this gateway yet",
                ),
                Method::BoundCard => match &payer.card {
                    Some(card) => {
                        o.agreement_id = card.agreement_id.clone();
                        o.masked_card_number = card.masked();
                        if headroom < order.amount_minor {
                            refuse(
                                "LIMIT_EXCEEDED",
                                "the payer's class limits leave too little",
                            );
                        }
                        o.spendable_minor = Some(headroom.max(0));
                    }
                    None => refuse("NO_BOUND_CARD", "the payer has no bound card"),
                },
                Method::Balance | Method::MerchantQr => {
                    let barcode = if method == Method::MerchantQr {
                        self.barcode_headroom(&payer, RiskLevel::C).await?
                    } else {
                        i64::MAX
                    };
                    let spendable = payer.available.minor.min(headroom).min(barcode).max(0);
                    if payer.available.minor < order.amount_minor {
                        refuse("INSUFFICIENT_FUNDS", "the balance is less than the amount");
                    } else if spendable < order.amount_minor {
                        refuse("LIMIT_EXCEEDED", "the payer's limits leave too little");
                    }
                    o.spendable_minor = Some(spendable);
                }
                Method::PaymentCode => {}
            }
            options.push(o);
        }
        options.sort_by_key(|o| !o.available);
        Ok(options)
    }
}

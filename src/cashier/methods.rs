//! ListPaymentMethods: every method for an order and payer, with why one is unavailable.

use super::*;
use crate::credit::LineStatus;

impl CashierService {
    /// Every payment method for an order and payer, available ones first, each unavailable one
    /// with its reason.
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
        let ctx = Offer {
            headroom: self.outflow_headroom(&payer).await?,
            refusals: [order_refusal(&order), payer_refusal(&payer)],
            order,
            merchant,
            payer,
        };
        let mut options = Vec::new();
        for method in [
            Method::Balance,
            Method::BoundCard,
            Method::MerchantQr,
            Method::YieldBalance,
            Method::Credit,
        ] {
            options.push(self.method_option(&ctx, method).await?);
        }
        options.sort_by_key(|o| !o.available);
        Ok(options)
    }

    /// One method for the order and payer: the first reason it is unavailable, if any, and
    /// what the payer could spend with it.
    async fn method_option(
        &self,
        ctx: &Offer,
        method: Method,
    ) -> Result<MethodOption, CashierError> {
        let mut o = MethodOption {
            method,
            available: true,
            unavailable_reason: String::new(),
            unavailable_message: String::new(),
            spendable_minor: None,
            currency: ctx.order.currency.clone(),
            agreement_id: String::new(),
            masked_card_number: String::new(),
            yield_product_id: String::new(),
            credit_line_id: String::new(),
        };
        for (r, m) in ctx.refusals.iter().flatten() {
            refuse(&mut o, r, m);
        }
        if ctx.merchant.product(method, ctx.order.scenario).is_none() {
            refuse(
                &mut o,
                "PRODUCT_NOT_SIGNED",
                "the merchant is not signed for this method in this scenario",
            );
        }
        let (amount_minor, headroom) = (ctx.order.amount_minor, ctx.headroom);
        match method {
            Method::YieldBalance => match self.inner.yields.pay_source(&ctx.payer).await? {
                Some((product, redeemable)) => {
                    o.yield_product_id = product;
                    let spendable = redeemable.minor.min(headroom).max(0);
                    if redeemable.minor < amount_minor {
                        let message =
                            "the yield holding (within today's FAST cap) is less than the amount";
                        refuse(&mut o, "INSUFFICIENT_SHARES", message);
                    } else if spendable < amount_minor {
                        let message = "the payer's limits leave too little";
                        refuse(&mut o, "LIMIT_EXCEEDED", message);
                    }
                    o.spendable_minor = Some(spendable);
                }
                None => refuse(
                    &mut o,
                    "HOLDING_NOT_FOUND",
                    "the payer holds no yield shares",
                ),
            },
            Method::BoundCard => match &ctx.payer.card {
                Some(card) => {
                    o.agreement_id = card.agreement_id.clone();
                    o.masked_card_number = card.masked();
                    if headroom < amount_minor {
                        let message = "the payer's class limits leave too little";
                        refuse(&mut o, "LIMIT_EXCEEDED", message);
                    }
                    o.spendable_minor = Some(headroom.max(0));
                }
                None => refuse(&mut o, "NO_BOUND_CARD", "the payer has no bound card"),
            },
            Method::Balance | Method::MerchantQr => {
                let barcode = if method == Method::MerchantQr {
                    self.barcode_headroom(&ctx.payer, RiskLevel::C).await?
                } else {
                    i64::MAX
                };
                let available = ctx.payer.available.minor;
                let spendable = available.min(headroom).min(barcode).max(0);
                if available < amount_minor {
                    refuse(
                        &mut o,
                        "INSUFFICIENT_FUNDS",
                        "the balance is less than the amount",
                    );
                } else if spendable < amount_minor {
                    refuse(
                        &mut o,
                        "LIMIT_EXCEEDED",
                        "the payer's limits leave too little",
                    );
                }
                o.spendable_minor = Some(spendable);
            }
            Method::Credit => match self.inner.credit.line_of_account(ctx.payer.id).await? {
                Some(view) => {
                    o.credit_line_id.clone_from(&view.line.line_id);
                    let available = view.available.minor;
                    let spendable = available.min(headroom).max(0);
                    if view.line.status == LineStatus::Frozen {
                        refuse(
                            &mut o,
                            "CREDIT_LINE_FROZEN",
                            "the payer's credit line is frozen",
                        );
                    } else if view.overdue_principal.minor > 0 {
                        let message = "the payer's credit line has overdue instalments";
                        refuse(&mut o, "CREDIT_LINE_OVERDUE", message);
                    } else if available < amount_minor {
                        let message = "the credit line's available amount is less than the amount";
                        refuse(&mut o, "LIMIT_EXCEEDED", message);
                    } else if spendable < amount_minor {
                        let message = "the payer's class limits leave too little";
                        refuse(&mut o, "LIMIT_EXCEEDED", message);
                    }
                    o.spendable_minor = Some(spendable);
                }
                None => refuse(
                    &mut o,
                    "CREDIT_LINE_NOT_FOUND",
                    "the payer has no credit line",
                ),
            },
            // Offered by name only: the payer presents the code.
            Method::PaymentCode => {}
        }
        Ok(o)
    }
}

/// What the methods are offered for.
struct Offer {
    order: Order,
    merchant: Merchant,
    payer: AccountFacts,
    /// What the payer's class limits leave to spend.
    headroom: i64,
    /// Reasons every method is unavailable (the order's, the payer's).
    refusals: [Option<(&'static str, &'static str)>; 2],
}

/// Marks an option unavailable, keeping the first reason given.
fn refuse(o: &mut MethodOption, reason: &str, message: &str) {
    if o.available {
        o.available = false;
        o.unavailable_reason = reason.to_owned();
        o.unavailable_message = message.to_owned();
    }
}

fn order_refusal(order: &Order) -> Option<(&'static str, &'static str)> {
    match order.status {
        OrderStatus::Created => None,
        OrderStatus::Closed => Some(("ORDER_CLOSED", "the order is closed")),
        OrderStatus::Processing | OrderStatus::Succeeded | OrderStatus::Failed => Some((
            "ORDER_ALREADY_PAID",
            "the order is already paid or being paid",
        )),
    }
}

fn payer_refusal(payer: &AccountFacts) -> Option<(&'static str, &'static str)> {
    if payer.closed || payer.status == AccountStatus::Closed {
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
    }
}

//! Bound-card quick pay (快捷支付) through the clearing network.

use super::*;

impl CashierService {
    /// Bound-card quick pay (快捷支付) through the clearing network, two-phase: the order is
    /// reserved (PROCESSING, so nothing else can pay it), the network debits the card, and the
    /// settlement posts card suspense → merchant net + fee income with the order's final state
    /// in one transaction; a decline marks the order FAILED; no answer leaves it PROCESSING.
    #[allow(clippy::too_many_arguments)]
    // Over 70 lines: its steps (validate, build the documents and postings, submit, answer)
    // share many locals; breaking it into named steps is pending (architecture issue, item 1).
    pub(in crate::cashier) async fn quick_pay(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        print: String,
        merchant: &Merchant,
        mut order: Order,
        version: u64,
        payer: &AccountFacts,
        agreement_id: &str,
    ) -> Result<Order, CashierError> {
        let card = payer
            .card
            .clone()
            .ok_or(AccountError::NoBoundCard { account: payer.id })?;
        let token = payer
            .card_token
            .clone()
            .ok_or(AccountError::NoBoundCard { account: payer.id })?;
        if card.agreement_id != agreement_id {
            return Err(CashierError::invalid(
                "bound_card.agreement_id",
                "not the payer's quick-pay agreement",
            ));
        }
        let product = merchant
            .product(Method::BoundCard, order.scenario)
            .ok_or_else(|| CashierError::ProductNotSigned {
                merchant: merchant.merchant_id.clone(),
                method: Method::BoundCard.as_str(),
                scenario: order.scenario.as_str(),
            })?;
        let (fee_minor, net_minor) = split_fee(order.amount_minor, product.fee_rate)?;
        let network = ClearingNetwork::from(self.inner.accounts.clearing().network());
        // Phase 1: reserve the order, with the payer's class limits counted.
        let checks = self.limit_checks(payer, order.amount_minor, None);
        let now = self.now_ms();
        order.status = OrderStatus::Processing;
        order.payment = Some(Payment {
            method: Method::BoundCard,
            payer_account_id: payer.id.0,
            masked_card_number: card.masked(),
            fee_minor,
            net_minor,
            network: Some(network),
            network_reference: String::new(),
            transaction_id: String::new(),
            risk_level: None,
            failure_reason: String::new(),
        });
        order.event_sequence += 1;
        let event = event_of(&order, EventType::PaymentProcessing, None, now)?;
        let reserve = Command::Guarded {
            inner: Box::new(Command::NoOp),
            counters: checks.iter().map(|c| c.counter.clone()).collect(),
            releases: Vec::new(),
            caps: Vec::new(),
            documents: vec![write_doc(KIND_ORDER, &order.order_id, version, &order)?],
            events: vec![event],
        };
        match self
            .submit(request_id.key(&caller.name), print, reserve, &checks)
            .await
        {
            Ok(_) => {}
            Err(e) => {
                let e = self.conflict_is(e, "order");
                if let CashierError::Conflict { .. } = e {
                    return match self.payable_order(&order.order_id).await {
                        Ok(_) => Err(e),
                        Err(now) => Err(now),
                    };
                }
                return Err(e);
            }
        }
        // The reservation may be a replay: continue from the order as stored.
        let (mut order, version) = self.order_doc(&order.order_id).await?;
        if order.status != OrderStatus::Processing {
            return Ok(order.as_of(self.now_ms()));
        }
        let Some(mut payment) = order.payment.clone() else {
            tracing::error!(order = %order.order_id, "a PROCESSING order without its payment");
            return Err(CashierError::corrupt(KIND_ORDER, &order.order_id));
        };
        let amount = Money::new(self.inner.currency, order.amount_minor);
        let instruction = CardInstruction {
            reference: format!("QP{}", order.order_id),
            direction: CardDirection::DebitCard,
            card_token: token,
            amount,
        };
        let outcome = self.inner.accounts.clearing().submit(&instruction).await;
        let now = self.now_ms();
        let (command, _) = match outcome {
            ClearingOutcome::Unknown => return Ok(order.as_of(now)),
            ClearingOutcome::Succeeded { network_reference } => {
                payment.network_reference = network_reference;
                payment.transaction_id = String::new();
                order.payment = Some(payment.clone());
                order.status = OrderStatus::Succeeded;
                order.paid_at_ms = Some(now);
                order.event_sequence += 1;
                let event = event_of(&order, EventType::PaymentSucceeded, None, now)?;
                let settlement = AccountId(merchant.settlement_account_id);
                let mut entries = vec![
                    NewEntry {
                        account: self.inner.card_suspense,
                        side: Side::Debit,
                        amount,
                    },
                    NewEntry {
                        account: settlement,
                        side: Side::Credit,
                        amount: Money::new(amount.currency, payment.net_minor),
                    },
                    NewEntry {
                        account: self.inner.fee_income,
                        side: Side::Credit,
                        amount: Money::new(amount.currency, payment.fee_minor),
                    },
                ];
                entries.retain(|e| e.amount.minor > 0);
                let tx = NewTransaction {
                    entries,
                    metadata: payment_metadata(
                        "PAYMENT",
                        &order.order_id,
                        self.inner.card_suspense,
                        settlement,
                    ),
                    counters: Vec::new(),
                };
                (
                    guarded(
                        Command::Post(tx),
                        Vec::new(),
                        vec![write_doc(KIND_ORDER, &order.order_id, version, &order)?],
                        vec![event],
                    ),
                    (),
                )
            }
            ClearingOutcome::Failed { reason } => {
                payment.failure_reason = "CLEARING_DECLINED".to_owned();
                tracing::info!(order = %order.order_id, %reason, "quick pay declined");
                order.payment = Some(payment);
                order.status = OrderStatus::Failed;
                order.event_sequence += 1;
                let event = event_of(&order, EventType::PaymentFailed, None, now)?;
                (
                    guarded(
                        Command::NoOp,
                        Vec::new(),
                        vec![write_doc(KIND_ORDER, &order.order_id, version, &order)?],
                        vec![event],
                    ),
                    (),
                )
            }
        };
        let settle_print = format!("settle:{}", order.order_id);
        match self
            .submit(
                request_id.step_key(&caller.name, "settle"),
                settle_print,
                command,
                &[],
            )
            .await
        {
            Ok(_) => {}
            // Settled by a concurrent retry of the same request.
            Err(CashierError::Ledger(LedgerError::DocumentConflict { .. })) => {}
            Err(e) => return Err(e),
        }
        self.replayed_order(&order.order_id).await
    }
}

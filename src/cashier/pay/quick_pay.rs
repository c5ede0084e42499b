//! Bound-card quick pay (快捷支付) through the clearing network.

use super::*;
use crate::{
    account::outbound::{CallState, NewCall, OutboundCall, OutboundPurpose},
    clearing::routing::{PaymentMethod, Scenario},
};

/// A bound-card payment as the request states it.
pub(in crate::cashier) struct CardPay<'a> {
    pub(in crate::cashier) caller: &'a Caller,
    pub(in crate::cashier) request_id: &'a RequestId,
    pub(in crate::cashier) print: String,
    pub(in crate::cashier) merchant: &'a Merchant,
    pub(in crate::cashier) payer: &'a AccountFacts,
    pub(in crate::cashier) agreement_id: &'a str,
}

impl CashierService {
    /// Bound-card quick pay (快捷支付) through the clearing network, two-phase: the order is
    /// reserved (PROCESSING, so nothing else can pay it), the network debits the card, and the
    /// settlement posts card suspense → merchant net + fee income with the order's final state
    /// in one transaction; a decline marks the order FAILED; no answer leaves it PROCESSING.
    pub(in crate::cashier) async fn quick_pay(
        &self,
        card: CardPay<'_>,
        order: Order,
        version: u64,
    ) -> Result<Order, CashierError> {
        let (masked_card_number, token) = match agreed_card(card.payer, card.agreement_id) {
            Ok(agreed) => agreed,
            // No bound card is the payer's state: the refusal claims the request id (a retry
            // answers it again even once a card is bound) — unless the request was answered
            // before, which is then its answer.
            Err(CashierError::Account(e @ AccountError::NoBoundCard { .. })) => {
                let key = card.request_id.key(&card.caller.name);
                let (_, observed) = self
                    .inner
                    .accounts
                    .claim_refusal(key, &card.print, e)
                    .await?;
                return self
                    .replayed_order(&order.order_id, observed.as_ref())
                    .await;
            }
            Err(e) => return Err(e),
        };
        let product = signed_product(card.merchant, Method::BoundCard, order.scenario)?;
        let (fee_minor, net_minor) = split_fee(order.amount_minor, product.fee_rate)?;
        let clearing = self.inner.accounts.clearing();
        let bank = card
            .payer
            .card
            .as_ref()
            .map_or("", |c| clearing.bank_of(&c.first_six));
        let network = clearing.route(PaymentMethod::QuickPay, Scenario::Pay, bank);
        let payment = Payment {
            method: Method::BoundCard,
            payer_account_id: card.payer.id.0,
            masked_card_number,
            fee_minor,
            net_minor,
            network: Some(network),
            network_reference: String::new(),
            transaction_id: String::new(),
            risk_level: None,
            failure_reason: String::new(),
            yield_funding: None,
            credit_funding: None,
        };
        let order_id = order.order_id.clone();
        self.reserve_card_payment(&card, order, version, payment)
            .await?;
        // The reservation may be a replay: continue from the order as stored.
        let (order, version) = self.order_doc(&order_id).await?;
        if order.status != OrderStatus::Processing {
            return Ok(order.as_of(self.now_ms()));
        }
        let key = card.request_id.key(&card.caller.name);
        let network = order
            .payment
            .as_ref()
            .and_then(|p| p.network)
            .unwrap_or(ClearingNetwork::ON_US);
        let fresh = self.quick_pay_call(&order, network, &key, &card.print);
        let recorded = self.inner.accounts.outbound_call_for(fresh).await?;
        let (call, call_version) = (recorded.call, recorded.version);
        let amount = Money::new(self.inner.currency, order.amount_minor);
        let instruction = CardInstruction {
            reference: call.reference.clone(),
            direction: CardDirection::DebitCard,
            card_token: token,
            amount,
        };
        let client = self.inner.accounts.client_of(call.network)?;
        let outcome = crate::clearing::submit(client.as_ref(), &instruction).await;
        let Some(state) = CallState::of(&outcome) else {
            return Ok(order.as_of(self.now_ms()));
        };
        let record = call.settled(state.clone(), false).write(call_version)?;
        let command = self.card_settlement(card.merchant, order, version, state, record)?;
        self.submit_card_settlement(&card, command, &order_id).await
    }

    /// The call a quick pay of `order` through `network` sends, as it would be recorded now.
    fn quick_pay_call(
        &self,
        order: &Order,
        network: ClearingNetwork,
        key: &IdempotencyKey,
        print: &str,
    ) -> OutboundCall {
        self.inner.accounts.new_call(NewCall {
            network,
            purpose: OutboundPurpose::QuickPay,
            direction: CardDirection::DebitCard,
            amount_minor: order.amount_minor,
            key,
            print,
            subject: order.order_id.clone(),
        })
    }

    /// The settlement of a quick pay in the network's `state`, with the call's `record`:
    /// posted and SUCCEEDED, or FAILED with nothing posted.
    pub(in crate::cashier) fn card_settlement(
        &self,
        merchant: &Merchant,
        order: Order,
        version: u64,
        state: CallState,
        record: Vec<DocumentWrite>,
    ) -> Result<Command, CashierError> {
        let Some(payment) = order.payment.clone() else {
            tracing::error!(order = %order.order_id, "a PROCESSING order without its payment");
            return Err(CashierError::corrupt(KIND_ORDER, &order.order_id));
        };
        let mut command = match state {
            CallState::Succeeded { network_reference } => {
                self.card_paid(merchant, order, version, payment, network_reference)?
            }
            CallState::Failed { reason } => {
                tracing::info!(order = %order.order_id, %reason, "quick pay declined");
                card_declined(order, version, payment, self.now_ms())?
            }
            CallState::Sent => return Err(CashierError::corrupt(KIND_ORDER, &order.order_id)),
        };
        if let Command::Guarded { documents, .. } = &mut command {
            documents.extend(record);
        }
        Ok(command)
    }

    /// Phase 1: the order PROCESSING with its payment, the payer's class limits counted, and
    /// the network call recorded (before it is sent).
    async fn reserve_card_payment(
        &self,
        card: &CardPay<'_>,
        mut order: Order,
        version: u64,
        payment: Payment,
    ) -> Result<(), CashierError> {
        let checks = self.limit_checks(card.payer, order.amount_minor, None);
        let now = self.now_ms();
        let key = card.request_id.key(&card.caller.name);
        let network = payment.network.unwrap_or(ClearingNetwork::ON_US);
        let call = self.quick_pay_call(&order, network, &key, &card.print);
        order.status = OrderStatus::Processing;
        order.payment = Some(payment);
        order.event_sequence += 1;
        let event = event_of(&order, EventType::PaymentProcessing, None, now)?;
        let mut documents = vec![write_doc(KIND_ORDER, &order.order_id, version, &order)?];
        documents.extend(call.recorded()?);
        let reserve = Command::Guarded {
            inner: Box::new(Command::NoOp),
            counters: checks.iter().map(|c| c.counter.clone()).collect(),
            releases: Vec::new(),
            caps: Vec::new(),
            documents,
            events: vec![event],
        };
        match self.submit(key, card.print.clone(), reserve, &checks).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.payment_refused(e, &order.order_id).await),
        }
    }

    /// The network debited the card: card suspense → merchant net + fee income, with the order
    /// SUCCEEDED.
    fn card_paid(
        &self,
        merchant: &Merchant,
        mut order: Order,
        version: u64,
        mut payment: Payment,
        network_reference: String,
    ) -> Result<Command, CashierError> {
        let now = self.now_ms();
        payment.network_reference = network_reference;
        payment.transaction_id = String::new();
        let settlement = AccountId(merchant.settlement_account_id);
        let suspense = self.suspense_of(payment.network)?;
        let entries = self.payment_entries(
            suspense,
            settlement,
            order.amount_minor,
            payment.net_minor,
            payment.fee_minor,
        );
        order.payment = Some(payment);
        order.status = OrderStatus::Succeeded;
        order.paid_at_ms = Some(now);
        order.event_sequence += 1;
        let event = event_of(&order, EventType::PaymentSucceeded, None, now)?;
        let tx = NewTransaction {
            entries,
            metadata: payment_metadata("PAYMENT", &order.order_id, suspense, settlement),
            counters: Vec::new(),
        };
        Ok(guarded(
            Command::Post(tx),
            Vec::new(),
            vec![write_doc(KIND_ORDER, &order.order_id, version, &order)?],
            vec![event],
        ))
    }

    /// Phase 2 under the request's `settle` step; a concurrent retry that settled first is fine.
    async fn submit_card_settlement(
        &self,
        card: &CardPay<'_>,
        command: Command,
        order_id: &str,
    ) -> Result<Order, CashierError> {
        let key = card.request_id.step_key(&card.caller.name, "settle");
        let settle_print = format!("settle:{order_id}");
        let mut observed = None;
        match self.submit_observed(key, settle_print, command, &[]).await {
            Ok((_, seen)) => observed = seen,
            // Settled by a concurrent retry of the same request.
            Err(CashierError::Ledger(LedgerError::DocumentConflict { .. })) => {}
            Err(e) => return Err(e),
        }
        self.replayed_order(order_id, observed.as_ref()).await
    }
}

/// The payer's masked card number and card token, if `agreement_id` is its quick-pay agreement.
fn agreed_card(payer: &AccountFacts, agreement_id: &str) -> Result<(String, String), CashierError> {
    let no_card = || AccountError::NoBoundCard { account: payer.id };
    let card = payer.card.as_ref().ok_or_else(no_card)?;
    let token = payer.card_token.clone().ok_or_else(no_card)?;
    if card.agreement_id != agreement_id {
        return Err(CashierError::invalid(
            "bound_card.agreement_id",
            "not the payer's quick-pay agreement",
        ));
    }
    Ok((card.masked(), token))
}

/// The network declined: the order FAILED, nothing posted.
fn card_declined(
    mut order: Order,
    version: u64,
    mut payment: Payment,
    now: i64,
) -> Result<Command, CashierError> {
    payment.failure_reason = "CLEARING_DECLINED".to_owned();
    order.payment = Some(payment);
    order.status = OrderStatus::Failed;
    order.event_sequence += 1;
    let event = event_of(&order, EventType::PaymentFailed, None, now)?;
    Ok(guarded(
        Command::NoOp,
        Vec::new(),
        vec![write_doc(KIND_ORDER, &order.order_id, version, &order)?],
        vec![event],
    ))
}

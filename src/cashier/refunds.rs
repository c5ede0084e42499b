//! Refund (back along the original method) and GetRefund.

use super::*;
use crate::account::outbound::{CallState, NewCall, OutboundCall, OutboundPurpose};

impl CashierService {
    /// Refunds (part of) a paid order back along its payment method. A refusal met before the
    /// batch from state (no such order, an order not paid or closed, more than is left to
    /// refund) claims the request id like the batch's own; a replay answers the refund as it
    /// stands (final once it left PROCESSING).
    pub async fn refund(&self, caller: &Caller, req: RefundOrder) -> Result<Refund, CashierError> {
        check_text("reason", &req.reason, false)?;
        if !req.merchant_refund_no.is_empty() {
            check_no("merchant_refund_no", &req.merchant_refund_no)?;
        }
        let amount = self.in_currency(req.amount)?;
        let key = req.request_id.key(&caller.name);
        let print = fingerprint("Refund", &req);
        let refund_id = derive_id("R", &caller.name, &req.request_id);
        match self
            .refund_once(caller, &req, &refund_id, amount, key.clone(), &print)
            .await
        {
            Err(e) => {
                self.claim(key, &print, e).await?;
                self.refund_doc(&refund_id).await
            }
            ok => ok,
        }
    }

    /// The refund as it stands, or `RefundNotFound`.
    async fn refund_doc(&self, refund_id: &str) -> Result<Refund, CashierError> {
        self.load_linked::<Refund>(KIND_REFUND, refund_id, Freshness::Current)
            .await?
            .map(|(r, _)| r)
            .ok_or_else(|| CashierError::RefundNotFound {
                refund: refund_id.to_owned(),
            })
    }

    async fn refund_once(
        &self,
        caller: &Caller,
        req: &RefundOrder,
        refund_id: &str,
        amount: Money,
        key: IdempotencyKey,
        print: &str,
    ) -> Result<Refund, CashierError> {
        let (stored, version) = self.order_doc(&req.order_id).await?;
        let (merchant, _) = self.merchant_doc(&stored.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        let print = print.to_owned();
        let order = stored.as_of(self.now_ms());
        let payment = match self.refundable(&order, refund_id, amount).await? {
            Refundable::Payment(payment) => payment,
            Refundable::Replay(refund) => {
                // Answered without the ledger, which would have checked that the id is still
                // this request's: a request id used for another refund is refused here too.
                self.inner.ledger.answered_request(&key, &print).await?;
                return Ok(refund);
            }
        };
        let target = RefundTarget {
            merchant: &merchant,
            order,
            order_version: version,
            payment: &payment,
            refund_id,
            amount,
            key: &key,
            print: &print,
        };
        let command = self.refund_command(req, target).await?;
        let outcome = self
            .submit(key, print, command, &[])
            .await
            .map_err(|e| self.conflict_is(e, "refund"))?;
        if payment.method == Method::BoundCard && matches!(outcome, Outcome::Posted(_)) {
            self.credit_card(caller, &req.request_id, refund_id, &payment, amount)
                .await?;
        }
        self.refund_doc(refund_id).await
    }

    /// Whether `amount` can be refunded of `order` now; a replay of a refund that did go
    /// through answers with it even when the order no longer allows it.
    async fn refundable(
        &self,
        order: &Order,
        refund_id: &str,
        amount: Money,
    ) -> Result<Refundable, CashierError> {
        match order.status {
            OrderStatus::Succeeded => {}
            OrderStatus::Closed => {
                return Err(CashierError::OrderClosed {
                    order: order.order_id.clone(),
                });
            }
            OrderStatus::Created | OrderStatus::Processing | OrderStatus::Failed => {
                // A replay of a refund that did succeed still answers with it.
                if let Some((refund, _)) = self
                    .load_linked::<Refund>(KIND_REFUND, refund_id, Freshness::Current)
                    .await?
                {
                    return Ok(Refundable::Replay(refund));
                }
                return Err(CashierError::OrderNotPaid {
                    order: order.order_id.clone(),
                });
            }
        }
        let payment = order.payment.clone().ok_or_else(|| {
            tracing::error!(order = %order.order_id, "a succeeded order without its payment");
            CashierError::corrupt(KIND_ORDER, &order.order_id)
        })?;
        let refundable = order.amount_minor - order.refunded_minor;
        if amount.minor > refundable {
            if let Some((refund, _)) = self
                .load_linked::<Refund>(KIND_REFUND, refund_id, Freshness::Current)
                .await?
            {
                return Ok(Refundable::Replay(refund));
            }
            let m = |minor: i64| Money::new(amount.currency, minor).to_decimal_string();
            return Err(CashierError::RefundExceedsPaid {
                order: order.order_id.clone(),
                paid: m(order.amount_minor),
                refunded: m(order.refunded_minor),
                refundable: m(refundable),
                requested: amount.to_decimal_string(),
            });
        }
        if order.event_sequence >= REFUNDS_PER_ORDER_MAX + 3 {
            return Err(CashierError::invalid(
                "order_id",
                format!("at most {REFUNDS_PER_ORDER_MAX} refunds per order"),
            ));
        }
        Ok(Refundable::Payment(payment))
    }

    /// The refund's command: the refund document, the order's new refunded amount and event,
    /// and the posting settlement → payer side, under the payer's balance caps.
    async fn refund_command(
        &self,
        req: &RefundOrder,
        t: RefundTarget<'_>,
    ) -> Result<Command, CashierError> {
        let RefundTarget {
            merchant,
            mut order,
            order_version,
            payment,
            refund_id,
            amount,
            key,
            print,
        } = t;
        let now = self.now_ms();
        // Back along the original method: balance-funded payments go back to the payer's
        // account; a card payment goes back through the card's clearing suspense (the network
        // credits the card). The fee is kept (fee_refunded = 0): the merchant bears the whole
        // refund.
        let payer_side = match payment.method {
            Method::BoundCard => self.suspense_of(payment.network)?,
            Method::Balance
            | Method::MerchantQr
            | Method::PaymentCode
            | Method::YieldBalance
            | Method::Credit => AccountId(payment.payer_account_id),
        };
        let settlement = AccountId(merchant.settlement_account_id);
        // A card refund is complete only when the network has credited the card.
        let by_card = payment.method == Method::BoundCard;
        let refund = new_refund(req, merchant, &order, refund_id, amount, by_card, now);
        order.refunded_minor += amount.minor;
        order.event_sequence += 1;
        let event_type = if by_card {
            EventType::RefundProcessing
        } else {
            EventType::RefundSucceeded
        };
        let event = event_of(&order, event_type, Some(&refund), now)?;
        let mut documents = vec![
            write_doc(KIND_ORDER, &order.order_id, order_version, &order)?,
            write_doc(KIND_REFUND, refund_id, 0, &refund)?,
        ];
        if !req.merchant_refund_no.is_empty() {
            documents.push(write_doc(
                KIND_REFUND_NO,
                &no_key(&merchant.merchant_id, &req.merchant_refund_no),
                0,
                &refund_id,
            )?);
        }
        if by_card {
            // The network call is recorded before it is sent (the recovery worker's to-do).
            let network = payment.network.unwrap_or(ClearingNetwork::ON_US);
            let call = self.card_refund_call(network, amount, key, print, refund_id);
            documents.extend(call.recorded()?);
        }
        let (tx, restores) = match &payment.credit_funding {
            // A credit payment restores its line first, then credits any surplus.
            Some(draw) => {
                let restore = self
                    .inner
                    .credit
                    .restore(&draw.line_id, payer_side, amount)
                    .await?;
                documents.extend(restore.documents);
                let tx = credit_refund_posting(
                    &order.order_id,
                    settlement,
                    payer_side,
                    draw,
                    amount,
                    restore.entries,
                );
                (tx, restore.releases)
            }
            None => (
                refund_posting("REFUND", &order.order_id, settlement, payer_side, amount),
                Vec::new(),
            ),
        };
        let mut command = guarded(Command::Post(tx), Vec::new(), documents, vec![event]);
        if let Command::Guarded { caps, releases, .. } = &mut command {
            *releases = restores;
            if !by_card {
                *caps = self.inner.accounts.facts(payer_side).await?.balance_caps;
            }
        }
        Ok(command)
    }

    /// The suspense now owes the card: the network credits it (on-us: at once), and what it
    /// answered is recorded with the call's record. A retry continues from the record: settled,
    /// nothing is sent again; sent, it is sent again under the same reference.
    async fn credit_card(
        &self,
        caller: &Caller,
        request_id: &RequestId,
        refund_id: &str,
        payment: &Payment,
        amount: Money,
    ) -> Result<(), CashierError> {
        let payer = AccountId(payment.payer_account_id);
        let Some(token) = self.inner.accounts.facts(payer).await?.card_token else {
            return Ok(());
        };
        let accounts = &self.inner.accounts;
        let key = request_id.key(&caller.name);
        let network = payment.network.unwrap_or(ClearingNetwork::ON_US);
        let fresh = self.card_refund_call(network, amount, &key, "", refund_id);
        let recorded = accounts.outbound_call_for(fresh).await?;
        let (call, version) = (recorded.call, recorded.version);
        if call.state.is_final() {
            return Ok(());
        }
        let instruction = CardInstruction {
            reference: call.reference.clone(),
            direction: CardDirection::CreditCard,
            card_token: token,
            amount,
        };
        let client = accounts.client_of(call.network)?;
        let outcome = crate::clearing::submit(client.as_ref(), &instruction).await;
        let Some(state) = CallState::of(&outcome) else {
            tracing::warn!(refund = %refund_id, "card refund unanswered by the network; stays PROCESSING for the recovery worker");
            return Ok(());
        };
        let record = call.settled(state.clone(), false).write(version)?;
        let Some((command, step)) = self
            .card_refund_settlement(refund_id, state, record)
            .await?
        else {
            return Ok(());
        };
        let step_id = format!("{request_id}#{step}");
        match self
            .submit(
                request_id.step_key(&caller.name, step),
                fingerprint("CardRefund", &step_id),
                command,
                &[],
            )
            .await
        {
            Ok(_) => Ok(()),
            // The recovery worker settled it first.
            Err(CashierError::Ledger(LedgerError::DocumentConflict { .. })) => Ok(()),
            Err(e) => Err(self.conflict_is(e, "refund")),
        }
    }

    /// The settlement of a card refund the network answered (`state`), with the call's
    /// `record`, in one batch with its event: credited → SUCCEEDED; declined → FAILED and the
    /// money goes back from the card suspense to the merchant (the order's refundable amount
    /// with it). `None` when the refund is no longer PROCESSING. The step names the settlement.
    pub(in crate::cashier) async fn card_refund_settlement(
        &self,
        refund_id: &str,
        state: CallState,
        record: Vec<DocumentWrite>,
    ) -> Result<Option<(Command, &'static str)>, CashierError> {
        let (mut refund, refund_version) = self
            .load_linked::<Refund>(KIND_REFUND, refund_id, Freshness::Current)
            .await?
            .ok_or_else(|| CashierError::RefundNotFound {
                refund: refund_id.to_owned(),
            })?;
        if refund.status != RefundStatus::Processing {
            return Ok(None);
        }
        let (mut order, order_version) = self.order_doc(&refund.order_id).await?;
        let now = self.now_ms();
        let (command_inner, event_type, step) = match state {
            CallState::Sent => return Ok(None),
            CallState::Succeeded { .. } => {
                refund.status = RefundStatus::Succeeded;
                (Command::NoOp, EventType::RefundSucceeded, "settle")
            }
            CallState::Failed { reason } => {
                refund.status = RefundStatus::Failed;
                refund.failure_reason = reason;
                order.refunded_minor -= refund.amount_minor;
                let returned = self.returned_to_merchant(&order, &refund).await?;
                (returned, EventType::RefundFailed, "return")
            }
        };
        refund.completed_at_ms = Some(now);
        order.event_sequence += 1;
        let event = event_of(&order, event_type, Some(&refund), now)?;
        let command = guarded(
            command_inner,
            Vec::new(),
            vec![
                write_doc(KIND_ORDER, &order.order_id, order_version, &order)?,
                write_doc(KIND_REFUND, refund_id, refund_version, &refund)?,
            ]
            .into_iter()
            .chain(record)
            .collect(),
            vec![event],
        );
        Ok(Some((command, step)))
    }

    /// The call a card refund through `network` sends, as it would be recorded now.
    fn card_refund_call(
        &self,
        network: ClearingNetwork,
        amount: Money,
        key: &IdempotencyKey,
        print: &str,
        refund_id: &str,
    ) -> OutboundCall {
        self.inner.accounts.new_call(NewCall {
            network,
            purpose: OutboundPurpose::CardRefund,
            direction: CardDirection::CreditCard,
            amount_minor: amount.minor,
            key,
            print,
            subject: refund_id.to_owned(),
        })
    }

    /// A declined card refund: the card suspense gives the merchant its money back.
    async fn returned_to_merchant(
        &self,
        order: &Order,
        refund: &Refund,
    ) -> Result<Command, CashierError> {
        let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
        let settlement = AccountId(merchant.settlement_account_id);
        let currency = Currency::from_code(&refund.currency)
            .map_err(|e| CashierError::invalid("currency", e.to_string()))?;
        let amount = Money::new(currency, refund.amount_minor);
        let tx = refund_posting(
            "REFUND_RETURNED",
            &order.order_id,
            self.suspense_of(order.payment.as_ref().and_then(|p| p.network))?,
            settlement,
            amount,
        );
        Ok(Command::Post(tx))
    }

    pub async fn get_refund(
        &self,
        caller: &Caller,
        key: RefundKey,
    ) -> Result<Refund, CashierError> {
        let id = match key {
            RefundKey::Id(id) => id,
            RefundKey::MerchantNo { merchant_id, no } => {
                let (merchant, _) = self.merchant_doc(&merchant_id).await?;
                self.check_merchant(caller, &merchant).await?;
                self.load::<String>(KIND_REFUND_NO, &no_key(&merchant_id, &no))
                    .await?
                    .map(|(id, _)| id)
                    .ok_or(CashierError::RefundNotFound { refund: no })?
            }
        };
        let (refund, _) = self
            .load_linked::<Refund>(KIND_REFUND, &id, Freshness::Current)
            .await?
            .ok_or(CashierError::RefundNotFound { refund: id.clone() })?;
        let (merchant, _) = self.merchant_doc(&refund.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        Ok(refund)
    }
}

/// What a refund is of: the paid order, its payment and the amount.
struct RefundTarget<'a> {
    merchant: &'a Merchant,
    order: Order,
    order_version: u64,
    payment: &'a Payment,
    refund_id: &'a str,
    amount: Money,
    /// The refund request's key and fingerprint (a card refund's call is recorded under them).
    key: &'a IdempotencyKey,
    print: &'a str,
}

/// Whether a refund goes ahead, or is a replay of one that already did.
enum Refundable {
    Payment(Payment),
    Replay(Refund),
}

/// The two legs of a refund or its return: `from` debited, `to` credited.
fn refund_posting(
    kind: &str,
    order_id: &str,
    from: AccountId,
    to: AccountId,
    amount: Money,
) -> NewTransaction {
    NewTransaction::transfer(from, to, amount, payment_metadata(kind, order_id, from, to))
}

/// A credit payment's refund: the merchant's debit, the line restored and any surplus to the
/// payer (`credits`, from the credit service).
fn credit_refund_posting(
    order_id: &str,
    settlement: AccountId,
    payer: AccountId,
    draw: &CreditDraw,
    amount: Money,
    credits: Vec<NewEntry>,
) -> NewTransaction {
    let mut entries = vec![NewEntry {
        account: settlement,
        side: Side::Debit,
        amount,
    }];
    entries.extend(credits);
    let mut metadata = payment_metadata("REFUND", order_id, settlement, payer);
    metadata.insert("credit_line".to_owned(), draw.line_id.clone());
    NewTransaction {
        entries,
        metadata,
        counters: Vec::new(),
    }
}

/// A refund document as it is created: SUCCEEDED at once, or PROCESSING until the network
/// credits the card.
fn new_refund(
    req: &RefundOrder,
    merchant: &Merchant,
    order: &Order,
    refund_id: &str,
    amount: Money,
    by_card: bool,
    now: i64,
) -> Refund {
    Refund {
        refund_id: refund_id.to_owned(),
        order_id: order.order_id.clone(),
        merchant_id: merchant.merchant_id.clone(),
        merchant_refund_no: req.merchant_refund_no.clone(),
        currency: amount.currency.code().to_owned(),
        amount_minor: amount.minor,
        fee_refunded_minor: 0,
        status: if by_card {
            RefundStatus::Processing
        } else {
            RefundStatus::Succeeded
        },
        reason: req.reason.clone(),
        failure_reason: String::new(),
        transaction_id: String::new(),
        created_at_ms: now,
        completed_at_ms: (!by_card).then_some(now),
    }
}

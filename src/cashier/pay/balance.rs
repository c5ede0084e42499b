//! Paying from the payer's balance, and the one balance charge every balance-funded method
//! (balance, merchant QR, payment code) ends in.

use super::super::*;

/// One balance charge: who pays which order of which merchant, and what else commits with it.
pub(in crate::cashier) struct Charge<'a> {
    pub(in crate::cashier) caller: &'a Caller,
    pub(in crate::cashier) request_id: &'a RequestId,
    pub(in crate::cashier) fingerprint: String,
    pub(in crate::cashier) merchant: &'a Merchant,
    pub(in crate::cashier) order: Order,
    pub(in crate::cashier) order_version: u64,
    pub(in crate::cashier) payer: &'a AccountFacts,
    pub(in crate::cashier) method: Method,
    pub(in crate::cashier) barcode: Option<Barcode>,
    pub(in crate::cashier) created_now: bool,
    pub(in crate::cashier) extra: Vec<DocumentWrite>,
    /// A FAST redemption paying for it (all of it for YIELD_BALANCE); for the other methods
    /// none, and a top-up is added when the balance is short and the payer opted in.
    pub(in crate::cashier) funding: Option<PaymentFunding>,
    /// A credit line drawdown paying for all of it (CREDIT); never with `funding`.
    pub(in crate::cashier) credit: Option<CreditFunding>,
}

impl CashierService {
    /// Pay an existing order from the payer's balance.
    pub(in crate::cashier) async fn pay_balance(
        &self,
        caller: &Caller,
        req: &PayOrder,
        print: String,
        replaying: Replaying,
    ) -> Result<Order, CashierError> {
        let (order, version) = self.payable_order(&req.order_id, replaying).await?;
        let (merchant, _) = self.merchant_checked(&order.merchant_id).await?;
        let payer = self.payer(caller, req.payer_account_id, &order).await?;
        self.charge(Charge {
            caller,
            request_id: &req.request_id,
            fingerprint: print,
            merchant: &merchant,
            order,
            order_version: version,
            payer: &payer,
            method: Method::Balance,
            barcode: None,
            created_now: false,
            extra: Vec::new(),
            funding: None,
            credit: None,
        })
        .await
    }

    /// One payment from the payer's balance: payer debit, merchant credit net of fee, fee to the
    /// bank's fee income — one journal transaction with the order's new state, its events and
    /// any other documents (order number, consumed code), under the payer's limits. A FAST
    /// redemption that funds it (pay with yield, or a top-up) posts its legs first in the same
    /// transaction, with its counters and records in the same batch.
    pub(in crate::cashier) async fn charge(
        &self,
        mut c: Charge<'_>,
    ) -> Result<Order, CashierError> {
        let product = signed_product(c.merchant, c.method, c.order.scenario)?;
        let (fee_minor, net_minor) = split_fee(c.order.amount_minor, product.fee_rate)?;
        let settlement = AccountId(c.merchant.settlement_account_id);
        if c.funding.is_none() && c.credit.is_none() {
            c.funding = self.top_up(&c).await?;
        }
        let mut entries = c
            .funding
            .as_ref()
            .map(|f| f.entries.clone())
            .unwrap_or_default();
        if let Some(d) = &c.credit {
            entries.extend(d.entries.iter().cloned());
        }
        entries.extend(self.payment_entries(
            c.payer.id,
            settlement,
            c.order.amount_minor,
            net_minor,
            fee_minor,
        ));
        let checks = self.limit_checks(c.payer, c.order.amount_minor, c.barcode);
        let payment = Payment {
            method: c.method,
            payer_account_id: c.payer.id.0,
            masked_card_number: String::new(),
            fee_minor,
            net_minor,
            network: None,
            network_reference: String::new(),
            transaction_id: String::new(),
            risk_level: match c.barcode {
                Some(Barcode::Dynamic(r)) => Some(r),
                Some(Barcode::Static) | None => None,
            },
            failure_reason: String::new(),
            yield_funding: c.funding.as_ref().map(|f| YieldFunding {
                product_id: f.product_id.clone(),
                redemption_id: f.redemption_id.clone(),
                redeemed_minor: f.amount.minor,
            }),
            credit_funding: c.credit.as_ref().map(|d| CreditDraw {
                line_id: d.line_id.clone(),
                drawdown_id: d.drawdown_id.clone(),
            }),
        };
        let (order, events) = self.paid(c.order, payment, c.created_now)?;
        let mut documents = vec![write_doc(
            KIND_ORDER,
            &order.order_id,
            c.order_version,
            &order,
        )?];
        documents.extend(c.extra);
        let mut metadata = payment_metadata("PAYMENT", &order.order_id, c.payer.id, settlement);
        let mut counters: Vec<CounterCheck> = checks.iter().map(|c| c.counter.clone()).collect();
        if let Some(f) = &c.funding {
            metadata.insert("yield_product".to_owned(), f.product_id.clone());
            metadata.insert("redemption".to_owned(), f.redemption_id.clone());
            counters.extend(f.counters.iter().cloned());
            documents.extend(f.documents.iter().cloned());
        }
        if let Some(d) = &c.credit {
            metadata.insert("credit_line".to_owned(), d.line_id.clone());
            metadata.insert("drawdown".to_owned(), d.drawdown_id.clone());
            counters.extend(d.counters.iter().cloned());
            documents.extend(d.documents.iter().cloned());
        }
        let tx = NewTransaction {
            entries,
            metadata,
            counters: Vec::new(),
        };
        let command = Command::Guarded {
            inner: Box::new(Command::Post(tx)),
            counters,
            releases: Vec::new(),
            caps: Vec::new(),
            documents,
            events,
        };
        let key = c.request_id.key(&c.caller.name);
        let payment = PaymentSubmit {
            checks: &checks,
            order_id: &order.order_id,
            funding: c.funding.as_ref(),
            credit: c.credit.is_some(),
        };
        self.submit_payment(key, c.fingerprint, command, payment)
            .await
    }

    /// The order paid now with `payment`, and its events (created first when it is new).
    fn paid(
        &self,
        mut order: Order,
        payment: Payment,
        created_now: bool,
    ) -> Result<(Order, Vec<OutboxEvent>), CashierError> {
        let now = self.now_ms();
        let mut events = Vec::new();
        if created_now {
            order.event_sequence += 1;
            events.push(event_of(&order, EventType::OrderCreated, None, now)?);
        }
        order.status = OrderStatus::Succeeded;
        order.paid_at_ms = Some(now);
        order.payment = Some(payment);
        order.event_sequence += 1;
        events.push(event_of(&order, EventType::PaymentSucceeded, None, now)?);
        Ok((order, events))
    }

    /// The postings of a payment of `amount_minor` from `from`: the merchant's net and the
    /// bank's fee (legs of zero left out).
    pub(in crate::cashier) fn payment_entries(
        &self,
        from: AccountId,
        settlement: AccountId,
        amount_minor: i64,
        net_minor: i64,
        fee_minor: i64,
    ) -> Vec<NewEntry> {
        let currency = self.inner.currency;
        let leg = |account, side, minor| NewEntry {
            account,
            side,
            amount: Money::new(currency, minor),
        };
        let mut entries = vec![
            leg(from, Side::Debit, amount_minor),
            leg(settlement, Side::Credit, net_minor),
            leg(self.inner.fee_income, Side::Credit, fee_minor),
        ];
        entries.retain(|e| e.amount.minor > 0);
        entries
    }

    /// Submits a payment of an order; a refusal is named by the rule it broke (the payer's
    /// limits, the yield rules of its funding) and a lost race for the order says what the
    /// order is now.
    pub(in crate::cashier) async fn submit_payment(
        &self,
        key: IdempotencyKey,
        fingerprint: String,
        command: Command,
        p: PaymentSubmit<'_>,
    ) -> Result<Order, CashierError> {
        let answer = self
            .inner
            .ledger
            .submit_observing(
                key,
                &fingerprint,
                command,
                crate::cashier::documents::observe_orders(),
            )
            .await?;
        let observed = answer.observed;
        let result = match answer.result {
            Err(e) if p.credit => match self.inner.credit.funding_refused(e) {
                Ok(refusal) => return Err(refusal.into()),
                Err(e) => Err(e),
            },
            Err(e) => match self.inner.yields.funding_refused(e, p.funding) {
                Ok(refusal) => return Err(refusal.into()),
                Err(e) => Err(e),
            },
            ok => ok,
        };
        match self.inner.accounts.name_refusal(result, p.checks) {
            Ok(_) => self.replayed_order(p.order_id, observed.as_ref()).await,
            Err(e) => Err(self.payment_refused(e.into(), p.order_id).await),
        }
    }

    /// Why a payment of an order was refused; a lost race for the order says what the order
    /// is now.
    pub(in crate::cashier) async fn payment_refused(
        &self,
        error: CashierError,
        order_id: &str,
    ) -> CashierError {
        let error = self.conflict_is(error, "order");
        if let CashierError::Conflict { .. } = error {
            // The order moved on since it was read (maybe in another process): read it again.
            self.inner.ledger.forget_document(KIND_ORDER, order_id);
            if let Err(now) = self.payable_order(order_id, Replaying::No).await {
                return now;
            }
        }
        error
    }
}

/// What a payment's refusal is named with.
pub(in crate::cashier) struct PaymentSubmit<'a> {
    pub(in crate::cashier) checks: &'a [LimitCheck],
    pub(in crate::cashier) order_id: &'a str,
    pub(in crate::cashier) funding: Option<&'a PaymentFunding>,
    /// Whether a credit line funds it (its limit names a refusal).
    pub(in crate::cashier) credit: bool,
}

/// The merchant's signed product for a method in a scenario.
pub(in crate::cashier) fn signed_product(
    merchant: &Merchant,
    method: Method,
    scenario: Scenario,
) -> Result<&Product, CashierError> {
    merchant
        .product(method, scenario)
        .ok_or_else(|| CashierError::ProductNotSigned {
            merchant: merchant.merchant_id.clone(),
            method: method.as_str(),
            scenario: scenario.as_str(),
        })
}

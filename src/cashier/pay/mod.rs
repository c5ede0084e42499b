//! Pay: the payer pays an order (balance, merchant QR, bound card), and the one balance
//! charge every balance-funded method ends in.

mod payment_code;
mod quick_pay;

use super::*;

impl CashierService {
    // Over 70 lines: its steps (validate, build the documents and postings, submit, answer)
    // share many locals; breaking it into named steps is pending (architecture issue, item 1).
    pub async fn pay(&self, caller: &Caller, req: PayOrder) -> Result<Order, CashierError> {
        let payer_id = req.payer_account_id;
        let print = fingerprint("Pay", &req);
        // A retry of a payment that went through answers the order as it stands: checked
        // before `payable_order`, which the first request's own payment now fails.
        if let Some(order_id) = paid_order_id(caller, &req)
            && self
                .succeeded_before(&req.request_id.key(&caller.name), &print)
                .await?
        {
            return self.replayed_order(&order_id).await;
        }
        match &req.with {
            PayWith::YieldBalance { .. } => Err(CashierError::MethodNotAvailable {
                method: Method::YieldBalance.as_str(),
                reason: "the yield service (余额增值) is not available on this gateway yet"
                    .to_owned(),
            }),
            PayWith::Balance => {
                let (order, version) = self.payable_order(&req.order_id).await?;
                let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
                let payer = self.payer(caller, payer_id, &order).await?;
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
                })
                .await
            }
            PayWith::MerchantQr {
                qr_payload,
                amount,
                factors,
            } => {
                let risk = RiskLevel::from_factors(factors);
                if let Some(order_id) = qr_payload.strip_prefix(QR_ORDER_PREFIX) {
                    if !req.order_id.is_empty() && req.order_id != order_id {
                        return Err(CashierError::invalid(
                            "order_id",
                            "differs from the order the QR payload names",
                        ));
                    }
                    if amount.is_some() {
                        return Err(CashierError::invalid(
                            "merchant_qr.amount",
                            "only for static merchant codes",
                        ));
                    }
                    let (order, version) = self.payable_order(order_id).await?;
                    let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
                    let payer = self.payer(caller, payer_id, &order).await?;
                    self.charge(Charge {
                        caller,
                        request_id: &req.request_id,
                        fingerprint: print,
                        merchant: &merchant,
                        order,
                        order_version: version,
                        payer: &payer,
                        method: Method::MerchantQr,
                        barcode: Some(Barcode::Dynamic(risk)),
                        created_now: false,
                        extra: Vec::new(),
                    })
                    .await
                } else if let Some(merchant_id) = qr_payload.strip_prefix(QR_MERCHANT_PREFIX) {
                    // A static merchant code: the payer enters the amount; the order is created
                    // and paid in one step.
                    let amount = amount.as_ref().ok_or_else(|| {
                        CashierError::invalid("merchant_qr.amount", "required for a static code")
                    })?;
                    let amount = self.in_currency(*amount)?;
                    let (merchant, _) = self.merchant_doc(merchant_id).await?;
                    let order = self.new_paid_order(
                        &merchant,
                        &derive_id("O", &caller.name, &req.request_id),
                        &format!("QR{}", derive_id("", &caller.name, &req.request_id)),
                        amount,
                        "static QR payment",
                        Scenario::Pos,
                    );
                    let payer = self.payer(caller, payer_id, &order).await?;
                    let extra = vec![write_doc(
                        KIND_ORDER_NO,
                        &no_key(&merchant.merchant_id, &order.merchant_order_no),
                        0,
                        &order.order_id,
                    )?];
                    self.charge(Charge {
                        caller,
                        request_id: &req.request_id,
                        fingerprint: print,
                        merchant: &merchant,
                        order,
                        order_version: 0,
                        payer: &payer,
                        method: Method::MerchantQr,
                        barcode: Some(Barcode::Static),
                        created_now: true,
                        extra,
                    })
                    .await
                } else {
                    Err(CashierError::invalid(
                        "merchant_qr.qr_payload",
                        "not a QR payload of this bank",
                    ))
                }
            }
            PayWith::BoundCard { agreement_id } => {
                let (order, version) = self.payable_order(&req.order_id).await?;
                let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
                let payer = self.payer(caller, payer_id, &order).await?;
                self.quick_pay(
                    caller,
                    &req.request_id,
                    print,
                    &merchant,
                    order,
                    version,
                    &payer,
                    agreement_id,
                )
                .await
            }
        }
    }

    /// One payment from the payer's balance: payer debit, merchant credit net of fee, fee to the
    /// bank's fee income — one journal transaction with the order's new state, its events and
    /// any other documents (order number, consumed code), under the payer's limits.
    // Over 70 lines: its steps (validate, build the documents and postings, submit, answer)
    // share many locals; breaking it into named steps is pending (architecture issue, item 1).
    pub(in crate::cashier) async fn charge(&self, c: Charge<'_>) -> Result<Order, CashierError> {
        let Charge {
            caller,
            request_id,
            fingerprint,
            merchant,
            mut order,
            order_version,
            payer,
            method,
            barcode,
            created_now,
            extra,
        } = c;
        let product = merchant.product(method, order.scenario).ok_or_else(|| {
            CashierError::ProductNotSigned {
                merchant: merchant.merchant_id.clone(),
                method: method.as_str(),
                scenario: order.scenario.as_str(),
            }
        })?;
        let (fee_minor, net_minor) = split_fee(order.amount_minor, product.fee_rate)?;
        let currency = self.inner.currency;
        let payer_id = payer.id;
        let settlement = AccountId(merchant.settlement_account_id);
        let mut entries = vec![
            NewEntry {
                account: payer_id,
                side: Side::Debit,
                amount: Money::new(currency, order.amount_minor),
            },
            NewEntry {
                account: settlement,
                side: Side::Credit,
                amount: Money::new(currency, net_minor),
            },
            NewEntry {
                account: self.inner.fee_income,
                side: Side::Credit,
                amount: Money::new(currency, fee_minor),
            },
        ];
        entries.retain(|e| e.amount.minor > 0);
        let checks = self.limit_checks(payer, order.amount_minor, barcode);
        let now = self.now_ms();
        let mut events = Vec::new();
        if created_now {
            order.event_sequence += 1;
            events.push(event_of(&order, EventType::OrderCreated, None, now)?);
        }
        order.status = OrderStatus::Succeeded;
        order.paid_at_ms = Some(now);
        order.payment = Some(Payment {
            method,
            payer_account_id: payer_id.0,
            masked_card_number: String::new(),
            fee_minor,
            net_minor,
            network: None,
            network_reference: String::new(),
            transaction_id: String::new(),
            risk_level: match barcode {
                Some(Barcode::Dynamic(r)) => Some(r),
                Some(Barcode::Static) | None => None,
            },
            failure_reason: String::new(),
        });
        order.event_sequence += 1;
        events.push(event_of(&order, EventType::PaymentSucceeded, None, now)?);
        let mut documents = vec![write_doc(
            KIND_ORDER,
            &order.order_id,
            order_version,
            &order,
        )?];
        documents.extend(extra);
        let tx = NewTransaction {
            entries,
            metadata: payment_metadata("PAYMENT", &order.order_id, payer_id, settlement),
            counters: Vec::new(),
        };
        let command = Command::Guarded {
            inner: Box::new(Command::Post(tx)),
            counters: checks.iter().map(|c| c.counter.clone()).collect(),
            releases: Vec::new(),
            caps: Vec::new(),
            documents,
            events,
        };
        match self
            .submit(request_id.key(&caller.name), fingerprint, command, &checks)
            .await
        {
            Ok(_) => self.replayed_order(&order.order_id).await,
            Err(e) => {
                let e = self.conflict_is(e, "order");
                if let CashierError::Conflict { .. } = e {
                    // Lost the race for this order: say what it is now.
                    return match self.payable_order(&order.order_id).await {
                        Ok(_) => Err(e),
                        Err(now) => Err(now),
                    };
                }
                Err(e)
            }
        }
    }
}

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
}

/// The order a `Pay` request pays (for a static merchant code, the one it creates); `None`
/// when the request names none it could have paid.
fn paid_order_id(caller: &Caller, req: &PayOrder) -> Option<String> {
    let id = match &req.with {
        PayWith::Balance | PayWith::BoundCard { .. } => req.order_id.clone(),
        PayWith::MerchantQr { qr_payload, .. } => {
            if let Some(id) = qr_payload.strip_prefix(QR_ORDER_PREFIX) {
                id.to_owned()
            } else if qr_payload.starts_with(QR_MERCHANT_PREFIX) {
                derive_id("O", &caller.name, &req.request_id)
            } else {
                return None;
            }
        }
        PayWith::YieldBalance { .. } => return None,
    };
    (!id.is_empty()).then_some(id)
}

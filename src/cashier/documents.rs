//! Shared internals: loading and writing documents and events, permissions, submitting a
//! command and naming a lost race.

use super::*;
use crate::ledger::{Observe, Observed};

impl CashierService {
    pub(in crate::cashier) fn is_bank(&self, caller: &Caller) -> bool {
        self.inner.config.bank_callers.contains(&caller.name)
    }

    /// A caller acts for a merchant when it is one of the bank's callers, one of the merchant's
    /// allowed callers, or (for a sub-merchant) one of its service provider's.
    pub(in crate::cashier) async fn check_merchant(
        &self,
        caller: &Caller,
        merchant: &Merchant,
    ) -> Result<(), CashierError> {
        if self.is_bank(caller) || merchant.allowed_callers.contains(&caller.name) {
            return Ok(());
        }
        if let Some(provider_id) = &merchant.service_provider_id {
            let (provider, _) = self.merchant_doc(provider_id).await?;
            if provider.allowed_callers.contains(&caller.name) {
                return Ok(());
            }
        }
        Err(not_permitted(caller, &merchant.merchant_id))
    }

    /// Now, by the ledger's clock.
    pub(in crate::cashier) fn now_ms(&self) -> i64 {
        self.inner.ledger.now_ms()
    }

    /// A document that may describe a posting: its body, with the journal transaction of the
    /// command that wrote it linked in (see [`Linked`]).
    pub(in crate::cashier) async fn load_linked<T: DeserializeOwned + Linked>(
        &self,
        kind: &str,
        id: &str,
        freshness: Freshness,
    ) -> Result<Option<(T, u64)>, CashierError> {
        if id.is_empty() || id.len() > crate::ledger::DOCUMENT_ID_LEN_MAX {
            return Ok(None);
        }
        let Some(doc) = self.inner.ledger.document_as(kind, id, freshness).await? else {
            return Ok(None);
        };
        let mut value: T = decode_document(kind, id, &doc.body)?;
        value.link_transaction(doc.transaction);
        Ok(Some((value, doc.version)))
    }

    /// A document as the database holds it now (from the read cache when it is known current).
    pub(in crate::cashier) async fn load<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<(T, u64)>, CashierError> {
        self.load_as(kind, id, Freshness::Current).await
    }

    pub(in crate::cashier) async fn load_as<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
        freshness: Freshness,
    ) -> Result<Option<(T, u64)>, CashierError> {
        if id.is_empty() || id.len() > crate::ledger::DOCUMENT_ID_LEN_MAX {
            return Ok(None);
        }
        let Some(doc) = self.inner.ledger.document_as(kind, id, freshness).await? else {
            return Ok(None);
        };
        let value = decode_document(kind, id, &doc.body)?;
        Ok(Some((value, doc.version)))
    }

    pub(in crate::cashier) async fn merchant_doc(
        &self,
        id: &str,
    ) -> Result<(Merchant, u64), CashierError> {
        self.merchant_as(id, Freshness::Current).await
    }

    /// The merchant a payment is checked against ([`Freshness::Checked`]: as of this process's
    /// last batch; another process's change meets the payment as it would a moment later).
    pub(in crate::cashier) async fn merchant_checked(
        &self,
        id: &str,
    ) -> Result<(Merchant, u64), CashierError> {
        self.merchant_as(id, Freshness::Checked).await
    }

    async fn merchant_as(
        &self,
        id: &str,
        freshness: Freshness,
    ) -> Result<(Merchant, u64), CashierError> {
        self.load_as(KIND_MERCHANT, id, freshness)
            .await?
            .ok_or_else(|| CashierError::MerchantNotFound {
                merchant: id.to_owned(),
            })
    }

    pub(in crate::cashier) async fn order_doc(
        &self,
        id: &str,
    ) -> Result<(Order, u64), CashierError> {
        self.order_as(id, Freshness::Current).await
    }

    pub(in crate::cashier) async fn order_as(
        &self,
        id: &str,
        freshness: Freshness,
    ) -> Result<(Order, u64), CashierError> {
        self.load_linked(KIND_ORDER, id, freshness)
            .await?
            .ok_or_else(|| CashierError::OrderNotFound {
                order: id.to_owned(),
            })
    }

    /// An order that can be paid now, with its version: as of this process's last batch (the
    /// payment's batch checks the version; a payment that lost it reads the order again).
    pub(in crate::cashier) async fn payable_order(
        &self,
        id: &str,
        replaying: Replaying,
    ) -> Result<(Order, u64), CashierError> {
        if id.is_empty() {
            return Err(CashierError::invalid("order_id", "required"));
        }
        let (stored, version) = self.order_as(id, Freshness::Checked).await?;
        if replaying == Replaying::StoredRefusal {
            // The batch refused this very request before: it answers that refusal again, named
            // as the first time, whatever state the order is in now.
            return Ok((stored, version));
        }
        let order = stored.clone().as_of(self.now_ms());
        match order.status {
            OrderStatus::Created => Ok((stored, version)),
            OrderStatus::Closed if order.close_reason == "EXPIRED" => {
                Err(CashierError::OrderExpired {
                    order: id.to_owned(),
                })
            }
            OrderStatus::Closed => Err(CashierError::OrderClosed {
                order: id.to_owned(),
            }),
            OrderStatus::Processing | OrderStatus::Succeeded | OrderStatus::Failed => {
                Err(CashierError::OrderAlreadyPaid {
                    order: id.to_owned(),
                })
            }
        }
    }

    /// `Some` when this caller's request with this id already succeeded, with what it
    /// observed; a different request under the same id is refused (`IDEMPOTENCY_KEY_REUSED`).
    /// A stored refusal answers `None`: the request then goes the usual way and the ledger
    /// answers the refusal again, named as the first time.
    pub(in crate::cashier) async fn first_success(
        &self,
        key: &IdempotencyKey,
        print: &str,
    ) -> Result<Option<Option<Observed>>, CashierError> {
        let answer = self.inner.ledger.answered_observed(key, print).await?;
        Ok(answer.and_then(|a| a.result.is_ok().then_some(a.observed)))
    }

    /// The order as a request's command wrote it (`observed`), as of that request's time: the
    /// first answer again, whatever happened to the order since. Read as it stands now when
    /// the answer was stored without it, or when it was PROCESSING (provisional: a retry learns
    /// the outcome).
    pub(in crate::cashier) async fn replayed_order(
        &self,
        id: &str,
        observed: Option<&Observed>,
    ) -> Result<Order, CashierError> {
        if let Some(o) = observed
            && let Some(doc) = o.document(KIND_ORDER, id)
        {
            let mut order: Order = decode_document(KIND_ORDER, id, &doc.body)?;
            order.link_transaction(doc.transaction);
            if order.status != OrderStatus::Processing {
                return Ok(order.as_of(o.at_ms));
            }
        }
        Ok(self.order_doc(id).await?.0.as_of(self.now_ms()))
    }

    /// The payer, in the caller's scope, able to pay this order's currency.
    pub(in crate::cashier) async fn payer(
        &self,
        caller: &Caller,
        id: AccountId,
        order: &Order,
    ) -> Result<AccountFacts, CashierError> {
        let payer = self.inner.accounts.facts_in_scope(caller, id).await?;
        check_payer(&payer)?;
        if payer.currency.code() != order.currency {
            return Err(CashierError::from(LedgerError::CurrencyMismatch {
                account: id,
                expected: payer.currency,
                actual: Currency::from_code(&order.currency).unwrap_or(payer.currency),
            }));
        }
        Ok(payer)
    }

    pub(in crate::cashier) fn new_paid_order(
        &self,
        merchant: &Merchant,
        order_id: &str,
        merchant_order_no: &str,
        amount: Money,
        subject: &str,
        scenario: Scenario,
    ) -> Order {
        let now = self.now_ms();
        Order {
            order_id: order_id.to_owned(),
            merchant_id: merchant.merchant_id.clone(),
            merchant_order_no: merchant_order_no.to_owned(),
            currency: amount.currency.code().to_owned(),
            amount_minor: amount.minor,
            subject: subject.to_owned(),
            scenario,
            status: OrderStatus::Created,
            cashier_token: hex::encode(&Sha256::digest(format!("cashier\0{order_id}"))[..16]),
            qr_payload: String::new(),
            payment: None,
            refunded_minor: 0,
            close_reason: String::new(),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(ms(self.inner.config.order_expiry_default_ms)),
            paid_at_ms: None,
            closed_at_ms: None,
            event_sequence: 0,
        }
    }

    /// The amount, if it is in the cashier's currency (the edge parsed it; which currency the
    /// cashier takes is this service's rule).
    pub(in crate::cashier) fn in_currency(&self, amount: Money) -> Result<Money, CashierError> {
        if amount.currency != self.inner.currency {
            return Err(CashierError::invalid(
                "amount",
                format!("the cashier takes {}", self.inner.currency),
            ));
        }
        Ok(amount)
    }

    pub(in crate::cashier) async fn submit(
        &self,
        key: IdempotencyKey,
        fingerprint: String,
        command: Command,
        checks: &[LimitCheck],
    ) -> Result<Outcome, CashierError> {
        Ok(self
            .submit_observed(key, fingerprint, command, checks)
            .await?
            .0)
    }

    /// [`CashierService::submit`], with the orders the command wrote as it wrote them (for an
    /// answer that is the same on every replay).
    pub(in crate::cashier) async fn submit_observed(
        &self,
        key: IdempotencyKey,
        fingerprint: String,
        command: Command,
        checks: &[LimitCheck],
    ) -> Result<(Outcome, Option<Observed>), CashierError> {
        Ok(self
            .inner
            .accounts
            .submit_observing(key, &fingerprint, command, checks, observe_orders())
            .await?)
    }

    /// Names a lost document race: a duplicate number, a used code, or an order that another
    /// request changed first.
    pub(in crate::cashier) fn conflict_is(&self, error: CashierError, what: &str) -> CashierError {
        let CashierError::Ledger(LedgerError::DocumentConflict { kind, id }) = &error else {
            return error;
        };
        let (kind, id) = (kind.clone(), id.clone());
        let split = |id: &str| {
            let (merchant, no) = id.split_once('/').unwrap_or(("", id));
            (merchant.to_owned(), no.to_owned())
        };
        match kind.as_str() {
            KIND_ORDER_NO => {
                let (merchant, merchant_order_no) = split(&id);
                CashierError::DuplicateMerchantOrderNo {
                    merchant,
                    merchant_order_no,
                }
            }
            KIND_REFUND_NO => {
                let (merchant, merchant_refund_no) = split(&id);
                CashierError::DuplicateMerchantRefundNo {
                    merchant,
                    merchant_refund_no,
                }
            }
            KIND_PAYMENT_CODE => CashierError::PaymentCodeUsed,
            _ => CashierError::Conflict {
                what: format!("{what} ({kind} {id})"),
            },
        }
    }
}

pub(in crate::cashier) fn guarded(
    inner: Command,
    counters: Vec<CounterCheck>,
    documents: Vec<DocumentWrite>,
    events: Vec<OutboxEvent>,
) -> Command {
    Command::Guarded {
        inner: Box::new(inner),
        counters,
        releases: Vec::new(),
        caps: Vec::new(),
        documents,
        events,
    }
}

/// What a cashier request observes: the orders its command writes.
pub(in crate::cashier) fn observe_orders() -> Observe {
    Observe {
        accounts: Vec::new(),
        counters: Vec::new(),
        document_kinds: vec![KIND_ORDER.to_owned()],
    }
}

pub(in crate::cashier) fn decode_document<T: DeserializeOwned>(
    kind: &str,
    id: &str,
    body: &str,
) -> Result<T, CashierError> {
    serde_json::from_str(body).map_err(|e| {
        tracing::error!(kind, id, error = %e, "unreadable document");
        CashierError::corrupt(kind, id)
    })
}

pub(in crate::cashier) fn write_doc<T: Serialize>(
    kind: &str,
    id: &str,
    expected_version: u64,
    value: &T,
) -> Result<DocumentWrite, CashierError> {
    Ok(DocumentWrite::json(kind, id, expected_version, value)?)
}

/// The outbox event of an order change; its id is the order id and the order's event sequence.
pub(in crate::cashier) fn event_of(
    order: &Order,
    event_type: EventType,
    refund: Option<&Refund>,
    now: i64,
) -> Result<OutboxEvent, CashierError> {
    let event = Event {
        event_id: format!("{}:{}", order.order_id, order.event_sequence),
        event_type,
        order_sequence: order.event_sequence,
        order: order.clone(),
        refund: refund.cloned(),
        event_time_ms: now,
    };
    let body = serde_json::to_string(&event).map_err(|e| {
        tracing::error!(error = %e, "event could not be encoded");
        CashierError::from(LedgerError::Storage)
    })?;
    Ok(OutboxEvent {
        stream: order.merchant_id.clone(),
        key: order.order_id.clone(),
        body,
    })
}

/// Whether a payment request is a retry of one the batch refused: its command then goes to the
/// batch (which answers the stored refusal without applying it) even when the order's state
/// would now refuse it before the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::cashier) enum Replaying {
    No,
    StoredRefusal,
}

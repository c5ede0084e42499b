//! The quick cashier (快捷收银台): merchants and service providers (服务商), orders, payment
//! methods and scenarios, merchant-presented QR and consumer-presented payment codes, refunds
//! and merchant notifications.
//!
//! Every state change is one ledger command: the order, refund or payment-code document (with
//! its version checked, so two concurrent payments of one order charge once), the outbox event
//! that tells the merchant, and the posting they describe commit in the same database
//! transaction. A payment posts payer debit, merchant credit net of fee and fee income as one
//! journal transaction, with the payer's class and barcode limits checked in the same step.

// `CashierError` holds an `AccountError` or a `LedgerError` unboxed (flat errors, no `Box`, by
// design), which puts it just at clippy's 128-byte threshold. Errors are the cold path; the
// size is accepted here rather than hiding a layer behind a pointer.
#![allow(clippy::result_large_err)]

pub mod error;
pub mod model;

use std::{sync::Arc, time::Duration};

use rust_decimal::{Decimal, RoundingStrategy, prelude::ToPrimitive};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

pub use error::CashierError;
pub use model::*;

use crate::{
    account::{
        AccountError, AccountFacts, AccountKind, AccountService, Caller, InternalPurpose,
        rules::{LimitCheck, LimitRule, LimitWindow, counter_key},
    },
    clearing::{CardDirection, CardInstruction, ClearingOutcome},
    config::CashierConfig,
    ledger::{
        AccountId, AccountStatus, Command, CounterCheck, DocumentWrite, IdempotencyKey, Ledger,
        LedgerError, Metadata, NewEntry, NewTransaction, OutboxEvent, Outcome, Side,
    },
    money::{Currency, Money, Sign},
};

/// Longest caller-chosen request id.
pub const REQUEST_ID_LEN_MAX: usize = 64;
/// Longest merchant order and refund number.
pub const MERCHANT_NO_LEN_MAX: usize = 64;
/// Longest name, subject or reason.
pub const TEXT_LEN_MAX: usize = 256;
/// Most signed products and allowed callers per merchant.
pub const PRODUCTS_MAX: usize = 32;
pub const ALLOWED_CALLERS_MAX: usize = 16;
/// Most sub-merchants one service provider lists (and one subscription follows).
pub const SUB_MERCHANTS_MAX: usize = 999;
/// Most refunds of one order.
pub const REFUNDS_PER_ORDER_MAX: i64 = 100;
/// Events read per poll of a subscription, and buffered per subscriber.
const EVENTS_BATCH_MAX: u32 = 256;
const EVENTS_BUFFER: usize = 64;

const KIND_MERCHANT: &str = "merchant";
const KIND_SUB_MERCHANTS: &str = "sub_merchants";
const KIND_ORDER: &str = "order";
const KIND_ORDER_NO: &str = "order_no";
const KIND_REFUND: &str = "refund";
const KIND_REFUND_NO: &str = "refund_no";
const KIND_PAYMENT_CODE: &str = "payment_code";
const KIND_CODE_REQUEST: &str = "code_request";
/// The expiry queue: one document per order, id `{expires_at_ms:020}|{order_id}`, so ids sort
/// by expiry.
const KIND_ORDER_EXPIRY: &str = "order_expiry";
/// The expiry sweeper's progress: the last queue id it has dealt with.
const KIND_SWEEP: &str = "sweep";
const SWEEP_ORDER_EXPIRY: &str = "order_expiry";
/// Expired orders closed per sweep round.
const EXPIRY_SWEEP_BATCH_MAX: u32 = 200;
/// The idempotency scope of what the gateway does by itself.
const SYSTEM_CALLER: &str = "paygate-system";

/// Prefixes of merchant QR payloads: dynamic (names an order) and static (names a merchant).
const QR_ORDER_PREFIX: &str = "paygate:qr:order:";
const QR_MERCHANT_PREFIX: &str = "paygate:qr:merchant:";

/// Barcode limits in minor units.
#[derive(Debug, Clone, Copy)]
struct BarcodeLimits {
    static_day_minor: i64,
    dynamic_a_day_minor: i64,
    dynamic_b_day_minor: i64,
    dynamic_c_day_minor: i64,
}

/// The cashier service. Cheap to clone.
#[derive(Clone)]
pub struct CashierService {
    inner: Arc<Inner>,
}

struct Inner {
    accounts: AccountService,
    ledger: Ledger,
    config: CashierConfig,
    currency: Currency,
    limits: BarcodeLimits,
    fee_income: AccountId,
    card_suspense: AccountId,
}

/// A merchant registration.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterMerchant {
    pub request_id: String,
    pub name: String,
    pub merchant_type: MerchantType,
    pub service_provider_id: String,
    pub settlement_account_id: String,
    pub products: Vec<Product>,
    pub allowed_callers: Vec<String>,
}

/// An order to create.
#[derive(Debug, Clone, Serialize)]
pub struct CreateOrder {
    pub request_id: String,
    pub merchant_id: String,
    pub merchant_order_no: String,
    pub amount: MoneyText,
    pub subject: String,
    pub scenario: Option<Scenario>,
    pub expires_at_ms: Option<i64>,
}

/// How a payer pays.
#[derive(Debug, Clone, Serialize)]
pub enum PayWith {
    Balance,
    YieldBalance {
        product_id: String,
    },
    BoundCard {
        agreement_id: String,
    },
    MerchantQr {
        qr_payload: String,
        amount: Option<MoneyText>,
        factors: Vec<AuthFactor>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct PayOrder {
    pub request_id: String,
    pub order_id: String,
    pub payer_account_id: String,
    pub with: PayWith,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanPay {
    pub request_id: String,
    pub merchant_id: String,
    pub merchant_order_no: String,
    pub payment_code: String,
    pub amount: MoneyText,
    pub subject: String,
    pub scenario: Option<Scenario>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefundOrder {
    pub request_id: String,
    pub order_id: String,
    pub merchant_refund_no: String,
    pub amount: MoneyText,
    pub reason: String,
}

/// An order key.
#[derive(Debug, Clone)]
pub enum OrderKey {
    Id(String),
    MerchantNo { merchant_id: String, no: String },
}

/// A refund key.
#[derive(Debug, Clone)]
pub enum RefundKey {
    Id(String),
    MerchantNo { merchant_id: String, no: String },
}

impl CashierService {
    pub fn start(
        accounts: AccountService,
        ledger: Ledger,
        config: &CashierConfig,
    ) -> Result<CashierService, CashierError> {
        let currency = accounts.rules().currency;
        let amount = |field: &'static str, text: &str| {
            Money::parse(currency, text, Sign::Positive)
                .map(|m| m.minor)
                .map_err(|e| CashierError::invalid(field, e.to_string()))
        };
        let limits = BarcodeLimits {
            static_day_minor: amount("cashier.static_code_per_day", &config.static_code_per_day)?,
            dynamic_a_day_minor: amount(
                "cashier.dynamic_code_a_per_day",
                &config.dynamic_code_a_per_day,
            )?,
            dynamic_b_day_minor: amount(
                "cashier.dynamic_code_b_per_day",
                &config.dynamic_code_b_per_day,
            )?,
            dynamic_c_day_minor: amount(
                "cashier.dynamic_code_c_per_day",
                &config.dynamic_code_c_per_day,
            )?,
        };
        let internal = |purpose| {
            accounts
                .internal_account(purpose)
                .ok_or_else(|| CashierError::from(LedgerError::Storage))
        };
        let fee_income = internal(InternalPurpose::FeeIncome)?;
        let card_suspense = internal(InternalPurpose::ClearingSuspenseOnUs)?;
        Ok(CashierService {
            inner: Arc::new(Inner {
                accounts,
                ledger,
                config: config.clone(),
                currency,
                limits,
                fee_income,
                card_suspense,
            }),
        })
    }

    /// Runs the expiry sweeper until the ledger shuts down: every interval, unpaid orders past
    /// their expiry are closed (reason EXPIRED) with an ORDER_CLOSED event, in the same batch.
    pub fn spawn_expiry_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let interval =
            std::time::Duration::from_millis(self.inner.config.expiry_sweep_interval_ms.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match service.sweep_expired_orders(service.now_ms()).await {
                    Ok(_) => {}
                    Err(CashierError::Ledger(LedgerError::ShuttingDown)) => return,
                    Err(e) => tracing::warn!(error = %e, "order expiry sweep failed; retrying"),
                }
            }
        })
    }

    /// Closes unpaid orders whose expiry is at or before `now_ms`, oldest first, at most
    /// `EXPIRY_SWEEP_BATCH_MAX` per call; returns how many queue entries it dealt with. Each
    /// close checks the order's version, so an order paid meanwhile is left paid. Safe to run in
    /// several processes: the progress document is versioned too.
    pub async fn sweep_expired_orders(&self, now_ms: i64) -> Result<usize, CashierError> {
        let (cursor, mut cursor_version) = self
            .load::<String>(KIND_SWEEP, SWEEP_ORDER_EXPIRY)
            .await?
            .unwrap_or_default();
        let due = self
            .inner
            .ledger
            .documents_after(KIND_ORDER_EXPIRY, &cursor, EXPIRY_SWEEP_BATCH_MAX)
            .await?;
        let mut done = 0;
        for entry in due {
            let Some((expires_at_ms, order_id)) = parse_expiry_key(&entry.id) else {
                tracing::error!(id = %entry.id, "malformed order expiry entry; skipped");
                continue;
            };
            if expires_at_ms > now_ms {
                break;
            }
            let mut documents = vec![write_doc(
                KIND_SWEEP,
                SWEEP_ORDER_EXPIRY,
                cursor_version,
                &entry.id,
            )?];
            let mut events = Vec::new();
            let (stored, version) = self.order_doc(order_id).await?;
            if stored.status == OrderStatus::Created {
                let mut order = stored.as_of(expires_at_ms);
                order.event_sequence += 1;
                events.push(event_of(&order, EventType::OrderClosed, None, now_ms)?);
                documents.push(write_doc(KIND_ORDER, order_id, version, &order)?);
            }
            let command = guarded(Command::NoOp, Vec::new(), documents, events);
            let system = Caller {
                name: SYSTEM_CALLER.to_owned(),
                scope: crate::config::AccountScope::All,
            };
            let request_id = format!("expire/{}", entry.id);
            match self
                .submit(
                    &system,
                    &request_id,
                    fingerprint("Expire", &entry.id),
                    command,
                    &[],
                )
                .await
            {
                Ok(_) => {}
                // Paid, closed or swept by someone else meanwhile: the next round looks again.
                Err(e)
                    if matches!(
                        self.conflict_is(e.clone(), "order"),
                        CashierError::Conflict { .. }
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
            cursor_version += 1;
            done += 1;
        }
        debug_assert!(done <= EXPIRY_SWEEP_BATCH_MAX as usize);
        Ok(done)
    }

    // ----- merchants -----------------------------------------------------------------------

    pub async fn register_merchant(
        &self,
        caller: &Caller,
        req: RegisterMerchant,
    ) -> Result<Merchant, CashierError> {
        check_request_id(&req.request_id)?;
        check_text("name", &req.name, true)?;
        let merchant_id = derive_id("M", &caller.name, &req.request_id);
        let provider = match (req.merchant_type, req.service_provider_id.is_empty()) {
            (MerchantType::SubMerchant, true) => {
                return Err(CashierError::invalid(
                    "service_provider_id",
                    "required for a sub-merchant",
                ));
            }
            (MerchantType::SubMerchant, false) => {
                let (provider, _) = self.merchant_doc(&req.service_provider_id).await?;
                if provider.merchant_type != MerchantType::ServiceProvider {
                    return Err(CashierError::invalid(
                        "service_provider_id",
                        "not a service provider",
                    ));
                }
                // The provider's callers onboard its sub-merchants; so does the bank.
                if !self.is_bank(caller) && !provider.allowed_callers.contains(&caller.name) {
                    return Err(not_permitted(caller, &provider.merchant_id));
                }
                Some(provider)
            }
            (_, false) => {
                return Err(CashierError::invalid(
                    "service_provider_id",
                    "only a sub-merchant has a service provider",
                ));
            }
            (_, true) => {
                if !self.is_bank(caller) {
                    return Err(not_permitted(caller, &merchant_id));
                }
                None
            }
        };
        let settlement = parse_account("settlement_account_id", &req.settlement_account_id)?;
        let facts = self.inner.accounts.facts(settlement).await?;
        if facts.kind != AccountKind::MerchantSettlement || facts.closed {
            return Err(CashierError::invalid(
                "settlement_account_id",
                "an open MERCHANT_SETTLEMENT account",
            ));
        }
        if facts.currency != self.inner.currency {
            return Err(CashierError::invalid(
                "settlement_account_id",
                format!("settlement accounts are kept in {}", self.inner.currency),
            ));
        }
        if req.products.is_empty() || req.products.len() > PRODUCTS_MAX {
            return Err(CashierError::invalid(
                "products",
                format!("1..={PRODUCTS_MAX} signed products"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &req.products {
            if !seen.insert((p.method, p.scenario)) {
                return Err(CashierError::invalid(
                    "products",
                    "each method and scenario is signed once",
                ));
            }
        }
        if req.allowed_callers.len() > ALLOWED_CALLERS_MAX
            || req
                .allowed_callers
                .iter()
                .any(|c| c.is_empty() || c.len() > 64)
        {
            return Err(CashierError::invalid(
                "allowed_callers",
                format!("at most {ALLOWED_CALLERS_MAX} caller names of 1..=64 characters"),
            ));
        }
        let merchant = Merchant {
            merchant_id: merchant_id.clone(),
            name: req.name.clone(),
            merchant_type: req.merchant_type,
            service_provider_id: provider.as_ref().map(|p| p.merchant_id.clone()),
            settlement_account_id: settlement.0,
            products: req.products.clone(),
            allowed_callers: req.allowed_callers.clone(),
            static_qr_payload: format!("{QR_MERCHANT_PREFIX}{merchant_id}"),
            created_at_ms: self.now_ms(),
        };
        let mut documents = vec![write_doc(KIND_MERCHANT, &merchant_id, 0, &merchant)?];
        if let Some(provider) = &provider {
            let (mut subs, version) = self
                .load::<Vec<String>>(KIND_SUB_MERCHANTS, &provider.merchant_id)
                .await?
                .unwrap_or_default();
            if subs.len() >= SUB_MERCHANTS_MAX {
                return Err(CashierError::invalid(
                    "service_provider_id",
                    format!("a service provider has at most {SUB_MERCHANTS_MAX} sub-merchants"),
                ));
            }
            if !subs.contains(&merchant_id) {
                subs.push(merchant_id.clone());
                documents.push(write_doc(
                    KIND_SUB_MERCHANTS,
                    &provider.merchant_id,
                    version,
                    &subs,
                )?);
            }
        }
        let command = guarded(Command::NoOp, Vec::new(), documents, Vec::new());
        self.submit(
            caller,
            &req.request_id,
            fingerprint("RegisterMerchant", &req),
            command,
            &[],
        )
        .await
        .map_err(|e| self.conflict_is(e, "merchant"))?;
        Ok(self.merchant_doc(&merchant_id).await?.0)
    }

    pub async fn merchant(&self, caller: &Caller, id: &str) -> Result<Merchant, CashierError> {
        let (merchant, _) = self.merchant_doc(id).await?;
        self.check_merchant(caller, &merchant).await?;
        Ok(merchant)
    }

    // ----- orders --------------------------------------------------------------------------

    pub async fn create_order(
        &self,
        caller: &Caller,
        req: CreateOrder,
    ) -> Result<Order, CashierError> {
        check_request_id(&req.request_id)?;
        let (merchant, _) = self.merchant_doc(&req.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        check_no("merchant_order_no", &req.merchant_order_no)?;
        check_text("subject", &req.subject, true)?;
        let scenario = req
            .scenario
            .ok_or_else(|| CashierError::invalid("scenario", "required"))?;
        let amount = self.amount(&req.amount)?;
        let now = self.now_ms();
        let expires_at_ms = match req.expires_at_ms {
            None => now.saturating_add(ms(self.inner.config.order_expiry_default_ms)),
            Some(at) if at <= now => {
                return Err(CashierError::invalid(
                    "expire_time",
                    "must be in the future",
                ));
            }
            Some(at) if at - now > ms(self.inner.config.order_expiry_max_ms) => {
                return Err(CashierError::invalid(
                    "expire_time",
                    format!("at most {} ms ahead", self.inner.config.order_expiry_max_ms),
                ));
            }
            Some(at) => at,
        };
        let order_id = derive_id("O", &caller.name, &req.request_id);
        let qr_payload = if merchant.product(Method::MerchantQr, scenario).is_some() {
            format!("{QR_ORDER_PREFIX}{order_id}")
        } else {
            String::new()
        };
        let order = Order {
            order_id: order_id.clone(),
            merchant_id: merchant.merchant_id.clone(),
            merchant_order_no: req.merchant_order_no.clone(),
            currency: amount.currency.code().to_owned(),
            amount_minor: amount.minor,
            subject: req.subject.clone(),
            scenario,
            status: OrderStatus::Created,
            cashier_token: hex::encode(&Sha256::digest(format!("cashier\0{order_id}"))[..16]),
            qr_payload,
            payment: None,
            refunded_minor: 0,
            close_reason: String::new(),
            created_at_ms: now,
            expires_at_ms,
            paid_at_ms: None,
            closed_at_ms: None,
            event_sequence: 1,
        };
        let event = event_of(&order, EventType::OrderCreated, None, now)?;
        let command = guarded(
            Command::NoOp,
            Vec::new(),
            vec![
                write_doc(KIND_ORDER, &order_id, 0, &order)?,
                write_doc(
                    KIND_ORDER_NO,
                    &no_key(&merchant.merchant_id, &req.merchant_order_no),
                    0,
                    &order_id,
                )?,
                write_doc(
                    KIND_ORDER_EXPIRY,
                    &expiry_key(expires_at_ms, &order_id),
                    0,
                    &order_id,
                )?,
            ],
            vec![event],
        );
        self.submit(
            caller,
            &req.request_id,
            fingerprint("CreateOrder", &req),
            command,
            &[],
        )
        .await
        .map_err(|e| self.conflict_is(e, "order"))?;
        Ok(self.order_doc(&order_id).await?.0.as_of(self.now_ms()))
    }

    pub async fn order(&self, caller: &Caller, key: OrderKey) -> Result<Order, CashierError> {
        let id = match key {
            OrderKey::Id(id) => id,
            OrderKey::MerchantNo { merchant_id, no } => {
                let (merchant, _) = self.merchant_doc(&merchant_id).await?;
                self.check_merchant(caller, &merchant).await?;
                self.load::<String>(KIND_ORDER_NO, &no_key(&merchant_id, &no))
                    .await?
                    .map(|(id, _)| id)
                    .ok_or(CashierError::OrderNotFound { order: no })?
            }
        };
        let (order, _) = self.order_doc(&id).await?;
        let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        Ok(order.as_of(self.now_ms()))
    }

    pub async fn close_order(
        &self,
        caller: &Caller,
        request_id: &str,
        order_id: &str,
        reason: &str,
    ) -> Result<Order, CashierError> {
        check_request_id(request_id)?;
        check_text("reason", reason, false)?;
        let request = (request_id, order_id, reason);
        let print = fingerprint("CloseOrder", &request);
        let (stored, version) = self.order_doc(order_id).await?;
        let (merchant, _) = self.merchant_doc(&stored.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        // A retry of a close that went through answers the order as it stands.
        if self.succeeded_before(caller, request_id, &print).await? {
            return self.replayed_order(order_id).await;
        }
        let now = self.now_ms();
        let mut order = stored.clone().as_of(now);
        match order.status {
            OrderStatus::Created => {
                order.status = OrderStatus::Closed;
                order.close_reason = reason.to_owned();
                order.closed_at_ms = Some(now);
            }
            // Expired unpaid: record the close it already is.
            OrderStatus::Closed if stored.status == OrderStatus::Created => {}
            OrderStatus::Closed => {
                return Err(CashierError::OrderClosed {
                    order: order_id.to_owned(),
                });
            }
            OrderStatus::Processing | OrderStatus::Succeeded | OrderStatus::Failed => {
                return Err(CashierError::OrderAlreadyPaid {
                    order: order_id.to_owned(),
                });
            }
        }
        order.event_sequence += 1;
        let event = event_of(&order, EventType::OrderClosed, None, now)?;
        let command = guarded(
            Command::NoOp,
            Vec::new(),
            vec![write_doc(KIND_ORDER, order_id, version, &order)?],
            vec![event],
        );
        self.submit(caller, request_id, print, command, &[])
            .await
            .map_err(|e| self.conflict_is(e, "order"))?;
        Ok(self.order_doc(order_id).await?.0.as_of(self.now_ms()))
    }

    // ----- paying --------------------------------------------------------------------------

    pub async fn pay(&self, caller: &Caller, req: PayOrder) -> Result<Order, CashierError> {
        check_request_id(&req.request_id)?;
        let payer_id = parse_account("payer_account_id", &req.payer_account_id)?;
        let print = fingerprint("Pay", &req);
        // A retry of a payment that went through answers the order as it stands: checked
        // before `payable_order`, which the first request's own payment now fails.
        if let Some(order_id) = paid_order_id(caller, &req)
            && self
                .succeeded_before(caller, &req.request_id, &print)
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
                    let amount = self.amount(amount)?;
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

    pub async fn issue_payment_code(
        &self,
        caller: &Caller,
        request_id: &str,
        payer_account_id: &str,
        factors: &[AuthFactor],
    ) -> Result<PaymentCode, CashierError> {
        check_request_id(request_id)?;
        let payer_id = parse_account("payer_account_id", payer_account_id)?;
        let payer = self.inner.accounts.facts_in_scope(caller, payer_id).await?;
        check_payer(&payer)?;
        let request_key = format!("{}/{request_id}", caller.name);
        let now = self.now_ms();
        // 18 digits, as wallets render them: "28" and 16 random digits.
        let code = format!("28{:016}", rand::random::<u64>() % 10_000_000_000_000_000);
        let doc = PaymentCode {
            code: code.clone(),
            payer_account_id: payer_id.0,
            risk_level: RiskLevel::from_factors(factors),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(ms(self.inner.config.payment_code_ttl_ms)),
            used_by_order: None,
        };
        let command = guarded(
            Command::NoOp,
            Vec::new(),
            vec![
                write_doc(KIND_PAYMENT_CODE, &code, 0, &doc)?,
                write_doc(KIND_CODE_REQUEST, &request_key, 0, &code)?,
            ],
            Vec::new(),
        );
        let request = (request_id, payer_account_id, factors);
        self.submit(
            caller,
            request_id,
            fingerprint("IssuePaymentCode", &request),
            command,
            &[],
        )
        .await
        .map_err(|e| self.conflict_is(e, "payment code"))?;
        // A replay answers with the code the first request issued.
        let (code, _) = self
            .load::<String>(KIND_CODE_REQUEST, &request_key)
            .await?
            .ok_or(CashierError::PaymentCodeInvalid)?;
        let (doc, _) = self
            .load::<PaymentCode>(KIND_PAYMENT_CODE, &code)
            .await?
            .ok_or(CashierError::PaymentCodeInvalid)?;
        Ok(doc)
    }

    pub async fn scan_pay(&self, caller: &Caller, req: ScanPay) -> Result<Order, CashierError> {
        check_request_id(&req.request_id)?;
        let (merchant, _) = self.merchant_doc(&req.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        check_no("merchant_order_no", &req.merchant_order_no)?;
        check_text("subject", &req.subject, true)?;
        if req.scenario != Some(Scenario::Pos) {
            return Err(CashierError::invalid("scenario", "must be POS"));
        }
        let amount = self.amount(&req.amount)?;
        if req.payment_code.is_empty()
            || req.payment_code.len() > 32
            || !req.payment_code.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(CashierError::PaymentCodeInvalid);
        }
        let (mut code, code_version) = self
            .load::<PaymentCode>(KIND_PAYMENT_CODE, &req.payment_code)
            .await?
            .ok_or(CashierError::PaymentCodeInvalid)?;
        let order_id = derive_id("O", &caller.name, &req.request_id);
        if let Some(used_by) = &code.used_by_order {
            if *used_by == order_id {
                // This very request already paid with it: answer as the first time.
                return self.replayed_order(&order_id).await;
            }
            return Err(CashierError::PaymentCodeUsed);
        }
        if self.now_ms() >= code.expires_at_ms {
            return Err(CashierError::PaymentCodeExpired);
        }
        let payer_id = AccountId(code.payer_account_id);
        let payer = self.inner.accounts.facts(payer_id).await?;
        check_payer(&payer)?;
        let mut order = self.new_paid_order(
            &merchant,
            &order_id,
            &req.merchant_order_no,
            amount,
            &req.subject,
            Scenario::Pos,
        );
        order.qr_payload.clear();
        code.used_by_order = Some(order_id.clone());
        let extra = vec![
            write_doc(
                KIND_ORDER_NO,
                &no_key(&merchant.merchant_id, &req.merchant_order_no),
                0,
                &order_id,
            )?,
            write_doc(KIND_PAYMENT_CODE, &req.payment_code, code_version, &code)?,
        ];
        self.charge(Charge {
            caller,
            request_id: &req.request_id,
            fingerprint: fingerprint("ScanPay", &req),
            merchant: &merchant,
            order,
            order_version: 0,
            payer: &payer,
            method: Method::PaymentCode,
            barcode: Some(Barcode::Dynamic(code.risk_level)),
            created_now: true,
            extra,
        })
        .await
    }

    /// Every payment method for an order and payer, available ones first, each unavailable one
    /// with its reason.
    pub async fn payment_methods(
        &self,
        caller: &Caller,
        order_id: &str,
        payer_account_id: &str,
    ) -> Result<Vec<MethodOption>, CashierError> {
        let payer_id = parse_account("payer_account_id", payer_account_id)?;
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

    // ----- refunds -------------------------------------------------------------------------

    pub async fn refund(&self, caller: &Caller, req: RefundOrder) -> Result<Refund, CashierError> {
        check_request_id(&req.request_id)?;
        check_text("reason", &req.reason, false)?;
        if !req.merchant_refund_no.is_empty() {
            check_no("merchant_refund_no", &req.merchant_refund_no)?;
        }
        let (stored, version) = self.order_doc(&req.order_id).await?;
        let (merchant, _) = self.merchant_doc(&stored.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        let refund_id = derive_id("R", &caller.name, &req.request_id);
        let amount = self.amount(&req.amount)?;
        let mut order = stored.as_of(self.now_ms());
        match order.status {
            OrderStatus::Succeeded => {}
            OrderStatus::Closed => {
                return Err(CashierError::OrderClosed {
                    order: req.order_id.clone(),
                });
            }
            OrderStatus::Created | OrderStatus::Processing | OrderStatus::Failed => {
                // A replay of a refund that did succeed still answers with it.
                if let Some((refund, _)) =
                    self.load_linked::<Refund>(KIND_REFUND, &refund_id).await?
                {
                    return Ok(refund);
                }
                return Err(CashierError::OrderNotPaid {
                    order: req.order_id.clone(),
                });
            }
        }
        let payment = order.payment.clone().ok_or_else(|| {
            tracing::error!(order = %order.order_id, "a succeeded order without its payment");
            CashierError::corrupt(KIND_ORDER, &order.order_id)
        })?;
        let refundable = order.amount_minor - order.refunded_minor;
        if amount.minor > refundable {
            if let Some((refund, _)) = self.load_linked::<Refund>(KIND_REFUND, &refund_id).await? {
                return Ok(refund);
            }
            let m = |minor: i64| Money::new(amount.currency, minor).to_decimal_string();
            return Err(CashierError::RefundExceedsPaid {
                order: req.order_id.clone(),
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
        let now = self.now_ms();
        // Back along the original method: balance-funded payments go back to the payer's
        // account; a card payment goes back through the card's clearing suspense (the network
        // credits the card). The fee is kept (fee_refunded = 0): the merchant bears the whole
        // refund.
        let payer_side = match payment.method {
            Method::BoundCard => self.inner.card_suspense,
            Method::Balance | Method::MerchantQr | Method::PaymentCode | Method::YieldBalance => {
                AccountId(payment.payer_account_id)
            }
        };
        let settlement = AccountId(merchant.settlement_account_id);
        // A card refund is complete only when the network has credited the card.
        let by_card = payment.method == Method::BoundCard;
        let refund = Refund {
            refund_id: refund_id.clone(),
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
        };
        order.refunded_minor += amount.minor;
        order.event_sequence += 1;
        let event_type = if by_card {
            EventType::RefundProcessing
        } else {
            EventType::RefundSucceeded
        };
        let event = event_of(&order, event_type, Some(&refund), now)?;
        let mut documents = vec![
            write_doc(KIND_ORDER, &order.order_id, version, &order)?,
            write_doc(KIND_REFUND, &refund_id, 0, &refund)?,
        ];
        if !req.merchant_refund_no.is_empty() {
            documents.push(write_doc(
                KIND_REFUND_NO,
                &no_key(&merchant.merchant_id, &req.merchant_refund_no),
                0,
                &refund_id,
            )?);
        }
        let tx = NewTransaction {
            entries: vec![
                NewEntry {
                    account: settlement,
                    side: Side::Debit,
                    amount,
                },
                NewEntry {
                    account: payer_side,
                    side: Side::Credit,
                    amount,
                },
            ],
            metadata: payment_metadata("REFUND", &order.order_id, settlement, payer_side),
            counters: Vec::new(),
        };
        let caps = if payer_side == self.inner.card_suspense {
            Vec::new()
        } else {
            self.inner
                .accounts
                .facts(payer_side)
                .await?
                .balance_caps
                .clone()
        };
        let mut command = guarded(Command::Post(tx), Vec::new(), documents, vec![event]);
        if let Command::Guarded { caps: c, .. } = &mut command {
            *c = caps;
        }
        let outcome = self
            .submit(
                caller,
                &req.request_id,
                fingerprint("Refund", &req),
                command,
                &[],
            )
            .await
            .map_err(|e| self.conflict_is(e, "refund"))?;
        if payment.method == Method::BoundCard
            && let (Some(token), Outcome::Posted(_)) = (
                self.inner
                    .accounts
                    .facts(AccountId(payment.payer_account_id))
                    .await?
                    .card_token,
                &outcome,
            )
        {
            // The suspense now owes the card: the network credits it (on-us: at once).
            let instruction = CardInstruction {
                reference: format!("RF{refund_id}"),
                direction: CardDirection::CreditCard,
                card_token: token,
                amount,
            };
            let outcome = self.inner.accounts.clearing().submit(&instruction).await;
            self.finish_card_refund(caller, &req.request_id, &refund_id, outcome)
                .await?;
        }
        self.load_linked::<Refund>(KIND_REFUND, &refund_id)
            .await?
            .map(|(r, _)| r)
            .ok_or(CashierError::RefundNotFound { refund: refund_id })
    }

    /// Records what the network answered for a card refund, in one batch with its event:
    /// credited → SUCCEEDED; declined → FAILED and the money goes back from the card suspense to
    /// the merchant (the order's refundable amount with it); no answer → it stays PROCESSING
    /// with the funds in the suspense, for the recovery worker of the clearing networks.
    async fn finish_card_refund(
        &self,
        caller: &Caller,
        request_id: &str,
        refund_id: &str,
        outcome: ClearingOutcome,
    ) -> Result<(), CashierError> {
        let (mut refund, refund_version) = self
            .load_linked::<Refund>(KIND_REFUND, refund_id)
            .await?
            .ok_or_else(|| CashierError::RefundNotFound {
                refund: refund_id.to_owned(),
            })?;
        if refund.status != RefundStatus::Processing {
            return Ok(());
        }
        let (mut order, order_version) = self.order_doc(&refund.order_id).await?;
        let now = self.now_ms();
        let (command_inner, event_type, step) = match outcome {
            ClearingOutcome::Unknown => {
                tracing::warn!(refund = %refund_id, "card refund unanswered by the network; stays PROCESSING");
                return Ok(());
            }
            ClearingOutcome::Succeeded { .. } => {
                refund.status = RefundStatus::Succeeded;
                (Command::NoOp, EventType::RefundSucceeded, "settle")
            }
            ClearingOutcome::Failed { reason } => {
                refund.status = RefundStatus::Failed;
                refund.failure_reason = reason;
                order.refunded_minor -= refund.amount_minor;
                let (merchant, _) = self.merchant_doc(&order.merchant_id).await?;
                let settlement = AccountId(merchant.settlement_account_id);
                let currency = Currency::from_code(&refund.currency)
                    .map_err(|e| CashierError::invalid("currency", e.to_string()))?;
                let amount = Money::new(currency, refund.amount_minor);
                let tx = NewTransaction {
                    entries: vec![
                        NewEntry {
                            account: self.inner.card_suspense,
                            side: Side::Debit,
                            amount,
                        },
                        NewEntry {
                            account: settlement,
                            side: Side::Credit,
                            amount,
                        },
                    ],
                    metadata: payment_metadata(
                        "REFUND_RETURNED",
                        &order.order_id,
                        self.inner.card_suspense,
                        settlement,
                    ),
                    counters: Vec::new(),
                };
                (Command::Post(tx), EventType::RefundFailed, "return")
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
            ],
            vec![event],
        );
        let step_id = format!("{request_id}#{step}");
        self.submit(
            caller,
            &step_id,
            fingerprint("CardRefund", &step_id),
            command,
            &[],
        )
        .await
        .map_err(|e| self.conflict_is(e, "refund"))?;
        Ok(())
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
            .load_linked::<Refund>(KIND_REFUND, &id)
            .await?
            .ok_or(CashierError::RefundNotFound { refund: id.clone() })?;
        let (merchant, _) = self.merchant_doc(&refund.merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        Ok(refund)
    }

    // ----- notifications -------------------------------------------------------------------

    /// Streams the merchant's events (and its sub-merchants', when asked) strictly after
    /// `cursor`, polling the outbox. Ends when the receiver goes.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        merchant_id: &str,
        include_sub_merchants: bool,
        cursor: &str,
    ) -> Result<mpsc::Receiver<Result<DeliveredEvent, CashierError>>, CashierError> {
        let (merchant, _) = self.merchant_doc(merchant_id).await?;
        self.check_merchant(caller, &merchant).await?;
        let mut position: u64 = if cursor.is_empty() {
            0
        } else if cursor.len() <= 20 && cursor.bytes().all(|b| b.is_ascii_digit()) {
            cursor
                .parse()
                .map_err(|_| CashierError::invalid("cursor", "malformed"))?
        } else {
            return Err(CashierError::invalid("cursor", "malformed"));
        };
        let mut streams = vec![merchant_id.to_owned()];
        if include_sub_merchants {
            if merchant.merchant_type != MerchantType::ServiceProvider {
                return Err(CashierError::invalid(
                    "include_sub_merchants",
                    "only a service provider has sub-merchants",
                ));
            }
            if let Some((subs, _)) = self
                .load::<Vec<String>>(KIND_SUB_MERCHANTS, merchant_id)
                .await?
            {
                streams.extend(subs);
            }
        }
        let (tx, rx) = mpsc::channel(EVENTS_BUFFER);
        let ledger = self.inner.ledger.clone();
        let poll = Duration::from_millis(self.inner.config.events_poll_interval_ms.max(1));
        tokio::spawn(async move {
            loop {
                let events = match ledger
                    .outbox_after(&streams, position, EVENTS_BATCH_MAX)
                    .await
                {
                    Ok(events) => events,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                for stored in events {
                    position = stored.seq;
                    let event = match serde_json::from_str::<Event>(&stored.body) {
                        Ok(mut event) => {
                            event.link_transaction(stored.transaction);
                            event
                        }
                        Err(e) => {
                            tracing::error!(seq = stored.seq, error = %e, "unreadable outbox event");
                            let corrupt = CashierError::corrupt("event", stored.seq.to_string());
                            let _ = tx.send(Err(corrupt)).await;
                            return;
                        }
                    };
                    let delivered = DeliveredEvent {
                        cursor: stored.seq.to_string(),
                        event,
                    };
                    if tx.send(Ok(delivered)).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }

    // ----- internals -----------------------------------------------------------------------

    fn is_bank(&self, caller: &Caller) -> bool {
        self.inner.config.bank_callers.contains(&caller.name)
    }

    /// A caller acts for a merchant when it is one of the bank's callers, one of the merchant's
    /// allowed callers, or (for a sub-merchant) one of its service provider's.
    async fn check_merchant(
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
    fn now_ms(&self) -> i64 {
        self.inner.ledger.now_ms()
    }

    /// A document that may describe a posting: its body, with the journal transaction of the
    /// command that wrote it linked in (see [`Linked`]).
    async fn load_linked<T: DeserializeOwned + Linked>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<(T, u64)>, CashierError> {
        if id.is_empty() || id.len() > crate::ledger::DOCUMENT_ID_LEN_MAX {
            return Ok(None);
        }
        let Some(doc) = self.inner.ledger.document(kind, id).await? else {
            return Ok(None);
        };
        let mut value: T = decode_document(kind, id, &doc.body)?;
        value.link_transaction(doc.transaction);
        Ok(Some((value, doc.version)))
    }

    async fn load<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<(T, u64)>, CashierError> {
        if id.is_empty() || id.len() > crate::ledger::DOCUMENT_ID_LEN_MAX {
            return Ok(None);
        }
        let Some(doc) = self.inner.ledger.document(kind, id).await? else {
            return Ok(None);
        };
        let value = decode_document(kind, id, &doc.body)?;
        Ok(Some((value, doc.version)))
    }

    async fn merchant_doc(&self, id: &str) -> Result<(Merchant, u64), CashierError> {
        self.load(KIND_MERCHANT, id)
            .await?
            .ok_or_else(|| CashierError::MerchantNotFound {
                merchant: id.to_owned(),
            })
    }

    async fn order_doc(&self, id: &str) -> Result<(Order, u64), CashierError> {
        self.load_linked(KIND_ORDER, id)
            .await?
            .ok_or_else(|| CashierError::OrderNotFound {
                order: id.to_owned(),
            })
    }

    /// An order that can be paid now, with its version.
    async fn payable_order(&self, id: &str) -> Result<(Order, u64), CashierError> {
        if id.is_empty() {
            return Err(CashierError::invalid("order_id", "required"));
        }
        let (stored, version) = self.order_doc(id).await?;
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

    /// True when this caller's request with this id already succeeded; a different request
    /// under the same id is refused (`IDEMPOTENCY_KEY_REUSED`). A stored refusal answers
    /// false: the request then goes the usual way and the ledger answers the refusal again,
    /// named as the first time.
    async fn succeeded_before(
        &self,
        caller: &Caller,
        request_id: &str,
        print: &str,
    ) -> Result<bool, CashierError> {
        let key = IdempotencyKey::new(caller.name.clone(), request_id);
        let answer = self.inner.accounts.answered_request(&key, print).await?;
        Ok(matches!(answer, Some(Ok(_))))
    }

    async fn replayed_order(&self, id: &str) -> Result<Order, CashierError> {
        Ok(self.order_doc(id).await?.0.as_of(self.now_ms()))
    }

    /// The payer, in the caller's scope, able to pay this order's currency.
    async fn payer(
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

    fn new_paid_order(
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

    fn amount(&self, text: &MoneyText) -> Result<Money, CashierError> {
        if text.currency.is_empty() || text.amount.is_empty() {
            return Err(CashierError::invalid(
                "amount",
                "currency and amount are required",
            ));
        }
        let currency = Currency::from_code(&text.currency).map_err(LedgerError::from)?;
        if currency != self.inner.currency {
            return Err(CashierError::invalid(
                "amount",
                format!("the cashier takes {}", self.inner.currency),
            ));
        }
        Ok(Money::parse(currency, &text.amount, Sign::Positive).map_err(LedgerError::from)?)
    }

    /// Class and barcode limit checks of one payment.
    fn limit_checks(
        &self,
        payer: &AccountFacts,
        amount_minor: i64,
        barcode: Option<Barcode>,
    ) -> Vec<LimitCheck> {
        let date = self.inner.accounts.today();
        let mut checks =
            self.inner
                .accounts
                .rules()
                .outflow_checks(payer.kind, payer.id, amount_minor, date);
        if let Some(barcode) = barcode {
            let (rule, limit_minor) = self.barcode_rule(barcode);
            let period = date.to_string();
            checks.push(LimitCheck {
                rule,
                window: LimitWindow::Day,
                counter: CounterCheck {
                    key: counter_key(rule, LimitWindow::Day, payer.id, &period),
                    amount_minor,
                    cap_minor: limit_minor,
                },
                period,
                limit_minor,
            });
        }
        checks
    }

    fn barcode_rule(&self, barcode: Barcode) -> (LimitRule, i64) {
        let l = &self.inner.limits;
        match barcode {
            Barcode::Static => (LimitRule::BarcodeStaticCode, l.static_day_minor),
            Barcode::Dynamic(RiskLevel::A) => (LimitRule::BarcodeDynamicA, l.dynamic_a_day_minor),
            Barcode::Dynamic(RiskLevel::B) => (LimitRule::BarcodeDynamicB, l.dynamic_b_day_minor),
            Barcode::Dynamic(RiskLevel::C) => (LimitRule::BarcodeDynamicC, l.dynamic_c_day_minor),
        }
    }

    /// What the payer's class limits still allow today.
    async fn outflow_headroom(&self, payer: &AccountFacts) -> Result<i64, CashierError> {
        let checks = self.limit_checks(payer, 0, None);
        self.headroom_of(&checks).await
    }

    async fn barcode_headroom(
        &self,
        payer: &AccountFacts,
        risk: RiskLevel,
    ) -> Result<i64, CashierError> {
        let checks = self.limit_checks(payer, 0, Some(Barcode::Dynamic(risk)));
        self.headroom_of(&checks).await
    }

    async fn headroom_of(&self, checks: &[LimitCheck]) -> Result<i64, CashierError> {
        let keys: Vec<String> = checks.iter().map(|c| c.counter.key.clone()).collect();
        let used: std::collections::BTreeMap<String, i64> = self
            .inner
            .ledger
            .counter_values(&keys)
            .await?
            .into_iter()
            .collect();
        Ok(checks
            .iter()
            .map(|c| c.limit_minor - used.get(&c.counter.key).copied().unwrap_or(0))
            .min()
            .unwrap_or(i64::MAX))
    }

    async fn submit(
        &self,
        caller: &Caller,
        request_id: &str,
        fingerprint: String,
        command: Command,
        checks: &[LimitCheck],
    ) -> Result<Outcome, CashierError> {
        Ok(self
            .inner
            .accounts
            .submit_request(
                IdempotencyKey::new(caller.name.clone(), request_id),
                &fingerprint,
                command,
                checks,
            )
            .await?)
    }

    /// Names a lost document race: a duplicate number, a used code, or an order that another
    /// request changed first.
    fn conflict_is(&self, error: CashierError, what: &str) -> CashierError {
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

    /// One payment from the payer's balance: payer debit, merchant credit net of fee, fee to the
    /// bank's fee income — one journal transaction with the order's new state, its events and
    /// any other documents (order number, consumed code), under the payer's limits.
    async fn charge(&self, c: Charge<'_>) -> Result<Order, CashierError> {
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
            .submit(caller, request_id, fingerprint, command, &checks)
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

    /// Bound-card quick pay (快捷支付) through the clearing network, two-phase: the order is
    /// reserved (PROCESSING, so nothing else can pay it), the network debits the card, and the
    /// settlement posts card suspense → merchant net + fee income with the order's final state
    /// in one transaction; a decline marks the order FAILED; no answer leaves it PROCESSING.
    #[allow(clippy::too_many_arguments)]
    async fn quick_pay(
        &self,
        caller: &Caller,
        request_id: &str,
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
        let network = self.inner.accounts.clearing().network().as_str().to_owned();
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
            .submit(caller, request_id, print, reserve, &checks)
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
        let settle_key = format!("{request_id}#settle");
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
            .submit(caller, &settle_key, settle_print, command, &[])
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

/// Which barcode rule a payment counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Barcode {
    Static,
    Dynamic(RiskLevel),
}

struct Charge<'a> {
    caller: &'a Caller,
    request_id: &'a str,
    fingerprint: String,
    merchant: &'a Merchant,
    order: Order,
    order_version: u64,
    payer: &'a AccountFacts,
    method: Method,
    barcode: Option<Barcode>,
    created_now: bool,
    extra: Vec<DocumentWrite>,
}

fn guarded(
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

fn decode_document<T: DeserializeOwned>(
    kind: &str,
    id: &str,
    body: &str,
) -> Result<T, CashierError> {
    serde_json::from_str(body).map_err(|e| {
        tracing::error!(kind, id, error = %e, "unreadable document");
        CashierError::corrupt(kind, id)
    })
}

fn write_doc<T: Serialize>(
    kind: &str,
    id: &str,
    expected_version: u64,
    value: &T,
) -> Result<DocumentWrite, CashierError> {
    let body = serde_json::to_string(value).map_err(|e| {
        tracing::error!(kind, error = %e, "document could not be encoded");
        CashierError::from(LedgerError::Storage)
    })?;
    Ok(DocumentWrite {
        kind: kind.to_owned(),
        id: id.to_owned(),
        expected_version,
        body,
    })
}

/// The outbox event of an order change; its id is the order id and the order's event sequence.
fn event_of(
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

fn payment_metadata(kind: &str, order_id: &str, from: AccountId, to: AccountId) -> Metadata {
    Metadata::from([
        ("type".to_owned(), kind.to_owned()),
        ("order".to_owned(), order_id.to_owned()),
        ("from".to_owned(), from.to_string()),
        ("to".to_owned(), to.to_string()),
    ])
}

/// The fee (rounded half up to the fen) and the merchant's net of an amount.
pub fn split_fee(amount_minor: i64, rate: FeeRate) -> Result<(i64, i64), CashierError> {
    let fee = (Decimal::from(amount_minor) * rate.as_decimal())
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .ok_or(CashierError::from(LedgerError::Overflow))?;
    let fee = fee.clamp(0, amount_minor);
    debug_assert!(fee <= amount_minor);
    Ok((fee, amount_minor - fee))
}

fn check_payer(payer: &AccountFacts) -> Result<(), CashierError> {
    if !payer.kind.is_electronic() {
        return Err(CashierError::invalid(
            "payer_account_id",
            "a personal Class II or Class III electronic account",
        ));
    }
    Ok(())
}

fn not_permitted(caller: &Caller, merchant: &str) -> CashierError {
    CashierError::MerchantNotPermitted {
        caller: caller.name.clone(),
        merchant: merchant.to_owned(),
    }
}

fn parse_account(field: &'static str, text: &str) -> Result<AccountId, CashierError> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CashierError::invalid(field, "an account id"));
    }
    text.parse::<u64>()
        .ok()
        .filter(|id| *id > 0)
        .map(AccountId)
        .ok_or_else(|| CashierError::invalid(field, "an account id"))
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

/// An id derived from the caller's idempotency key, so a replayed request finds what the first
/// one created.
fn derive_id(prefix: &str, caller: &str, request_id: &str) -> String {
    let digest = Sha256::digest(format!("{prefix}\0{caller}\0{request_id}"));
    format!("{prefix}{}", hex::encode(&digest[..12]))
}

/// The expiry-queue id of an order: zero-padded so ids sort by expiry.
fn expiry_key(expires_at_ms: i64, order_id: &str) -> String {
    format!("{:020}|{order_id}", expires_at_ms.max(0))
}

fn parse_expiry_key(id: &str) -> Option<(i64, &str)> {
    let (at, order) = id.split_once('|')?;
    Some((at.parse().ok()?, order))
}

fn no_key(merchant_id: &str, no: &str) -> String {
    format!("{merchant_id}/{no}")
}

fn fingerprint<T: Serialize>(method: &str, request: &T) -> String {
    let text = serde_json::to_string(request).unwrap_or_default();
    hex::encode(Sha256::digest(format!("{method}\0{text}")))
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn check_request_id(request_id: &str) -> Result<(), CashierError> {
    if request_id.is_empty()
        || request_id.len() > REQUEST_ID_LEN_MAX
        || request_id.contains('#')
        || !request_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(CashierError::invalid(
            "request_id",
            format!("1..={REQUEST_ID_LEN_MAX} printable ASCII characters, no '#'"),
        ));
    }
    Ok(())
}

fn check_no(field: &'static str, no: &str) -> Result<(), CashierError> {
    if no.is_empty()
        || no.len() > MERCHANT_NO_LEN_MAX
        || !no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(CashierError::invalid(
            field,
            format!("1..={MERCHANT_NO_LEN_MAX} letters, digits, '-' or '_'"),
        ));
    }
    Ok(())
}

fn check_text(field: &'static str, text: &str, required: bool) -> Result<(), CashierError> {
    if required && text.trim().is_empty() {
        return Err(CashierError::invalid(field, "required"));
    }
    if text.chars().count() > TEXT_LEN_MAX {
        return Err(CashierError::invalid(
            field,
            format!("at most {TEXT_LEN_MAX} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> FeeRate {
        text.parse().unwrap()
    }

    #[test]
    fn fees_round_half_up_to_the_fen_and_never_exceed_the_amount() {
        assert_eq!(split_fee(10_000, rate("0.0038")).unwrap(), (38, 9_962));
        assert_eq!(split_fee(132, rate("0.0038")).unwrap(), (1, 131)); // 0.5016 → 1
        assert_eq!(split_fee(131, rate("0.0038")).unwrap(), (0, 131)); // 0.4978 → 0
        assert_eq!(split_fee(1, rate("0")).unwrap(), (0, 1));
        assert_eq!(split_fee(0, rate("0.5")).unwrap(), (0, 0));
        assert_eq!(split_fee(1, rate("0.5")).unwrap(), (1, 0)); // 0.5 → 1, all of it
        assert_eq!(split_fee(1, rate("0.999999")).unwrap(), (1, 0));
        assert_eq!(split_fee(3, rate("0.5")).unwrap(), (2, 1)); // 1.5 → 2
        assert_eq!(
            split_fee(i64::MAX, rate("0.000001")).unwrap().0,
            9_223_372_036_855
        );
    }

    #[test]
    fn fee_rates_are_fractions_in_zero_to_one_with_six_places_at_most() {
        for ok in ["0", "0.0", "0.0038", "0.999999", "0.100000", "00000000.1"] {
            assert!(ok.parse::<FeeRate>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1",
            "1.0",
            "-0.1",
            "0.1234567",
            "1e-3",
            "0.1.2",
            "abc",
            " 0.1",
            "0.00000001",
        ] {
            assert!(bad.parse::<FeeRate>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fee_rates_keep_their_written_places_in_stored_json() {
        let r: FeeRate = serde_json::from_str("\"0.0100\"").unwrap();
        assert_eq!(r.to_string(), "0.0100");
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"0.0100\"");
        assert!(serde_json::from_str::<FeeRate>("\"1.5\"").is_err());
        assert!(serde_json::from_str::<FeeRate>("0.1").is_err());
    }

    #[test]
    fn risk_level_follows_the_verified_factors() {
        use AuthFactor::*;
        assert_eq!(RiskLevel::from_factors(&[Password]), RiskLevel::C);
        assert_eq!(RiskLevel::from_factors(&[Password, Password]), RiskLevel::C);
        assert_eq!(RiskLevel::from_factors(&[Password, SmsOtp]), RiskLevel::B);
        assert_eq!(
            RiskLevel::from_factors(&[Password, DigitalCertificate]),
            RiskLevel::A
        );
        assert_eq!(RiskLevel::from_factors(&[]), RiskLevel::C);
    }
}

//! The cashier's domain types and the documents it keeps beside the ledger (merchants, orders,
//! refunds, payment codes). No gRPC and no SQL types here: documents are JSON bodies written by
//! ledger commands (see [`crate::ledger::DocumentWrite`]).

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ledger::TransactionId;

/// Payment scenario (支付场景).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scenario {
    App,
    H5,
    OfficialAccount,
    MiniProgram,
    PcWeb,
    Pos,
}

impl Scenario {
    /// Face to face is OFFLINE; where the payer sees only a site, app or account it is ONLINE.
    pub fn business_class(self) -> BusinessClass {
        match self {
            Scenario::Pos => BusinessClass::Offline,
            Scenario::App
            | Scenario::H5
            | Scenario::OfficialAccount
            | Scenario::MiniProgram
            | Scenario::PcWeb => BusinessClass::Online,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::App => "APP",
            Scenario::H5 => "H5",
            Scenario::OfficialAccount => "OFFICIAL_ACCOUNT",
            Scenario::MiniProgram => "MINI_PROGRAM",
            Scenario::PcWeb => "PC_WEB",
            Scenario::Pos => "POS",
        }
    }
}

/// Business class: drives routing, fees and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BusinessClass {
    Online,
    Offline,
}

/// Payment method (支付方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Method {
    Balance,
    YieldBalance,
    BoundCard,
    MerchantQr,
    PaymentCode,
    /// Consumer credit (消费金融): the payer's credit line funds the payment.
    Credit,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Balance => "BALANCE",
            Method::YieldBalance => "YIELD_BALANCE",
            Method::BoundCard => "BOUND_CARD",
            Method::MerchantQr => "MERCHANT_QR",
            Method::PaymentCode => "PAYMENT_CODE",
            Method::Credit => "CREDIT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MerchantType {
    Normal,
    /// Service provider (服务商).
    ServiceProvider,
    /// Sub-merchant (特约商户) of a service provider.
    SubMerchant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Created,
    Processing,
    Succeeded,
    Failed,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    Processing,
    Succeeded,
    Failed,
}

/// Barcode payment risk level (rule, 银发〔2017〕296号).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RiskLevel {
    A,
    B,
    C,
}

/// A payer verification factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthFactor {
    Password,
    SmsOtp,
    Biometric,
    Device,
    DigitalCertificate,
    ElectronicSignature,
}

impl RiskLevel {
    /// A: two or more factors including a certificate or e-signature; B: two or more; C: fewer.
    pub fn from_factors(factors: &[AuthFactor]) -> RiskLevel {
        let mut distinct = factors.to_vec();
        distinct.sort();
        distinct.dedup();
        let strong = distinct.iter().any(|f| {
            matches!(
                f,
                AuthFactor::DigitalCertificate | AuthFactor::ElectronicSignature
            )
        });
        match (distinct.len() >= 2, strong) {
            (true, true) => RiskLevel::A,
            (true, false) => RiskLevel::B,
            (false, _) => RiskLevel::C,
        }
    }
}

/// Type of merchant event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    OrderCreated,
    PaymentProcessing,
    PaymentSucceeded,
    PaymentFailed,
    OrderClosed,
    RefundProcessing,
    RefundSucceeded,
    RefundFailed,
}

/// The clearing network a payment went through: the clearing module's own enum, stored under
/// its name (`"ON_US"`, `"NETS_UNION"` …), as order documents always stored it.
pub use crate::clearing::Network as ClearingNetwork;

/// Most decimal places of a fee rate, and the longest text of one.
pub const FEE_RATE_SCALE_MAX: u32 = 6;
pub const FEE_RATE_LEN_MAX: usize = 10;

/// A fee rate: a decimal fraction in [0, 1) with at most [`FEE_RATE_SCALE_MAX`] places, e.g.
/// `0.0038`. Parsed once, at the edge; stored as its decimal string (so documents written
/// before this type read unchanged), keeping the places it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FeeRate(Decimal);

/// Why a text is not a [`FeeRate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a decimal fraction in [0, 1) with at most 6 places, e.g. \"0.0038\"")]
pub struct InvalidFeeRate;

impl FeeRate {
    pub fn as_decimal(self) -> Decimal {
        self.0
    }
}

impl FromStr for FeeRate {
    type Err = InvalidFeeRate;

    fn from_str(text: &str) -> Result<FeeRate, InvalidFeeRate> {
        let well_formed = !text.is_empty()
            && text.len() <= FEE_RATE_LEN_MAX
            && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && text.bytes().filter(|b| *b == b'.').count() <= 1;
        let rate: Option<Decimal> = well_formed.then(|| text.parse().ok()).flatten();
        match rate {
            Some(r)
                if r.scale() <= FEE_RATE_SCALE_MAX && r >= Decimal::ZERO && r < Decimal::ONE =>
            {
                Ok(FeeRate(r))
            }
            _ => Err(InvalidFeeRate),
        }
    }
}

impl TryFrom<String> for FeeRate {
    type Error = InvalidFeeRate;

    fn try_from(text: String) -> Result<FeeRate, InvalidFeeRate> {
        text.parse()
    }
}

impl From<FeeRate> for String {
    fn from(rate: FeeRate) -> String {
        rate.to_string()
    }
}

impl fmt::Display for FeeRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A signed payment product (支付产品): method × scenario with its fee rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub method: Method,
    pub scenario: Scenario,
    pub fee_rate: FeeRate,
}

/// A merchant document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub merchant_id: String,
    pub name: String,
    pub merchant_type: MerchantType,
    pub service_provider_id: Option<String>,
    pub settlement_account_id: u64,
    pub products: Vec<Product>,
    pub allowed_callers: Vec<String>,
    pub static_qr_payload: String,
    pub created_at_ms: i64,
}

impl Merchant {
    pub fn product(&self, method: Method, scenario: Scenario) -> Option<&Product> {
        self.products
            .iter()
            .find(|p| p.method == method && p.scenario == scenario)
    }
}

/// Payment details of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub method: Method,
    pub payer_account_id: u64,
    pub masked_card_number: String,
    pub fee_minor: i64,
    pub net_minor: i64,
    /// The clearing network, when one was involved (stored as its name, e.g. `"ON_US"`).
    pub network: Option<ClearingNetwork>,
    pub network_reference: String,
    /// Journal transaction (the ledger fills it in when the posting commits).
    pub transaction_id: String,
    pub risk_level: Option<RiskLevel>,
    pub failure_reason: String,
    /// The FAST redemption that funded the payment, in its own posting: all of it for
    /// YIELD_BALANCE, the part the balance could not cover for a topped-up balance payment
    /// (orders stored before it existed: none; not written when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yield_funding: Option<YieldFunding>,
    /// The credit line drawdown that funded a CREDIT payment (not written when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_funding: Option<CreditDraw>,
}

/// A payment's funding from a credit line (消费金融).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditDraw {
    pub line_id: String,
    pub drawdown_id: String,
}

/// A payment's funding from a yield holding (余额增值).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YieldFunding {
    pub product_id: String,
    pub redemption_id: String,
    pub redeemed_minor: i64,
}

/// An order document. Its per-order event sequence is `event_sequence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub merchant_id: String,
    pub merchant_order_no: String,
    pub currency: String,
    pub amount_minor: i64,
    pub subject: String,
    pub scenario: Scenario,
    pub status: OrderStatus,
    pub cashier_token: String,
    pub qr_payload: String,
    pub payment: Option<Payment>,
    pub refunded_minor: i64,
    pub close_reason: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub paid_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
    /// Sequence of the last event written about this order (1 = created).
    pub event_sequence: i64,
}

impl Order {
    /// The order as a caller sees it at `now_ms`: an unpaid order past its expiry is CLOSED
    /// ("EXPIRED") whether or not anything has written that down yet.
    pub fn as_of(mut self, now_ms: i64) -> Order {
        if self.status == OrderStatus::Created && now_ms >= self.expires_at_ms {
            self.status = OrderStatus::Closed;
            self.close_reason = "EXPIRED".to_owned();
            self.closed_at_ms = Some(self.expires_at_ms);
        }
        self
    }
}

/// A refund document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub refund_id: String,
    pub order_id: String,
    pub merchant_id: String,
    pub merchant_refund_no: String,
    pub currency: String,
    pub amount_minor: i64,
    pub fee_refunded_minor: i64,
    pub status: RefundStatus,
    pub reason: String,
    pub failure_reason: String,
    pub transaction_id: String,
    pub created_at_ms: i64,
    pub completed_at_ms: Option<i64>,
}

/// A consumer-presented payment code (付款码) document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCode {
    pub code: String,
    pub payer_account_id: u64,
    pub risk_level: RiskLevel,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// The order that consumed it.
    pub used_by_order: Option<String>,
}

/// One merchant event, as written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    pub event_type: EventType,
    pub order_sequence: i64,
    pub order: Order,
    pub refund: Option<Refund>,
    pub event_time_ms: i64,
}

/// An event with its cursor, as a subscriber receives it.
#[derive(Debug, Clone)]
pub struct DeliveredEvent {
    pub cursor: String,
    pub event: Event,
}

/// A payment method option for an order and payer.
#[derive(Debug, Clone)]
pub struct MethodOption {
    pub method: Method,
    pub available: bool,
    pub unavailable_reason: String,
    pub unavailable_message: String,
    pub spendable_minor: Option<i64>,
    /// The order's currency (what `spendable_minor` counts in).
    pub currency: String,
    pub agreement_id: String,
    pub masked_card_number: String,
    /// The product YIELD_BALANCE would redeem from.
    pub yield_product_id: String,
    /// The payer's credit line, for CREDIT.
    pub credit_line_id: String,
}

/// A record that names the journal transaction it describes. The ledger links a document or
/// event to the posting of the command that wrote it (a typed column, not text in the body);
/// a record whose id is still empty takes that link when it is read.
pub trait Linked {
    fn link_transaction(&mut self, transaction: Option<TransactionId>);
}

fn link(field: &mut String, transaction: Option<TransactionId>) {
    if field.is_empty()
        && let Some(t) = transaction
    {
        *field = t.to_string();
    }
}

impl Linked for Order {
    fn link_transaction(&mut self, transaction: Option<TransactionId>) {
        if let Some(payment) = &mut self.payment {
            link(&mut payment.transaction_id, transaction);
        }
    }
}

impl Linked for Refund {
    fn link_transaction(&mut self, transaction: Option<TransactionId>) {
        link(&mut self.transaction_id, transaction);
    }
}

impl Linked for Event {
    /// An event is appended by the command that posted what it reports: a refund event's
    /// posting is the refund's, otherwise the payment's.
    fn link_transaction(&mut self, transaction: Option<TransactionId>) {
        match &mut self.refund {
            Some(refund) => refund.link_transaction(transaction),
            None => self.order.link_transaction(transaction),
        }
    }
}

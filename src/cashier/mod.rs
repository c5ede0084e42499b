//! The quick cashier (快捷收银台): merchants and service providers (服务商), orders, payment
//! methods and scenarios, merchant-presented QR and consumer-presented payment codes, refunds
//! and merchant notifications.
//!
//! Every state change is one ledger command: the order, refund or payment-code document (with
//! its version checked, so two concurrent payments of one order charge once), the outbox event
//! that tells the merchant, and the posting they describe commit in the same database
//! transaction. A payment posts payer debit, merchant credit net of fee and fee income as one
//! journal transaction, with the payer's class and barcode limits checked in the same step.

// `CashierError` is 128 bytes, just at clippy's threshold: `Account(AccountError)` is unboxed
// by design (flat errors) and `AccountError` is itself 128 bytes (its `LimitExceeded` payload);
// `RefundExceedsPaid` (five strings) is 128 bytes too. Shrinking it needs the account
// service's `LimitExceeded` payload boxed first; until then the size is accepted here.
#![allow(clippy::result_large_err)]

pub mod error;
pub mod model;

mod claim;
mod documents;
mod events;
mod limits;
mod merchants;
mod methods;
mod orders;
mod pay;
mod recovery;
mod refunds;
mod requests;
mod settlement;
mod sweeper;

use documents::{Replaying, event_of, guarded, write_doc};

use std::{sync::Arc, time::Duration};

use rust_decimal::{Decimal, RoundingStrategy, prelude::ToPrimitive};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

pub use error::CashierError;
pub use model::*;
pub use pay::{PAYMENT_CODE_LEN_MAX, QrTarget, check_payment_code};
pub use requests::*;
pub use settlement::{KIND_SETTLEMENT_STATEMENT, SettlementStatement};

use crate::{
    account::{
        AccountError, AccountFacts, AccountKind, AccountService, Caller, InternalPurpose,
        rules::{LimitCheck, LimitRule, LimitWindow, counter_key},
    },
    clearing::{CardDirection, CardInstruction},
    config::CashierConfig,
    credit::{CreditFunding, CreditService},
    ledger::{
        AccountId, AccountStatus, Command, CounterCheck, DocumentWrite, Freshness, IdempotencyKey,
        Ledger, LedgerError, Metadata, NewEntry, NewTransaction, OutboxEvent, Outcome, RequestId,
        Side,
    },
    money::{Currency, Money, Sign},
    yields::{PaymentFunding, YieldService},
};

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
    /// Pays with yield (余额增值): funds YIELD_BALANCE payments and tops up short balance ones.
    yields: YieldService,
    /// Pays with credit (消费金融): draws CREDIT payments down a line and restores it on refund.
    credit: CreditService,
    config: CashierConfig,
    currency: Currency,
    limits: BarcodeLimits,
    fee_income: AccountId,
}

impl CashierService {
    pub fn start(
        accounts: AccountService,
        ledger: Ledger,
        yields: YieldService,
        credit: CreditService,
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
        Ok(CashierService {
            inner: Arc::new(Inner {
                accounts,
                ledger,
                yields,
                credit,
                config: config.clone(),
                currency,
                limits,
                fee_income,
            }),
        })
    }

    /// The clearing suspense account of the network a card payment went through (on-us for
    /// orders stored before payments recorded their network).
    pub(in crate::cashier) fn suspense_of(
        &self,
        network: Option<ClearingNetwork>,
    ) -> Result<AccountId, CashierError> {
        Ok(self
            .inner
            .accounts
            .suspense_of(network.unwrap_or(ClearingNetwork::ON_US))?)
    }
}

/// Which barcode rule a payment counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::cashier) enum Barcode {
    Static,
    Dynamic(RiskLevel),
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

/// An id derived from the caller's idempotency key, so a replayed request finds what the first
/// one created.
fn derive_id(prefix: &str, caller: &str, request_id: &RequestId) -> String {
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

/// A free-text field under the shared rules ([`crate::text`]).
fn check_text(field: &'static str, text: &str, required: bool) -> Result<(), CashierError> {
    crate::text::check_free_text(text, required, TEXT_LEN_MAX)
        .map_err(|refusal| CashierError::Text { field, refusal })
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
    fn stored_network_names_read_as_the_domain_enum() {
        let n: ClearingNetwork = serde_json::from_str("\"ON_US\"").unwrap();
        assert_eq!(n, ClearingNetwork::ON_US);
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"ON_US\"");
        let stored = r#"{"method":"BOUND_CARD","payer_account_id":7,"masked_card_number":"","fee_minor":1,"net_minor":99,"network":"ON_US","network_reference":"","transaction_id":"","risk_level":null,"failure_reason":""}"#;
        let payment: Payment = serde_json::from_str(stored).unwrap();
        assert_eq!(payment.network, Some(ClearingNetwork::ON_US));
        assert_eq!(serde_json::to_string(&payment).unwrap(), stored);
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

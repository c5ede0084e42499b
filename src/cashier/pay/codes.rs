//! The texts a payer or a merchant presents: payment codes (付款码) and merchant QR payloads,
//! parsed here once (and fuzzed: `fuzz/fuzz_targets/payment_code_qr.rs`).

use super::{CashierError, QR_MERCHANT_PREFIX, QR_ORDER_PREFIX};

/// Longest payment code accepted, in ASCII digits.
pub const PAYMENT_CODE_LEN_MAX: usize = 32;

/// What a merchant QR payload of this bank names: an order (a dynamic code) or a merchant (a
/// static code, where the payer enters the amount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrTarget<'a> {
    Order(&'a str),
    Merchant(&'a str),
}

impl<'a> QrTarget<'a> {
    /// The target a payload names; `None` when it is not a payload of this bank.
    pub fn parse(payload: &'a str) -> Option<QrTarget<'a>> {
        if let Some(order_id) = payload.strip_prefix(QR_ORDER_PREFIX) {
            Some(QrTarget::Order(order_id))
        } else {
            payload
                .strip_prefix(QR_MERCHANT_PREFIX)
                .map(QrTarget::Merchant)
        }
    }

    /// The payload that names this target (what [`QrTarget::parse`] reads back).
    pub fn payload(self) -> String {
        match self {
            QrTarget::Order(order_id) => format!("{QR_ORDER_PREFIX}{order_id}"),
            QrTarget::Merchant(merchant_id) => format!("{QR_MERCHANT_PREFIX}{merchant_id}"),
        }
    }
}

/// A payment code as a wallet shows it: 1..=[`PAYMENT_CODE_LEN_MAX`] ASCII digits; anything
/// else is [`CashierError::PaymentCodeInvalid`] before any lookup.
pub fn check_payment_code(code: &str) -> Result<(), CashierError> {
    let digits = !code.is_empty()
        && code.len() <= PAYMENT_CODE_LEN_MAX
        && code.bytes().all(|b| b.is_ascii_digit());
    if digits {
        Ok(())
    } else {
        Err(CashierError::PaymentCodeInvalid)
    }
}

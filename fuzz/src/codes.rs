//! Payment codes and merchant QR payloads (`paygate::cashier::{check_payment_code, QrTarget}`),
//! as texts and as they arrive in ScanPay and Pay requests.

use paygate::{
    cashier::{PAYMENT_CODE_LEN_MAX, PayOrder, PayWith, QrTarget, ScanPay, check_payment_code},
    grpc::pb,
};
use prost::Message;

use super::bytes::Bytes;

/// Input: a mode byte, then a text (modes 0–1) or a ScanPay (2) or Pay (3) request.
pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    let mode = input.u8() % 4;
    let rest = input.rest();
    match mode {
        0 | 1 => text(&String::from_utf8_lossy(rest)),
        2 => {
            if let Ok(Ok(scan)) = pb::ScanPayRequest::decode(rest).map(ScanPay::try_from) {
                payment_code(&scan.payment_code);
            }
        }
        _ => {
            if let Ok(Ok(pay)) = pb::PayRequest::decode(rest).map(PayOrder::try_from)
                && let PayWith::MerchantQr { qr_payload, .. } = &pay.with
            {
                qr_payload_text(qr_payload);
            }
        }
    }
}

fn text(text: &str) {
    payment_code(text);
    qr_payload_text(text);
    // Any id makes a payload that reads back as itself.
    for target in [QrTarget::Order(text), QrTarget::Merchant(text)] {
        assert_eq!(QrTarget::parse(&target.payload()), Some(target));
    }
}

/// Accepted exactly when 1..=32 ASCII digits (the rule written out again, independently).
fn payment_code(code: &str) {
    let wallet_shaped = (1..=PAYMENT_CODE_LEN_MAX).contains(&code.chars().count())
        && code.chars().all(|c| c.is_ascii_digit());
    assert_eq!(check_payment_code(code).is_ok(), wallet_shaped, "{code:?}");
}

fn qr_payload_text(payload: &str) {
    match QrTarget::parse(payload) {
        Some(target) => {
            assert_eq!(target.payload(), payload);
            match target {
                QrTarget::Order(id) => assert!(payload.ends_with(id)),
                QrTarget::Merchant(id) => assert!(payload.ends_with(id)),
            }
        }
        None => assert!(
            !payload.starts_with("paygate:qr:order:")
                && !payload.starts_with("paygate:qr:merchant:"),
            "{payload:?}"
        ),
    }
}

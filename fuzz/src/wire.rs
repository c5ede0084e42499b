//! The wire-to-domain conversions (`src/grpc/account/convert.rs`, `src/grpc/cashier/requests.rs`):
//! arbitrary bytes decoded as a request message, then converted as a handler converts it.

use paygate::{
    account::{OpenAccount, PlaceHold},
    cashier::{
        CloseOrder, CreateOrder, IssuePaymentCode, PayOrder, PayWith, RefundOrder,
        RegisterMerchant, ScanPay,
    },
    grpc::pb,
    ledger::{REQUEST_ID_LEN_MAX, RequestId},
    money::Money,
};
use prost::Message;
use tonic::{Code, Status};

use super::bytes::Bytes;

/// Input: a message pick, then the message's protobuf encoding.
pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    let pick = input.u8() % 9;
    let wire = input.rest();
    match pick {
        0 => convert::<pb::OpenAccountRequest, OpenAccount>(wire, |r| vec![&r.request_id], |_| {}),
        1 => convert::<pb::PlaceHoldRequest, PlaceHold>(
            wire,
            |r| vec![&r.request_id],
            |r| positive(r.amount),
        ),
        2 => convert::<pb::RegisterMerchantRequest, RegisterMerchant>(
            wire,
            |r| vec![&r.request_id],
            |_| {},
        ),
        3 => convert::<pb::CreateOrderRequest, CreateOrder>(
            wire,
            |r| vec![&r.request_id],
            |r| positive(r.amount),
        ),
        4 => convert::<pb::CloseOrderRequest, CloseOrder>(wire, |r| vec![&r.request_id], |_| {}),
        5 => convert::<pb::PayRequest, PayOrder>(
            wire,
            |r| vec![&r.request_id],
            |r| {
                if let PayWith::MerchantQr {
                    amount: Some(amount),
                    ..
                } = r.with
                {
                    positive(amount);
                }
            },
        ),
        6 => convert::<pb::IssuePaymentCodeRequest, IssuePaymentCode>(
            wire,
            |r| vec![&r.request_id],
            |_| {},
        ),
        7 => convert::<pb::ScanPayRequest, ScanPay>(
            wire,
            |r| vec![&r.request_id],
            |r| positive(r.amount),
        ),
        _ => convert::<pb::RefundRequest, RefundOrder>(
            wire,
            |r| vec![&r.request_id],
            |r| positive(r.amount),
        ),
    }
}

/// Decodes `wire` as `W` and converts it to `D`: a refusal is a client error (never INTERNAL,
/// never a panic); an accepted request has valid request ids and passes `check`.
fn convert<W, D>(wire: &[u8], ids: fn(&D) -> Vec<&RequestId>, check: fn(&D))
where
    W: Message + Default,
    D: TryFrom<W, Error = Status>,
{
    let Ok(message) = W::decode(wire) else {
        return;
    };
    match D::try_from(message) {
        Ok(domain) => {
            for id in ids(&domain) {
                let text = id.as_str();
                assert!(
                    !text.is_empty() && text.len() <= REQUEST_ID_LEN_MAX,
                    "{text:?}"
                );
                assert!(
                    text.bytes().all(|b| b.is_ascii_graphic() && b != b'#'),
                    "{text:?}"
                );
            }
            check(&domain);
        }
        Err(status) => assert!(
            matches!(status.code(), Code::InvalidArgument | Code::OutOfRange),
            "a malformed request answered {:?}: {}",
            status.code(),
            status.message()
        ),
    }
}

fn positive(amount: Money) {
    assert!(amount.minor > 0, "{amount:?} accepted as an amount");
}

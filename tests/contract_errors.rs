//! Errors a client can act on, black-box over mutual TLS: a request that does not decode is the
//! caller's mistake (INVALID_ARGUMENT, not INTERNAL, which means "retry"), and a call the server
//! times out answers DEADLINE_EXCEEDED with an ErrorInfo and may have been applied, so a retry
//! under the same request id answers what happened, never doing it twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, assert_refused, card_number, cny, metadata_of, open_personal, reason_of, request_id,
    resident_id, spawn_app, spawn_app_with, transfer_req,
};
use paygate::grpc::pb;
use tonic::Code;
use tonic_prost::ProstCodec;

/// The wire shape of a `TransferRequest` whose `request_id` (field 1, a string) carries bytes:
/// what a client with a broken encoder sends.
#[derive(Clone, PartialEq, prost::Message)]
struct BrokenTransfer {
    #[prost(bytes = "vec", tag = "1")]
    request_id: Vec<u8>,
}

async fn send_raw(
    channel: tonic::transport::Channel,
    message: BrokenTransfer,
) -> Result<pb::TransferResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/paygate.v1.AccountService/Transfer");
    grpc.unary(
        tonic::Request::new(message),
        path,
        ProstCodec::<BrokenTransfer, pb::TransferResponse>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_request_that_does_not_decode_is_invalid_argument_with_an_error_info() {
    let app = spawn_app(Backend::Sqlite).await;
    let not_utf8 = BrokenTransfer {
        request_id: vec![0xff, 0xfe, b'a'],
    };
    let refused = send_raw(app.channel("core-banking").await, not_utf8).await;
    let status = assert_refused(refused, Code::InvalidArgument, "MALFORMED_REQUEST");
    assert!(status.message().contains("does not decode"), "{status:?}");
    // Well-formed bytes that are not valid protobuf at all: a truncated varint.
    let mut grpc = tonic::client::Grpc::new(app.channel("core-banking").await);
    grpc.ready().await.expect("ready");
    let garbage = tonic::Request::new(Garbage(vec![0x08, 0xff]));
    let refused = grpc
        .unary(
            garbage,
            http::uri::PathAndQuery::from_static("/paygate.v1.AccountService/GetBalance"),
            RawCodec,
        )
        .await;
    let status = refused.expect_err("garbage is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason_of(&status), "MALFORMED_REQUEST");
}

/// Calls until the server answers within its deadline (bounded), giving the answer.
async fn answered<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    for _ in 0..ANSWER_TRIES_MAX {
        match call().await {
            Ok(answer) => return answer.into_inner(),
            Err(s) if s.code() == Code::DeadlineExceeded => {}
            Err(s) => panic!("{what}: {s:?}"),
        }
    }
    panic!("{what}: no answer within {ANSWER_TRIES_MAX} tries");
}

const ANSWER_TRIES_MAX: usize = 200;

// The deadline is the front door's, the same on every back end; on SQLite (synchronous FULL) a
// 1 ms deadline passes for a transfer, which waits for its batch's fsync, while replays and reads
// mostly make it (on PostgreSQL every call takes a few round trips, so few would be answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_the_server_deadline_is_deadline_exceeded_and_its_retry_answers_what_happened()
{
    let app = spawn_app_with(Backend::Sqlite, |c| c.limits.call_timeout_ms = 1).await;
    let client = app.accounts("core-banking").await;
    let mut ids = Vec::new();
    for n in 1..=2 {
        let req = open_personal(
            pb::AccountKind::ClassIi,
            &format!("customer-{n}"),
            &resident_id(n),
            &card_number(n),
        );
        let opened = answered("opening", || {
            let (mut c, r) = (client.clone(), req.clone());
            async move { c.open_account(r).await }
        })
        .await;
        ids.push(opened.account.expect("account").account_id);
    }
    let (from, to) = (ids[0].clone(), ids[1].clone());
    let fund = pb::TopUpRequest {
        request_id: request_id("fund"),
        account_id: from.clone(),
        amount: Some(cny("100.00")),
        memo: String::new(),
    };
    answered("funding", || {
        let (mut c, r) = (client.clone(), fund.clone());
        async move { c.top_up(r).await }
    })
    .await;

    let mut timed_out = 0;
    let mut transfers = 0;
    while timed_out < 3 && transfers < 20 {
        transfers += 1;
        let req = transfer_req(&from, &to, "1.00");
        let Err(status) = client.clone().transfer(req.clone()).await else {
            continue;
        };
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        assert_eq!(reason_of(&status), "DEADLINE_EXCEEDED");
        assert_eq!(metadata_of(&status)["timeout_ms"], "1");
        assert!(
            status.message().contains("may have been applied"),
            "{status:?}"
        );
        timed_out += 1;
        // The retry under the same request id learns the outcome (it may time out too).
        answered("the retry", || {
            let (mut c, r) = (client.clone(), req.clone());
            async move { c.transfer(r).await }
        })
        .await;
    }
    assert!(
        timed_out > 0,
        "a 1 ms deadline never passed in {transfers} transfers"
    );
    // Each transfer moved 1.00 exactly once, whether its first answer was seen or not.
    let book = |account: String| {
        let client = client.clone();
        async move {
            let view = answered("balance", || {
                let mut c = client.clone();
                let r = pb::GetBalanceRequest {
                    account_id: account.clone(),
                };
                async move { c.get_balance(r).await }
            })
            .await;
            minor(&view.balance.expect("balance").book.expect("book").amount)
        }
    };
    assert_eq!(book(to).await, i64::from(transfers) * 100);
    assert_eq!(book(from).await, 10_000 - i64::from(transfers) * 100);
}

fn minor(text: &str) -> i64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, "00"));
    int.parse::<i64>().expect("int") * 100 + frac.parse::<i64>().expect("frac")
}

/// Bytes sent as they are.
struct Garbage(Vec<u8>);

/// A codec that writes raw bytes and reads nothing useful back.
#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Garbage;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Garbage;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Garbage,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item.0);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = ();
    type Error = tonic::Status;

    fn decode(
        &mut self,
        _src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<()>, tonic::Status> {
        Ok(Some(()))
    }
}

#[tokio::test]
async fn a_huge_value_a_caller_sent_comes_back_bounded() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut cashier =
        pb::cashier_service_client::CashierServiceClient::new(app.channel("core-banking").await);
    let huge = "O".repeat(1024 * 1024);
    let refused = cashier
        .get_order(pb::GetOrderRequest {
            lookup: Some(pb::get_order_request::Lookup::OrderId(huge)),
        })
        .await
        .expect_err("no such order");
    assert_eq!(
        reason_of(&refused),
        "ORDER_NOT_FOUND",
        "{:?}",
        refused.code()
    );
    assert!(
        refused.message().chars().count() <= 513,
        "{}",
        refused.message().len()
    );
    for (key, value) in metadata_of(&refused) {
        assert!(value.chars().count() <= 65, "{key} is {} long", value.len());
    }
    assert!(
        refused.details().len() < 2048,
        "{}",
        refused.details().len()
    );
}

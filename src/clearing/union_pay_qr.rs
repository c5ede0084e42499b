//! UnionPay QR (银联二维码): the bank on the acquiring side of C2B code payments, with
//! query, reversal and refund.
//!
//! # Wire format
//!
//! `application/x-www-form-urlencoded` key=value pairs over HTTP/1.1 `POST`, in the style of
//! UnionPay's online access platform, under `/unionpay-qr`:
//!
//! | path | `txnType` | call |
//! |---|---|---|
//! | `/gateway/api/backTransReq.do` | `01` consume (a debit), `12` payout (代付, a credit), `04` refund (退货), `31` void (the reversal, 冲正) | |
//! | `/gateway/api/queryTrans.do` | `00` | status query |
//! | `/gateway/api/fileTransReq.do` | `76` | reconciliation file (`settleDate` yyyymmdd) |
//!
//! Every request carries `version=5.1.0`, `encoding=UTF-8`, `bizType=000000`, `accessType=0`,
//! `merId`, `txnTime` (yyyyMMddHHmmss Beijing time) and `orderId` (our reference); a movement
//! adds `txnAmt` (whole fen) with `currencyCode=156` (CNY, the only currency) and `accNo`
//! (the card token); refund, void and query name the original in `origOrderId`.
//!
//! Replies: `respCode` `00` success, `05` processing (query later), `34` no such transaction,
//! any other code a failure with `respMsg`; `queryId` is UnionPay's reference. A query's own
//! `respCode` is `00` or `34`; the original's outcome is in `origRespCode`/`origRespMsg`, and
//! `reversed=Y` marks a voided one. The file is that of [`super::recon`], daily, the business
//! date rolling at the 23:00 cutover.
//!
//! The transaction notice (交易结果通知, posted to `/unionpay-qr/notify` when a movement it did
//! not answer in time completes) carries a reply's `orderId`, `respCode`, `respMsg` and
//! `queryId` with the movement's `txnAmt` and `currencyCode`; it is acknowledged by
//! `respCode=00`.

use super::{
    CardDirection, CardInstruction, Network, NetworkSpec, Outcome, QueryOutcome, ReconPeriod,
    RefundInstruction, ReversalOutcome,
    notice::Notice,
    registry::{Calendar, Reach},
    wire::{Call, Codec, Reply, compact_stamp, minor_money, required},
};

/// UnionPay QR in the registry: daily files, the date rolling at the 23:00 cutover.
pub const SPEC: NetworkSpec = NetworkSpec {
    code: "UNION_PAY_QR",
    contract_number: 3,
    display_name: "UnionPay QR (银联二维码)",
    suspense_account: "CLEARING_SUSPENSE_UNION_PAY_QR",
    reach: Reach::Wire(|_| Box::new(UnionPayQrCodec)),
    path_prefix: "/unionpay-qr",
    calendar: Calendar {
        date_ends_at_hour: 23,
        hourly_batches: false,
    },
    reference_prefix: "UPQ",
    decline_code: "51",
    presumed_outcomes: false,
};

pub const NETWORK: Network = Network::of(&SPEC);

const NOT_FOUND: &str = "34";
const PROCESSING: &str = "05";
const TRANS_PATH: &str = "/gateway/api/backTransReq.do";
const QUERY_PATH: &str = "/gateway/api/queryTrans.do";
const FILE_PATH: &str = "/gateway/api/fileTransReq.do";

/// UnionPay QR's messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnionPayQrCodec;

fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

fn fields(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn request(at_ms: i64, txn_type: &str, extra: &[(&str, &str)]) -> String {
    let stamp = compact_stamp(at_ms);
    let mut pairs = vec![
        ("version", "5.1.0"),
        ("encoding", "UTF-8"),
        ("bizType", "000000"),
        ("accessType", "0"),
        ("merId", "PAYGATE"),
        ("txnType", txn_type),
        ("txnTime", stamp.as_str()),
    ];
    pairs.extend_from_slice(extra);
    form(&pairs)
}

fn cny_fen(amount: &crate::money::Money) -> Result<String, String> {
    if amount.currency.code() != "CNY" {
        return Err(format!(
            "UnionPay QR clears CNY only, not {}",
            amount.currency
        ));
    }
    Ok(amount.minor.to_string())
}

fn fen(f: &[(String, String)]) -> Result<crate::money::Money, String> {
    if field(f, "currencyCode").as_deref() != Some("156") {
        return Err("currencyCode must be 156".into());
    }
    minor_money("CNY", &required(field(f, "txnAmt"), "txnAmt")?)
}

/// `respCode`, `respMsg`, `queryId` of an outcome.
fn codes(outcome: &Outcome) -> (String, String, String) {
    match outcome {
        Outcome::Succeeded { network_reference }
        | Outcome::PresumedSucceeded { network_reference } => {
            ("00".into(), "success".into(), network_reference.clone())
        }
        Outcome::Failed { code, reason } | Outcome::PresumedFailed { code, reason } => {
            (code.clone(), reason.clone(), String::new())
        }
        Outcome::Unknown => (PROCESSING.into(), "processing".into(), String::new()),
    }
}

fn outcome_from(code: &str, message: String, query_id: String) -> Outcome {
    match code {
        "00" => Outcome::Succeeded {
            network_reference: query_id,
        },
        PROCESSING | "03" | "04" => Outcome::Unknown,
        _ => Outcome::Failed {
            code: code.to_owned(),
            reason: message,
        },
    }
}

impl Codec for UnionPayQrCodec {
    fn network(&self) -> Network {
        NETWORK
    }

    fn content_type(&self) -> &'static str {
        "application/x-www-form-urlencoded; charset=utf-8"
    }

    fn encode_call(&self, call: &Call, at_ms: i64) -> Result<(&'static str, String), String> {
        Ok(match call {
            Call::Submit(i) => {
                let txn_type = match i.direction {
                    CardDirection::DebitCard => "01",
                    CardDirection::CreditCard => "12",
                };
                let amount = cny_fen(&i.amount)?;
                let extra = [
                    ("orderId", i.reference.as_str()),
                    ("txnAmt", amount.as_str()),
                    ("currencyCode", "156"),
                    ("accNo", i.card_token.as_str()),
                ];
                (TRANS_PATH, request(at_ms, txn_type, &extra))
            }
            Call::Refund(r) => {
                let amount = cny_fen(&r.amount)?;
                let extra = [
                    ("orderId", r.reference.as_str()),
                    ("origOrderId", r.original_reference.as_str()),
                    ("txnAmt", amount.as_str()),
                    ("currencyCode", "156"),
                ];
                (TRANS_PATH, request(at_ms, "04", &extra))
            }
            Call::Reverse { reference } => (
                TRANS_PATH,
                request(at_ms, "31", &[("origOrderId", reference.as_str())]),
            ),
            Call::Query { reference } => (
                QUERY_PATH,
                request(at_ms, "00", &[("origOrderId", reference.as_str())]),
            ),
            Call::Recon(period @ ReconPeriod::Date(_)) => {
                let date = period.as_text();
                (
                    FILE_PATH,
                    request(at_ms, "76", &[("settleDate", date.as_str())]),
                )
            }
            Call::Recon(ReconPeriod::Batch(id)) => {
                return Err(format!("UnionPay QR has daily files, not batch {id}"));
            }
        })
    }

    fn decode_call(&self, path: &str, body: &str) -> Result<Call, String> {
        let f = fields(body);
        let txn_type = required(field(&f, "txnType"), "txnType")?;
        let order = || required(field(&f, "orderId"), "orderId");
        let original = || required(field(&f, "origOrderId"), "origOrderId");
        Ok(match (path, txn_type.as_str()) {
            (TRANS_PATH, "01" | "12") => Call::Submit(CardInstruction {
                reference: order()?,
                direction: if txn_type == "01" {
                    CardDirection::DebitCard
                } else {
                    CardDirection::CreditCard
                },
                card_token: required(field(&f, "accNo"), "accNo")?,
                amount: fen(&f)?,
            }),
            (TRANS_PATH, "04") => Call::Refund(RefundInstruction {
                reference: order()?,
                original_reference: original()?,
                amount: fen(&f)?,
            }),
            (TRANS_PATH, "31") => Call::Reverse {
                reference: original()?,
            },
            (QUERY_PATH, "00") => Call::Query {
                reference: original()?,
            },
            (FILE_PATH, "76") => {
                let date = required(field(&f, "settleDate"), "settleDate")?;
                match ReconPeriod::parse(&date) {
                    Some(period @ ReconPeriod::Date(_)) => Call::Recon(period),
                    _ => return Err(format!("settleDate {date:?}")),
                }
            }
            (path, txn_type) => return Err(format!("no txnType {txn_type} at {path}")),
        })
    }

    fn encode_reply(&self, reply: &Reply, at_ms: i64) -> String {
        let stamp = compact_stamp(at_ms);
        let base = [("version", "5.1.0"), ("txnTime", stamp.as_str())];
        match reply {
            Reply::Outcome { reference, outcome } => {
                let (code, message, query_id) = codes(outcome);
                let mut pairs = base.to_vec();
                pairs.extend_from_slice(&[
                    ("orderId", reference.as_str()),
                    ("respCode", code.as_str()),
                    ("respMsg", message.as_str()),
                    ("queryId", query_id.as_str()),
                ]);
                form(&pairs)
            }
            Reply::Query { reference, outcome } => match outcome {
                QueryOutcome::Found { outcome, reversed } => {
                    let (code, message, query_id) = codes(outcome);
                    let mut pairs = base.to_vec();
                    pairs.extend_from_slice(&[
                        ("origOrderId", reference.as_str()),
                        ("respCode", "00"),
                        ("origRespCode", code.as_str()),
                        ("origRespMsg", message.as_str()),
                        ("queryId", query_id.as_str()),
                        ("reversed", if *reversed { "Y" } else { "N" }),
                    ]);
                    form(&pairs)
                }
                QueryOutcome::NotFound | QueryOutcome::Unknown => form(&[
                    ("origOrderId", reference.as_str()),
                    ("respCode", NOT_FOUND),
                    ("respMsg", "no such transaction"),
                ]),
            },
            Reply::Reversal { reference, outcome } => {
                let (code, message) = match outcome {
                    ReversalOutcome::Reversed => ("00".to_owned(), "success".to_owned()),
                    ReversalOutcome::NothingToReverse | ReversalOutcome::Unknown => {
                        (NOT_FOUND.to_owned(), "nothing to reverse".to_owned())
                    }
                    ReversalOutcome::Refused { code, reason } => (code.clone(), reason.clone()),
                };
                form(&[
                    ("origOrderId", reference.as_str()),
                    ("respCode", code.as_str()),
                    ("respMsg", message.as_str()),
                ])
            }
        }
    }

    fn decode_reply(&self, call: &Call, body: &str) -> Result<Reply, String> {
        let f = fields(body);
        let code = required(field(&f, "respCode"), "respCode")?;
        let message = field(&f, "respMsg").unwrap_or_default();
        let query_id = field(&f, "queryId").unwrap_or_default();
        Ok(match call {
            Call::Submit(_) | Call::Refund(_) | Call::Recon(_) => Reply::Outcome {
                reference: required(field(&f, "orderId"), "orderId")?,
                outcome: outcome_from(&code, message, query_id),
            },
            Call::Query { .. } => {
                let reference = required(field(&f, "origOrderId"), "origOrderId")?;
                let outcome = match code.as_str() {
                    NOT_FOUND => QueryOutcome::NotFound,
                    "00" => QueryOutcome::Found {
                        outcome: outcome_from(
                            &required(field(&f, "origRespCode"), "origRespCode")?,
                            field(&f, "origRespMsg").unwrap_or_default(),
                            query_id,
                        ),
                        reversed: field(&f, "reversed").as_deref() == Some("Y"),
                    },
                    other => return Err(format!("query respCode {other}")),
                };
                Reply::Query { reference, outcome }
            }
            Call::Reverse { .. } => Reply::Reversal {
                reference: required(field(&f, "origOrderId"), "origOrderId")?,
                outcome: match code.as_str() {
                    "00" => ReversalOutcome::Reversed,
                    NOT_FOUND => ReversalOutcome::NothingToReverse,
                    PROCESSING => ReversalOutcome::Unknown,
                    _ => ReversalOutcome::Refused {
                        code,
                        reason: message,
                    },
                },
            },
        })
    }

    fn encode_notice(&self, notice: &Notice, at_ms: i64) -> Result<String, String> {
        let (code, message, query_id) = codes(&notice.outcome);
        let amount = cny_fen(&notice.amount)?;
        let stamp = compact_stamp(at_ms);
        Ok(form(&[
            ("version", "5.1.0"),
            ("txnTime", stamp.as_str()),
            ("orderId", notice.reference.as_str()),
            ("respCode", code.as_str()),
            ("respMsg", message.as_str()),
            ("queryId", query_id.as_str()),
            ("txnAmt", amount.as_str()),
            ("currencyCode", "156"),
        ]))
    }

    fn decode_notice(&self, body: &str) -> Result<Notice, String> {
        let f = fields(body);
        let code = required(field(&f, "respCode"), "respCode")?;
        Ok(Notice {
            reference: required(field(&f, "orderId"), "orderId")?,
            outcome: outcome_from(
                &code,
                field(&f, "respMsg").unwrap_or_default(),
                field(&f, "queryId").unwrap_or_default(),
            ),
            amount: fen(&f)?,
        })
    }

    fn notice_answer(&self, _at_ms: i64) -> String {
        form(&[("respCode", "00"), ("respMsg", "ok")])
    }
}

//! NetsUnion (网联): the clearing platform for bank-account payments of payment institutions.
//!
//! # Wire format
//!
//! XML over HTTP/1.1 `POST` (`Content-Type: application/xml; charset=utf-8`), one message type
//! per path under `/netsunion`, in NetsUnion's style: a `root` with a `MsgHeader` (send time
//! `SndDt`, message type `MsgTp` `epcc.NNN.001.01`, issuer `IssrId`, direction `Drctn`) and a
//! `MsgBody`. The message numbers are this gateway's assignment, not NetsUnion's catalogue:
//!
//! | path | call | body |
//! |---|---|---|
//! | `/epcc.201.001.01` | agreement pay (协议支付), a debit of the payer's account | `TrxInf/TrxId`, `TrxInf/TrxAmt` (`CNY100.00`), `PyerInf/PyerAcctId` |
//! | `/epcc.211.001.01` | payout (付款), a credit | `TrxInf/…`, `PyeeInf/PyeeAcctId` |
//! | `/epcc.213.001.01` | refund (退款) | `TrxInf/…`, `OriTrxInf/OriTrxId` |
//! | `/epcc.301.001.01` | status query | `OriTrxInf/OriTrxId` |
//! | `/epcc.401.001.01` | reversal (冲正) | `OriTrxInf/OriTrxId` |
//! | `/epcc.501.001.01` | reconciliation file | `BatchId` (`B`+yyyymmdd+4 digits) or `ReconDt` (yyyymmdd) |
//!
//! Every reply (`MsgTp` one above the call's) carries `SysRtnInf/SysRtnCd` (`00000000`: the
//! message was processed) and `BizInf`: `TrxId` (our reference), `NetsTrxId` (theirs),
//! `TrxStatus` — **`00` success, `01` fail, `02` presumed success (异常成功), `03` presumed
//! failure (异常失败), `04` processing** — with `BizStsCd`/`BizStsDesc` the reason; a query adds
//! `RvslFlg` (`Y` reversed) and answers `BizStsCd` `EPCC0404` for a reference it never got; a
//! reversal answers `RvslSts` `00` reversed, `01` nothing to reverse, `02` refused. The
//! reconciliation reply is the file of [`super::recon`], hourly batches.
//!
//! A result notice (结果通知, posted to `/netsunion/notify` when a movement it did not answer
//! in time completes) is an `epcc.203.001.01` with the movement's `TrxInf` (`TrxId`, `TrxAmt`)
//! and a `BizInf` like a reply's; it is acknowledged by an `epcc.204.001.01` whose
//! `SysRtnCd` is `00000000`.

use super::{
    CardDirection, CardInstruction, Network, NetworkSpec, Outcome, QueryOutcome, ReconPeriod,
    RefundInstruction, ReversalOutcome,
    notice::Notice,
    registry::{Calendar, Reach},
    wire::{Call, Codec, Reply, decimal_money, iso_stamp, required},
    xml::{el, text},
};

/// NetsUnion in the registry: hourly batches, presumed outcomes.
pub const SPEC: NetworkSpec = NetworkSpec {
    code: "NETS_UNION",
    contract_number: 2,
    display_name: "NetsUnion (网联)",
    suspense_account: "CLEARING_SUSPENSE_NETS_UNION",
    reach: Reach::Wire(|_| Box::new(NetsUnionCodec)),
    path_prefix: "/netsunion",
    calendar: Calendar {
        date_ends_at_hour: 24,
        hourly_batches: true,
    },
    reference_prefix: "NU",
    decline_code: "EPCC0051",
    presumed_outcomes: true,
};

pub const NETWORK: Network = Network::of(&SPEC);

const NOT_FOUND: &str = "EPCC0404";
const NOTICE: &str = "epcc.203.001.01";
const NOTICE_ANSWER: &str = "epcc.204.001.01";
const PROCESSED: &str = "00000000";

/// NetsUnion's messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetsUnionCodec;

fn message(msg_type: &str, at_ms: i64, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root xmlns=\"namespace_{msg_type}\">\
         <MsgHeader>{}{}{}{}</MsgHeader><MsgBody>{body}</MsgBody></root>",
        el("SndDt", &iso_stamp(at_ms)),
        el("MsgTp", msg_type),
        el("IssrId", "PAYGATE"),
        el("Drctn", "11"),
    )
}

fn trx(reference: &str, amount: &crate::money::Money) -> String {
    format!(
        "<TrxInf>{}{}</TrxInf>",
        el("TrxId", reference),
        el(
            "TrxAmt",
            &format!("{}{}", amount.currency.code(), amount.to_decimal_string())
        )
    )
}

fn original(reference: &str) -> String {
    format!("<OriTrxInf>{}</OriTrxInf>", el("OriTrxId", reference))
}

fn amount(doc: &str) -> Result<crate::money::Money, String> {
    let text = required(text(doc, &["TrxInf", "TrxAmt"]), "TrxAmt")?;
    if text.len() < 4 || !text.is_char_boundary(3) {
        return Err(format!("TrxAmt {text:?}"));
    }
    decimal_money(&text[..3], &text[3..])
}

/// `TrxStatus`, network reference and reason of an outcome.
fn status_of(outcome: &Outcome) -> (&'static str, String, String, String) {
    match outcome {
        Outcome::Succeeded { network_reference } => (
            "00",
            network_reference.clone(),
            "0000".into(),
            "success".into(),
        ),
        Outcome::Failed { code, reason } => ("01", String::new(), code.clone(), reason.clone()),
        Outcome::PresumedSucceeded { network_reference } => (
            "02",
            network_reference.clone(),
            "0000".into(),
            "presumed success".into(),
        ),
        Outcome::PresumedFailed { code, reason } => {
            ("03", String::new(), code.clone(), reason.clone())
        }
        Outcome::Unknown => ("04", String::new(), "0000".into(), "processing".into()),
    }
}

fn outcome_from(biz: &str) -> Result<Outcome, String> {
    let network_reference = text(biz, &["NetsTrxId"]).unwrap_or_default();
    let code = text(biz, &["BizStsCd"]).unwrap_or_default();
    let reason = text(biz, &["BizStsDesc"]).unwrap_or_default();
    Ok(
        match required(text(biz, &["TrxStatus"]), "TrxStatus")?.as_str() {
            "00" => Outcome::Succeeded { network_reference },
            "01" => Outcome::Failed { code, reason },
            "02" => Outcome::PresumedSucceeded { network_reference },
            "03" => Outcome::PresumedFailed { code, reason },
            "04" => Outcome::Unknown,
            other => return Err(format!("TrxStatus {other}")),
        },
    )
}

impl Codec for NetsUnionCodec {
    fn network(&self) -> Network {
        NETWORK
    }

    fn content_type(&self) -> &'static str {
        "application/xml; charset=utf-8"
    }

    fn encode_call(&self, call: &Call, at_ms: i64) -> Result<(&'static str, String), String> {
        Ok(match call {
            Call::Submit(i) => {
                let (path, party) = match i.direction {
                    CardDirection::DebitCard => (
                        "/epcc.201.001.01",
                        format!("<PyerInf>{}</PyerInf>", el("PyerAcctId", &i.card_token)),
                    ),
                    CardDirection::CreditCard => (
                        "/epcc.211.001.01",
                        format!("<PyeeInf>{}</PyeeInf>", el("PyeeAcctId", &i.card_token)),
                    ),
                };
                let body = format!("{}{party}", trx(&i.reference, &i.amount));
                (path, message(&path[1..], at_ms, &body))
            }
            Call::Refund(r) => {
                let body = format!(
                    "{}{}",
                    trx(&r.reference, &r.amount),
                    original(&r.original_reference)
                );
                ("/epcc.213.001.01", message("epcc.213.001.01", at_ms, &body))
            }
            Call::Query { reference } => (
                "/epcc.301.001.01",
                message("epcc.301.001.01", at_ms, &original(reference)),
            ),
            Call::Reverse { reference } => (
                "/epcc.401.001.01",
                message("epcc.401.001.01", at_ms, &original(reference)),
            ),
            Call::Recon(period) => {
                let body = match period {
                    ReconPeriod::Batch(id) => el("BatchId", id),
                    ReconPeriod::Date(_) => el("ReconDt", &period.as_text()),
                };
                ("/epcc.501.001.01", message("epcc.501.001.01", at_ms, &body))
            }
        })
    }

    fn decode_call(&self, path: &str, body: &str) -> Result<Call, String> {
        let original = || required(text(body, &["OriTrxInf", "OriTrxId"]), "OriTrxId");
        let reference = || required(text(body, &["TrxInf", "TrxId"]), "TrxId");
        Ok(match path {
            "/epcc.201.001.01" | "/epcc.211.001.01" => {
                let (direction, token) = if path == "/epcc.201.001.01" {
                    (
                        CardDirection::DebitCard,
                        text(body, &["PyerInf", "PyerAcctId"]),
                    )
                } else {
                    (
                        CardDirection::CreditCard,
                        text(body, &["PyeeInf", "PyeeAcctId"]),
                    )
                };
                Call::Submit(CardInstruction {
                    reference: reference()?,
                    direction,
                    card_token: required(token, "account id")?,
                    amount: amount(body)?,
                })
            }
            "/epcc.213.001.01" => Call::Refund(RefundInstruction {
                reference: reference()?,
                original_reference: original()?,
                amount: amount(body)?,
            }),
            "/epcc.301.001.01" => Call::Query {
                reference: original()?,
            },
            "/epcc.401.001.01" => Call::Reverse {
                reference: original()?,
            },
            "/epcc.501.001.01" => {
                let period = text(body, &["BatchId"])
                    .or_else(|| text(body, &["ReconDt"]))
                    .unwrap_or_default();
                Call::Recon(ReconPeriod::parse(&period).ok_or(format!("period {period:?}"))?)
            }
            other => return Err(format!("no NetsUnion message at {other}")),
        })
    }

    fn encode_reply(&self, reply: &Reply, at_ms: i64) -> String {
        let (msg_type, biz) = match reply {
            Reply::Outcome { reference, outcome } => {
                let (status, network_reference, code, reason) = status_of(outcome);
                (
                    "epcc.202.001.01",
                    format!(
                        "{}{}{}{}{}",
                        el("TrxId", reference),
                        el("NetsTrxId", &network_reference),
                        el("TrxStatus", status),
                        el("BizStsCd", &code),
                        el("BizStsDesc", &reason)
                    ),
                )
            }
            Reply::Query { reference, outcome } => {
                let biz = match outcome {
                    QueryOutcome::Found { outcome, reversed } => {
                        let (status, network_reference, code, reason) = status_of(outcome);
                        format!(
                            "{}{}{}{}{}",
                            el("NetsTrxId", &network_reference),
                            el("TrxStatus", status),
                            el("BizStsCd", &code),
                            el("BizStsDesc", &reason),
                            el("RvslFlg", if *reversed { "Y" } else { "N" })
                        )
                    }
                    QueryOutcome::NotFound | QueryOutcome::Unknown => format!(
                        "{}{}",
                        el("BizStsCd", NOT_FOUND),
                        el("BizStsDesc", "no such transaction")
                    ),
                };
                (
                    "epcc.302.001.01",
                    format!("{}{biz}", el("TrxId", reference)),
                )
            }
            Reply::Reversal { reference, outcome } => {
                let (status, code, reason) = match outcome {
                    ReversalOutcome::Reversed => ("00", "0000".to_owned(), String::new()),
                    ReversalOutcome::NothingToReverse | ReversalOutcome::Unknown => {
                        ("01", NOT_FOUND.to_owned(), "nothing to reverse".to_owned())
                    }
                    ReversalOutcome::Refused { code, reason } => {
                        ("02", code.clone(), reason.clone())
                    }
                };
                (
                    "epcc.402.001.01",
                    format!(
                        "{}{}{}{}",
                        el("TrxId", reference),
                        el("RvslSts", status),
                        el("BizStsCd", &code),
                        el("BizStsDesc", &reason)
                    ),
                )
            }
        };
        let body = format!(
            "<SysRtnInf>{}{}</SysRtnInf><BizInf>{biz}</BizInf>",
            el("SysRtnCd", PROCESSED),
            el("SysRtnDesc", "processed")
        );
        message(msg_type, at_ms, &body)
    }

    fn decode_reply(&self, call: &Call, body: &str) -> Result<Reply, String> {
        let system = required(text(body, &["SysRtnInf", "SysRtnCd"]), "SysRtnCd")?;
        if system != PROCESSED {
            return Err(format!("SysRtnCd {system}"));
        }
        let biz = required(text(body, &["BizInf"]), "BizInf")?;
        let reference = required(text(&biz, &["TrxId"]), "TrxId")?;
        Ok(match call {
            Call::Submit(_) | Call::Refund(_) | Call::Recon(_) => Reply::Outcome {
                reference,
                outcome: outcome_from(&biz)?,
            },
            Call::Query { .. } => {
                let outcome = if text(&biz, &["BizStsCd"]).as_deref() == Some(NOT_FOUND) {
                    QueryOutcome::NotFound
                } else {
                    QueryOutcome::Found {
                        outcome: outcome_from(&biz)?,
                        reversed: text(&biz, &["RvslFlg"]).as_deref() == Some("Y"),
                    }
                };
                Reply::Query { reference, outcome }
            }
            Call::Reverse { .. } => {
                let outcome = match required(text(&biz, &["RvslSts"]), "RvslSts")?.as_str() {
                    "00" => ReversalOutcome::Reversed,
                    "01" => ReversalOutcome::NothingToReverse,
                    "02" => ReversalOutcome::Refused {
                        code: text(&biz, &["BizStsCd"]).unwrap_or_default(),
                        reason: text(&biz, &["BizStsDesc"]).unwrap_or_default(),
                    },
                    other => return Err(format!("RvslSts {other}")),
                };
                Reply::Reversal { reference, outcome }
            }
        })
    }

    fn encode_notice(&self, notice: &Notice, at_ms: i64) -> Result<String, String> {
        let (status, network_reference, code, reason) = status_of(&notice.outcome);
        let body = format!(
            "{}<BizInf>{}{}{}{}</BizInf>",
            trx(&notice.reference, &notice.amount),
            el("NetsTrxId", &network_reference),
            el("TrxStatus", status),
            el("BizStsCd", &code),
            el("BizStsDesc", &reason)
        );
        Ok(message(NOTICE, at_ms, &body))
    }

    fn decode_notice(&self, body: &str) -> Result<Notice, String> {
        let kind = required(text(body, &["MsgHeader", "MsgTp"]), "MsgTp")?;
        if kind != NOTICE {
            return Err(format!("MsgTp {kind} is not a result notice"));
        }
        let biz = required(text(body, &["BizInf"]), "BizInf")?;
        Ok(Notice {
            reference: required(text(body, &["TrxInf", "TrxId"]), "TrxId")?,
            outcome: outcome_from(&biz)?,
            amount: amount(body)?,
        })
    }

    fn notice_answer(&self, at_ms: i64) -> String {
        let body = format!(
            "<SysRtnInf>{}{}</SysRtnInf>",
            el("SysRtnCd", PROCESSED),
            el("SysRtnDesc", "received")
        );
        message(NOTICE_ANSWER, at_ms, &body)
    }
}

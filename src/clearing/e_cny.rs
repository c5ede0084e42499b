//! e-CNY (数字人民币): the bank's payments to and from the digital-renminbi wallets of other
//! operators (运营机构), through the e-CNY interconnection platform (互联互通平台) — a debit of
//! the payer's wallet, a credit to a wallet, refund, reversal, query and the daily statement.
//!
//! # Wire format
//!
//! One flat JSON object per message (`Content-Type: application/json; charset=utf-8`) over
//! HTTP/1.1 `POST`, under `/ecny`. The field names follow the platform's camelCase style; the
//! paths, the status letters and the codes are this gateway's own assignment, shared by client
//! and simulator:
//!
//! | path | call | fields |
//! |---|---|---|
//! | `/api/v1/transfer` | a debit of the payer's wallet (`direction` `DEBIT`) or a credit to a wallet (`CREDIT`) | `instrId` (our reference), `walletId` (the card token stands for the wallet id), `amount` (yuan, `100.25`), `currency` (`CNY`, the only one) |
//! | `/api/v1/refund` | refund | `instrId` (the refund's reference), `origInstrId`, `amount`, `currency` |
//! | `/api/v1/reversal` | reversal (冲正) | `origInstrId` |
//! | `/api/v1/query` | status query | `origInstrId` |
//! | `/api/v1/statement` | the daily statement | `settleDate` (yyyymmdd) |
//!
//! Every request carries `operatorId` and `sendTime` (Beijing time). Every reply carries
//! `respCode` `0000` (the message was processed; anything else is no answer), `instrId` (the
//! reference it is about) and `txnStatus`: `S` succeeded (`platformSeq` the platform's
//! reference), `F` failed (`retCode`, `retMsg`; `EC0051` insufficient wallet balance), `P`
//! processing (not known yet); a query adds `R` (succeeded, then reversed) and `N` (no such
//! instruction); a reversal answers `R` reversed, `N` nothing to reverse, `F` refused. The
//! statement is the file of [`super::recon`], daily, cut at midnight.
//!
//! The result notice (posted to `/ecny/notify` when an instruction it did not answer in time
//! completes) is a reply's fields with the instruction's `amount` and `currency`; it is
//! acknowledged by `respCode` `0000`.

use serde::{Deserialize, Serialize};

use super::{
    CardDirection, CardInstruction, Network, NetworkSpec, Outcome, QueryOutcome, ReconPeriod,
    RefundInstruction, ReversalOutcome,
    notice::Notice,
    registry::{Calendar, Reach},
    wire::{Call, Codec, Reply, decimal_money, iso_stamp, required},
};

/// e-CNY in the registry.
pub const SPEC: NetworkSpec = NetworkSpec {
    code: "E_CNY",
    contract_number: 9,
    display_name: "e-CNY (数字人民币)",
    suspense_account: "CLEARING_SUSPENSE_E_CNY",
    reach: Reach::Wire(|_| Box::new(ECnyCodec)),
    path_prefix: "/ecny",
    calendar: Calendar::MIDNIGHT,
    reference_prefix: "ECNY",
    decline_code: "EC0051",
    presumed_outcomes: false,
};

pub const NETWORK: Network = Network::of(&SPEC);

const PROCESSED: &str = "0000";
const TRANSFER: &str = "/api/v1/transfer";
const REFUND: &str = "/api/v1/refund";
const REVERSAL: &str = "/api/v1/reversal";
const QUERY: &str = "/api/v1/query";
const STATEMENT: &str = "/api/v1/statement";

/// The platform's messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct ECnyCodec;

/// Any message: the fields a path does not use stay empty and are left out.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Message {
    #[serde(skip_serializing_if = "String::is_empty")]
    operator_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    send_time: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    instr_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    orig_instr_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    direction: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    wallet_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    amount: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    currency: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    settle_date: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    resp_code: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    txn_status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    ret_code: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    ret_msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    platform_seq: String,
}

impl Message {
    fn request(at_ms: i64) -> Message {
        Message {
            operator_id: "PAYGATE".to_owned(),
            send_time: iso_stamp(at_ms),
            ..Message::default()
        }
    }

    fn reply(reference: &str, at_ms: i64) -> Message {
        Message {
            resp_code: PROCESSED.to_owned(),
            instr_id: reference.to_owned(),
            send_time: iso_stamp(at_ms),
            ..Message::default()
        }
    }

    fn amount(mut self, amount: &crate::money::Money) -> Result<Message, String> {
        if amount.currency.code() != "CNY" {
            return Err(format!("e-CNY is CNY only, not {}", amount.currency));
        }
        self.amount = amount.to_decimal_string();
        self.currency = "CNY".to_owned();
        Ok(self)
    }

    fn money(&self) -> Result<crate::money::Money, String> {
        if self.currency != "CNY" {
            return Err(format!("currency {:?}: CNY only", self.currency));
        }
        decimal_money("CNY", &required(Some(self.amount.clone()), "amount")?)
    }

    /// `txnStatus`, `retCode`, `retMsg`, `platformSeq` of an outcome.
    fn outcome(mut self, outcome: &Outcome) -> Message {
        let status = match outcome {
            Outcome::Succeeded { network_reference }
            | Outcome::PresumedSucceeded { network_reference } => {
                self.platform_seq = network_reference.clone();
                "S"
            }
            Outcome::Failed { code, reason } | Outcome::PresumedFailed { code, reason } => {
                self.ret_code = code.clone();
                self.ret_msg = reason.clone();
                "F"
            }
            Outcome::Unknown => "P",
        };
        self.txn_status = status.to_owned();
        self
    }

    /// The outcome of `S`, `F` or `P`.
    fn outcome_of(&self) -> Result<Outcome, String> {
        Ok(match self.txn_status.as_str() {
            "S" | "R" => Outcome::Succeeded {
                network_reference: self.platform_seq.clone(),
            },
            "F" => Outcome::Failed {
                code: self.ret_code.clone(),
                reason: self.ret_msg.clone(),
            },
            "P" => Outcome::Unknown,
            other => return Err(format!("txnStatus {other:?}")),
        })
    }

    fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn parse(body: &str) -> Result<Message, String> {
    serde_json::from_str(body).map_err(|e| e.to_string())
}

impl Codec for ECnyCodec {
    fn network(&self) -> Network {
        NETWORK
    }

    fn content_type(&self) -> &'static str {
        "application/json; charset=utf-8"
    }

    fn encode_call(&self, call: &Call, at_ms: i64) -> Result<(&'static str, String), String> {
        let request = Message::request(at_ms);
        let (path, message) = match call {
            Call::Submit(i) => {
                let direction = match i.direction {
                    CardDirection::DebitCard => "DEBIT",
                    CardDirection::CreditCard => "CREDIT",
                };
                let message = Message {
                    instr_id: i.reference.clone(),
                    direction: direction.to_owned(),
                    wallet_id: i.card_token.clone(),
                    ..request
                };
                (TRANSFER, message.amount(&i.amount)?)
            }
            Call::Refund(r) => {
                let message = Message {
                    instr_id: r.reference.clone(),
                    orig_instr_id: r.original_reference.clone(),
                    ..request
                };
                (REFUND, message.amount(&r.amount)?)
            }
            Call::Reverse { reference } | Call::Query { reference } => {
                let path = if matches!(call, Call::Reverse { .. }) {
                    REVERSAL
                } else {
                    QUERY
                };
                let message = Message {
                    orig_instr_id: reference.clone(),
                    ..request
                };
                (path, message)
            }
            Call::Recon(period @ ReconPeriod::Date(_)) => {
                let message = Message {
                    settle_date: period.as_text(),
                    ..request
                };
                (STATEMENT, message)
            }
            Call::Recon(ReconPeriod::Batch(id)) => {
                return Err(format!("e-CNY statements are daily, not batch {id}"));
            }
        };
        Ok((path, message.json()))
    }

    fn decode_call(&self, path: &str, body: &str) -> Result<Call, String> {
        let m = parse(body)?;
        let original = || required(Some(m.orig_instr_id.clone()), "origInstrId");
        Ok(match path {
            TRANSFER => Call::Submit(CardInstruction {
                reference: required(Some(m.instr_id.clone()), "instrId")?,
                direction: match m.direction.as_str() {
                    "DEBIT" => CardDirection::DebitCard,
                    "CREDIT" => CardDirection::CreditCard,
                    other => return Err(format!("direction {other:?}")),
                },
                card_token: required(Some(m.wallet_id.clone()), "walletId")?,
                amount: m.money()?,
            }),
            REFUND => Call::Refund(RefundInstruction {
                reference: required(Some(m.instr_id.clone()), "instrId")?,
                original_reference: original()?,
                amount: m.money()?,
            }),
            REVERSAL => Call::Reverse {
                reference: original()?,
            },
            QUERY => Call::Query {
                reference: original()?,
            },
            STATEMENT => match ReconPeriod::parse(&m.settle_date) {
                Some(period @ ReconPeriod::Date(_)) => Call::Recon(period),
                _ => return Err(format!("settleDate {:?}", m.settle_date)),
            },
            other => return Err(format!("no e-CNY API at {other}")),
        })
    }

    fn encode_reply(&self, reply: &Reply, at_ms: i64) -> String {
        let base = Message::reply(reply.reference(), at_ms);
        let message = match reply {
            Reply::Outcome { outcome, .. } => base.outcome(outcome),
            Reply::Query { outcome, .. } => match outcome {
                QueryOutcome::Found { outcome, reversed } => {
                    let mut found = base.outcome(outcome);
                    if *reversed {
                        found.txn_status = "R".to_owned();
                    }
                    found
                }
                QueryOutcome::NotFound => Message {
                    txn_status: "N".to_owned(),
                    ..base
                },
                QueryOutcome::Unknown => Message {
                    resp_code: "9999".to_owned(),
                    ..base
                },
            },
            Reply::Reversal { outcome, .. } => match outcome {
                ReversalOutcome::Reversed => Message {
                    txn_status: "R".to_owned(),
                    ..base
                },
                ReversalOutcome::NothingToReverse => Message {
                    txn_status: "N".to_owned(),
                    ..base
                },
                ReversalOutcome::Refused { code, reason } => Message {
                    txn_status: "F".to_owned(),
                    ret_code: code.clone(),
                    ret_msg: reason.clone(),
                    ..base
                },
                ReversalOutcome::Unknown => Message {
                    txn_status: "P".to_owned(),
                    ..base
                },
            },
        };
        message.json()
    }

    fn decode_reply(&self, call: &Call, body: &str) -> Result<Reply, String> {
        let m = parse(body)?;
        if m.resp_code != PROCESSED {
            return Err(format!("respCode {:?}", m.resp_code));
        }
        let reference = required(Some(m.instr_id.clone()), "instrId")?;
        Ok(match call {
            Call::Submit(_) | Call::Refund(_) | Call::Recon(_) => Reply::Outcome {
                reference,
                outcome: m.outcome_of()?,
            },
            Call::Query { .. } => Reply::Query {
                reference,
                outcome: match m.txn_status.as_str() {
                    "N" => QueryOutcome::NotFound,
                    status => QueryOutcome::Found {
                        outcome: m.outcome_of()?,
                        reversed: status == "R",
                    },
                },
            },
            Call::Reverse { .. } => Reply::Reversal {
                reference,
                outcome: match m.txn_status.as_str() {
                    "R" => ReversalOutcome::Reversed,
                    "N" => ReversalOutcome::NothingToReverse,
                    "F" => ReversalOutcome::Refused {
                        code: m.ret_code,
                        reason: m.ret_msg,
                    },
                    "P" => ReversalOutcome::Unknown,
                    other => return Err(format!("txnStatus {other:?}")),
                },
            },
        })
    }

    fn encode_notice(&self, notice: &Notice, at_ms: i64) -> Result<String, String> {
        Ok(Message::reply(&notice.reference, at_ms)
            .outcome(&notice.outcome)
            .amount(&notice.amount)?
            .json())
    }

    fn decode_notice(&self, body: &str) -> Result<Notice, String> {
        let m = parse(body)?;
        if m.resp_code != PROCESSED {
            return Err(format!("respCode {:?}", m.resp_code));
        }
        Ok(Notice {
            reference: required(Some(m.instr_id.clone()), "instrId")?,
            outcome: m.outcome_of()?,
            amount: m.money()?,
        })
    }

    fn notice_answer(&self, at_ms: i64) -> String {
        Message {
            resp_code: PROCESSED.to_owned(),
            send_time: iso_stamp(at_ms),
            ..Message::default()
        }
        .json()
    }
}

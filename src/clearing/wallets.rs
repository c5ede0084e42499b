//! Wallets: the bank as service provider (服务商) to Alipay and WeChat Pay — micropay (the
//! merchant scans the payer's code), transfers to a wallet, refund, reverse, query and the
//! daily bill. One codec, two networks.
//!
//! # Wire format
//!
//! WeChat Pay v2-style flat XML (`<xml><key>value</key>…</xml>`, `Content-Type: text/xml;
//! charset=utf-8`) over HTTP/1.1 `POST`, under `/alipay` or `/wechat-pay`. Alipay's own
//! `alipay.trade.*` format is not modelled: both wallets speak this one here.
//!
//! | path | call | fields |
//! |---|---|---|
//! | `/pay/micropay` | micropay, a debit of the wallet | `out_trade_no` (our reference), `total_fee` (fen), `fee_type` (`CNY`), `auth_code` (the card token stands for the payer's code) |
//! | `/mmpaymkttransfers/promotion/transfers` | a credit to the wallet | `partner_trade_no`, `amount` (fen), `fee_type`, `openid` |
//! | `/secapi/pay/refund` | refund | `out_refund_no`, `out_trade_no` (the original), `refund_fee`, `fee_type` |
//! | `/secapi/pay/reverse` | reversal (冲正; WeChat's 撤销) | `out_trade_no` |
//! | `/pay/orderquery` | status query | `out_trade_no` |
//! | `/pay/downloadbill` | the daily bill | `bill_date` (yyyymmdd) |
//!
//! Every request carries `appid`, `mch_id`, `sub_mch_id` and `nonce_str`. Replies carry
//! `return_code` `SUCCESS` (the message was processed) and `result_code` `SUCCESS` or `FAIL`
//! with `err_code`/`err_code_des`; `USERPAYING` or `SYSTEMERROR` mean the outcome is not known
//! yet, `ORDERNOTEXIST` that there is no such order. Every answer names the reference it is
//! about in `out_trade_no` (for a refund, the refund's own reference), a submit adds the
//! wallet's `transaction_id`; a query answers `trade_state` —
//! `SUCCESS`, `PAYERROR`, `REVOKED` (paid, then reversed), `USERPAYING`; a reversal answers
//! `recall` `N` once the order is void. The bill is the file of [`super::recon`], daily,
//! cutover at 00:00.
//!
//! The payment notice (支付结果通知, the `notify_url` callback, posted to `<prefix>/notify` when
//! a movement it did not answer in time completes) carries a reply's fields with `total_fee`
//! and `fee_type`; it is acknowledged by `return_code` `SUCCESS`, `return_msg` `OK`.

use super::{
    CardDirection, CardInstruction, Network, NetworkSpec, Outcome, QueryOutcome, ReconPeriod,
    RefundInstruction, ReversalOutcome,
    notice::Notice,
    registry::{Calendar, Reach},
    wire::{Call, Codec, Reply, minor_money, required},
    xml::{el, text},
};

const NOT_FOUND: &str = "ORDERNOTEXIST";
const PAYING: &str = "USERPAYING";

/// What the two wallets share in the registry: this module's messages, daily bills cut at
/// midnight, declining with `NOTENOUGH`.
const WALLET: NetworkSpec = NetworkSpec {
    code: "",
    contract_number: 0,
    display_name: "",
    suspense_account: "",
    reach: Reach::Wire(|network| Box::new(WalletCodec { network })),
    path_prefix: "",
    calendar: Calendar::MIDNIGHT,
    reference_prefix: "",
    decline_code: "NOTENOUGH",
    presumed_outcomes: false,
};

pub const ALIPAY_SPEC: NetworkSpec = NetworkSpec {
    code: "ALIPAY",
    contract_number: 7,
    display_name: "Alipay (支付宝)",
    suspense_account: "CLEARING_SUSPENSE_ALIPAY",
    path_prefix: "/alipay",
    reference_prefix: "ALI",
    ..WALLET
};

pub const WECHAT_PAY_SPEC: NetworkSpec = NetworkSpec {
    code: "WECHAT_PAY",
    contract_number: 8,
    display_name: "WeChat Pay (微信支付)",
    suspense_account: "CLEARING_SUSPENSE_WECHAT_PAY",
    path_prefix: "/wechat-pay",
    reference_prefix: "WX",
    ..WALLET
};

/// Alipay, the bank as service provider.
pub const ALIPAY: Network = Network::of(&ALIPAY_SPEC);
/// WeChat Pay, the bank as service provider.
pub const WECHAT_PAY: Network = Network::of(&WECHAT_PAY_SPEC);

/// The messages of one wallet.
#[derive(Debug, Clone, Copy)]
pub struct WalletCodec {
    network: Network,
}

fn doc(pairs: &[(&str, &str)]) -> String {
    let fields: String = pairs.iter().map(|(k, v)| el(k, v)).collect();
    format!("<xml>{fields}</xml>")
}

fn request(at_ms: i64, extra: &[(&str, &str)]) -> String {
    let nonce = format!("{at_ms:x}");
    let mut pairs = vec![
        ("appid", "wxpaygate"),
        ("mch_id", "PAYGATE"),
        ("sub_mch_id", "PAYGATE01"),
        ("nonce_str", nonce.as_str()),
    ];
    pairs.extend_from_slice(extra);
    doc(&pairs)
}

fn get(body: &str, name: &str) -> Option<String> {
    text(body, &["xml", name])
}

fn fen(body: &str, name: &str) -> Result<crate::money::Money, String> {
    let currency = get(body, "fee_type").unwrap_or_else(|| "CNY".to_owned());
    minor_money(&currency, &required(get(body, name), name)?)
}

/// `result_code`, `err_code`, `err_code_des`, `transaction_id` of an outcome.
fn codes(outcome: &Outcome) -> (&'static str, String, String, String) {
    match outcome {
        Outcome::Succeeded { network_reference }
        | Outcome::PresumedSucceeded { network_reference } => (
            "SUCCESS",
            String::new(),
            String::new(),
            network_reference.clone(),
        ),
        Outcome::Failed { code, reason } | Outcome::PresumedFailed { code, reason } => {
            ("FAIL", code.clone(), reason.clone(), String::new())
        }
        Outcome::Unknown => (
            "FAIL",
            PAYING.to_owned(),
            "waiting for the payer".to_owned(),
            String::new(),
        ),
    }
}

fn outcome_from(body: &str) -> Result<Outcome, String> {
    let code = get(body, "err_code").unwrap_or_default();
    Ok(
        match required(get(body, "result_code"), "result_code")?.as_str() {
            "SUCCESS" => Outcome::Succeeded {
                network_reference: get(body, "transaction_id").unwrap_or_default(),
            },
            "FAIL" if code == PAYING || code == "SYSTEMERROR" => Outcome::Unknown,
            "FAIL" => Outcome::Failed {
                reason: get(body, "err_code_des").unwrap_or_default(),
                code,
            },
            other => return Err(format!("result_code {other}")),
        },
    )
}

impl Codec for WalletCodec {
    fn network(&self) -> Network {
        self.network
    }

    fn content_type(&self) -> &'static str {
        "text/xml; charset=utf-8"
    }

    fn encode_call(&self, call: &Call, at_ms: i64) -> Result<(&'static str, String), String> {
        Ok(match call {
            Call::Submit(i) => {
                let fee = i.amount.minor.to_string();
                let (path, reference, amount, payer) = match i.direction {
                    CardDirection::DebitCard => {
                        ("/pay/micropay", "out_trade_no", "total_fee", "auth_code")
                    }
                    CardDirection::CreditCard => (
                        "/mmpaymkttransfers/promotion/transfers",
                        "partner_trade_no",
                        "amount",
                        "openid",
                    ),
                };
                let fields = [
                    (reference, i.reference.as_str()),
                    (amount, fee.as_str()),
                    ("fee_type", i.amount.currency.code()),
                    (payer, i.card_token.as_str()),
                ];
                (path, request(at_ms, &fields))
            }
            Call::Refund(r) => {
                let fee = r.amount.minor.to_string();
                (
                    "/secapi/pay/refund",
                    request(
                        at_ms,
                        &[
                            ("out_refund_no", r.reference.as_str()),
                            ("out_trade_no", r.original_reference.as_str()),
                            ("refund_fee", fee.as_str()),
                            ("fee_type", r.amount.currency.code()),
                        ],
                    ),
                )
            }
            Call::Reverse { reference } => (
                "/secapi/pay/reverse",
                request(at_ms, &[("out_trade_no", reference.as_str())]),
            ),
            Call::Query { reference } => (
                "/pay/orderquery",
                request(at_ms, &[("out_trade_no", reference.as_str())]),
            ),
            Call::Recon(period @ ReconPeriod::Date(_)) => {
                let date = period.as_text();
                (
                    "/pay/downloadbill",
                    request(at_ms, &[("bill_date", date.as_str())]),
                )
            }
            Call::Recon(ReconPeriod::Batch(id)) => {
                return Err(format!("wallet bills are daily, not batch {id}"));
            }
        })
    }

    fn decode_call(&self, path: &str, body: &str) -> Result<Call, String> {
        let trade = || required(get(body, "out_trade_no"), "out_trade_no");
        Ok(match path {
            "/pay/micropay" => Call::Submit(CardInstruction {
                reference: trade()?,
                direction: CardDirection::DebitCard,
                card_token: required(get(body, "auth_code"), "auth_code")?,
                amount: fen(body, "total_fee")?,
            }),
            "/mmpaymkttransfers/promotion/transfers" => Call::Submit(CardInstruction {
                reference: required(get(body, "partner_trade_no"), "partner_trade_no")?,
                direction: CardDirection::CreditCard,
                card_token: required(get(body, "openid"), "openid")?,
                amount: fen(body, "amount")?,
            }),
            "/secapi/pay/refund" => Call::Refund(RefundInstruction {
                reference: required(get(body, "out_refund_no"), "out_refund_no")?,
                original_reference: trade()?,
                amount: fen(body, "refund_fee")?,
            }),
            "/secapi/pay/reverse" => Call::Reverse {
                reference: trade()?,
            },
            "/pay/orderquery" => Call::Query {
                reference: trade()?,
            },
            "/pay/downloadbill" => {
                let date = required(get(body, "bill_date"), "bill_date")?;
                match ReconPeriod::parse(&date) {
                    Some(period @ ReconPeriod::Date(_)) => Call::Recon(period),
                    _ => return Err(format!("bill_date {date:?}")),
                }
            }
            other => return Err(format!("no wallet API at {other}")),
        })
    }

    fn encode_reply(&self, reply: &Reply, _at_ms: i64) -> String {
        let processed = ("return_code", "SUCCESS");
        match reply {
            Reply::Outcome { reference, outcome } => {
                let (result, code, reason, transaction) = codes(outcome);
                doc(&[
                    processed,
                    ("result_code", result),
                    ("err_code", code.as_str()),
                    ("err_code_des", reason.as_str()),
                    ("out_trade_no", reference.as_str()),
                    ("transaction_id", transaction.as_str()),
                ])
            }
            Reply::Query { reference, outcome } => match outcome {
                QueryOutcome::Found { outcome, reversed } => {
                    let (_, code, reason, transaction) = codes(outcome);
                    let state = match (outcome, reversed) {
                        (_, true) => "REVOKED",
                        (Outcome::Succeeded { .. } | Outcome::PresumedSucceeded { .. }, _) => {
                            "SUCCESS"
                        }
                        (Outcome::Unknown, _) => PAYING,
                        _ => "PAYERROR",
                    };
                    doc(&[
                        processed,
                        ("result_code", "SUCCESS"),
                        ("out_trade_no", reference.as_str()),
                        ("trade_state", state),
                        ("err_code", code.as_str()),
                        ("err_code_des", reason.as_str()),
                        ("transaction_id", transaction.as_str()),
                    ])
                }
                QueryOutcome::NotFound | QueryOutcome::Unknown => doc(&[
                    processed,
                    ("result_code", "FAIL"),
                    ("err_code", NOT_FOUND),
                    ("err_code_des", "no such order"),
                    ("out_trade_no", reference.as_str()),
                ]),
            },
            Reply::Reversal { reference, outcome } => {
                let (result, code, reason) = match outcome {
                    ReversalOutcome::Reversed => ("SUCCESS", String::new(), String::new()),
                    ReversalOutcome::NothingToReverse => (
                        "FAIL",
                        NOT_FOUND.to_owned(),
                        "nothing to reverse".to_owned(),
                    ),
                    ReversalOutcome::Refused { code, reason } => {
                        ("FAIL", code.clone(), reason.clone())
                    }
                    ReversalOutcome::Unknown => ("FAIL", "SYSTEMERROR".to_owned(), String::new()),
                };
                doc(&[
                    processed,
                    ("result_code", result),
                    ("err_code", code.as_str()),
                    ("err_code_des", reason.as_str()),
                    ("out_trade_no", reference.as_str()),
                    ("recall", "N"),
                ])
            }
        }
    }

    fn decode_reply(&self, call: &Call, body: &str) -> Result<Reply, String> {
        let processed = required(get(body, "return_code"), "return_code")?;
        if processed != "SUCCESS" {
            return Err(format!("return_code {processed}"));
        }
        let reference = required(get(body, "out_trade_no"), "out_trade_no")?;
        let code = get(body, "err_code").unwrap_or_default();
        Ok(match call {
            Call::Submit(_) | Call::Refund(_) | Call::Recon(_) => Reply::Outcome {
                reference,
                outcome: outcome_from(body)?,
            },
            Call::Query { .. } => {
                let outcome = if code == NOT_FOUND {
                    QueryOutcome::NotFound
                } else {
                    let reason = get(body, "err_code_des").unwrap_or_default();
                    let network_reference = get(body, "transaction_id").unwrap_or_default();
                    let state = required(get(body, "trade_state"), "trade_state")?;
                    let outcome = match state.as_str() {
                        "SUCCESS" | "REVOKED" => Outcome::Succeeded { network_reference },
                        "PAYERROR" => Outcome::Failed { code, reason },
                        PAYING => Outcome::Unknown,
                        other => return Err(format!("trade_state {other}")),
                    };
                    QueryOutcome::Found {
                        outcome,
                        reversed: state == "REVOKED",
                    }
                };
                Reply::Query { reference, outcome }
            }
            Call::Reverse { .. } => Reply::Reversal {
                reference,
                outcome: match (outcome_from(body)?, code.as_str()) {
                    (Outcome::Succeeded { .. }, _) => ReversalOutcome::Reversed,
                    (_, NOT_FOUND) => ReversalOutcome::NothingToReverse,
                    (Outcome::Failed { code, reason }, _) => {
                        ReversalOutcome::Refused { code, reason }
                    }
                    _ => ReversalOutcome::Unknown,
                },
            },
        })
    }

    fn encode_notice(&self, notice: &Notice, _at_ms: i64) -> Result<String, String> {
        let (result, code, reason, transaction) = codes(&notice.outcome);
        let fee = notice.amount.minor.to_string();
        Ok(doc(&[
            ("return_code", "SUCCESS"),
            ("result_code", result),
            ("err_code", code.as_str()),
            ("err_code_des", reason.as_str()),
            ("out_trade_no", notice.reference.as_str()),
            ("transaction_id", transaction.as_str()),
            ("total_fee", fee.as_str()),
            ("fee_type", notice.amount.currency.code()),
        ]))
    }

    fn decode_notice(&self, body: &str) -> Result<Notice, String> {
        let processed = required(get(body, "return_code"), "return_code")?;
        if processed != "SUCCESS" {
            return Err(format!("return_code {processed}"));
        }
        Ok(Notice {
            reference: required(get(body, "out_trade_no"), "out_trade_no")?,
            outcome: outcome_from(body)?,
            amount: fen(body, "total_fee")?,
        })
    }

    fn notice_answer(&self, _at_ms: i64) -> String {
        doc(&[("return_code", "SUCCESS"), ("return_msg", "OK")])
    }
}

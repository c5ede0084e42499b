//! What every wire client shares: the calls a network takes and the replies it gives in domain
//! terms ([`Call`], [`Reply`]), the [`Codec`] each network module implements to turn them into
//! its own messages and back, and [`WireClient`], the [`ClearingClient`] over any codec. The
//! simulator speaks the same codecs from the other side, so a message format is written once.

use async_trait::async_trait;
use time::{OffsetDateTime, UtcOffset, macros::format_description};
use tracing::Instrument;

use super::{
    CardInstruction, ClearingClient, ClearingError, Network, Outcome, QueryOutcome, ReconFile,
    ReconPeriod, RefundInstruction, ReversalOutcome,
    http::{self, Endpoint, HttpError},
    notice::Notice,
};
use crate::{
    clock::Clock,
    money::{Currency, Money, Sign},
};

/// A call to a network, in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Submit(CardInstruction),
    Query { reference: String },
    Reverse { reference: String },
    Refund(RefundInstruction),
    Recon(ReconPeriod),
}

impl Call {
    /// Our reference the call is about (empty for a reconciliation file).
    pub fn reference(&self) -> &str {
        match self {
            Call::Submit(i) => &i.reference,
            Call::Refund(r) => &r.reference,
            Call::Query { reference } | Call::Reverse { reference } => reference,
            Call::Recon(_) => "",
        }
    }
}

/// A network's reply to a submit, refund, query or reversal, in domain terms (a
/// reconciliation file is answered by the file itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// To a submit or a refund (also pushed as a result notice).
    Outcome { reference: String, outcome: Outcome },
    Query {
        reference: String,
        outcome: QueryOutcome,
    },
    Reversal {
        reference: String,
        outcome: ReversalOutcome,
    },
}

impl Reply {
    pub fn reference(&self) -> &str {
        match self {
            Reply::Outcome { reference, .. }
            | Reply::Query { reference, .. }
            | Reply::Reversal { reference, .. } => reference,
        }
    }
}

/// One network's message format: its wire types stay inside the implementing module.
pub trait Codec: Send + Sync + 'static {
    fn network(&self) -> Network;
    fn content_type(&self) -> &'static str;
    /// The path under the network's prefix, and the body, of `call` sent at `at_ms`.
    fn encode_call(&self, call: &Call, at_ms: i64) -> Result<(&'static str, String), String>;
    /// The call a body posted to `path` (under the prefix) carries.
    fn decode_call(&self, path: &str, body: &str) -> Result<Call, String>;
    fn encode_reply(&self, reply: &Reply, at_ms: i64) -> String;
    /// The reply to `call` in `body`.
    fn decode_reply(&self, call: &Call, body: &str) -> Result<Reply, String>;
    /// A reconciliation file as this network writes it (default: [`ReconFile::render`]).
    fn encode_recon(&self, file: &ReconFile) -> String {
        file.render()
    }
    fn decode_recon(&self, body: &str) -> Result<ReconFile, String> {
        ReconFile::parse(body)
    }
    /// The extension of its reconciliation files (default: `txt`).
    fn file_extension(&self) -> &'static str {
        "txt"
    }
    /// A result notice (交易结果通知) as this network posts it to `<prefix>/notify`.
    fn encode_notice(&self, notice: &Notice, at_ms: i64) -> Result<String, String>;
    /// The notice a body posted to `<prefix>/notify` carries.
    fn decode_notice(&self, body: &str) -> Result<Notice, String>;
    /// What this network expects back once a notice is taken (it resends until it sees it).
    fn notice_answer(&self, at_ms: i64) -> String;
}

/// A [`ClearingClient`] that speaks a network's codec over HTTP/1.1 to one endpoint.
pub struct WireClient {
    codec: Box<dyn Codec>,
    endpoint: Endpoint,
    clock: Clock,
}

impl WireClient {
    pub fn new(codec: Box<dyn Codec>, endpoint: Endpoint, clock: Clock) -> WireClient {
        assert!(endpoint.timeout_ms > 0, "a network endpoint has a timeout");
        WireClient {
            codec,
            endpoint,
            clock,
        }
    }

    /// Sends `call` and decodes the reply; `None` when there is none to act on (timeout,
    /// connection lost, an error status, an unreadable or mismatched answer).
    async fn call(&self, call: &Call) -> Option<Reply> {
        let network = self.codec.network();
        let body = self.exchange(call).await.ok()?;
        match self.codec.decode_reply(call, &body) {
            Ok(reply) if reply.reference() == call.reference() => Some(reply),
            Ok(reply) => {
                tracing::warn!(
                    network = network.as_str(),
                    sent = call.reference(),
                    answered = reply.reference(),
                    "a network answered about another reference; treated as no answer"
                );
                None
            }
            Err(e) => {
                tracing::warn!(network = network.as_str(), error = %e, "unreadable network answer; treated as no answer");
                None
            }
        }
    }

    async fn exchange(&self, call: &Call) -> Result<String, HttpError> {
        let network = self.codec.network();
        let (path, body) = self
            .codec
            .encode_call(call, self.clock.now_ms())
            .map_err(|e| HttpError::Connection(format!("cannot encode: {e}")))?;
        let full_path = format!("{}{path}", network.path_prefix());
        let span = tracing::info_span!("clearing.http", network = network.as_str(), path);
        let answer = http::post(&self.endpoint, &full_path, self.codec.content_type(), body)
            .instrument(span)
            .await;
        match answer {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) => {
                tracing::info!(network = network.as_str(), reference = call.reference(), error = %e, "no network answer");
                Err(e)
            }
        }
    }
}

fn outcome_of(reply: Option<Reply>) -> Outcome {
    match reply {
        Some(Reply::Outcome { outcome, .. }) => outcome,
        _ => Outcome::Unknown,
    }
}

#[async_trait]
impl ClearingClient for WireClient {
    fn network(&self) -> Network {
        self.codec.network()
    }

    async fn submit(&self, instruction: &CardInstruction) -> Outcome {
        debug_assert!(instruction.amount.minor > 0);
        outcome_of(self.call(&Call::Submit(instruction.clone())).await)
    }

    async fn query(&self, reference: &str) -> QueryOutcome {
        let call = Call::Query {
            reference: reference.to_owned(),
        };
        match self.call(&call).await {
            Some(Reply::Query { outcome, .. }) => outcome,
            _ => QueryOutcome::Unknown,
        }
    }

    async fn reverse(&self, reference: &str) -> ReversalOutcome {
        let call = Call::Reverse {
            reference: reference.to_owned(),
        };
        match self.call(&call).await {
            Some(Reply::Reversal { outcome, .. }) => outcome,
            _ => ReversalOutcome::Unknown,
        }
    }

    async fn refund(&self, refund: &RefundInstruction) -> Outcome {
        debug_assert!(refund.amount.minor > 0);
        outcome_of(self.call(&Call::Refund(refund.clone())).await)
    }

    async fn reconciliation_file(&self, period: &ReconPeriod) -> Result<ReconFile, ClearingError> {
        let body = match self.exchange(&Call::Recon(period.clone())).await {
            Ok(body) => body,
            Err(HttpError::Status { status, body }) => {
                return Err(ClearingError::Refused(format!("HTTP {status}: {body}")));
            }
            Err(_) => return Err(ClearingError::Unavailable),
        };
        let file = self
            .codec
            .decode_recon(&body)
            .map_err(ClearingError::Malformed)?;
        if file.network != self.codec.network() || file.period != *period {
            return Err(ClearingError::Malformed(format!(
                "asked for {} {}, got {} {}",
                self.codec.network().as_str(),
                period.as_text(),
                file.network.as_str(),
                file.period.as_text()
            )));
        }
        Ok(file)
    }
}

/// Beijing time, the networks' clock.
pub(crate) fn beijing(at_ms: i64) -> OffsetDateTime {
    let offset = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset)
}

/// `2026-12-07T09:30:00` (Beijing time), as ISO 20022 and NetsUnion stamp messages.
pub(crate) fn iso_stamp(at_ms: i64) -> String {
    beijing(at_ms)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

/// `20261207093000` (Beijing time), as UnionPay and WeChat Pay stamp messages.
pub(crate) fn compact_stamp(at_ms: i64) -> String {
    beijing(at_ms)
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_default()
}

/// An amount from a currency code and a plain decimal (`CNY`, `100.00`).
pub(crate) fn decimal_money(code: &str, text: &str) -> Result<Money, String> {
    let currency = Currency::from_code(code).map_err(|e| e.to_string())?;
    Money::parse(currency, text, Sign::Positive).map_err(|e| e.to_string())
}

/// An amount from a currency code and integer minor units (`CNY`, `10000` fen).
pub(crate) fn minor_money(code: &str, text: &str) -> Result<Money, String> {
    let currency = Currency::from_code(code).map_err(|e| e.to_string())?;
    let minor: i64 = text
        .parse()
        .map_err(|_| format!("amount {text:?} is not whole minor units"))?;
    if minor <= 0 {
        return Err(format!("amount {minor} is not positive"));
    }
    Ok(Money::new(currency, minor))
}

/// A required field, or an error naming it.
pub(crate) fn required(value: Option<String>, name: &str) -> Result<String, String> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("{name} is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clearing::recon::{ReconKind, ReconLine, ReconStatus};
    use crate::clearing::{
        CardDirection, nets_union::NetsUnionCodec, union_pay_qr::UnionPayQrCodec,
    };

    /// The codec of every network on the wire.
    fn codecs() -> Vec<Box<dyn Codec>> {
        Network::all().filter_map(Network::codec).collect()
    }

    fn cny(minor: i64) -> Money {
        Money::new(Currency::from_code("CNY").unwrap(), minor)
    }

    fn calls(network: Network) -> Vec<Call> {
        let mut calls = vec![
            Call::Submit(CardInstruction {
                reference: "PG0001".into(),
                direction: CardDirection::DebitCard,
                card_token: "tok<&>1".into(),
                amount: cny(12_345),
            }),
            Call::Submit(CardInstruction {
                reference: "PG0002".into(),
                direction: CardDirection::CreditCard,
                card_token: "tok 2".into(),
                amount: cny(1),
            }),
            Call::Refund(RefundInstruction {
                reference: "PG0003".into(),
                original_reference: "PG0001".into(),
                amount: cny(100),
            }),
            Call::Query {
                reference: "PG0001".into(),
            },
            Call::Reverse {
                reference: "PG0001".into(),
            },
            Call::Recon(ReconPeriod::parse("20261207").unwrap()),
        ];
        if network.hourly_batches() {
            calls.push(Call::Recon(ReconPeriod::parse("B202612070010").unwrap()));
        }
        calls
    }

    fn replies(network: Network) -> Vec<(Call, Reply)> {
        let reference = "PG0001".to_owned();
        let submit = calls(network).remove(0);
        let query = Call::Query {
            reference: reference.clone(),
        };
        let reverse = Call::Reverse {
            reference: reference.clone(),
        };
        let failed = Outcome::Failed {
            code: "51".into(),
            reason: "insufficient funds".into(),
        };
        let mut outcomes = vec![
            Outcome::Succeeded {
                network_reference: "N1".into(),
            },
            failed.clone(),
            Outcome::Unknown,
        ];
        if network.spec().presumed_outcomes {
            outcomes.push(Outcome::PresumedSucceeded {
                network_reference: "N2".into(),
            });
            outcomes.push(Outcome::PresumedFailed {
                code: "EPCC0098".into(),
                reason: "payer bank unknown".into(),
            });
        }
        let mut replies: Vec<(Call, Reply)> = outcomes
            .iter()
            .map(|outcome| {
                (
                    submit.clone(),
                    Reply::Outcome {
                        reference: reference.clone(),
                        outcome: outcome.clone(),
                    },
                )
            })
            .collect();
        for outcome in [
            QueryOutcome::NotFound,
            QueryOutcome::Found {
                outcome: outcomes[0].clone(),
                reversed: true,
            },
            QueryOutcome::Found {
                outcome: failed.clone(),
                reversed: false,
            },
        ] {
            let reply = Reply::Query {
                reference: reference.clone(),
                outcome,
            };
            replies.push((query.clone(), reply));
        }
        for outcome in [
            ReversalOutcome::Reversed,
            ReversalOutcome::NothingToReverse,
            ReversalOutcome::Refused {
                code: "12".into(),
                reason: "past the cutover".into(),
            },
        ] {
            let reply = Reply::Reversal {
                reference: reference.clone(),
                outcome,
            };
            replies.push((reverse.clone(), reply));
        }
        replies
    }

    #[test]
    fn every_codec_reads_back_every_call_and_reply_it_writes() {
        for codec in codecs() {
            let network = codec.network();
            for call in calls(network) {
                let (path, body) = codec.encode_call(&call, 1_796_607_000_000).unwrap();
                let decoded = codec.decode_call(path, &body);
                assert_eq!(decoded.as_ref(), Ok(&call), "{network:?} {path}: {body}");
            }
            for (call, reply) in replies(network) {
                let body = codec.encode_reply(&reply, 1_796_607_000_000);
                let decoded = codec.decode_reply(&call, &body);
                assert_eq!(decoded.as_ref(), Ok(&reply), "{network:?}: {body}");
            }
        }
    }

    #[test]
    fn every_codec_reads_back_its_reconciliation_file() {
        for codec in codecs() {
            let network = codec.network();
            let file = ReconFile {
                network,
                period: ReconPeriod::parse("20261207").unwrap(),
                lines: vec![
                    ReconLine {
                        reference: "PG1".into(),
                        network_reference: "N1".into(),
                        kind: ReconKind::Debit,
                        amount: cny(10_000),
                        status: ReconStatus::Reversed,
                        booked_at_ms: 1_796_607_000_123,
                    },
                    ReconLine {
                        reference: "PG2".into(),
                        network_reference: "N2".into(),
                        kind: ReconKind::Refund,
                        amount: cny(5),
                        status: ReconStatus::Failed,
                        booked_at_ms: 1_796_607_000_456,
                    },
                ],
            };
            let text = codec.encode_recon(&file);
            assert_eq!(codec.decode_recon(&text), Ok(file), "{network:?}: {text}");
        }
    }

    #[test]
    fn every_codec_reads_back_the_notices_it_writes() {
        for codec in codecs() {
            let network = codec.network();
            for (_, reply) in replies(network) {
                let Reply::Outcome { reference, outcome } = reply else {
                    continue;
                };
                let notice = Notice {
                    reference,
                    outcome,
                    amount: cny(12_345),
                };
                let body = codec.encode_notice(&notice, 1_796_607_000_000).unwrap();
                assert_eq!(
                    codec.decode_notice(&body),
                    Ok(notice),
                    "{network:?}: {body}"
                );
            }
            assert!(!codec.notice_answer(1_796_607_000_000).is_empty());
            assert!(codec.decode_notice("garbage").is_err(), "{network:?}");
        }
    }

    #[test]
    fn a_batch_file_is_refused_where_files_are_daily() {
        let batch = Call::Recon(ReconPeriod::parse("B202612070010").unwrap());
        assert!(UnionPayQrCodec.encode_call(&batch, 0).is_err());
        assert!(NetsUnionCodec.encode_call(&batch, 0).is_ok());
    }
}

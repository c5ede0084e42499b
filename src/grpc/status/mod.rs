//! The one mapping from refusals and domain errors to gRPC status. Every status carries a
//! `google.rpc.ErrorInfo` with a stable machine-readable `reason` and the domain `paygate.bank`.
//! Matches are exhaustive: a new error variant does not compile until it is mapped here.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    grpc::{gate::Refusal, permits::LimitRefusal},
    text::TextRefusal,
};

mod account;
mod cashier;
mod credit;
mod ledger;
mod operations;
mod yields;

/// `ErrorInfo.domain` of every paygate error.
pub const ERROR_DOMAIN: &str = "paygate.bank";
/// Longest `ErrorInfo.metadata` value, in characters: a value a caller sent (an order id, a
/// request id) is echoed at most this long, then an ellipsis.
pub const METADATA_VALUE_CHARS_MAX: usize = 64;
/// Longest status message, in characters (then an ellipsis): a message quoting a caller's
/// value never grows with it.
pub const MESSAGE_CHARS_MAX: usize = 512;

/// A status with its `ErrorInfo` detail.
pub fn error_status<'a>(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: impl IntoIterator<Item = (&'a str, String)>,
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .into_iter()
        .map(|(k, v)| (k.to_owned(), bounded(v, METADATA_VALUE_CHARS_MAX)))
        .collect();
    Status::with_error_details(
        code,
        bounded(message.into(), MESSAGE_CHARS_MAX),
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// `text` cut to `chars_max` characters and an ellipsis when longer.
fn bounded(text: String, chars_max: usize) -> String {
    match text.char_indices().nth(chars_max) {
        None => text,
        Some((cut, _)) => {
            let mut short = text;
            short.truncate(cut);
            short.push('…');
            short
        }
    }
}

/// A free-text refusal of `field`: INVALID_ARGUMENT, with the reason `CARD_NUMBER_IN_TEXT` when
/// the text held a card number (the message names the field, never the text).
pub fn text_status(field: &'static str, refusal: TextRefusal, message: String) -> Status {
    let reason = match refusal {
        TextRefusal::CardNumber => "CARD_NUMBER_IN_TEXT",
        TextRefusal::Required
        | TextRefusal::TooLong { .. }
        | TextRefusal::ControlCharacter
        | TextRefusal::BidiControl => "INVALID_ARGUMENT",
    };
    error_status(
        Code::InvalidArgument,
        reason,
        message,
        [("field", field.to_owned())],
    )
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        match refusal {
            Refusal::NoClientCertificate => error_status(
                Code::Unauthenticated,
                "CLIENT_CERTIFICATE_REQUIRED",
                "a client certificate is required",
                [],
            ),
            Refusal::UnknownCaller => error_status(
                Code::PermissionDenied,
                "CALLER_UNKNOWN",
                "the client certificate does not map to a configured caller",
                [],
            ),
            Refusal::AmbiguousCaller {
                callers: [first, second],
            } => error_status(
                Code::PermissionDenied,
                "CALLER_AMBIGUOUS",
                format!(
                    "the client certificate's identities name two callers ({first}, {second}); a certificate must name one"
                ),
                [("callers", format!("{first},{second}"))],
            ),
            Refusal::NotGranted { caller, method } => error_status(
                Code::PermissionDenied,
                "METHOD_NOT_GRANTED",
                format!("caller {caller} may not call {method}"),
                [("caller", caller.to_string()), ("method", method)],
            ),
            Refusal::RateLimited { caller, rate_per_s } => error_status(
                Code::ResourceExhausted,
                "RATE_LIMITED",
                format!("caller {caller} exceeded its rate limit of {rate_per_s} calls/s"),
                [
                    ("caller", caller.to_string()),
                    ("rate_per_s", rate_per_s.to_string()),
                ],
            ),
            Refusal::Limit(limit) => limit.into(),
        }
    }
}

impl From<LimitRefusal> for Status {
    fn from(refusal: LimitRefusal) -> Status {
        match refusal {
            LimitRefusal::Overloaded { inflight_calls_max } => error_status(
                Code::ResourceExhausted,
                "OVERLOADED",
                format!(
                    "the gateway is at its limit of {inflight_calls_max} calls in flight; retry with backoff"
                ),
                [("inflight_calls_max", inflight_calls_max.to_string())],
            ),
            LimitRefusal::CallerConcurrencyExceeded {
                caller,
                concurrent_calls_max,
            } => error_status(
                Code::ResourceExhausted,
                "CALLER_CONCURRENCY_EXCEEDED",
                format!(
                    "caller {caller} already has {concurrent_calls_max} calls executing; retry once one ends"
                ),
                [
                    ("caller", caller.to_string()),
                    ("concurrent_calls_max", concurrent_calls_max.to_string()),
                ],
            ),
            LimitRefusal::CallerStreamsExceeded {
                caller,
                streams_max,
            } => error_status(
                Code::ResourceExhausted,
                "CALLER_STREAMS_EXCEEDED",
                format!(
                    "caller {caller} already holds {streams_max} streams open; close one first"
                ),
                [
                    ("caller", caller.to_string()),
                    ("streams_max", streams_max.to_string()),
                ],
            ),
            LimitRefusal::StreamsExhausted { streams_max } => error_status(
                Code::ResourceExhausted,
                "STREAMS_EXHAUSTED",
                format!(
                    "the gateway is at its limit of {streams_max} open streams; retry with backoff"
                ),
                [("streams_max", streams_max.to_string())],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn echoed_values_and_messages_are_bounded() {
        let huge = "O".repeat(3 * 1024 * 1024);
        let status = error_status(
            Code::NotFound,
            "ORDER_NOT_FOUND",
            format!("order {huge} does not exist"),
            [("order_id", huge.clone()), ("short", "十元".to_owned())],
        );
        assert_eq!(status.message().chars().count(), MESSAGE_CHARS_MAX + 1);
        assert!(status.message().ends_with('…'));
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(
            info.metadata["order_id"].chars().count(),
            METADATA_VALUE_CHARS_MAX + 1
        );
        assert_eq!(info.metadata["short"], "十元");
        assert!(status.details().len() < 2048, "{}", status.details().len());
    }
}

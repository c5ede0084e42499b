//! The one mapping from refusals and domain errors to gRPC status. Every status carries a
//! `google.rpc.ErrorInfo` with a stable machine-readable `reason` and the domain `paygate.bank`.
//! Matches are exhaustive: a new error variant does not compile until it is mapped here.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{grpc::gate::Refusal, text::TextRefusal};

mod account;
mod cashier;
mod ledger;
mod yields;

/// `ErrorInfo.domain` of every paygate error.
pub const ERROR_DOMAIN: &str = "paygate.bank";

/// A status with its `ErrorInfo` detail.
pub fn error_status<'a>(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: impl IntoIterator<Item = (&'a str, String)>,
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
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
            Refusal::Overloaded { inflight_calls_max } => error_status(
                Code::ResourceExhausted,
                "OVERLOADED",
                format!(
                    "the gateway is at its limit of {inflight_calls_max} calls in flight; retry with backoff"
                ),
                [("inflight_calls_max", inflight_calls_max.to_string())],
            ),
        }
    }
}

//! Call deadlines. A call gets the shorter of the server's `limits.call_timeout_ms` and the
//! deadline the client sent (`grpc-timeout`); when it passes before the answer is ready, the
//! caller gets DEADLINE_EXCEEDED with an `ErrorInfo` (`DEADLINE_EXCEEDED`, metadata
//! `timeout_ms`). Such a call **may have been applied** (a posting already queued commits): a
//! retry with the same request id is safe and answers what happened.

use std::time::Duration;

use http::HeaderMap;
use tonic::{Code, Status};

use super::status::error_status;

/// The header a gRPC client states its deadline in.
const GRPC_TIMEOUT: &str = "grpc-timeout";
/// At most 8 digits, as the gRPC wire spec allows.
const TIMEOUT_DIGITS_MAX: usize = 8;

/// How long this call may take: the server's bound, or the client's deadline when shorter.
pub fn call_timeout(headers: &HeaderMap, server_ms: u64) -> Duration {
    let server = Duration::from_millis(server_ms);
    headers
        .get(GRPC_TIMEOUT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map_or(server, |client| client.min(server))
}

/// `grpc-timeout`: 1–8 digits and a unit (H, M, S, m, u, n); `None` when malformed.
fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty()
        || digits.len() > TIMEOUT_DIGITS_MAX
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(n.saturating_mul(3600)),
        'M' => Duration::from_secs(n.saturating_mul(60)),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The answer of a call whose deadline passed.
pub fn deadline_exceeded(timeout: Duration) -> Status {
    let ms = timeout.as_millis();
    error_status(
        Code::DeadlineExceeded,
        "DEADLINE_EXCEEDED",
        format!(
            "no answer within {ms} ms; the call may have been applied: retry with the same \
             request_id to learn its outcome"
        ),
        [("timeout_ms", ms.to_string())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_deadline_applies_when_shorter_than_the_servers() {
        let mut headers = HeaderMap::new();
        assert_eq!(call_timeout(&headers, 5_000), Duration::from_secs(5));
        headers.insert(GRPC_TIMEOUT, "250m".parse().unwrap());
        assert_eq!(call_timeout(&headers, 5_000), Duration::from_millis(250));
        headers.insert(GRPC_TIMEOUT, "1H".parse().unwrap());
        assert_eq!(call_timeout(&headers, 5_000), Duration::from_secs(5));
    }

    #[test]
    fn a_malformed_client_deadline_is_ignored() {
        for bad in ["", "m", "123456789m", "12x", "-5S", "1.5S", "５S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
        assert_eq!(parse_grpc_timeout("7S"), Some(Duration::from_secs(7)));
        assert_eq!(parse_grpc_timeout("90u"), Some(Duration::from_micros(90)));
    }
}

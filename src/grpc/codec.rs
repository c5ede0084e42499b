//! The protobuf codec of every paygate service: prost's, except that a request that does not
//! decode (bad wire format, a string that is not UTF-8, a field of the wrong type) answers
//! INVALID_ARGUMENT with an `ErrorInfo` (`MALFORMED_REQUEST`) — the caller's mistake, not to be
//! retried — where prost's codec answers INTERNAL, which the contract defines as "retry".
//! Generated code names it (`build.rs`: `codec_path`).

use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use super::status::error_status;

/// Longest decoder message carried back to the caller.
const DETAIL_LEN_MAX: usize = 200;

/// prost's codec with decode errors answered INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct StrictCodec<T, U> {
    inner: ProstCodec<T, U>,
}

impl<T, U> Default for StrictCodec<T, U> {
    fn default() -> Self {
        StrictCodec {
            inner: ProstCodec::default(),
        }
    }
}

impl<T, U> Codec for StrictCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.inner.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder {
            inner: self.inner.decoder(),
        }
    }
}

/// prost's decoder; its errors become INVALID_ARGUMENT `MALFORMED_REQUEST`.
#[derive(Debug)]
pub struct StrictDecoder<U> {
    inner: ProstDecoder<U>,
}

impl<U: prost::Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.inner.decode(buf).map_err(|s| malformed(&s))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// Beginning of tonic's refusal of a message over the decoding limit (`codec/decode.rs`).
const TONIC_TOO_LARGE_PREFIX: &str = "Error, decoded message length too large: found ";

/// tonic refuses a message over `limits.message_size_max_bytes` from its length prefix, before
/// any codec runs (nothing of it is buffered), with OUT_OF_RANGE and no detail. This is that
/// refusal with the `ErrorInfo` every paygate error carries: `MESSAGE_TOO_LARGE`, metadata
/// `message_size_max_bytes` and `message_size_bytes`. `None` for any other status.
pub fn message_too_large(status: &Status) -> Option<Status> {
    if status.code() != Code::OutOfRange {
        return None;
    }
    let rest = status.message().strip_prefix(TONIC_TOO_LARGE_PREFIX)?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    let found: usize = found.parse().ok()?;
    let limit: usize = limit.parse().ok()?;
    Some(error_status(
        Code::OutOfRange,
        "MESSAGE_TOO_LARGE",
        format!("the request message is {found} bytes, over the limit of {limit} bytes"),
        [
            ("message_size_max_bytes", limit.to_string()),
            ("message_size_bytes", found.to_string()),
        ],
    ))
}

/// The status of a message that does not decode.
pub fn malformed(decoder: &Status) -> Status {
    let mut detail: String = decoder.message().chars().take(DETAIL_LEN_MAX).collect();
    if detail.len() < decoder.message().len() {
        detail.push('…');
    }
    error_status(
        Code::InvalidArgument,
        "MALFORMED_REQUEST",
        format!("the request message does not decode: {detail}"),
        [],
    )
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn tonics_size_refusal_gains_its_error_info_and_other_statuses_do_not() {
        let tonic = Status::out_of_range(format!(
            "{TONIC_TOO_LARGE_PREFIX}131078 bytes, the limit is: 65536 bytes"
        ));

        let mapped = message_too_large(&tonic).expect("recognised");
        let info = mapped
            .get_error_details()
            .error_info()
            .cloned()
            .expect("info");

        assert_eq!(mapped.code(), Code::OutOfRange);
        assert_eq!(info.reason, "MESSAGE_TOO_LARGE");
        assert_eq!(info.metadata["message_size_max_bytes"], "65536");
        assert_eq!(info.metadata["message_size_bytes"], "131078");
        assert!(message_too_large(&Status::out_of_range("amount overflows")).is_none());
        assert!(message_too_large(&Status::internal(tonic.message())).is_none());
    }
}

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

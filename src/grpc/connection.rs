//! Calls in flight per connection: each call holds its connection's activity from its request
//! until its response body is done, so the idle watch (`tls::accept`) closes only connections
//! with no call in flight, never one carrying an open stream.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use http::{Request, Response};
use tonic::{body::Body, transport::server::TlsConnectInfo};
use tower::{Layer, Service};

use crate::tls::{CallOnConnection, ConnectionInfo};

/// Tower layer counting each call against its connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionCallsLayer;

impl<S> Layer<S> for ConnectionCallsLayer {
    type Service = ConnectionCalls<S>;
    fn layer(&self, inner: S) -> ConnectionCalls<S> {
        ConnectionCalls { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectionCalls<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for ConnectionCalls<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let call = request
            .extensions()
            .get::<TlsConnectInfo<ConnectionInfo>>()
            .map(|info| info.get_ref().activity.call_started());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let Some(call) = call else {
                return Ok(response);
            };
            Ok(response.map(|inner| Body::new(CallBody { inner, _call: call })))
        })
    }
}

/// A response body that keeps its call counted on the connection until it is done or dropped.
struct CallBody {
    inner: Body,
    _call: CallOnConnection,
}

impl http_body::Body for CallBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

//! Accepting connections: TCP accept, the TLS handshake (bounded in time and in number), and a
//! watch on each connection that closes it once it has had no call in flight for the idle
//! timeout. The TLS streams feed tonic's `serve_with_incoming_shutdown`; tonic's `Connected` for
//! rustls streams gives every request a `TlsConnectInfo<ConnectionInfo>` with the peer's
//! certificates and this connection's [`ConnectionActivity`].

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use prometheus_client::metrics::{counter::Counter, family::Family};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
    time::{Instant, Sleep},
};
use tokio_rustls::rustls::{self, CertificateError};
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::ServerTls;
use crate::telemetry::ReasonLabels;

/// TLS handshake failures, counted by [`handshake_failure_reason`].
pub type HandshakeFailures = Family<ReasonLabels, Counter>;

/// Handshakes in progress at once; beyond it, accepting waits for one to finish.
const HANDSHAKES_INFLIGHT_MAX: usize = 1024;
/// Handshaken connections waiting for the server to pick them up.
const ACCEPTED_QUEUE_MAX: usize = 256;
/// After a failed `accept` (out of file descriptors …), wait this long before the next.
const ACCEPT_RETRY_MS: u64 = 50;

/// A connection as the gRPC server sees it.
pub type TlsConnection = tokio_rustls::server::TlsStream<Watched<TcpStream>>;

/// How connections are accepted and when idle ones are closed.
#[derive(Debug, Clone, Copy)]
pub struct AcceptLimits {
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
}

/// The connections of `listener` once their TLS handshake (with the material in force when it
/// starts) has succeeded. A failed or timed-out handshake is logged at DEBUG, counted in
/// `failures` by reason and dropped. The listener closes when the stream is dropped (tonic drops
/// it when shutdown begins).
pub fn incoming(
    listener: TcpListener,
    tls: ServerTls,
    limits: AcceptLimits,
    failures: HandshakeFailures,
) -> impl tokio_stream::Stream<Item = io::Result<TlsConnection>> {
    use tokio_stream::StreamExt;
    let (accepted, queue) = mpsc::channel(ACCEPTED_QUEUE_MAX);
    tokio::spawn(accept_loop(listener, tls, limits, accepted, failures));
    tokio_stream::wrappers::ReceiverStream::new(queue).map(Ok)
}

async fn accept_loop(
    listener: TcpListener,
    tls: ServerTls,
    limits: AcceptLimits,
    accepted: mpsc::Sender<TlsConnection>,
    failures: HandshakeFailures,
) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_INFLIGHT_MAX));
    loop {
        let permit = tokio::select! {
            () = accepted.closed() => return,
            permit = handshakes.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            () = accepted.closed() => return,
            result = listener.accept() => match result {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                    continue;
                }
            },
        };
        // A response written in several pieces would otherwise wait for the client's delayed
        // ACK (40 ms per call on Linux).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
        let acceptor = tls.acceptor();
        let accepted = accepted.clone();
        let failures = failures.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let peer = stream.peer_addr().ok();
            let watched = Watched::new(stream, limits.idle_timeout);
            match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(watched)).await {
                Ok(Ok(connection)) => {
                    // The idle clock starts once the handshake is done.
                    connection.get_ref().0.activity.restart_idle_clock();
                    let _ = accepted.send(connection).await;
                }
                Ok(Err(e)) => {
                    let reason = handshake_failure_reason(&e);
                    tracing::debug!(?peer, error = %e, reason, "TLS handshake failed");
                    count(&failures, reason);
                }
                Err(_) => {
                    tracing::debug!(?peer, "TLS handshake timed out");
                    count(&failures, "timeout");
                }
            }
        });
    }
}

fn count(failures: &HandshakeFailures, reason: &'static str) {
    failures
        .get_or_create(&ReasonLabels {
            reason: reason.to_owned(),
        })
        .inc();
}

/// A bounded label for why a handshake failed: the client's certificate (missing, from another
/// CA, expired, revoked, without clientAuth, …), the protocol, or the connection itself.
pub fn handshake_failure_reason(error: &io::Error) -> &'static str {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match error.kind() {
            io::ErrorKind::UnexpectedEof => "connection_closed",
            _ => "io",
        };
    };
    match tls {
        rustls::Error::NoCertificatesPresented => "no_client_certificate",
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => "unknown_issuer",
            CertificateError::BadSignature => "bad_signature",
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not_yet_valid"
            }
            CertificateError::Revoked => "revoked",
            CertificateError::UnknownRevocationStatus => "unknown_revocation_status",
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "wrong_purpose"
            }
            _ => "invalid_certificate",
        },
        rustls::Error::AlertReceived(_) => "alert_received",
        rustls::Error::PeerIncompatible(_) => "incompatible",
        _ => "protocol",
    }
}

/// What every request on a connection learns about it (inside tonic's `TlsConnectInfo`).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub tcp: TcpConnectInfo,
    pub activity: Arc<ConnectionActivity>,
}

/// The calls in flight on one connection and since when it has had none.
#[derive(Debug)]
pub struct ConnectionActivity {
    opened: Instant,
    calls_inflight: AtomicUsize,
    /// Microseconds from `opened` to the moment the last call ended (or the handshake did).
    idle_since_us: AtomicU64,
}

impl ConnectionActivity {
    fn new() -> ConnectionActivity {
        ConnectionActivity {
            opened: Instant::now(),
            calls_inflight: AtomicUsize::new(0),
            idle_since_us: AtomicU64::new(0),
        }
    }

    /// Marks a call as started; it ends when the returned guard drops.
    pub fn call_started(self: &Arc<Self>) -> CallOnConnection {
        self.calls_inflight.fetch_add(1, Ordering::AcqRel);
        CallOnConnection(self.clone())
    }

    fn restart_idle_clock(&self) {
        let us = u64::try_from(self.opened.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.idle_since_us.store(us, Ordering::Release);
    }

    /// When the connection will have been idle for `timeout`; `None` while a call is in flight.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.calls_inflight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_micros(self.idle_since_us.load(Ordering::Acquire));
        Some(self.opened + since + timeout)
    }
}

/// A call in flight on a connection (see [`ConnectionActivity::call_started`]).
#[derive(Debug)]
pub struct CallOnConnection(Arc<ConnectionActivity>);

impl Drop for CallOnConnection {
    fn drop(&mut self) {
        if self.0.calls_inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.restart_idle_clock();
        }
    }
}

/// A TCP stream whose reads end (with `TimedOut`) once its connection has been idle too long:
/// the HTTP/2 server is always reading, so the watch wakes it and it drops the connection.
pub struct Watched<IO> {
    io: IO,
    activity: Arc<ConnectionActivity>,
    idle_timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<IO> Watched<IO> {
    fn new(io: IO, idle_timeout: Duration) -> Watched<IO> {
        Watched {
            io,
            activity: Arc::new(ConnectionActivity::new()),
            idle_timeout,
            timer: Box::pin(tokio::time::sleep(idle_timeout)),
        }
    }

    /// Whether the connection has been idle for the timeout; otherwise the timer is armed for
    /// the next moment it could be.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            match self.activity.idle_deadline(self.idle_timeout) {
                Some(deadline) if deadline <= now => return true,
                Some(deadline) => self.timer.as_mut().reset(deadline),
                None => self.timer.as_mut().reset(now + self.idle_timeout),
            }
        }
        false
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.idle_expired(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle: no call in flight for limits.connection_idle_timeout_ms",
            )));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Connected for Watched<TcpStream> {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            tcp: self.io.connect_info(),
            activity: self.activity.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_is_idle_only_while_no_call_is_in_flight() {
        let activity = Arc::new(ConnectionActivity::new());
        let timeout = Duration::from_secs(30);
        let fresh = activity
            .idle_deadline(timeout)
            .expect("idle from the start");

        let call = activity.call_started();
        let during = activity.idle_deadline(timeout);
        let second = activity.call_started();
        drop(call);
        let one_left = activity.idle_deadline(timeout);
        drop(second);
        let after = activity.idle_deadline(timeout).expect("idle again");

        assert!(fresh <= Instant::now() + timeout);
        assert_eq!(during, None);
        assert_eq!(one_left, None);
        assert!(
            after >= fresh,
            "the idle clock restarts when the last call ends"
        );
    }
}

//! Long-lived streams end promptly when the gateway shuts down: the next item a WatchAccount or
//! SubscribeEvents subscriber gets is UNAVAILABLE `SHUTTING_DOWN` (reconnect, to another
//! instance, with the last cursor), instead of a connection reset when the grace period ends.

use std::pin::Pin;

use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Status};

use super::status::error_status;

/// A boxed server stream of one message type.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Turns true once shutdown has begun.
#[derive(Debug, Clone)]
pub struct Closing(watch::Receiver<bool>);

impl Closing {
    pub fn new(stopping: watch::Receiver<bool>) -> Closing {
        Closing(stopping)
    }

    /// `stream`, ended by an UNAVAILABLE `SHUTTING_DOWN` item when shutdown begins.
    pub fn guard<T: Send + 'static>(
        &self,
        stream: impl Stream<Item = Result<T, Status>> + Send + 'static,
    ) -> BoxStream<T> {
        let state = (Box::pin(stream), self.0.clone(), false);
        Box::pin(futures::stream::unfold(
            state,
            |(mut inner, mut stopping, done)| async move {
                if done {
                    return None;
                }
                // A closed channel (the server gone without a shutdown) never ends the stream.
                let stop = async {
                    if stopping.wait_for(|s| *s).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    biased;
                    () = stop => Some((Err(shutting_down()), (inner, stopping, true))),
                    item = inner.next() => item.map(|i| (i, (inner, stopping, false))),
                }
            },
        ))
    }
}

fn shutting_down() -> Status {
    error_status(
        Code::Unavailable,
        "SHUTTING_DOWN",
        "the gateway is shutting down: reconnect (to another instance) with the last cursor",
        [],
    )
}

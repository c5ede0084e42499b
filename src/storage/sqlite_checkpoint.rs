//! The WAL checkpointer: copies committed WAL frames into the database file from a connection
//! of its own, beside the batches, so that the batch connection's commits do not.
//!
//! A commit that finds `wal_autocheckpoint` frames in the log copies every frame not yet copied
//! into the database file and syncs it before it returns. With a large database those frames
//! are pages all over the file, and the copy held every waiting call for 100 ms or more every
//! couple of seconds under load (docs/RELIABILITY.md, § Soak). Run here every
//! [`CHECKPOINT_INTERVAL_MS`], the same copy is small and holds nobody: the batch connection's
//! own checkpoint, kept as the backstop that lets the log restart from its beginning (a log
//! that is never fully copied at the start of a write only grows), finds the frames copied
//! already.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often the checkpointer copies what the batches committed since.
pub const CHECKPOINT_INTERVAL_MS: u64 = 100;

/// The running checkpointer; [`Checkpointer::stop`] ends it.
pub struct Checkpointer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database of `options` every `interval_ms`.
    pub fn start(options: SqliteConnectOptions, interval_ms: u64) -> Checkpointer {
        assert!(interval_ms > 0);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(options, interval_ms, stopped));
        Checkpointer { stop, task }
    }

    /// Stops it and waits until its connection is closed.
    pub async fn stop(self) {
        // A checkpointer that ended already dropped its receiver; nothing to tell it.
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "WAL checkpointer: task ended abnormally");
        }
    }
}

async fn run(options: SqliteConnectOptions, interval_ms: u64, mut stopped: oneshot::Receiver<()>) {
    let mut conn: Option<SqliteConnection> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One warning per run of failures, not one per tick.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {}
        }
        let result = match conn.as_mut() {
            Some(c) => checkpoint(c).await,
            None => match options.connect().await {
                Ok(mut c) => {
                    let r = checkpoint(&mut c).await;
                    conn = Some(c);
                    r
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(()) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "WAL checkpointer: checkpoint failed; the batches' own checkpoints go on");
                }
                failing = true;
                // The next tick connects afresh.
                if let Some(c) = conn.take() {
                    let _ = c.close().await;
                }
            }
        }
    }
    if let Some(c) = conn
        && let Err(e) = c.close().await
    {
        tracing::debug!(error = %e, "WAL checkpointer: close failed");
    }
}

/// Copies what it can without waiting for anyone (PASSIVE).
async fn checkpoint(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

//! The WAL checkpointer: copies committed WAL frames into the database file from a connection
//! of its own, beside the batches, and restarts the log, so that the batch connection's commits
//! do neither.
//!
//! A commit that finds `wal_autocheckpoint` frames in the log copies every frame not yet copied
//! into the database file and syncs it before it returns. With a large database those frames
//! are pages all over the file, and the copy held every waiting call for 100 ms or more every
//! couple of seconds under load (docs/RELIABILITY.md, § Soak). Here, every
//! [`CHECKPOINT_INTERVAL_MS`], a PASSIVE checkpoint copies what the batches committed since the
//! last one, holding nobody. Once the log is [`RESTART_LOG_FRAMES`] long, a RESTART checkpoint
//! follows it: it waits for the batch in progress, copies the few frames committed since the
//! passive pass and syncs, so the next batch writes the log from its beginning (a log is only
//! reused from its start once it has been copied whole while no batch had begun). That holds
//! the batches for a few milliseconds instead of the 40–75 ms the batch's own checkpoint did
//! (the batch connection keeps one, at a far longer log, as a backstop).

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How often the checkpointer copies what the batches committed since.
pub const CHECKPOINT_INTERVAL_MS: u64 = 100;
/// Log length, in frames, at which the checkpointer restarts the log (128 MiB with 4 KiB pages).
pub const RESTART_LOG_FRAMES: i64 = 32_768;
/// Passive passes at most before a RESTART, and the frames the last of them copied below which
/// the rest is left to the RESTART.
const CATCH_UP_PASSES_MAX: usize = 6;
const RESTART_RESIDUAL_FRAMES_MAX: i64 = 128;
/// How long the RESTART checkpoint waits for the batch in progress and for readers of the log
/// before it gives up until the next tick. It holds the write lock while it waits for readers,
/// so this bounds how long it can hold the batches.
const RESTART_BUSY_TIMEOUT_MS: u64 = 50;

/// The running checkpointer; [`Checkpointer::stop`] ends it.
pub struct Checkpointer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database of `options` every `interval_ms`.
    pub fn start(options: SqliteConnectOptions, interval_ms: u64) -> Checkpointer {
        assert!(interval_ms > 0);
        let options = options.busy_timeout(Duration::from_millis(RESTART_BUSY_TIMEOUT_MS));
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

/// Copies what it can without waiting for anyone (PASSIVE); past [`RESTART_LOG_FRAMES`],
/// catches up and restarts the log (RESTART).
async fn checkpoint(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let first = wal_checkpoint(conn, Mode::Passive).await?;
    if first.busy || first.log_frames < RESTART_LOG_FRAMES {
        return Ok(());
    }
    // The RESTART holds the batches while it copies what is left and syncs the file (~20 µs a
    // page here): the frames committed during the last passive pass. Passes repeated until
    // one copies little leave it a few milliseconds of them.
    let mut last = first;
    for _ in 0..CATCH_UP_PASSES_MAX {
        let next = wal_checkpoint(conn, Mode::Passive).await?;
        if next.busy || next.copied_frames < last.copied_frames {
            // Another checkpoint runs, or the log restarted meanwhile.
            return Ok(());
        }
        let this_pass = next.copied_frames - last.copied_frames;
        last = next;
        if this_pass <= RESTART_RESIDUAL_FRAMES_MAX {
            break;
        }
    }
    // Busy (a batch or a reader held on past the timeout) is not an error: the next tick
    // tries again, and the batch connection's backstop bounds the log meanwhile.
    let restart = wal_checkpoint(conn, Mode::Restart).await?;
    tracing::trace!(
        log_frames = last.log_frames,
        restarted = !restart.busy,
        "WAL checkpointer: restart"
    );
    Ok(())
}

/// The checkpoints this module runs.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Copies what it can without waiting for anyone.
    Passive,
    /// Waits for the writer and the log's readers, copies the rest and lets the log restart.
    Restart,
}

/// What `PRAGMA wal_checkpoint` answers.
#[derive(Debug, Clone, Copy)]
struct CheckpointResult {
    /// It could not do all it was asked: another checkpoint ran (PASSIVE), or the writer or a
    /// reader held on past the busy timeout (RESTART).
    busy: bool,
    /// Frames in the log.
    log_frames: i64,
    /// Frames of the log copied into the database file, by any checkpoint.
    copied_frames: i64,
}

async fn wal_checkpoint(
    conn: &mut SqliteConnection,
    mode: Mode,
) -> Result<CheckpointResult, sqlx::Error> {
    let sql = match mode {
        Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Mode::Restart => "PRAGMA wal_checkpoint(RESTART)",
    };
    let (busy, log_frames, copied_frames): (i64, i64, i64) =
        sqlx::query_as(sql).fetch_one(&mut *conn).await?;
    Ok(CheckpointResult {
        busy: busy != 0,
        log_frames,
        copied_frames,
    })
}

//! An idle stream costs no CPU: two thousand WatchAccount streams that see nothing happen leave
//! the gateway's process (server and test clients alike: one process) almost idle, and still
//! deliver the next entry at once. Alone in its test binary, its two back ends one after the
//! other, so no other test's work is counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Accounts, Backend, caller, open_class_ii, spawn_app_with, top_up};
use futures::StreamExt;
use paygate::grpc::pb::{AccountEventType, WatchAccountRequest};

const WATCHER: &str = "watcher";
const STREAMS: usize = 2_000;
/// Streams per connection, under the HTTP/2 limit of 256.
const STREAMS_PER_CONNECTION: usize = 250;
/// Generous: a per-stream poll every 200 ms spent several CPU-seconds here.
const IDLE_CPU_MAX: Duration = Duration::from_millis(500);

/// Held by the test running: its CPU figure is of its own streams only.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// User and system CPU time of this process so far (`/proc/self/stat`, in USER_HZ ticks of 10 ms).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // After the command name in parentheses: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("comm")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

both_backends!(multi_thread: two_thousand_idle_watches_cost_no_cpu_and_still_deliver);
async fn two_thousand_idle_watches_cost_no_cpu_and_still_deliver(backend: Backend) {
    let _alone = ALONE.lock().await;
    let app = spawn_app_with(backend, |c| {
        let mut watcher = caller(WATCHER, &["*"]);
        watcher.streams_max = Some(STREAMS);
        c.callers.push(watcher);
    })
    .await;
    let mut banker = app.accounts("core-banking").await;
    let account = open_class_ii(&mut banker, 1).await;
    let mut clients = Vec::new();
    for _ in 0..STREAMS.div_ceil(STREAMS_PER_CONNECTION) {
        clients.push(Accounts::new(app.channel(WATCHER).await));
    }
    let mut streams: Vec<_> = futures::stream::iter(0..STREAMS)
        .map(|i| {
            let mut client = clients[i / STREAMS_PER_CONNECTION].clone();
            let account = account.clone();
            async move {
                let mut stream = client
                    .watch_account(WatchAccountRequest {
                        account_id: account,
                        cursor: String::new(),
                    })
                    .await
                    .expect("watch opens")
                    .into_inner();
                stream.message().await.expect("stream").expect("snapshot");
                stream
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    // Past every stream's shortest interval between two reads.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let before = process_cpu();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_cpu = process_cpu() - before;
    top_up(&mut banker, &account, "10.00").await;
    let first = tokio::time::timeout(Duration::from_secs(5), the_next_entry(&mut streams[0])).await;
    let last = tokio::time::timeout(
        Duration::from_secs(5),
        the_next_entry(&mut streams[STREAMS - 1]),
    )
    .await;

    eprintln!("{backend:?}: {STREAMS} idle watches used {idle_cpu:?} of CPU in 5 s");
    assert!(
        idle_cpu < IDLE_CPU_MAX,
        "{STREAMS} idle watches used {idle_cpu:?} of CPU in 5 s"
    );
    assert!(first.is_ok(), "the first watch sees the top-up at once");
    assert!(last.is_ok(), "the last watch sees the top-up at once");
    streams.clear();
}

/// Reads `stream` until an entry is posted (a reservation may show as a snapshot first).
async fn the_next_entry(stream: &mut tonic::Streaming<paygate::grpc::pb::WatchAccountResponse>) {
    loop {
        let event = stream.message().await.expect("stream").expect("event");
        if event.event_type == AccountEventType::EntryPosted as i32 {
            return;
        }
    }
}

//! `--profile WORKLOAD`: `perf record -g -p PID` on the server for one workload (warm-up and
//! window), when `perf` is installed; otherwise a note and nothing else.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{server::signal, workload::Workload};

/// How long perf may take to write its data after SIGINT.
const STOP_WITHIN_S: u64 = 60;

/// A `perf record` running on the server.
pub struct Profiling {
    child: Child,
    output: PathBuf,
}

/// Starts `perf record -g -p pid` to `perf-<workload>.data` beside `json` (or in the working
/// directory); `None`, with a note, when perf is missing or refuses.
pub fn start(
    pid: u32,
    json: &Option<PathBuf>,
    workload: Workload,
    notes: &mut Vec<String>,
) -> Option<Profiling> {
    let installed = Command::new("perf")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        notes.push(format!(
            "--profile {}: perf is not installed; no profile",
            workload.name()
        ));
        return None;
    }
    let folder = json
        .as_deref()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let output = folder.join(format!("perf-{}.data", workload.name()));
    match Command::new("perf")
        .args(["record", "-g", "-p", &pid.to_string(), "-o"])
        .arg(&output)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => Some(Profiling { child, output }),
        Err(e) => {
            notes.push(format!(
                "--profile {}: perf did not start: {e}",
                workload.name()
            ));
            None
        }
    }
}

impl Profiling {
    /// SIGINT (perf writes its data and exits), then waits for it.
    pub fn stop(mut self, notes: &mut Vec<String>) {
        let _ = signal(self.child.id(), "INT");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(STOP_WITHIN_S) {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() || self.output.exists() => {
                    notes.push(format!(
                        "profile written to {} (perf report -i {})",
                        self.output.display(),
                        self.output.display()
                    ));
                    return;
                }
                Ok(Some(status)) => {
                    notes.push(format!("perf record ended {status} without a profile"));
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => {
                    notes.push(format!("perf record: {e}"));
                    return;
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        notes.push("perf record did not stop in time: killed".to_owned());
    }
}

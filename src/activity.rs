//! What the audit is doing right now, for the one line `--timeout` prints when it fires.
//!
//! Each piece of work that may wait (a phase, a list, a probe, an exec credential plugin)
//! registers itself with [`start`] and is removed when its guard drops.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

static RUNNING: Mutex<BTreeMap<u64, String>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Removes its activity when dropped.
#[must_use = "the activity ends when the guard is dropped"]
pub struct Guard(u64);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(mut r) = RUNNING.lock() {
            r.remove(&self.0);
        }
    }
}

/// Registers `what` as running until the guard drops.
pub fn start(what: impl Into<String>) -> Guard {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut r) = RUNNING.lock() {
        r.insert(id, what.into());
    }
    Guard(id)
}

/// What is running, oldest first, without duplicates.
pub fn running() -> Vec<String> {
    let r = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for what in r.into_values() {
        if !out.contains(&what) {
            out.push(what);
        }
    }
    out
}

/// `running()` as one line, at most `max` items and then a count of the rest.
pub fn summary(max: usize) -> String {
    let all = running();
    if all.is_empty() {
        return "nothing registered (starting up)".to_string();
    }
    let shown: Vec<&str> = all.iter().take(max).map(String::as_str).collect();
    let rest = all.len().saturating_sub(max);
    if rest == 0 {
        shown.join("; ")
    } else {
        format!("{}; and {rest} more", shown.join("; "))
    }
}

static CHILDREN: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// A child process (an exec credential plugin) to kill if the run is stopped by `--timeout`.
pub struct ChildGuard(u32);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(mut c) = CHILDREN.lock() {
            c.remove(&self.0);
        }
    }
}

/// Registers a running child process until the guard drops.
pub fn child(pid: u32) -> ChildGuard {
    if let Ok(mut c) = CHILDREN.lock() {
        c.insert(pid);
    }
    ChildGuard(pid)
}

/// Kills every registered child process (best effort), before the process exits.
pub fn kill_children() {
    let pids: Vec<u32> = CHILDREN
        .lock()
        .map(|c| c.iter().copied().collect())
        .unwrap_or_default();
    for pid in pids {
        kill_process(pid);
    }
}

/// SIGKILL to a process and its process group (the plugin runs in its own group), best effort.
pub fn kill_process(pid: u32) {
    #[cfg(unix)]
    {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}"), &pid.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
    }
}

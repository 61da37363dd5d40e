//! Which drover process owns a container: `host/pid/start-time`, so that a
//! container whose drover is gone (even if its pid was reused) can be told
//! from one whose drover still runs.

use std::path::PathBuf;

/// The drover process that creates containers.
#[derive(Debug, Clone)]
pub struct Owner {
    host: String,
    pid: u32,
    start: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            host: hostname(),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The value of the `drover.owner` label.
    pub fn label(&self) -> String {
        format!("{}/{}/{}", self.host, self.pid, self.start)
    }

    /// Whether the label names a drover on this machine that is gone. A
    /// label of another machine (engines can be shared) or one that cannot
    /// be read is never taken for dead.
    pub fn is_dead(label: &str) -> bool {
        let mut parts = label.rsplitn(3, '/');
        let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(start), Ok(pid)) = (start.parse::<u64>(), pid.parse::<u32>()) else {
            return false;
        };
        host == hostname() && start_time(pid) != Some(start)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The process's start time in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), or `None` when there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: skip past the last `)`.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The folder under which containers' read-only files are kept while they run.
pub fn files_root() -> PathBuf {
    std::env::temp_dir().join("drover-container-files")
}

/// Removes the files' folders of drovers that are gone (`<pid>-<random>`).
pub fn remove_dead_file_dirs() {
    let Ok(entries) = std::fs::read_dir(files_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if start_time(pid).is_none() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes the files' folders of the drover with this pid (`<pid>-<random>`).
pub fn remove_file_dirs_of(pid: u32) {
    let Ok(entries) = std::fs::read_dir(files_root()) else {
        return;
    };
    let prefix = format!("{pid}-");
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_gone_one_is_dead() {
        let me = Owner::current();
        assert!(!Owner::is_dead(&me.label()));
        let gone = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(Owner::is_dead(&gone.label()));
        assert!(!Owner::is_dead(&format!("another-host/{}/1", me.pid)));
        assert!(!Owner::is_dead("garbage"));
    }
}

//! Keeps a node's workspace within its quota of disk and files, however they are written
//! (the driver through WASI, or its processes).
//!
//! No filesystem quota is assumed (the workspace may be on any filesystem, and a normal user
//! has none to set), so drover measures: it walks the workspace while the node runs, more
//! rarely the longer a walk takes, and once more when the node ends. A node over its quota is
//! stopped and fails saying so. Between two walks a node can pass its quota by what it writes
//! in that time; a single file is bounded by `[sandbox] max_file_size_mib` for processes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Disk (allocated blocks) and entries one node's workspace may hold; 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkspaceQuota {
    pub(crate) bytes: u64,
    pub(crate) entries: u64,
}

/// The shortest and longest wait between two walks; in between, twenty times the last walk.
const FIRST_WAIT: Duration = Duration::from_millis(100);
const LONGEST_WAIT: Duration = Duration::from_secs(5);

impl WorkspaceQuota {
    /// From `[limits]`: MiB of disk and entries (files, folders, links).
    pub(crate) fn from_limits(limits: &crate::config::Limits) -> WorkspaceQuota {
        WorkspaceQuota {
            bytes: limits.max_workspace_mib.saturating_mul(1 << 20),
            entries: limits.max_workspace_files,
        }
    }

    fn unlimited(&self) -> bool {
        self.bytes == 0 && self.entries == 0
    }

    /// Resolves, with the reason, once `workspace` is over the quota; never otherwise.
    pub(crate) async fn watch(self, workspace: Option<PathBuf>) -> String {
        let Some(workspace) = workspace.filter(|_| !self.unlimited()) else {
            return std::future::pending().await;
        };
        let mut wait = FIRST_WAIT;
        loop {
            tokio::time::sleep(wait).await;
            let dir = workspace.clone();
            let began = Instant::now();
            let over = tokio::task::spawn_blocking(move || self.over(&dir))
                .await
                .ok()
                .flatten();
            if let Some(reason) = over {
                return reason;
            }
            wait = (began.elapsed() * 20).clamp(FIRST_WAIT, LONGEST_WAIT);
        }
    }

    /// Why `workspace` is over the quota, if it is. Stops walking as soon as it is.
    pub(crate) fn over(&self, workspace: &Path) -> Option<String> {
        if self.unlimited() {
            return None;
        }
        let mut bytes = 0u64;
        let mut entries = 0u64;
        let mut folders = vec![workspace.to_path_buf()];
        while let Some(folder) = folders.pop() {
            // A folder that went meanwhile, or one the node made unreadable to drover (as a
            // normal user), holds nothing this walk can count.
            let Ok(read) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in read.flatten() {
                // `DirEntry::metadata` does not follow links: a link counts as itself.
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                entries += 1;
                bytes = bytes.saturating_add(std::os::unix::fs::MetadataExt::blocks(&meta) * 512);
                if meta.is_dir() {
                    folders.push(entry.path());
                }
                if self.entries != 0 && entries > self.entries {
                    return Some(format!(
                        "workspace quota: the node's workspace holds more than {} files and \
                         folders ([limits] max_workspace_files)",
                        self.entries
                    ));
                }
                if self.bytes != 0 && bytes > self.bytes {
                    return Some(format!(
                        "workspace quota: the node's workspace takes more than {} MiB of disk \
                         ([limits] max_workspace_mib)",
                        self.bytes >> 20
                    ));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_entries_and_disk_below_the_top() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for i in 0..5 {
            std::fs::write(dir.path().join("sub").join(i.to_string()), b"x").unwrap();
        }
        std::fs::write(dir.path().join("big"), vec![1u8; 3 << 20]).unwrap();
        let files = WorkspaceQuota {
            bytes: 0,
            entries: 6,
        };
        let reason = files.over(dir.path()).expect("7 entries are over 6");
        assert!(reason.contains("more than 6 files") && reason.contains("max_workspace_files"));
        let enough = WorkspaceQuota {
            bytes: 0,
            entries: 7,
        };
        assert_eq!(enough.over(dir.path()), None);
        let disk = WorkspaceQuota {
            bytes: 2 << 20,
            entries: 0,
        };
        let reason = disk.over(dir.path()).expect("3 MiB are over 2");
        assert!(reason.contains("more than 2 MiB") && reason.contains("max_workspace_mib"));
        // A sparse file takes no disk, whatever its length.
        let sparse = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(sparse.path().join("hole")).unwrap();
        file.set_len(1 << 30).unwrap();
        assert_eq!(disk.over(sparse.path()), None);
    }
}

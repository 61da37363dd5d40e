//! Landlock rulesets kept for later nodes that grant exactly the same files, so
//! that a Landlock ruleset is built once per workspace instead of per node.
//!
//! Entries are keyed by the inodes the policy names, not by their paths: a
//! folder removed and made again under the same path is a new inode and
//! gets a new ruleset. A kept ruleset holds a reference to each inode it
//! names, so an inode number in the key cannot be reused while it is kept.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};

use super::{Policy, lock};

/// How many rulesets are kept; all are dropped when it is reached.
/// Recycled workspaces need one per folder, far fewer than this.
const CAPACITY: usize = 64;

/// What a ruleset grants, as inodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    network: bool,
    /// (device, inode) of the workspace, then of each read-only file.
    inodes: Vec<(u64, u64)>,
}

impl Key {
    /// The key of `policy`; `None` if a path cannot be looked up (building
    /// the ruleset then says what is wrong).
    pub(crate) fn of(policy: &Policy) -> Option<Key> {
        let inodes = std::iter::once(&policy.workspace)
            .chain(&policy.read_only_files)
            .map(|path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino())))
            .collect::<Option<Vec<_>>>()?;
        Some(Key {
            network: policy.network,
            inodes,
        })
    }
}

/// The kept rulesets.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    by_key: Mutex<HashMap<Key, Arc<OwnedFd>>>,
}

impl Kept {
    pub(crate) fn get(&self, key: &Key) -> Option<Arc<OwnedFd>> {
        lock(&self.by_key).get(key).cloned()
    }

    pub(crate) fn keep(&self, key: Key, ruleset: Arc<OwnedFd>) {
        let mut by_key = lock(&self.by_key);
        if by_key.len() >= CAPACITY {
            by_key.clear();
        }
        by_key.insert(key, ruleset);
    }
}

//! Where a local run's nodes work: one folder per node, or folders recycled
//! from nodes that finished and left theirs empty.
//!
//! Recycling exists for speed: on a busy ext4, making and removing a folder
//! per node cost more than the node's own `sh` process. A node keeps its
//! folder across its attempts (a retry sees what the last attempt left);
//! once the node is final, an empty folder with its permissions unchanged
//! goes to the next node that needs one, and anything else is removed and
//! never handed out again.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use crate::dag::NodeIndex;

/// Hands out the workspaces of one run's nodes, under one folder.
#[derive(Debug)]
pub struct Workspaces {
    root: PathBuf,
    recycled: Option<Recycled>,
}

#[derive(Debug)]
struct Recycled {
    slots: Mutex<Slots>,
    remover: Mutex<Removal>,
}

/// Who removes the folders nodes left used.
#[derive(Debug)]
enum Removal {
    /// Nothing to remove yet: runs whose nodes leave nothing start no thread.
    NotNeeded,
    OnThread(Remover),
    /// After [`Workspaces::finish`], or when the thread could not start.
    Inline,
}

/// A thread that removes the folders it is sent, so that a node's
/// successors need not wait for its files to go.
#[derive(Debug)]
struct Remover {
    tx: Sender<PathBuf>,
    thread: JoinHandle<()>,
}

impl Remover {
    fn start() -> Option<Remover> {
        let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
        let thread = std::thread::Builder::new()
            .name("drover-cleanup".into())
            .spawn(move || {
                for dir in rx {
                    let _ = std::fs::remove_dir_all(dir);
                }
            })
            .ok()?;
        Some(Remover { tx, thread })
    }
}

#[derive(Debug, Default)]
struct Slots {
    /// The folder each unfinished node was given.
    held: HashMap<NodeIndex, PathBuf>,
    /// Folders free for the next node: empty, or never made.
    free: Vec<PathBuf>,
    /// Names are `ws-<n>` and never reused, so a removed folder's name
    /// never comes back.
    made: u64,
    /// Permission bits of a freshly made folder: those of `root`, made the
    /// same way under the same umask. `None` until first needed.
    fresh_mode: Option<u32>,
}

impl Workspaces {
    /// Each node works in `<root>/<node name>`, left in place: for runs
    /// whose workspaces are kept, or removed with `root` at the end.
    pub fn per_node(root: PathBuf) -> Self {
        Workspaces {
            root,
            recycled: None,
        }
    }

    /// Nodes work in `<root>/ws-<n>` folders, recycled as the module says.
    /// Folders to remove go to a thread of their own, started for the first
    /// one, until [`finish`]; if it cannot start, or after `finish`,
    /// [`release`] removes them itself.
    ///
    /// [`finish`]: Workspaces::finish
    /// [`release`]: Workspaces::release
    pub fn recycled(root: PathBuf) -> Self {
        Workspaces {
            root,
            recycled: Some(Recycled {
                slots: Mutex::new(Slots::default()),
                remover: Mutex::new(Removal::NotNeeded),
            }),
        }
    }

    /// Whether folders may still be under removal on the thread, that is,
    /// whether [`finish`](Self::finish) may have to wait.
    pub fn removing(&self) -> bool {
        self.recycled
            .as_ref()
            .is_some_and(|r| matches!(*lock(&r.remover), Removal::OnThread(_)))
    }

    /// Waits until the folders sent for removal are gone.
    pub fn finish(&self) {
        let Some(recycled) = &self.recycled else {
            return;
        };
        let removal = std::mem::replace(&mut *lock(&recycled.remover), Removal::Inline);
        if let Removal::OnThread(Remover { tx, thread }) = removal {
            drop(tx);
            let _ = thread.join();
        }
    }

    /// The folder under which every workspace lies.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The workspace of node `index` (named `name`): the one it already
    /// has, a free one, or a new name. The folder may not exist yet; the
    /// runtime makes it when the driver needs one.
    pub fn take(&self, index: NodeIndex, name: &str) -> PathBuf {
        let Some(recycled) = &self.recycled else {
            return self.root.join(name);
        };
        let mut slots = lock(&recycled.slots);
        if let Some(path) = slots.held.get(&index) {
            return path.clone();
        }
        let path = match slots.free.pop() {
            Some(path) => path,
            None => {
                slots.made += 1;
                self.root.join(format!("ws-{}", slots.made))
            }
        };
        slots.held.insert(index, path.clone());
        path
    }

    /// Node `index` is final: its workspace goes back to the free list if
    /// it is reusable (`reusable` says the driver left nothing running that
    /// could still write to it, e.g. a container being removed) and empty,
    /// or is removed. Does nothing for per-node workspaces or a node that
    /// holds none.
    pub fn release(&self, index: NodeIndex, reusable: bool) {
        let Some(recycled) = &self.recycled else {
            return;
        };
        let Some(path) = lock(&recycled.slots).held.remove(&index) else {
            return;
        };
        let reuse = match std::fs::symlink_metadata(&path) {
            // Never made: nothing can have written to it, unless something
            // still running may make it (a container's bind mount would).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !reusable {
                    return;
                }
                true
            }
            Err(_) => false,
            Ok(meta) => reusable && self.left_as_made(recycled, &path, &meta),
        };
        if reuse {
            lock(&recycled.slots).free.push(path);
            return;
        }
        let unsent = {
            let mut removal = lock(&recycled.remover);
            if matches!(*removal, Removal::NotNeeded) {
                *removal = Remover::start().map_or(Removal::Inline, Removal::OnThread);
            }
            match &*removal {
                Removal::OnThread(remover) => remover.tx.send(path).err().map(|e| e.0),
                Removal::NotNeeded | Removal::Inline => Some(path),
            }
        };
        if let Some(path) = unsent {
            let _ = std::fs::remove_dir_all(path);
        }
    }

    /// Whether `path` is, or can be made again, as a fresh workspace is:
    /// an empty folder of ours with the mode the runtime makes. The node's
    /// processes cannot rename or replace the folder (Landlock grants
    /// nothing on its parent), but they can chmod it. As root, a folder the
    /// sandbox gave to a node's uid (every process of which is gone once
    /// the node is final) is taken back when it is empty.
    fn left_as_made(&self, recycled: &Recycled, path: &Path, meta: &std::fs::Metadata) -> bool {
        let ours = meta.uid() == current_uid();
        // Only root gives folders away, and a node's uid cannot give one on.
        let a_nodes = current_uid() == 0 && meta.uid() != 0;
        if !meta.is_dir() || !(ours || a_nodes) {
            return false;
        }
        // The root was made the same way, under the same umask (and exists,
        // as `path` lies in it).
        let fresh_mode = {
            let mut slots = lock(&recycled.slots);
            match slots.fresh_mode {
                Some(mode) => mode,
                None => match std::fs::metadata(&self.root) {
                    Ok(root) => *slots.fresh_mode.insert(permissions(&root)),
                    Err(_) => return false,
                },
            }
        };
        if ours && permissions(meta) != fresh_mode {
            return false;
        }
        if !std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none()) {
            return false;
        }
        !a_nodes
            || (std::os::unix::fs::chown(path, Some(0), Some(0)).is_ok()
                && std::fs::set_permissions(path, std::fs::Permissions::from_mode(fresh_mode))
                    .is_ok())
    }
}

fn permissions(meta: &std::fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

fn current_uid() -> u32 {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    unsafe { libc::getuid() }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The locks guard plain bookkeeping; a panic elsewhere leaves it whole.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        std::fs::create_dir_all(&root).unwrap();
        (dir, root)
    }

    #[test]
    fn per_node_workspaces_are_named_by_node_and_left_alone() {
        let (_dir, root) = root();
        let ws = Workspaces::per_node(root.clone());
        let path = ws.take(0, "build");
        assert_eq!(path, root.join("build"));
        std::fs::create_dir_all(&path).unwrap();
        ws.release(0, true);
        assert!(path.exists());
    }

    #[test]
    fn an_empty_workspace_goes_to_the_next_node_and_a_used_one_is_removed() {
        let (_dir, root) = root();
        let ws = Workspaces::recycled(root.clone());
        let a = ws.take(0, "a");
        // Attempts of one node share its folder.
        assert_eq!(ws.take(0, "a"), a);
        let b = ws.take(1, "b");
        assert_ne!(a, b);
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("left-behind"), "x").unwrap();
        ws.release(0, true);
        ws.release(1, true);
        ws.finish();
        assert!(!b.exists(), "a folder with files is removed");
        assert_eq!(ws.take(2, "c"), a, "the empty folder is reused");
        let d = ws.take(3, "d");
        assert!(d != a && d != b, "a removed folder's name never comes back");
    }

    #[test]
    fn a_workspace_with_changed_permissions_or_still_in_use_is_not_reused() {
        let (_dir, root) = root();
        let ws = Workspaces::recycled(root.clone());
        let a = ws.take(0, "a");
        let b = ws.take(1, "b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o700)).unwrap();
        ws.release(0, true);
        ws.release(1, false);
        ws.finish();
        assert!(!a.exists() && !b.exists());
        let c = ws.take(2, "c");
        assert!(c != a && c != b);
    }

    #[test]
    fn as_root_an_empty_folder_given_to_a_node_uid_is_taken_back_and_reused() {
        if current_uid() != 0 {
            return; // only root gives folders to node uids
        }
        let (_dir, root) = root();
        let ws = Workspaces::recycled(root.clone());
        let a = ws.take(0, "a");
        let b = ws.take(1, "b");
        for path in [&a, &b] {
            std::fs::create_dir_all(path).unwrap();
            std::os::unix::fs::chown(path, Some(2_000_999), Some(2_000_999)).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        std::fs::write(b.join("left-behind"), "x").unwrap();
        ws.release(0, true);
        ws.release(1, true);
        ws.finish();
        assert!(!b.exists(), "a used folder is removed whoever owns it");
        assert_eq!(ws.take(2, "c"), a, "the empty folder is reused");
        let meta = std::fs::metadata(&a).unwrap();
        assert_eq!(meta.uid(), 0, "taken back from the node's uid");
        assert_eq!(
            permissions(&meta),
            permissions(&std::fs::metadata(&root).unwrap())
        );
    }

    #[test]
    fn a_workspace_never_made_is_handed_out_again() {
        let (_dir, root) = root();
        let ws = Workspaces::recycled(root.clone());
        let a = ws.take(0, "a");
        ws.release(0, true);
        assert!(!ws.removing(), "nothing to remove starts no thread");
        assert_eq!(ws.take(1, "b"), a);
        // Unless something may still make it.
        ws.release(1, false);
        assert_ne!(ws.take(2, "c"), a);
        // Releasing a node that holds nothing is harmless.
        ws.release(7, true);
    }

    #[test]
    fn finish_waits_for_the_removals_and_later_ones_happen_at_once() {
        let (_dir, root) = root();
        let ws = Workspaces::recycled(root.clone());
        let used: Vec<PathBuf> = (0..20)
            .map(|i| {
                let path = ws.take(i, "n");
                std::fs::create_dir_all(path.join("deep/er")).unwrap();
                std::fs::write(path.join("deep/er/f"), "x").unwrap();
                path
            })
            .collect();
        for i in 0..19 {
            ws.release(i, true);
        }
        assert!(ws.removing());
        ws.finish();
        assert!(!ws.removing());
        assert!(used[..19].iter().all(|p| !p.exists()));
        ws.release(19, true);
        assert!(!used[19].exists());
    }
}

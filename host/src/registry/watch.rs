//! The plugins folder: every `.wasm` file in it is published at start and
//! whenever it changes; a file removed withdraws its version.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::Watcher as _;
use tokio::sync::mpsc;

use super::{Origin, PublishError, Registry, Upload};

/// How long the folder must be quiet before it is read again: a copy into
/// it fires many events, and a half-written file is not a component yet.
const SETTLE: Duration = Duration::from_millis(250);

/// Watches the plugins folder while it lives.
pub struct FolderWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A file as last seen: changed files are published again.
pub(super) type Seen = HashMap<PathBuf, (SystemTime, u64)>;

impl Registry {
    /// Publishes the plugins folder's components and withdraws the versions
    /// of files that are gone. Says what could not be published, by file.
    pub async fn sync_folder(&self) -> Vec<String> {
        let Some(dir) = self.runtime().config().plugins.dir.clone() else {
            return Vec::new();
        };
        let files = match wasm_files(&dir) {
            Ok(files) => files,
            Err(e) => return vec![format!("plugins folder {}: {e}", dir.display())],
        };
        let mut problems = Vec::new();
        let mut seen = self.inner.folder_seen.lock().await;
        for (path, stamp) in &files {
            if seen.get(path) == Some(stamp) {
                continue;
            }
            match self.publish_file(path).await {
                Ok(()) => {
                    seen.insert(path.clone(), *stamp);
                }
                Err(e) => {
                    // Seen all the same: the same bytes would fail again.
                    seen.insert(path.clone(), *stamp);
                    self.withdraw_file(path, None);
                    problems.push(format!("{}: {e}", path.display()));
                }
            }
        }
        seen.retain(|path, _| {
            let present = files.contains_key(path);
            if !present {
                self.withdraw_file(path, None);
            }
            present
        });
        problems
    }

    async fn publish_file(&self, path: &Path) -> Result<(), PublishError> {
        let bytes = std::fs::read(path).map_err(|e| PublishError::Io(e.to_string()))?;
        let signature = std::fs::read_to_string(path.with_extension("wasm.sig")).ok();
        let published = self
            .publish(Upload {
                name: None,
                version: None,
                bytes: Arc::from(bytes),
                signature,
                origin: Origin::Folder(path.to_path_buf()),
            })
            .await?;
        let plugin = published.plugin;
        self.withdraw_file(path, Some((&plugin.name, &plugin.version)));
        Ok(())
    }

    /// Withdraws the versions published from `path`, but `keep`.
    fn withdraw_file(&self, path: &Path, keep: Option<(&str, &semver::Version)>) {
        let origin = Origin::Folder(path.to_path_buf());
        let mut gone = Vec::new();
        {
            let mut plugins = self.plugins_mut();
            for versions in plugins.values_mut() {
                versions.retain(|version, entry| {
                    let kept =
                        entry.origin != origin || keep == Some((entry.name.as_str(), version));
                    if !kept {
                        gone.push(entry.clone());
                    }
                    kept
                });
            }
            plugins.retain(|_, versions| !versions.is_empty());
        }
        for entry in gone {
            tracing::info!(plugin = %entry.name, version = %entry.version, file = %path.display(), "withdrawn");
            self.collect(&entry.digest);
        }
    }

    /// Starts watching the plugins folder, if one is configured.
    pub fn watch_folder(&self) -> Result<Option<FolderWatch>, String> {
        let Some(dir) = self.runtime().config().plugins.dir.clone() else {
            return Ok(None);
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = tx.send(());
                }
            })
            .map_err(|e| format!("cannot watch the plugins folder: {e}"))?;
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch the plugins folder {}: {e}", dir.display()))?;
        let registry = self.clone();
        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Let a burst of events settle, then read the folder once.
                loop {
                    tokio::time::sleep(SETTLE).await;
                    if rx.try_recv().is_err() {
                        break;
                    }
                    while rx.try_recv().is_ok() {}
                }
                for problem in registry.sync_folder().await {
                    tracing::error!("plugins folder: {problem}");
                }
            }
        });
        Ok(Some(FolderWatch {
            _watcher: watcher,
            task,
        }))
    }
}

/// The `.wasm` files of a folder, with when each last changed and its size.
fn wasm_files(dir: &Path) -> std::io::Result<Seen> {
    let mut files = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "wasm") {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_file() {
            files.insert(
                path,
                (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                ),
            );
        }
    }
    Ok(files)
}

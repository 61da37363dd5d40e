//! The registry on disk: components under `blobs/<sha256>.wasm`, and one
//! index file per published version under `index/<name>/<version>.json`.
//! Each file is written whole to a temporary name, synced, then renamed, so
//! a crash leaves either the old file or the new one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use semver::Version;

use super::{Origin, PluginVersion};

#[derive(Clone)]
pub(super) struct Disk {
    root: PathBuf,
}

impl Disk {
    pub fn new(root: PathBuf) -> Disk {
        Disk { root }
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.blobs_dir().join(format!("{digest}.wasm"))
    }

    fn index_path(&self, name: &str, version: &Version) -> PathBuf {
        self.root
            .join("index")
            .join(name)
            .join(format!("{version}.json"))
    }

    /// Stores a component under its digest (once: the same digest is the same bytes).
    pub fn write_blob(&self, digest: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.blob_path(digest);
        if path.exists() {
            return Ok(());
        }
        write_atomically(&path, bytes)
    }

    pub fn read_blob(&self, digest: &str) -> io::Result<Arc<[u8]>> {
        let path = self.blob_path(digest);
        std::fs::read(&path)
            .map(Arc::from)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    pub fn remove_blob(&self, digest: &str) -> io::Result<()> {
        match std::fs::remove_file(self.blob_path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The digests of every stored component.
    pub fn blobs(&self) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(self.blobs_dir()) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other?,
        };
        let mut digests = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            if let Some(digest) = name.to_str().and_then(|n| n.strip_suffix(".wasm")) {
                digests.push(digest.to_owned());
            }
        }
        Ok(digests)
    }

    /// Records an uploaded version. Folder plugins are not recorded: the
    /// folder itself is their record, read again at every start.
    pub fn write_index(&self, entry: &PluginVersion) -> io::Result<()> {
        if entry.origin != Origin::Upload {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(entry).map_err(io::Error::other)?;
        write_atomically(&self.index_path(&entry.name, &entry.version), &json)
    }

    pub fn remove_index(&self, name: &str, version: &Version) -> io::Result<()> {
        match std::fs::remove_file(self.index_path(name, version)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every recorded version, and a problem for each file that cannot be read.
    pub fn read_index(&self) -> (Vec<PluginVersion>, Vec<String>) {
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        let Ok(names) = std::fs::read_dir(self.root.join("index")) else {
            return (entries, problems);
        };
        for dir in names.flatten() {
            let Ok(files) = std::fs::read_dir(dir.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let read = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| {
                        serde_json::from_slice::<PluginVersion>(&bytes).map_err(|e| e.to_string())
                    });
                match read {
                    Ok(entry) if self.blob_path(&entry.digest).is_file() => entries.push(entry),
                    Ok(entry) => problems.push(format!(
                        "{}: its component sha256:{} is missing",
                        path.display(),
                        entry.digest
                    )),
                    Err(e) => problems.push(format!("{}: {e}", path.display())),
                }
            }
        }
        (entries, problems)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("a file path without a folder"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // The rename itself is durable once the folder is synced.
    std::fs::File::open(dir)?.sync_all()
}

//! Memory cgroups for node processes: one per node uid, under drover's own cgroup.
//!
//! Used where drover may make cgroups below its own (as root, with the v1 `memory` controller
//! mounted writable, or a v2 hierarchy whose `memory` controller drover can enable for a
//! subtree). A node's processes join the cgroup of its uid before `execve`; the kernel kills
//! them when they pass the limit, and the cgroup's `oom_kill` count tells drover that this is
//! why they died.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Which cgroup hierarchy holds the memory controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Where node cgroups are made.
#[derive(Debug)]
pub(crate) struct MemoryCgroups {
    /// `<drover's own cgroup>/drover-nodes`.
    base: PathBuf,
    version: Version,
}

/// One node uid's memory cgroup, with its `cgroup.procs` open for the child to join.
#[derive(Debug)]
pub(crate) struct MemoryCgroup {
    dir: PathBuf,
    version: Version,
    /// Written "0" by each new process, which moves the writer in.
    pub(crate) procs: OwnedFd,
    limit: Option<u64>,
}

impl MemoryCgroups {
    /// Finds drover's memory cgroup and makes `drover-nodes` below it; `Err` says why not.
    pub(crate) fn detect() -> Result<MemoryCgroups, String> {
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mut v2_path = None;
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let path = path.trim_start_matches('/');
            if controllers.split(',').any(|c| c == "memory") {
                let base = Path::new("/sys/fs/cgroup/memory").join(path);
                return make_base(base, Version::V1);
            }
            if controllers.is_empty() {
                v2_path = Some(path.to_owned());
            }
        }
        let Some(path) = v2_path else {
            return Err("no memory controller in /proc/self/cgroup".to_owned());
        };
        // A v2 hierarchy is at /sys/fs/cgroup itself, or at /sys/fs/cgroup/unified beside v1.
        for mount in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let own = Path::new(mount).join(&path);
            let available = fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
            if available.split_whitespace().any(|c| c == "memory") {
                return make_base(own.join("drover-nodes"), Version::V2);
            }
        }
        Err("the cgroup v2 hierarchy offers no memory controller to drover's cgroup".to_owned())
    }

    /// The cgroup of node uid `uid`, made if needed.
    pub(crate) fn for_uid(&self, uid: u32) -> io::Result<MemoryCgroup> {
        let dir = self.base.join(format!("uid-{uid}"));
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let procs = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(dir.join("cgroup.procs"))?;
        Ok(MemoryCgroup {
            dir,
            version: self.version,
            procs: procs.into(),
            limit: None,
        })
    }
}

fn make_base(base: PathBuf, version: Version) -> Result<MemoryCgroups, String> {
    let cannot = |e: io::Error| format!("cannot make the cgroup {}: {e}", base.display());
    match fs::create_dir(&base) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(cannot(e)),
        _ => {}
    }
    if version == Version::V2 {
        // Children of drover-nodes may only be limited once it hands them the controller.
        fs::write(base.join("cgroup.subtree_control"), "+memory").map_err(cannot)?;
    }
    Ok(MemoryCgroups { base, version })
}

impl MemoryCgroup {
    /// Sets the limit in bytes (`None`: no limit); a no-op when it is already so.
    pub(crate) fn set_limit(&mut self, bytes: Option<u64>) -> io::Result<()> {
        if self.limit == bytes {
            return Ok(());
        }
        let (file, value) = match (self.version, bytes) {
            (Version::V1, Some(b)) => ("memory.limit_in_bytes", b.to_string()),
            (Version::V1, None) => ("memory.limit_in_bytes", "-1".to_owned()),
            (Version::V2, Some(b)) => ("memory.max", b.to_string()),
            (Version::V2, None) => ("memory.max", "max".to_owned()),
        };
        fs::write(self.dir.join(file), value)?;
        if self.version == Version::V2 && bytes.is_some() {
            // No swap either, or a node over its limit pages out instead of failing.
            let _ = fs::write(self.dir.join("memory.swap.max"), "0");
        }
        self.limit = bytes;
        Ok(())
    }

    /// How many processes the kernel has killed in this cgroup for passing its limit.
    pub(crate) fn oom_kills(&self) -> u64 {
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Whether any process is still in this cgroup (`true` when that cannot be read).
    ///
    /// A node's processes cannot leave their cgroup (moving needs write access to another
    /// `cgroup.procs`, which root owns), so an empty one means nothing of the node is alive.
    pub(crate) fn has_processes(&self) -> bool {
        fs::read(self.dir.join("cgroup.procs")).map_or(true, |procs| !procs.is_empty())
    }
}

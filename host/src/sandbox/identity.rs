//! Who a node's processes are, and making sure none of them outlives the node.
//!
//! * **As root**, each running node has a uid (and the gid of the same number) of its own from
//!   `sandbox.node_uids`, with no supplementary groups: its processes cannot read other
//!   workspaces, signal other nodes, or use root's files and sockets. A uid is held under an
//!   `flock` in `/run/drover/node-uids`, so several drovers on one host never share one, and a
//!   uid whose lock is free has no live owner: whatever still runs under it is a leftover of a
//!   crashed drover and is killed before the uid is used again (and at start).
//! * **As a normal user**, each running node has a user namespace (and an empty network
//!   namespace inside it) of its own: the kernel cannot give it a uid apart from drover's
//!   without a setuid helper, but the namespace bounds its process count apart from the
//!   other nodes' (`RLIMIT_NPROC` is counted per user namespace) and lets drover find every
//!   process it left.
//!
//! Either way, when the node ends everything it started is killed: `kill(-1)` under the node's
//! uid as root (no process can leave its uid), a scan of `/proc` for the node's user namespace
//! otherwise. `setsid` and double forks escape the process group, not these.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::cgroup::{MemoryCgroup, MemoryCgroups};
use super::error::SandboxError;
use super::lock;

/// A range of uids (and gids of the same numbers) for node processes when drover runs as
/// root; `sandbox.node_uids` in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UidRange {
    /// The first uid (and gid) of the range.
    pub first: u32,
    /// How many; also the most nodes that can run processes at once.
    pub count: u32,
}

impl Default for UidRange {
    /// 1024 ids from 2,000,000: far above the ids of real users and of the usual
    /// `/etc/subuid` ranges (100,000 + 65,536 per user).
    fn default() -> Self {
        UidRange {
            first: 2_000_000,
            count: 1024,
        }
    }
}

/// Where uid locks live; `/run` is cleared at boot, as locks should be.
const LOCK_DIR: &str = "/run/drover/node-uids";

/// Hands out node identities.
#[derive(Debug)]
pub(crate) struct Identities {
    kind: Kind,
    free: Mutex<Vec<Slot>>,
}

#[derive(Debug)]
enum Kind {
    Uids {
        range: UidRange,
        cursor: AtomicU32,
        memory: Option<MemoryCgroups>,
    },
    Namespaces {
        uid: u32,
        gid: u32,
    },
    /// The operator allowed running without an identity of the node's own.
    Shared,
}

/// One identity, free or held by a node.
#[derive(Debug)]
enum Slot {
    Uid {
        uid: u32,
        /// Holds the uid's `flock` for as long as this process may use it.
        _lock: File,
        memory: Option<MemoryCgroup>,
        /// Something of the last node may be left under the uid (a process being killed, or a
        /// zombie): settled before the uid is handed on.
        dirty: bool,
    },
    Namespace {
        userns: OwnedFd,
        netns: OwnedFd,
        /// (device, inode) of the user namespace, to find its processes in `/proc`.
        id: (u64, u64),
    },
    Shared,
}

/// The identity one node's processes run under; dropping it kills every process they left.
#[derive(Debug)]
pub struct NodeIdentity {
    slot: Option<Slot>,
    identities: Arc<Identities>,
    /// The memory limit of the node's processes, in bytes, where a memory cgroup holds it.
    memory_limit: Option<u64>,
    oom_kills_before: u64,
}

/// What the child needs of a node identity, as raw values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawIdentity {
    /// uid and gid to take (root only).
    pub(crate) ids: Option<(u32, u32)>,
    /// User namespace to join, or -1.
    pub(crate) userns: RawFd,
    /// The node's own empty network namespace, or `None` (then the shared one applies).
    pub(crate) netns: Option<RawFd>,
    /// `cgroup.procs` of the node's memory cgroup, or -1.
    pub(crate) cgroup_procs: RawFd,
}

impl Identities {
    /// Sets up what this host offers: uids when root, user namespaces otherwise.
    /// `memory_limits` says whether nodes' memory is limited by default; memory cgroups are
    /// looked for either way, since a driver or a node may ask for a limit of its own.
    pub(crate) fn new(
        range: UidRange,
        memory_limits: bool,
        allow_unconfined: bool,
    ) -> Result<Identities, SandboxError> {
        // SAFETY: geteuid/getegid cannot fail.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let made = if euid == 0 {
            uids(range, memory_limits).map(|kind| (kind, None))
        } else {
            namespaces(euid, egid)
        };
        let (kind, first) = match made {
            Ok(made) => made,
            Err(reason) if allow_unconfined => {
                tracing::warn!(
                    %reason,
                    "node processes run as drover's own user (sandbox.allow_unconfined = true): \
                     they can reach its files and sockets that Landlock does not cover"
                );
                (Kind::Shared, None)
            }
            Err(reason) => return Err(SandboxError::Identity { reason }),
        };
        Ok(Identities {
            kind,
            free: Mutex::new(first.into_iter().collect()),
        })
    }

    /// Whether node processes get a uid of their own (drover runs as root).
    pub(crate) fn per_node_uid(&self) -> bool {
        matches!(self.kind, Kind::Uids { .. })
    }

    /// Whether node processes run in user namespaces of their own.
    pub(crate) fn per_node_namespace(&self) -> bool {
        matches!(self.kind, Kind::Namespaces { .. })
    }

    /// A free identity for one node, whose processes together may use at most
    /// `memory_limit` bytes (where a memory cgroup can hold them to it; `None`: unlimited).
    pub(crate) fn acquire(
        self: &Arc<Self>,
        memory_limit: Option<u64>,
    ) -> Result<NodeIdentity, SandboxError> {
        let pooled = lock(&self.free).pop();
        let mut slot = match pooled {
            Some(slot) => slot,
            None => self.make_slot()?,
        };
        if let Slot::Uid {
            uid, dirty, memory, ..
        } = &mut slot
            && std::mem::take(dirty)
            && let Some(memory) = memory
        {
            settle(*uid, memory);
        }
        if self.per_node_uid() {
            super::reaper::reap_waiting();
        }
        let mut node = NodeIdentity {
            slot: Some(slot),
            identities: Arc::clone(self),
            memory_limit: None,
            oom_kills_before: 0,
        };
        if let (
            Some(limit),
            Some(Slot::Uid {
                memory: Some(m), ..
            }),
        ) = (memory_limit, node.slot.as_mut())
        {
            m.set_limit(Some(limit))
                .map_err(|e| SandboxError::Identity {
                    reason: format!("cannot set the node's memory limit: {e}"),
                })?;
            node.memory_limit = Some(limit);
            node.oom_kills_before = m.oom_kills();
        }
        Ok(node)
    }

    fn make_slot(&self) -> Result<Slot, SandboxError> {
        match &self.kind {
            Kind::Uids {
                range,
                cursor,
                memory,
                ..
            } => {
                for _ in 0..range.count {
                    let n = cursor.fetch_add(1, Ordering::Relaxed) % range.count.max(1);
                    let uid = range.first + n;
                    let Some(lock) = try_lock_uid(uid).map_err(|e| SandboxError::Identity {
                        reason: format!("cannot lock node uid {uid} in {LOCK_DIR}: {e}"),
                    })?
                    else {
                        continue;
                    };
                    // Free means nobody alive owns it: anything left under it is a leftover.
                    kill_all_of_uid(uid);
                    let memory = match memory {
                        Some(cgroups) => {
                            Some(cgroups.for_uid(uid).map_err(|e| SandboxError::Identity {
                                reason: format!("cannot make the memory cgroup of uid {uid}: {e}"),
                            })?)
                        }
                        None => None,
                    };
                    return Ok(Slot::Uid {
                        uid,
                        _lock: lock,
                        memory,
                        dirty: false,
                    });
                }
                Err(SandboxError::Identity {
                    reason: format!(
                        "all {} node uids from {} are in use; raise sandbox.node_uids.count",
                        range.count, range.first
                    ),
                })
            }
            Kind::Namespaces { uid, gid } => {
                new_namespace_slot(*uid, *gid).map_err(|e| SandboxError::Identity {
                    reason: format!("cannot make a user namespace for the node: {e}"),
                })
            }
            Kind::Shared => Ok(Slot::Shared),
        }
    }
}

impl NodeIdentity {
    pub(crate) fn raw(&self) -> RawIdentity {
        match &self.slot {
            Some(Slot::Uid { uid, memory, .. }) => RawIdentity {
                ids: Some((*uid, *uid)),
                userns: -1,
                netns: None,
                // An unlimited node skips the cgroup: joining one is the dearest step of a spawn.
                cgroup_procs: match (memory, self.memory_limit) {
                    (Some(m), Some(_)) => m.procs.as_raw_fd(),
                    _ => -1,
                },
            },
            Some(Slot::Namespace { userns, netns, .. }) => RawIdentity {
                ids: None,
                userns: userns.as_raw_fd(),
                netns: Some(netns.as_raw_fd()),
                cgroup_procs: -1,
            },
            Some(Slot::Shared) | None => RawIdentity {
                ids: None,
                userns: -1,
                netns: None,
                cgroup_procs: -1,
            },
        }
    }

    /// The node's uid and gid, when it has its own (drover runs as root).
    pub fn uid(&self) -> Option<u32> {
        match &self.slot {
            Some(Slot::Uid { uid, .. }) => Some(*uid),
            _ => None,
        }
    }

    /// The node's memory limit in bytes, if the kernel killed one of its processes for
    /// passing it since the node began.
    pub fn memory_limit_reached(&self) -> Option<u64> {
        match &self.slot {
            Some(Slot::Uid {
                memory: Some(m), ..
            }) if self.memory_limit.is_some() && m.oom_kills() > self.oom_kills_before => {
                self.memory_limit
            }
            _ => None,
        }
    }

    /// Kills every process the node still has.
    pub fn kill_all(&self) {
        self.kill_left();
    }

    /// Kills every process the node still has; true if its memory cgroup shows it had some (a
    /// node outside a cgroup says false: finding out would cost a pass over `/proc`).
    fn kill_left(&self) -> bool {
        match &self.slot {
            // Reading an empty `cgroup.procs` is cheaper than `kill(-1)`, which visits every
            // process of the host.
            Some(Slot::Uid {
                memory: Some(m),
                uid,
                ..
            }) if self.memory_limit.is_some() => {
                let left = m.has_processes();
                if left {
                    kill_all_of_uid(*uid);
                }
                left
            }
            Some(Slot::Uid { uid, .. }) => {
                kill_all_of_uid(*uid);
                false
            }
            Some(Slot::Namespace { id, .. }) => {
                kill_all_in_namespace(*id);
                false
            }
            Some(Slot::Shared) | None => false,
        }
    }
}

impl Drop for NodeIdentity {
    fn drop(&mut self) {
        let left = self.kill_left();
        if let Some(mut slot) = self.slot.take() {
            if let Slot::Uid { dirty, .. } = &mut slot {
                *dirty = left;
            }
            lock(&self.identities.free).push(slot);
        }
    }
}

/// Waits until nothing of `uid` is left, zombies included, since they count against the
/// process limit of the node that takes the uid next: kills again whatever still runs in its
/// memory cgroup, then reaps the zombies that came to drover as subreaper. Only a node that
/// left something pays for this (a millisecond or so); a zombie that is not drover's to reap
/// is waited for up to two seconds.
fn settle(uid: u32, memory: &MemoryCgroup) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        if memory.has_processes() {
            kill_all_of_uid(uid);
        } else if !super::reaper::reap_orphans(uid..uid + 1) {
            return;
        }
        if std::time::Instant::now() >= deadline {
            tracing::warn!(
                uid,
                "processes of the last node under this uid are still not reaped; the next \
                 node starts with them counted against its process limit"
            );
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn uids(range: UidRange, memory_limits: bool) -> Result<Kind, String> {
    if range.count == 0 || range.first == 0 || range.first.checked_add(range.count).is_none() {
        return Err(format!(
            "sandbox.node_uids ({} from {}) is not a usable range of non-root uids",
            range.count, range.first
        ));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(LOCK_DIR)
        .map_err(|e| format!("cannot make {LOCK_DIR}: {e}"))?;
    sweep(range);
    super::reaper::become_subreaper(range.first..range.first + range.count);
    let memory = match MemoryCgroups::detect() {
        Ok(cgroups) => Some(cgroups),
        Err(reason) if memory_limits => {
            tracing::warn!(
                %reason,
                "no memory cgroup for nodes: a node's memory is not limited (its process count is)"
            );
            None
        }
        Err(reason) => {
            tracing::debug!(%reason, "no memory cgroup for nodes");
            None
        }
    };
    Ok(Kind::Uids {
        range,
        cursor: AtomicU32::new(0),
        memory,
    })
}

/// Kills what crashed drovers left under uids whose lock nobody holds.
///
/// One pass over `/proc` finds the node uids that own a process (a process's folder there is
/// owned by its uid); only those are locked and killed. Locking and killing under every uid of
/// the range instead cost ~30 ms at each start, which `drover run` of a small DAG felt.
fn sweep(range: UidRange) {
    let in_range = range.first..range.first.saturating_add(range.count);
    let owners: std::collections::BTreeSet<u32> = super::reaper::owned_by(&in_range)
        .into_iter()
        .map(|(_, uid)| uid)
        .collect();
    for uid in owners {
        if let Ok(Some(_lock)) = try_lock_uid(uid) {
            kill_all_of_uid(uid);
        }
    }
}

/// Takes the lock of `uid`, or `None` if another drover (or another node) holds it.
fn try_lock_uid(uid: u32) -> io::Result<Option<File>> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(Path::new(LOCK_DIR).join(uid.to_string()))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        Ok(Some(file))
    } else {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(err)
        }
    }
}

/// Sends SIGKILL to every process of `uid`. Only root may; a process cannot leave its uid
/// (no capabilities, no_new_privs), so this reaches all a node started.
///
/// `kill(-1)` signals every process the caller may signal, and a caller may signal a process
/// when its real or effective uid is the target's real or saved uid. So for the call this
/// thread takes `uid` as both its real and effective uid (keeping 0 as its saved uid, to come
/// back): exactly the processes of `uid` are signalled, none of root's. Raw system calls
/// change the credentials of this thread only, and they are restored before anything else
/// runs on it.
fn kill_all_of_uid(uid: u32) {
    if uid == 0 {
        return;
    }
    // SAFETY: plain system calls on integers. If the thread cannot come back to root, it
    // would go on with the node's identity, which must never happen: abort instead.
    unsafe {
        let dumpable = libc::prctl(libc::PR_GET_DUMPABLE);
        let mut real = 0;
        let mut effective = 0;
        let mut saved = 0;
        libc::getresuid(&mut real, &mut effective, &mut saved);
        if real != 0 || effective != 0 {
            tracing::error!(uid, "not root: cannot kill what a node left under its uid");
            return;
        }
        if libc::syscall(libc::SYS_setresuid, uid, uid, 0u32) != 0 {
            tracing::error!(
                uid,
                error = %io::Error::last_os_error(),
                "cannot take a node's uid to kill what it left"
            );
            return;
        }
        // Never signal as anything but the node's uid.
        libc::getresuid(&mut real, &mut effective, &mut saved);
        if real == uid && effective == uid {
            libc::syscall(libc::SYS_kill, -1i32, libc::SIGKILL);
        }
        if libc::syscall(libc::SYS_setresuid, 0u32, 0u32, 0u32) != 0 {
            std::process::abort();
        }
        // Changing the effective uid made the process undumpable; put it back as it was.
        if dumpable > 0 {
            libc::prctl(libc::PR_SET_DUMPABLE, dumpable as libc::c_ulong);
        }
    }
}

/// Kills every process in the user namespace `id`, again until none is left (a process may
/// fork while the scan runs; its count is bounded by `RLIMIT_NPROC`).
fn kill_all_in_namespace(id: (u64, u64)) {
    for _ in 0..64 {
        let Ok(entries) = fs::read_dir("/proc") else {
            return;
        };
        let mut found = false;
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<libc::pid_t>().ok())
            else {
                continue;
            };
            let Ok(ns) = fs::metadata(entry.path().join("ns/user")) else {
                continue;
            };
            if (ns.dev(), ns.ino()) == id {
                found = true;
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if !found {
            return;
        }
    }
}

/// The namespace kind, with one namespace made now: it proves the kernel allows it, and
/// becomes the first free slot.
fn namespaces(uid: u32, gid: u32) -> Result<(Kind, Option<Slot>), String> {
    let first =
        new_namespace_slot(uid, gid).map_err(|e| format!("cannot make a user namespace: {e}"))?;
    Ok((Kind::Namespaces { uid, gid }, Some(first)))
}

/// What the namespace-making child reports back through the memory it shares with us.
struct NsChild {
    maps: [(*const libc::c_char, *const libc::c_char, usize); 3],
    userns_fd: AtomicI32,
    netns_fd: AtomicI32,
    failed_errno: AtomicI32,
}

/// Makes a user namespace that maps `uid`/`gid` to themselves, with an empty network
/// namespace inside it, and returns fds to both (they outlive the process that made them).
fn new_namespace_slot(uid: u32, gid: u32) -> io::Result<Slot> {
    let uid_map = CString::new(format!("{uid} {uid} 1")).map_err(io::Error::other)?;
    let gid_map = CString::new(format!("{gid} {gid} 1")).map_err(io::Error::other)?;
    let args = NsChild {
        maps: [
            (c"/proc/self/setgroups".as_ptr(), c"deny".as_ptr(), 4),
            (
                c"/proc/self/uid_map".as_ptr(),
                uid_map.as_ptr(),
                uid_map.as_bytes().len(),
            ),
            (
                c"/proc/self/gid_map".as_ptr(),
                gid_map.as_ptr(),
                gid_map.as_bytes().len(),
            ),
        ],
        userns_fd: AtomicI32::new(-1),
        netns_fd: AtomicI32::new(-1),
        failed_errno: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; 16 * 1024];
    // Stacks grow down; align the top to 16 bytes.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let flags = libc::CLONE_VM
        | libc::CLONE_VFORK
        | libc::CLONE_FILES
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWNET
        | libc::SIGCHLD;
    // SAFETY: the child runs on its own stack, only makes raw system calls on what `args`
    // points to, and this thread is suspended (CLONE_VFORK) until it has exited, so `args`,
    // the strings and the stack outlive it. CLONE_FILES puts the fds it opens in our table.
    let pid = unsafe {
        libc::clone(
            ns_child_main,
            top as *mut libc::c_void,
            flags,
            &args as *const NsChild as *mut libc::c_void,
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut status = 0;
    // SAFETY: reaps the child we just made.
    unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
    drop(stack);
    let take = |fd: &AtomicI32| {
        let fd = fd.load(Ordering::SeqCst);
        // SAFETY: a fd the child opened in our (shared) table, owned by nothing else.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let (userns, netns) = (take(&args.userns_fd), take(&args.netns_fd));
    let errno = args.failed_errno.load(Ordering::SeqCst);
    match (userns, netns) {
        (Some(userns), Some(netns)) if errno == 0 => {
            let meta = File::from(userns.try_clone()?).metadata()?;
            Ok(Slot::Namespace {
                userns,
                netns,
                id: (meta.dev(), meta.ino()),
            })
        }
        _ => Err(io::Error::from_raw_os_error(if errno == 0 {
            libc::EINVAL
        } else {
            errno
        })),
    }
}

extern "C" fn ns_child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the NsChild the suspended parent keeps alive; only raw system calls on
    // the NUL-terminated strings it holds follow.
    unsafe {
        let args = &*(arg as *const NsChild);
        let fail = |args: &NsChild| -> ! {
            args.failed_errno
                .store(*libc::__errno_location(), Ordering::SeqCst);
            libc::_exit(1)
        };
        for (path, text, len) in args.maps {
            let fd = libc::open(path, libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, text as *const libc::c_void, len) != len as isize {
                fail(args);
            }
            libc::close(fd);
        }
        let namespaces = [
            (c"/proc/self/ns/user", &args.userns_fd),
            (c"/proc/self/ns/net", &args.netns_fd),
        ];
        for (path, slot) in namespaces {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                fail(args);
            }
            slot.store(fd, Ordering::SeqCst);
        }
        libc::_exit(0)
    }
}

/// Makes sure a node uid can reach `workspace` by its absolute path and owns it: the folder
/// is given to the node's uid (mode 0700, so other nodes cannot look in), and each folder
/// above it that others cannot search gets the search bit (never the read bit) when drover
/// owns it; a folder it does not own, or a home folder, is refused with what to do instead.
pub(crate) fn hand_workspace_to(workspace: &Path, uid: u32) -> Result<(), SandboxError> {
    let unreachable = |what: String| SandboxError::Unreachable(what);
    let c = CString::new(workspace.as_os_str().as_encoded_bytes()).map_err(|_| {
        unreachable(format!(
            "the workspace {} contains a NUL",
            workspace.display()
        ))
    })?;
    // SAFETY: a NUL-terminated path; plain system calls.
    let rc = unsafe { libc::chown(c.as_ptr(), uid, uid) };
    if rc != 0 {
        let source = io::Error::last_os_error();
        if source.kind() == io::ErrorKind::NotFound {
            return Err(SandboxError::PolicyPath {
                what: "workspace",
                path: workspace.to_owned(),
                source,
            });
        }
        return Err(unreachable(format!(
            "cannot give the workspace {} to the node's uid {uid}: {}",
            workspace.display(),
            source
        )));
    }
    fs::set_permissions(
        workspace,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(|e| {
        unreachable(format!(
            "cannot set the mode of {}: {e}",
            workspace.display()
        ))
    })?;
    // What the driver wrote through WASI before its first process (drover's), and what an
    // earlier attempt of the node left (another uid's), become the node's.
    give_contents(workspace, uid).map_err(|e| {
        unreachable(format!(
            "cannot give the files in {} to the node's uid {uid}: {e}",
            workspace.display()
        ))
    })?;
    if let Some(parent) = workspace.parent() {
        searchable(parent, workspace)?;
    }
    Ok(())
}

/// Gives everything below `dir` to `uid` (symbolic links themselves, never their targets).
fn give_contents(dir: &Path, uid: u32) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let path = entry.path();
        if meta.uid() != uid {
            std::os::unix::fs::lchown(&path, Some(uid), Some(uid))?;
        }
        if meta.is_dir() {
            give_contents(&path, uid)?;
        }
    }
    Ok(())
}

/// Checks that a node uid can read `file` (a file granted to the node outside its workspace).
pub(crate) fn readable_by_nodes(file: &Path) -> Result<(), SandboxError> {
    let meta = fs::metadata(file).map_err(|e| {
        SandboxError::Unreachable(format!("cannot look at {}: {e}", file.display()))
    })?;
    if meta.mode() & 0o004 == 0 {
        return Err(SandboxError::Unreachable(format!(
            "{} is not readable by others (mode {:o}), so the node's own uid cannot read it; \
             make it readable (chmod o+r)",
            file.display(),
            meta.mode() & 0o7777
        )));
    }
    if let Some(parent) = file.parent() {
        searchable(parent, file)?;
    }
    Ok(())
}

/// Folders recently found searchable by others (or made so), so that a node pays nothing for
/// it; a run's workspaces share one. Bounded: forgotten ones are only checked again.
static SEARCHABLE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
const SEARCHABLE_KEPT: usize = 64;

fn searchable(dir: &Path, for_path: &Path) -> Result<(), SandboxError> {
    if lock(&SEARCHABLE).iter().rev().any(|d| d == dir) {
        return Ok(());
    }
    for ancestor in dir.ancestors() {
        let meta = fs::metadata(ancestor).map_err(|e| {
            SandboxError::Unreachable(format!("cannot look at {}: {e}", ancestor.display()))
        })?;
        if meta.mode() & 0o001 != 0 {
            continue;
        }
        // SAFETY: geteuid cannot fail.
        let owned = meta.uid() == unsafe { libc::geteuid() };
        if !owned || is_home(ancestor) {
            return Err(SandboxError::Unreachable(format!(
                "{} lies under {} (mode {:o}), which node uids cannot enter; put workspaces and \
                 the files nodes read elsewhere (as root drover keeps its data in \
                 /var/lib/drover), or make that folder searchable (chmod o+x)",
                for_path.display(),
                ancestor.display(),
                meta.mode() & 0o7777
            )));
        }
        fs::set_permissions(
            ancestor,
            std::os::unix::fs::PermissionsExt::from_mode((meta.mode() & 0o7777) | 0o001),
        )
        .map_err(|e| {
            SandboxError::Unreachable(format!(
                "cannot make {} searchable for node uids: {e}",
                ancestor.display()
            ))
        })?;
    }
    let mut kept = lock(&SEARCHABLE);
    if kept.len() >= SEARCHABLE_KEPT {
        kept.remove(0);
    }
    kept.push(dir.to_owned());
    Ok(())
}

/// Whether `dir` is drover's user's home folder: never opened up, even for search.
fn is_home(dir: &Path) -> bool {
    std::env::var_os("HOME").is_some_and(|home| Path::new(&home) == dir)
        || dir == Path::new("/root")
}

//! Reaps what nodes left behind: as root drover is the subreaper of its node processes, so a
//! killed orphan is drover's zombie to reap, not one that counts against the next node.
//!
//! A killed process stays a zombie until its parent reaps it, and a zombie still counts
//! against its uid's `RLIMIT_NPROC`. Orphans (a double fork, `setsid`) go to the nearest
//! subreaper, by default pid 1, which may reap late or, where drover itself is pid 1 in a
//! container, never. Then the next node given the same uid would start with part of its process
//! count already used. So drover marks itself a subreaper and reaps the zombies it is given.
//!
//! drover's own children (every process the sandbox starts) are reaped by whoever holds their
//! [`Child`](super::Child) handle, through their pidfd; [`reap_orphans`] must never take one
//! of those. They are listed here from `clone` until they are reaped, and a spawn holds the
//! read side of [`SPAWNING`] from before `clone` until its pid is listed, so a pass (which holds
//! the write side) never sees a child of ours that is not listed yet.

use std::collections::HashSet;
use std::fs;
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};

/// Held for reading from before a spawn's `clone` until its pid is in [`OWN`].
static SPAWNING: RwLock<()> = RwLock::new(());

/// Children whose reaping belongs to their [`Child`](super::Child) handle.
static OWN: Mutex<Option<HashSet<libc::pid_t>>> = Mutex::new(None);

/// Node uid ranges whose orphans the periodic pass reaps (one per sandbox made in this process).
static RANGES: Mutex<Vec<std::ops::Range<u32>>> = Mutex::new(Vec::new());

/// How often zombies that no node's end settled (an orphan that exited by itself) are reaped.
const PERIOD: std::time::Duration = std::time::Duration::from_secs(2);

/// Marks this process as the subreaper of its descendants, whose zombies under `uids` it then
/// reaps: at once when a node's uid is handed on (see `identity`), and every two seconds for
/// those that exited by themselves.
pub(crate) fn become_subreaper(uids: std::ops::Range<u32>) {
    // SAFETY: prctl with integer arguments; it changes only this process's attribute.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot make drover the subreaper of its node processes: killed orphans stay \
             zombies (and count against their uid's process limit) until pid 1 reaps them"
        );
        return;
    }
    let mut ranges = RANGES.lock().unwrap_or_else(PoisonError::into_inner);
    let first = ranges.is_empty();
    if !ranges.contains(&uids) {
        ranges.push(uids);
    }
    if first {
        let started = std::thread::Builder::new()
            .name("drover-reaper".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(PERIOD);
                    let ranges = RANGES
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    for uids in ranges {
                        reap_orphans(uids);
                    }
                }
            });
        if let Err(error) = started {
            tracing::warn!(%error, "cannot start the thread that reaps orphaned node processes");
        }
    }
}

/// Held by a spawn from before `clone` until [`Spawning::own`] has listed the new pid.
pub(crate) struct Spawning {
    _no_pass: RwLockReadGuard<'static, ()>,
}

/// Begins a spawn: no orphan pass runs until the guard is dropped.
pub(crate) fn spawning() -> Spawning {
    Spawning {
        _no_pass: SPAWNING.read().unwrap_or_else(PoisonError::into_inner),
    }
}

impl Spawning {
    /// Lists `pid` as a child of ours that its handle reaps.
    pub(crate) fn own(self, pid: libc::pid_t) {
        own_table().get_or_insert_with(HashSet::new).insert(pid);
    }
}

/// Unlists `pid` once its handle has reaped it.
pub(crate) fn reaped(pid: libc::pid_t) {
    if let Some(own) = own_table().as_mut() {
        own.remove(&pid);
    }
}

fn own_table() -> std::sync::MutexGuard<'static, Option<HashSet<libc::pid_t>>> {
    OWN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reaps every zombie child of this process that is not one of its own spawns and whose uid is
/// in `uids` (so nothing the rest of the process started, tests included, is ever taken).
/// Returns whether any process of `uids` is still there afterwards (running, or a zombie that
/// is not ours to reap yet). One pass over `/proc`: about 0.2 ms, so only for a uid known to
/// have had something left, and for the periodic pass.
pub(crate) fn reap_orphans(uids: std::ops::Range<u32>) -> bool {
    let _no_spawns = SPAWNING.write().unwrap_or_else(PoisonError::into_inner);
    let own = own_table().clone().unwrap_or_default();
    let mut left = false;
    for (pid, zombie_child) in processes_of(&uids) {
        if !zombie_child || own.contains(&pid) || !reap(pid) {
            left = true;
        }
    }
    left
}

/// Reaps, without looking through `/proc`, the zombie children of node uids that the kernel
/// reports first; stops at the first one that is ours or not a node's. A system call or two
/// when there is none, so it runs each time a node identity is taken. What it cannot see past
/// waits for the periodic pass.
pub(crate) fn reap_waiting() {
    // Most of the time no child at all is a zombie: one system call, no lock.
    if first_zombie().is_none() {
        return;
    }
    let ranges = RANGES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let _no_spawns = SPAWNING.write().unwrap_or_else(PoisonError::into_inner);
    while let Some((pid, uid)) = first_zombie() {
        if !ranges.iter().any(|r| r.contains(&uid))
            || own_table().as_ref().is_some_and(|own| own.contains(&pid))
            || !reap(pid)
        {
            return;
        }
    }
}

/// The pid and uid of the zombie child the kernel reports first, without reaping it.
fn first_zombie() -> Option<(libc::pid_t, u32)> {
    // SAFETY: zeroed siginfo is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer; WNOWAIT only looks.
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: waitid filled in a SIGCHLD siginfo (or left it zeroed), whose pid and uid fields
    // are valid to read.
    let (pid, uid) = unsafe { (info.si_pid(), info.si_uid()) };
    (rc == 0 && pid != 0).then_some((pid, uid))
}

/// Reaps our zombie child `pid`; false if it was not one (any more).
fn reap(pid: libc::pid_t) -> bool {
    // SAFETY: zeroed siginfo is a valid out-parameter.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer; WNOHANG, so a pid that is not a zombie child never blocks us.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    // SAFETY: as above.
    rc == 0 && unsafe { info.si_pid() } == pid
}

/// The processes whose uid is in `uids`, each with whether it is a zombie child of ours.
fn processes_of(uids: &std::ops::Range<u32>) -> Vec<(libc::pid_t, bool)> {
    let me = std::process::id();
    owned_by(uids)
        .into_iter()
        .map(|(pid, _)| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`; comm may itself hold ')'.
            let mut rest = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_ascii_whitespace();
            let zombie_child =
                rest.next() == Some("Z") && rest.next().and_then(|p| p.parse().ok()) == Some(me);
            (pid, zombie_child)
        })
        .collect()
}

/// Every process whose uid is in `uids`, with that uid: one pass over `/proc`, where a
/// process's folder is owned by its uid.
pub(super) fn owned_by(uids: &std::ops::Range<u32>) -> Vec<(libc::pid_t, u32)> {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<libc::pid_t>().ok()?;
            let uid = entry.metadata().ok()?.uid();
            uids.contains(&uid).then_some((pid, uid))
        })
        .collect()
}

//! Starting a confined process with `clone(CLONE_VM | CLONE_VFORK)`, never forking the host.
//!
//! A fork copies the host's page tables, which costs milliseconds once the host holds a few
//! hundred megabytes. Instead the child borrows the host's memory on a stack of its own, like
//! glibc's `posix_spawn`, while the calling thread is suspended until the child has called
//! `execve` or exited. The child therefore runs only raw, async-signal-safe system calls on data
//! prepared by the parent: no allocation, no locks, no std I/O, nothing that can panic.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::error::{SandboxError, SpawnStep};
use super::rlimits::RawRlimits;

/// Everything the child needs, prepared by the parent. It lives on the parent's stack, which
/// the child can read (shared memory) and which stays put while the parent is suspended.
pub(crate) struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    /// Sources for fds 0, 1 and 2.
    stdio: [RawFd; 3],
    /// Empty network namespace to join, or -1.
    netns_fd: RawFd,
    /// Landlock ruleset to enter, or -1.
    ruleset_fd: RawFd,
    rlimits: RawRlimits,
    /// tmpfs options of a private `/dev/shm`, or null for none.
    shm_options: *const libc::c_char,
    /// Landlock rights to grant on the private `/dev/shm` (added to `ruleset_fd`), or 0.
    shm_access: u64,
    /// The node's user namespace to join first, or -1.
    userns_fd: RawFd,
    /// `cgroup.procs` of the node's memory cgroup to write "0" to, or -1.
    cgroup_procs_fd: RawFd,
    /// Whether to take `uid` and `gid` (and no supplementary groups).
    set_ids: bool,
    uid: libc::uid_t,
    gid: libc::gid_t,
    /// The seccomp filter to install, or null.
    seccomp: *const libc::sock_fprog,
    /// Where the child reports the step that failed (0: none) and its errno.
    failed_step: AtomicU32,
    failed_errno: AtomicI32,
}

/// What the parent hands to [`spawn_raw`]; borrowed, so nothing is closed early.
pub(crate) struct RawSpawn<'a> {
    pub(crate) program: &'a Path,
    pub(crate) args: &'a [std::ffi::OsString],
    pub(crate) env: &'a [(std::ffi::OsString, std::ffi::OsString)],
    pub(crate) cwd: &'a Path,
    pub(crate) stdio: [RawFd; 3],
    pub(crate) netns_fd: Option<RawFd>,
    pub(crate) ruleset_fd: Option<RawFd>,
    pub(crate) rlimits: RawRlimits,
    pub(crate) private_shm: Option<RawShm<'a>>,
    pub(crate) identity: super::identity::RawIdentity,
    pub(crate) seccomp: Option<&'a libc::sock_fprog>,
}

/// A private `/dev/shm` for the child.
pub(crate) struct RawShm<'a> {
    /// tmpfs mount options (`size=...,mode=1777`).
    pub(crate) options: &'a std::ffi::CStr,
    /// Landlock rights on it, added to the request's ruleset (which must then be the
    /// process's own, since the rule names a tmpfs only this process has); 0 without Landlock.
    pub(crate) access: u64,
}

/// The started process: its pid and a pidfd that refers to it for good.
pub(crate) struct Started {
    pub(crate) pid: libc::pid_t,
    pub(crate) pidfd: OwnedFd,
}

fn cstring(what: &str, bytes: &[u8]) -> Result<CString, SandboxError> {
    CString::new(bytes).map_err(|_| SandboxError::InvalidRequest {
        reason: format!("{what} contains a NUL byte"),
    })
}

fn env_entry(key: &OsStr, value: &OsStr) -> Result<CString, SandboxError> {
    let key = key.as_bytes();
    if key.is_empty() || key.contains(&b'=') {
        return Err(SandboxError::InvalidRequest {
            reason: format!(
                "environment variable name {:?} is empty or contains '='",
                String::from_utf8_lossy(key)
            ),
        });
    }
    let mut entry = Vec::with_capacity(key.len() + value.len() + 1);
    entry.extend_from_slice(key);
    entry.push(b'=');
    entry.extend_from_slice(value.as_bytes());
    cstring("an environment variable", &entry)
}

/// A stack for the child, with a guard page below it so an overflow faults instead of
/// scribbling over host memory.
struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

/// Large enough for the child's few frames; the child only makes system calls.
const STACK_SIZE: usize = 64 * 1024;
const GUARD_SIZE: usize = 4096;

impl ChildStack {
    fn new() -> io::Result<ChildStack> {
        let len = STACK_SIZE + GUARD_SIZE;
        // SAFETY: anonymous private mapping; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, len };
        // SAFETY: the first page lies within the mapping we own.
        if unsafe { libc::mprotect(base, GUARD_SIZE, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The highest address; stacks grow down. Page-aligned, hence 16-byte aligned.
    fn top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(self.len)
    }
}

thread_local! {
    /// This thread's stack from its last spawn. A vfork child is done with its stack when
    /// `clone` returns, so the next spawn on the thread takes it again instead of paying an
    /// mmap, an mprotect, a munmap and fresh page faults per process.
    static SPARE_STACK: std::cell::Cell<Option<ChildStack>> = const { std::cell::Cell::new(None) };
}

impl ChildStack {
    /// The thread's spare stack, or a new one.
    fn take() -> io::Result<ChildStack> {
        match SPARE_STACK.try_with(|spare| spare.take()) {
            Ok(Some(stack)) => Ok(stack),
            _ => ChildStack::new(),
        }
    }

    /// Keeps the stack for the thread's next spawn (unmapped when the thread ends).
    fn give_back(self) {
        // If the thread is ending, the closure and `self` in it are dropped (unmapped).
        let _ = SPARE_STACK.try_with(|spare| spare.set(Some(self)));
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; the child no longer runs on it
        // (clone with CLONE_VFORK returns only after the child exec'd or exited).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Creates a pipe; returns (read end, write end), both `O_CLOEXEC`.
pub(crate) fn pipe(op: &'static str) -> Result<(OwnedFd, OwnedFd), SandboxError> {
    pipe_cloexec().map_err(|source| SandboxError::Host { op, source })
}

/// Starts the process described by `spec`. On success the program has been executed; any
/// failure before `execve` comes back as [`SandboxError::ChildSetup`] naming the step.
pub(crate) fn spawn_raw(spec: &RawSpawn<'_>) -> Result<Started, SandboxError> {
    let program = cstring("the program path", spec.program.as_os_str().as_bytes())?;
    let cwd = cstring("the working directory", spec.cwd.as_os_str().as_bytes())?;
    let mut argv_owned = Vec::with_capacity(spec.args.len() + 1);
    argv_owned.push(program.clone());
    for arg in spec.args {
        argv_owned.push(cstring("an argument", arg.as_bytes())?);
    }
    let envp_owned = spec
        .env
        .iter()
        .map(|(k, v)| env_entry(k, v))
        .collect::<Result<Vec<_>, _>>()?;
    let argv: Vec<*const libc::c_char> = argv_owned
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = envp_owned
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();

    let args = ChildArgs {
        program: program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd.as_ptr(),
        stdio: spec.stdio,
        netns_fd: spec.netns_fd.unwrap_or(-1),
        ruleset_fd: spec.ruleset_fd.unwrap_or(-1),
        rlimits: spec.rlimits,
        shm_options: spec
            .private_shm
            .as_ref()
            .map_or(std::ptr::null(), |shm| shm.options.as_ptr()),
        shm_access: spec.private_shm.as_ref().map_or(0, |shm| shm.access),
        userns_fd: spec.identity.userns,
        cgroup_procs_fd: spec.identity.cgroup_procs,
        set_ids: spec.identity.ids.is_some(),
        uid: spec.identity.ids.map_or(0, |(uid, _)| uid),
        gid: spec.identity.ids.map_or(0, |(_, gid)| gid),
        seccomp: spec
            .seccomp
            .map_or(std::ptr::null(), |prog| prog as *const libc::sock_fprog),
        failed_step: AtomicU32::new(0),
        failed_errno: AtomicI32::new(0),
    };
    let stack = ChildStack::take().map_err(|source| SandboxError::Host {
        op: "allocating the child's stack",
        source,
    })?;

    let mut pidfd: libc::c_int = -1;
    // Like glibc's posix_spawn: with every signal blocked, no handler of the host can run in
    // the child (on its borrowed memory) before it has reset the handlers itself.
    let all_signals: u64 = !0;
    let mut old_mask: u64 = 0;
    // SAFETY: kernel-sized (8-byte) sigsets, valid pointers; only this thread's mask changes.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all_signals as *const u64,
            &mut old_mask as *mut u64,
            8usize,
        )
    };
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
    // Until the pid is listed as ours, no orphan pass may run (it could take our child).
    let spawning = super::reaper::spawning();
    // SAFETY: the stack is a fresh mapping the child alone uses; `args` and everything it
    // points to outlive the child's use of them because CLONE_VFORK suspends this thread until
    // the child has exec'd or exited; child_main only makes async-signal-safe system calls.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            flags,
            &args as *const ChildArgs as *mut libc::c_void,
            &mut pidfd as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::pid_t>(),
        )
    };
    let clone_error = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &old_mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    // CLONE_VFORK: the child has exec'd or exited, so nothing runs on the stack any more.
    stack.give_back();
    if pid < 0 {
        return Err(SandboxError::Host {
            op: "clone",
            source: clone_error,
        });
    }
    spawning.own(pid);
    // SAFETY: CLONE_PIDFD stored a fresh (close-on-exec) pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };

    let step = args.failed_step.load(Ordering::SeqCst);
    if step != 0 {
        let errno = args.failed_errno.load(Ordering::SeqCst);
        // The child has already called _exit; reap it so it leaves no zombie.
        reap_blocking(pid, &pidfd);
        let step = SpawnStep::from_raw(step).unwrap_or(SpawnStep::Exec);
        let context = match step {
            SpawnStep::Chdir => format!("chdir to {}", spec.cwd.display()),
            SpawnStep::Exec => format!("execve of {}", spec.program.display()),
            SpawnStep::MountNamespace => format!(
                "{step} (a private /dev/shm needs root or CAP_SYS_ADMIN; \
                 with sandbox.allow_unconfined = true the process starts without one)"
            ),
            other => other.to_string(),
        };
        return Err(SandboxError::ChildSetup {
            program: spec.program.to_owned(),
            step,
            context,
            source: io::Error::from_raw_os_error(errno),
        });
    }
    Ok(Started { pid, pidfd })
}

/// Waits for our child `pid` (behind `pidfd`) to exit and reaps it.
pub(crate) fn reap_blocking(pid: libc::pid_t, pidfd: &OwnedFd) {
    reap_pidfd(pidfd);
    super::reaper::reaped(pid);
}

fn reap_pidfd(pidfd: &OwnedFd) {
    loop {
        // SAFETY: zeroed siginfo is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: pidfd is a valid pidfd; info is a valid out-pointer.
        let rc = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if rc == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

// --- Everything below runs in the child, between clone and execve. ---

/// Records the failing step and its errno for the parent, then exits without running any
/// atexit handler or destructor (they belong to the host).
fn child_fail(args: &ChildArgs, step: SpawnStep) -> ! {
    // SAFETY: reads this thread's errno slot, which the failing call just set.
    let errno = unsafe { *libc::__errno_location() };
    args.failed_errno.store(errno, Ordering::SeqCst);
    args.failed_step.store(step as u32, Ordering::SeqCst);
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(127) }
}

/// `struct sigaction` as the kernel (not glibc) lays it out on 64-bit targets: handler, flags,
/// restorer, mask. All zero means SIG_DFL with no flags.
const KERNEL_SIGACTION_WORDS: usize = 4;

/// `struct __user_cap_header_struct` / `__user_cap_data_struct` for capset(2).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Without it, installing a filter also turns on the kernel's speculative store bypass
/// mitigation for the process, which slowed every node's processes (measured: +10% user time
/// of a `sh -c true` node). The mitigation guards a process's memory against itself; a node
/// process holds nothing another node's could read that way.
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = 1 << 2;

/// `struct landlock_path_beneath_attr` for landlock_add_rule(2).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;

/// Gives the child its own mount namespace with an empty tmpfs on `/dev/shm`, and grants that
/// tmpfs in the ruleset the child is about to enter. The tmpfs is new, so no rule made before
/// the mount can name it.
///
/// # Safety
/// Only for the child, between clone and execve: raw system calls on static strings and on
/// what the parent prepared.
unsafe fn child_private_shm(args: &ChildArgs) {
    // SAFETY: as for the function; every pointer is a NUL-terminated string or null.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            child_fail(args, SpawnStep::MountNamespace);
        }
        // A copied namespace shares mount events with the host's until its mounts are private:
        // the tmpfs would otherwise appear on the host's /dev/shm too.
        if libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            child_fail(args, SpawnStep::MountNamespace);
        }
        if libc::mount(
            c"tmpfs".as_ptr(),
            c"/dev/shm".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            args.shm_options as *const libc::c_void,
        ) != 0
        {
            child_fail(args, SpawnStep::MountShm);
        }
        if args.shm_access != 0 && args.ruleset_fd >= 0 {
            let fd = libc::open(
                c"/dev/shm".as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                child_fail(args, SpawnStep::ShmRule);
            }
            let attr = PathBeneathAttr {
                allowed_access: args.shm_access,
                parent_fd: fd,
            };
            if libc::syscall(
                libc::SYS_landlock_add_rule,
                args.ruleset_fd,
                LANDLOCK_RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0u32,
            ) != 0
            {
                child_fail(args, SpawnStep::ShmRule);
            }
            libc::close(fd);
        }
    }
}

extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the ChildArgs the suspended parent keeps alive for us.
    let args = unsafe { &*(arg as *const ChildArgs) };

    // SAFETY (for the whole block): raw system calls on fds and NUL-terminated strings the
    // parent prepared; none allocates, locks or unwinds.
    unsafe {
        // Handlers of the host must never run here, and the program should start with the
        // default disposition for everything (including SIGPIPE, which Rust ignores).
        let dfl = [0u64; KERNEL_SIGACTION_WORDS];
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }

        // Own process group, so the host can kill the process with everything it started.
        if libc::setpgid(0, 0) != 0 {
            child_fail(args, SpawnStep::Setpgid);
        }

        for (target, &source) in (0..3).zip(args.stdio.iter()) {
            let ok = if source == target {
                // dup2 onto itself keeps FD_CLOEXEC, so clear it by hand.
                libc::fcntl(source, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(source, target) == target
            };
            if !ok {
                child_fail(args, SpawnStep::Stdio);
            }
        }
        // Anything the host opened without O_CLOEXEC must still not leak into the sandbox.
        // This only marks our private copy of the fd table; failure (pre-5.11 kernel) is fine
        // as long as the host keeps its fds close-on-exec.
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );

        // First, so that the steps below act inside the node's namespace (its network
        // namespace and a private /dev/shm belong to it).
        if args.userns_fd >= 0 && libc::setns(args.userns_fd, libc::CLONE_NEWUSER) != 0 {
            child_fail(args, SpawnStep::UserNamespace);
        }

        // While still root: the cgroup's files belong to root. "0" means the writer.
        if args.cgroup_procs_fd >= 0
            && libc::write(
                args.cgroup_procs_fd,
                c"0".as_ptr() as *const libc::c_void,
                1,
            ) != 1
        {
            child_fail(args, SpawnStep::Cgroup);
        }

        if !args.shm_options.is_null() {
            child_private_shm(args);
        }

        if libc::chdir(args.cwd) != 0 {
            child_fail(args, SpawnStep::Chdir);
        }

        if args.netns_fd >= 0 && libc::setns(args.netns_fd, libc::CLONE_NEWNET) != 0 {
            child_fail(args, SpawnStep::Setns);
        }

        // Before dropping capabilities: raising a hard limit needs CAP_SYS_RESOURCE.
        let limits = args.rlimits.items.get(..args.rlimits.len).unwrap_or(&[]);
        for (resource, limit) in limits {
            if libc::syscall(
                libc::SYS_prlimit64,
                0,
                *resource,
                limit as *const libc::rlimit64,
                std::ptr::null_mut::<libc::rlimit64>(),
            ) != 0
            {
                child_fail(args, SpawnStep::Rlimit);
            }
        }

        // The node's own identity, with no supplementary group. Raw calls: this process alone
        // changes (glibc's wrappers would try to change every thread of the host).
        if args.set_ids
            && (libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, args.gid, args.gid, args.gid) != 0
                || libc::syscall(libc::SYS_setresuid, args.uid, args.uid, args.uid) != 0)
        {
            child_fail(args, SpawnStep::Identity);
        }

        // Required by landlock_restrict_self without CAP_SYS_ADMIN, and keeps execve from
        // granting privileges (setuid bits, file capabilities, root's implicit capabilities).
        if libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        ) != 0
        {
            child_fail(args, SpawnStep::NoNewPrivs);
        }

        if !args.seccomp.is_null()
            && libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                args.seccomp,
            ) != 0
        {
            child_fail(args, SpawnStep::Seccomp);
        }

        if args.ruleset_fd >= 0
            && libc::syscall(libc::SYS_landlock_restrict_self, args.ruleset_fd, 0u32) != 0
        {
            child_fail(args, SpawnStep::Landlock);
        }

        // A host running as root would otherwise hand every process all capabilities (loading
        // kernel modules, raw I/O, ...). With no_new_privs set, execve cannot give them back.
        let header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) != 0 {
            child_fail(args, SpawnStep::DropCapabilities);
        }

        // The program starts with nothing blocked, whatever the spawning thread had blocked.
        let empty: u64 = 0;
        if libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        ) != 0
        {
            child_fail(args, SpawnStep::Signals);
        }

        libc::execve(args.program, args.argv, args.envp);
        child_fail(args, SpawnStep::Exec)
    }
}

//! Host-side process sandbox: starts processes confined to their node's workspace.
//!
//! The layers, all set up between `clone` and `execve` (see [`spawn`]):
//!
//! * **Identity** ([`identity`]): as root, each node's processes run under a uid and gid of
//!   that node's own (no supplementary groups); as a normal user, in a user namespace of the
//!   node's own. When the node ends, everything it started is killed, `setsid` or not.
//! * **Landlock**: the workspace is read-write, a few system paths and the policy's files are
//!   read+execute, `/dev/null` is read-write, everything else is denied. Without network
//!   access, TCP bind/connect is denied too (ABI >= 4), and the process can neither signal
//!   processes outside its domain nor reach the host's abstract unix sockets (ABI >= 6).
//! * **seccomp** ([`seccomp`]): no Unix socket of its own (so no pathname socket anywhere on
//!   the host, which Landlock does not cover) unless granted, and no io_uring.
//! * **Network**: without network access the process joins an empty network namespace (one
//!   made at start as root, the node's own as a normal user).
//! * **Limits**: a process count per node (`RLIMIT_NPROC`, counted per node uid or per node
//!   user namespace), memory per node (a cgroup, where drover may make one), resource limits,
//!   its own process group, `no_new_privs`, and no capabilities.
//!
//! A process may also ask for a **private `/dev/shm`** ([`SpawnRequest::private_shm`]): it gets
//! its own mount namespace with a small empty tmpfs on `/dev/shm`, which Landlock lets it
//! write, so POSIX semaphores and shared memory work without touching the host's `/dev/shm`.
//!
//! Typical use: one [`Sandbox`] per host, one [`Confinement`] per node (taking an identity and
//! building the Landlock ruleset once, or reusing the one of an earlier node that granted the
//! same inodes), then [`Confinement::spawn`] for each process of the node.

mod cgroup;
mod child;
mod error;
mod identity;
mod landlock;
mod netns;
mod reaper;
mod reuse;
mod rlimits;
mod seccomp;
mod shm;
mod spawn;

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

pub use child::{Child, ExitStatus};
pub use error::{SandboxError, SpawnStep};
pub use identity::{NodeIdentity, UidRange};
pub use rlimits::Rlimits;

use identity::Identities;

use rlimits::RawRlimits;

/// Host-wide settings of the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Limits applied to every process.
    pub rlimits: Rlimits,
    /// Paths every process may read and execute (directories with everything below them).
    /// Paths that do not exist are skipped.
    pub read_only_paths: Vec<PathBuf>,
    /// Operator opt-out: if Landlock or network namespaces are unavailable, run processes
    /// without that layer (with a warning) instead of refusing to start.
    pub allow_unconfined: bool,
    /// Size of each private `/dev/shm` (see [`SpawnRequest::private_shm`]), in bytes.
    pub private_shm_bytes: u64,
    /// The uids (and gids) node processes run under when drover is root.
    pub node_uids: UidRange,
    /// Memory of all of one node's processes together, in bytes, where drover can make a
    /// cgroup for it (as root with a writable memory controller); `None`: unlimited.
    pub node_memory_bytes: Option<u64>,
}

impl SandboxConfig {
    /// What dynamically linked programs and shells need: the loader and libraries, the usual
    /// binary directories, the few files of `/etc` that libc, DNS, TLS and the shells read,
    /// the package trees the standard drivers use (`/opt/drover`), and the harmless character
    /// devices. `/dev/null` is always granted read-write on top of this.
    ///
    /// Not `/etc` as a whole (`/etc/shadow`, drover's own config and tokens live there), not
    /// `/opt` as a whole, and not `/proc` or `/sys`: Landlock rules name inodes, so
    /// `/proc/self` would grant the host's own directory, and all of `/proc` would show every
    /// host process's command line.
    pub fn default_read_only_paths() -> Vec<PathBuf> {
        [
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib32",
            "/lib64",
            "/libx32",
            "/opt/drover",
            "/etc/alternatives",
            "/etc/ld.so.cache",
            "/etc/ld.so.conf",
            "/etc/ld.so.conf.d",
            "/etc/passwd",
            "/etc/group",
            "/etc/nsswitch.conf",
            "/etc/hosts",
            "/etc/host.conf",
            "/etc/resolv.conf",
            "/etc/gai.conf",
            "/etc/services",
            "/etc/protocols",
            "/etc/localtime",
            "/etc/timezone",
            "/etc/locale.alias",
            "/etc/mime.types",
            "/etc/os-release",
            "/etc/debian_version",
            "/etc/ssl/certs",
            "/etc/ssl/openssl.cnf",
            "/etc/ca-certificates",
            "/etc/ca-certificates.conf",
            "/etc/profile",
            "/etc/bash.bashrc",
            "/etc/inputrc",
            "/etc/environment",
            "/etc/python3",
            "/etc/python3.11",
            "/etc/python3.12",
            "/etc/python3.13",
            "/etc/gitconfig",
            "/etc/npmrc",
            "/etc/nodejs",
            "/etc/ansible",
            "/dev/zero",
            "/dev/random",
            "/dev/urandom",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect()
    }

    /// Refuses a configuration whose read-only paths would hand a node one of `private`
    /// (drover's config, TLS key, token files, data folder, ...), naming both.
    pub fn check_private(&self, private: &[(&str, &Path)]) -> Result<(), SandboxError> {
        for granted in &self.read_only_paths {
            let granted_real = granted.canonicalize().unwrap_or_else(|_| granted.clone());
            for (what, path) in private {
                let real = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
                if real.starts_with(&granted_real) {
                    return Err(SandboxError::InvalidRequest {
                        reason: format!(
                            "the {what} {} lies under {}, which every node may read \
                             (sandbox.read_only_paths); move it or narrow that list",
                            path.display(),
                            granted.display()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            rlimits: Rlimits::default(),
            read_only_paths: SandboxConfig::default_read_only_paths(),
            allow_unconfined: false,
            private_shm_bytes: DEFAULT_PRIVATE_SHM_BYTES,
            node_uids: UidRange::default(),
            node_memory_bytes: Some(DEFAULT_NODE_MEMORY_BYTES),
        }
    }
}

/// What one node's processes may take together; `None` in a field means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// Memory of all the node's processes together, in bytes, where drover can make a memory
    /// cgroup for it (as root with a writable memory controller).
    pub memory_bytes: Option<u64>,
    /// Processes and threads of the node at once (`RLIMIT_NPROC` of its uid or user
    /// namespace).
    pub processes: Option<u64>,
}

impl SandboxConfig {
    /// The limits of a node whose [`Policy`] sets none.
    pub fn node_limits(&self) -> NodeLimits {
        NodeLimits {
            memory_bytes: self.node_memory_bytes,
            processes: self.rlimits.processes,
        }
    }
}

/// The default memory of one node's processes together: a CI job fits, a runaway does not.
pub const DEFAULT_NODE_MEMORY_BYTES: u64 = 2 << 30;

/// The default size of a private `/dev/shm`: plenty for semaphores and small shared buffers.
pub const DEFAULT_PRIVATE_SHM_BYTES: u64 = 64 * 1024 * 1024;

/// Process-wide sandbox state, created once at startup; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
    kept: Arc<reuse::Kept>,
    identities: Arc<Identities>,
}

#[derive(Debug)]
struct Shared {
    /// The empty network namespace, as root (as a normal user each node has its own), unless
    /// unavailable and the operator opted out.
    netns: Option<OwnedFd>,
    /// The seccomp filters: without and with Unix sockets.
    seccomp: [Option<seccomp::Filter>; 2],
    /// Stdin for processes that get no stdin pipe.
    dev_null: OwnedFd,
    landlock_abi: Option<i32>,
    /// The system's read-only paths, opened once (`O_PATH`) so that each
    /// node's ruleset costs a rule per path, not an `open` as well.
    read_only_paths: Vec<std::fs::File>,
    /// The limits of every process, as configured and in the form the child applies.
    rlimits: Rlimits,
    raw_rlimits: RawRlimits,
    /// The limits of a node whose policy sets none.
    node_limits: NodeLimits,
    /// Whether `RLIMIT_NPROC` counts one node's processes only (not drover's own).
    per_node_nproc: bool,
    /// The tmpfs mount options of a private `/dev/shm`.
    shm_options: std::ffi::CString,
    allow_unconfined: bool,
}

impl Sandbox {
    /// Probes Landlock and creates the empty network namespace. Fails if either is missing,
    /// unless `config.allow_unconfined`, in which case that layer is skipped with a warning.
    ///
    /// Also points fds 0-2 of the host at /dev/null if any of them is closed, so that no pipe
    /// made for a child can land on them.
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        ensure_stdio_open();

        let landlock_abi = match landlock::kernel_abi() {
            Ok(abi) => Some(abi),
            Err(reason) if config.allow_unconfined => {
                tracing::warn!(
                    %reason,
                    "Landlock is unavailable; processes will NOT be confined to their workspace \
                     (sandbox.allow_unconfined = true)"
                );
                None
            }
            Err(reason) => return Err(SandboxError::LandlockUnsupported { reason }),
        };

        let identities = Arc::new(Identities::new(
            config.node_uids,
            config.node_memory_bytes.is_some(),
            config.allow_unconfined,
        )?);
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let made = if identities.per_node_namespace() {
            Ok(None)
        } else {
            netns::create_empty_netns().map(Some)
        };
        let netns = match made {
            Ok(fd) => fd,
            Err(source) if config.allow_unconfined => {
                tracing::warn!(
                    error = %source,
                    "cannot create an empty network namespace; processes without network access \
                     keep the host's network, restricted only by Landlock where the kernel \
                     supports it (sandbox.allow_unconfined = true)"
                );
                None
            }
            Err(source) => return Err(SandboxError::NetnsUnavailable { source }),
        };
        let seccomp = [seccomp::Filter::new(false), seccomp::Filter::new(true)];
        if seccomp[0].is_none() {
            tracing::warn!(
                "no seccomp filter for this architecture: processes can open Unix sockets"
            );
        }
        // RLIMIT_NPROC counts per uid and user namespace: with neither of the node's own it
        // would count drover's own threads and every process of its user.
        let per_node_nproc = identities.per_node_uid() || identities.per_node_namespace();
        let mut rlimits = config.rlimits;
        if !per_node_nproc {
            rlimits.processes = None;
        }

        let dev_null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|source| SandboxError::Host {
                op: "opening /dev/null",
                source,
            })?;

        tracing::debug!(
            ?landlock_abi,
            netns = netns.is_some(),
            root,
            node_uids = identities.per_node_uid(),
            node_namespaces = identities.per_node_namespace(),
            "process sandbox ready"
        );
        Ok(Sandbox {
            shared: Arc::new(Shared {
                netns,
                seccomp,
                dev_null: dev_null.into(),
                landlock_abi,
                read_only_paths: landlock::open_read_only_paths(&config.read_only_paths),
                rlimits,
                raw_rlimits: RawRlimits::from(&rlimits),
                node_limits: config.node_limits(),
                per_node_nproc,
                shm_options: shm::mount_options(config.private_shm_bytes),
                allow_unconfined: config.allow_unconfined,
            }),
            kept: Arc::default(),
            identities,
        })
    }

    /// Whether node processes run under uids of their own (drover runs as root).
    pub fn per_node_uid(&self) -> bool {
        self.identities.per_node_uid()
    }

    /// Whether node processes run in user namespaces of their own (drover is not root).
    pub fn per_node_namespace(&self) -> bool {
        self.identities.per_node_namespace()
    }

    /// The kernel's Landlock ABI version, or `None` if processes run without Landlock.
    pub fn landlock_abi(&self) -> Option<i32> {
        self.shared.landlock_abi
    }

    /// Builds the confinement for one node. The Landlock ruleset is made here, once, and
    /// applied to every process the node starts; a later node that grants the same inodes
    /// (a recycled workspace, the same script) gets the same confinement back.
    pub fn confine(&self, policy: &Policy) -> Result<Arc<Confinement>, SandboxError> {
        require_absolute("workspace", &policy.workspace)?;
        for file in &policy.read_only_files {
            require_absolute("read-only file", file)?;
        }
        let limits = policy.limits.unwrap_or(self.shared.node_limits);
        let identity = self.identities.acquire(limits.memory_bytes)?;
        let processes = limits.processes.filter(|_| self.shared.per_node_nproc);
        let rlimits = if processes == self.shared.rlimits.processes {
            self.shared.raw_rlimits
        } else {
            RawRlimits::from(&Rlimits {
                processes,
                ..self.shared.rlimits
            })
        };
        if let Some(uid) = identity.uid() {
            identity::hand_workspace_to(&policy.workspace, uid)?;
            for file in &policy.read_only_files {
                identity::readable_by_nodes(file)?;
            }
        }
        let confinement = |ruleset| {
            Arc::new(Confinement {
                shared: Arc::clone(&self.shared),
                ruleset,
                policy: policy.clone(),
                identity,
                rlimits,
            })
        };
        if self.shared.landlock_abi.is_none() {
            return Ok(confinement(None));
        }
        let key = reuse::Key::of(policy);
        if let Some(kept) = key.as_ref().and_then(|key| self.kept.get(key)) {
            return Ok(confinement(Some(kept)));
        }
        let grants = landlock::Grants {
            read_write_dirs: &[policy.workspace.as_path()],
            system_read_only: &self.shared.read_only_paths,
            policy_read_only: &policy.read_only_files,
            network: policy.network,
        };
        let Some(ruleset) = landlock::build_ruleset(&grants)? else {
            // kernel_abi() said yes, so this means Landlock vanished or is refused.
            return Err(SandboxError::LandlockUnsupported {
                reason: "the kernel refused to create a ruleset".to_owned(),
            });
        };
        let ruleset = Arc::new(ruleset);
        if let Some(key) = key {
            self.kept.keep(key, Arc::clone(&ruleset));
        }
        Ok(confinement(Some(ruleset)))
    }
}

/// What one node's processes may touch.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Absolute path of the node's workspace, granted read-write.
    pub workspace: PathBuf,
    /// Absolute paths outside the workspace granted read+execute, e.g. the node's script.
    pub read_only_files: Vec<PathBuf>,
    /// Whether the processes may use the network.
    pub network: bool,
    /// Whether the processes may open Unix sockets (and so connect to any pathname socket
    /// their identity may reach). Off unless the operator grants it.
    pub unix_sockets: bool,
    /// What the node's processes may take together; `None`: the sandbox's defaults
    /// ([`SandboxConfig::node_limits`]).
    pub limits: Option<NodeLimits>,
}

/// A node's prepared confinement; spawn any number of processes with it, from any thread.
#[derive(Debug)]
pub struct Confinement {
    shared: Arc<Shared>,
    /// `None` when Landlock is unavailable and the operator opted out; shared with other
    /// nodes that grant the same inodes.
    ruleset: Option<Arc<OwnedFd>>,
    /// Kept to build the extra ruleset a process with a private `/dev/shm` needs.
    policy: Policy,
    /// Who the node's processes are; dropping it kills whatever they left.
    identity: NodeIdentity,
    /// The limits of each of the node's processes.
    rlimits: RawRlimits,
}

/// One process to start.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    /// Absolute path of the program (not searched in `PATH`); also passed as `argv[0]`.
    pub program: PathBuf,
    /// Arguments after `argv[0]`.
    pub args: Vec<OsString>,
    /// The complete environment; nothing is inherited from the host.
    pub env: Vec<(OsString, OsString)>,
    /// Absolute working directory.
    pub cwd: PathBuf,
    /// Give the process a stdin pipe (see [`Child::take_stdin`]); otherwise stdin is /dev/null.
    pub stdin: bool,
    /// Give the process its own empty, writable `/dev/shm` (a tmpfs of
    /// [`SandboxConfig::private_shm_bytes`] in a mount namespace of its own, which the process
    /// and its children share), for POSIX semaphores and shared memory. The host's `/dev/shm`
    /// stays out of its sight. Needs root or `CAP_SYS_ADMIN`; costs a little more per spawn.
    pub private_shm: bool,
}

impl Confinement {
    /// True if processes are confined by Landlock (false only with `allow_unconfined`).
    pub fn is_landlocked(&self) -> bool {
        self.ruleset.is_some()
    }

    /// Whether this and `other` enforce one Landlock ruleset (made once for both).
    pub fn shares_ruleset_with(&self, other: &Confinement) -> bool {
        match (&self.ruleset, &other.ruleset) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The node's identity.
    pub fn identity(&self) -> &NodeIdentity {
        &self.identity
    }

    /// Kills every process of the node, wherever it went (also done when this is dropped).
    pub fn kill_all(&self) {
        self.identity.kill_all();
    }

    /// Starts a process. Must be called within a tokio runtime. Blocks the calling thread only
    /// until the new process has called `execve` (well under a millisecond), and never forks
    /// the host. Errors before `execve`, such as a missing program or working directory, are
    /// returned here as [`SandboxError::ChildSetup`].
    pub fn spawn(&self, req: &SpawnRequest) -> Result<Child, SandboxError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SandboxError::NoRuntime);
        }
        require_absolute("program", &req.program)?;
        require_absolute("working directory", &req.cwd)?;

        let (stdout_r, stdout_w) = spawn::pipe("creating the stdout pipe")?;
        let (stderr_r, stderr_w) = spawn::pipe("creating the stderr pipe")?;
        let stdin_pipe = if req.stdin {
            Some(spawn::pipe("creating the stdin pipe")?)
        } else {
            None
        };
        // Registered before the process exists, so a failure here leaves nothing to clean up.
        let register = |source| SandboxError::Host {
            op: "registering a pipe with the tokio reactor",
            source,
        };
        let stdout = pipe::Receiver::from_owned_fd(stdout_r).map_err(register)?;
        let stderr = pipe::Receiver::from_owned_fd(stderr_r).map_err(register)?;
        let (stdin, stdin_child) = match stdin_pipe {
            Some((r, w)) => (
                Some(pipe::Sender::from_owned_fd(w).map_err(register)?),
                Some(r),
            ),
            None => (None, None),
        };
        let stdin_fd = stdin_child
            .as_ref()
            .map_or(self.shared.dev_null.as_raw_fd(), |fd| fd.as_raw_fd());

        let identity = self.identity.raw();
        let seccomp = self.shared.seccomp[usize::from(self.policy.unix_sockets)]
            .as_ref()
            .map(seccomp::Filter::prog);
        let shm = if req.private_shm {
            Some(shm::prepare(&self.shared, &self.policy)?)
        } else {
            None
        };
        let raw = |shm: Option<&shm::Prepared>| spawn::RawSpawn {
            program: &req.program,
            args: &req.args,
            env: &req.env,
            cwd: &req.cwd,
            stdio: [stdin_fd, stdout_w.as_raw_fd(), stderr_w.as_raw_fd()],
            netns_fd: if self.policy.network {
                None
            } else {
                identity
                    .netns
                    .or(self.shared.netns.as_ref().map(|fd| fd.as_raw_fd()))
            },
            ruleset_fd: match shm {
                Some(shm) => shm.ruleset.as_ref(),
                None => self.ruleset.as_deref(),
            }
            .map(|fd| fd.as_raw_fd()),
            identity,
            seccomp: seccomp.as_ref(),
            rlimits: self.rlimits,
            private_shm: shm.map(|shm| spawn::RawShm {
                options: &self.shared.shm_options,
                access: shm.access,
            }),
        };
        let started = match spawn::spawn_raw(&raw(shm.as_ref())) {
            Err(SandboxError::ChildSetup {
                step: SpawnStep::MountNamespace,
                source,
                ..
            }) if self.shared.allow_unconfined => {
                tracing::warn!(
                    program = %req.program.display(),
                    error = %source,
                    "cannot give the process a private /dev/shm; starting it without one \
                     (sandbox.allow_unconfined = true): it sees the host's /dev/shm, which \
                     Landlock keeps read-only, so POSIX semaphores and shared memory fail"
                );
                spawn::spawn_raw(&raw(None))?
            }
            other => other?,
        };
        // Our copies of the child's ends must go, or reading stdout would never see EOF.
        drop((stdout_w, stderr_w, stdin_child));

        let pid = started.pid;
        // SAFETY: the OwnedFd stays open, unchanged, for as long as the AsyncFd owns it.
        let registered =
            unsafe { AsyncFd::register_with_interest(started.pidfd, Interest::READABLE) };
        let pidfd = match registered {
            Ok(fd) => fd,
            Err(err) => {
                // SAFETY: kill has no memory-safety preconditions; the group is ours.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                let (pidfd, source) = err.into_parts();
                spawn::reap_blocking(pid, &pidfd);
                return Err(SandboxError::Host {
                    op: "registering the pidfd with the tokio reactor",
                    source,
                });
            }
        };
        Ok(Child::new(pid, pidfd, stdin, stdout, stderr))
    }
}

/// Locks one of the sandbox's tables of finished values (kept rulesets, free node
/// identities): a panic elsewhere leaves them whole, so a poisoned lock is taken as it is.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn require_absolute(what: &str, path: &Path) -> Result<(), SandboxError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(SandboxError::InvalidRequest {
            reason: format!("the {what} {} is not an absolute path", path.display()),
        })
    }
}

/// Points any closed fd among 0, 1 and 2 at /dev/null, so that no pipe we create lands on
/// them and gets clobbered while the child installs its stdio.
fn ensure_stdio_open() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only inspects the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            continue;
        }
        // SAFETY: the path is NUL-terminated; without O_CLOEXEC on purpose, as for any stdio.
        let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if opened >= 0 && opened != fd {
            // SAFETY: both fds are valid; dup2 onto a free fd and close the spare.
            unsafe {
                libc::dup2(opened, fd);
                libc::close(opened);
            }
        }
    }
}

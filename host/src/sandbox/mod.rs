//! Host-side process sandbox: starts processes confined to their node's workspace.
//!
//! Three layers confine a process, all set up between `clone` and `execve` (see [`spawn`]):
//!
//! * **Landlock**: the workspace is read-write, a few system paths and the policy's files are
//!   read+execute, `/dev/null` is read-write, everything else is denied. Without network
//!   access, TCP bind/connect is denied too (ABI >= 4), and the process can neither signal
//!   processes outside its domain nor reach the host's abstract unix sockets (ABI >= 6).
//! * **Network**: without network access the process joins one empty network namespace, made
//!   once when the [`Sandbox`] is created.
//! * **Privileges and limits**: its own process group, resource limits, `no_new_privs`, and
//!   no capabilities even when the host runs as root.
//!
//! A process may also ask for a **private `/dev/shm`** ([`SpawnRequest::private_shm`]): it gets
//! its own mount namespace with a small empty tmpfs on `/dev/shm`, which Landlock lets it
//! write, so POSIX semaphores and shared memory work without touching the host's `/dev/shm`.
//!
//! Typical use: one [`Sandbox`] per host, one [`Confinement`] per node (building the Landlock
//! ruleset once, or reusing the one of an earlier node that granted the same inodes), then
//! [`Confinement::spawn`] for each process of the node.

mod child;
mod error;
mod landlock;
mod netns;
mod reuse;
mod rlimits;
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
pub use rlimits::Rlimits;

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
}

impl SandboxConfig {
    /// What dynamically linked programs and shells need: the loader and libraries, the usual
    /// binary directories, `/etc` (passwd, resolv.conf, ld.so.cache, ...), `/opt`, and the
    /// harmless character devices. `/dev/null` is always granted read-write on top of this.
    ///
    /// `/proc` and `/sys` are left out: Landlock rules name inodes, so `/proc/self` would
    /// grant the host's own directory, and all of `/proc` would show every host process's
    /// command line. Add `/proc` if programs need it (bash process substitution, `ps`).
    pub fn default_read_only_paths() -> Vec<PathBuf> {
        [
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib32",
            "/lib64",
            "/libx32",
            "/etc",
            "/opt",
            "/dev/zero",
            "/dev/random",
            "/dev/urandom",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect()
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            rlimits: Rlimits::default(),
            read_only_paths: SandboxConfig::default_read_only_paths(),
            allow_unconfined: false,
            private_shm_bytes: DEFAULT_PRIVATE_SHM_BYTES,
        }
    }
}

/// The default size of a private `/dev/shm`: plenty for semaphores and small shared buffers.
pub const DEFAULT_PRIVATE_SHM_BYTES: u64 = 64 * 1024 * 1024;

/// Process-wide sandbox state, created once at startup; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
    kept: Arc<reuse::Kept>,
}

#[derive(Debug)]
struct Shared {
    /// The empty network namespace, unless unavailable and the operator opted out.
    netns: Option<OwnedFd>,
    /// Stdin for processes that get no stdin pipe.
    dev_null: OwnedFd,
    landlock_abi: Option<i32>,
    /// The system's read-only paths, opened once (`O_PATH`) so that each
    /// node's ruleset costs a rule per path, not an `open` as well.
    read_only_paths: Vec<std::fs::File>,
    rlimits: RawRlimits,
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

        let netns = match netns::create_empty_netns() {
            Ok(fd) => Some(fd),
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
            "process sandbox ready"
        );
        Ok(Sandbox {
            shared: Arc::new(Shared {
                netns,
                dev_null: dev_null.into(),
                landlock_abi,
                read_only_paths: landlock::open_read_only_paths(&config.read_only_paths),
                rlimits: RawRlimits::from(&config.rlimits),
                shm_options: shm::mount_options(config.private_shm_bytes),
                allow_unconfined: config.allow_unconfined,
            }),
            kept: Arc::default(),
        })
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
        if self.shared.landlock_abi.is_none() {
            return Ok(Arc::new(Confinement {
                shared: Arc::clone(&self.shared),
                ruleset: None,
                policy: policy.clone(),
            }));
        }
        let key = reuse::Key::of(policy);
        if let Some(kept) = key.as_ref().and_then(|key| self.kept.get(key)) {
            return Ok(kept);
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
        let confinement = Arc::new(Confinement {
            shared: Arc::clone(&self.shared),
            ruleset: Some(ruleset),
            policy: policy.clone(),
        });
        if let Some(key) = key {
            self.kept.keep(key, Arc::clone(&confinement));
        }
        Ok(confinement)
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
}

/// A node's prepared confinement; spawn any number of processes with it, from any thread.
#[derive(Debug)]
pub struct Confinement {
    shared: Arc<Shared>,
    /// `None` when Landlock is unavailable and the operator opted out.
    ruleset: Option<OwnedFd>,
    /// Kept to build the extra ruleset a process with a private `/dev/shm` needs.
    policy: Policy,
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
                self.shared.netns.as_ref().map(|fd| fd.as_raw_fd())
            },
            ruleset_fd: match shm {
                Some(shm) => shm.ruleset.as_ref(),
                None => self.ruleset.as_ref(),
            }
            .map(|fd| fd.as_raw_fd()),
            rlimits: self.shared.rlimits,
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
                spawn::reap_blocking(&pidfd);
                return Err(SandboxError::Host {
                    op: "registering the pidfd with the tokio reactor",
                    source,
                });
            }
        };
        Ok(Child::new(pid, pidfd, stdin, stdout, stderr))
    }
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

//! Errors of the process sandbox, worded for the operator who has to act on them.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while setting up the sandbox or starting a process in it.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The kernel has no usable Landlock and the operator did not opt out.
    #[error(
        "Landlock is not supported by this kernel ({reason}); processes cannot be confined to \
         their workspace. Use a kernel with Landlock enabled (Linux >= 5.13 with \"landlock\" in \
         the lsm= boot parameter), or set sandbox.allow_unconfined = true to run processes without it"
    )]
    LandlockUnsupported {
        /// What the kernel answered.
        reason: String,
    },

    /// The empty network namespace could not be created and the operator did not opt out.
    #[error(
        "could not create the empty network namespace that cuts processes off the network: \
         {source}. Run drover as root or with CAP_SYS_ADMIN, or set \
         sandbox.allow_unconfined = true to run processes with the host's network"
    )]
    NetnsUnavailable {
        /// Why `unshare(CLONE_NEWNET)` or opening the namespace failed.
        #[source]
        source: io::Error,
    },

    /// A path named by a node's policy cannot be opened to build its Landlock rules.
    #[error("the {what} {path} cannot be opened to grant access to it: {source}")]
    PolicyPath {
        /// Which part of the policy named the path, e.g. "workspace".
        what: &'static str,
        /// The offending path.
        path: PathBuf,
        /// Why opening it failed.
        #[source]
        source: io::Error,
    },

    /// The Landlock crate refused to build the ruleset.
    #[error("building the Landlock ruleset failed: {source}")]
    Ruleset {
        /// The crate's error.
        #[source]
        source: landlock::RulesetError,
    },

    /// The kernel offers no way to give node processes an identity apart from drover's.
    #[error(
        "cannot give node processes an identity of their own: {reason}. As root, drover runs \
         them under uids of sandbox.node_uids; as a normal user, in user namespaces of their \
         own, which need unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 \
         and user.max_user_namespaces > 0). Set sandbox.allow_unconfined = true to run them as \
         drover's own user instead"
    )]
    Identity {
        /// What failed.
        reason: String,
    },

    /// A node's workspace or files cannot be reached by the node's own uid.
    #[error("{0}")]
    Unreachable(String),

    /// The spawn request itself is unusable (relative path, NUL byte, ...).
    #[error("invalid spawn request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },

    /// `Confinement::spawn` was called outside a tokio runtime.
    #[error(
        "processes must be started from within a tokio runtime (the pipes and pidfd are registered with its reactor)"
    )]
    NoRuntime,

    /// A host-side system call needed to start the process failed.
    #[error("{op} failed: {source}")]
    Host {
        /// What the host was doing, e.g. "creating the stdout pipe".
        op: &'static str,
        /// The system error.
        #[source]
        source: io::Error,
    },

    /// The new process failed in one of the steps between `clone` and `execve`.
    #[error("could not start {program}: {context} failed: {source}")]
    ChildSetup {
        /// The program that was to be executed.
        program: PathBuf,
        /// The step that failed.
        step: SpawnStep,
        /// The step, with the path or value it concerned.
        context: String,
        /// The errno the step failed with.
        #[source]
        source: io::Error,
    },
}

impl SandboxError {
    /// True if the process could not start because its program or working directory does not
    /// exist, which callers may want to report as a user error rather than a host fault.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SandboxError::ChildSetup { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// The step of process start-up, between `clone` and `execve`, that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum SpawnStep {
    /// Putting the process in its own process group.
    Setpgid = 1,
    /// Installing the pipes on fds 0, 1 and 2.
    Stdio = 2,
    /// Changing into the working directory.
    Chdir = 3,
    /// Joining the empty network namespace.
    Setns = 4,
    /// Applying resource limits.
    Rlimit = 5,
    /// Setting `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs = 6,
    /// Entering the Landlock domain.
    Landlock = 7,
    /// Dropping all capabilities.
    DropCapabilities = 8,
    /// Resetting signal dispositions and the signal mask.
    Signals = 9,
    /// Executing the program.
    Exec = 10,
    /// Entering a mount namespace of its own (for a private `/dev/shm`) and making its
    /// mounts private, so that nothing it mounts reaches the host.
    MountNamespace = 11,
    /// Mounting the private tmpfs on `/dev/shm`.
    MountShm = 12,
    /// Granting the private `/dev/shm` in the Landlock ruleset.
    ShmRule = 13,
    /// Joining the node's own user namespace (drover not running as root).
    UserNamespace = 14,
    /// Moving into the node's memory cgroup.
    Cgroup = 15,
    /// Taking the node's own uid and gid, with no supplementary groups.
    Identity = 16,
    /// Installing the seccomp filter (no Unix sockets, no io_uring).
    Seccomp = 17,
}

impl SpawnStep {
    pub(crate) fn from_raw(raw: u32) -> Option<SpawnStep> {
        Some(match raw {
            1 => SpawnStep::Setpgid,
            2 => SpawnStep::Stdio,
            3 => SpawnStep::Chdir,
            4 => SpawnStep::Setns,
            5 => SpawnStep::Rlimit,
            6 => SpawnStep::NoNewPrivs,
            7 => SpawnStep::Landlock,
            8 => SpawnStep::DropCapabilities,
            9 => SpawnStep::Signals,
            10 => SpawnStep::Exec,
            11 => SpawnStep::MountNamespace,
            12 => SpawnStep::MountShm,
            13 => SpawnStep::ShmRule,
            14 => SpawnStep::UserNamespace,
            15 => SpawnStep::Cgroup,
            16 => SpawnStep::Identity,
            17 => SpawnStep::Seccomp,
            _ => return None,
        })
    }
}

impl fmt::Display for SpawnStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnStep::Setpgid => "setpgid",
            SpawnStep::Stdio => "redirecting stdin/stdout/stderr",
            SpawnStep::Chdir => "chdir",
            SpawnStep::Setns => "setns into the empty network namespace",
            SpawnStep::Rlimit => "setrlimit",
            SpawnStep::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)",
            SpawnStep::Landlock => "landlock_restrict_self",
            SpawnStep::DropCapabilities => "dropping capabilities",
            SpawnStep::Signals => "resetting signal handlers",
            SpawnStep::Exec => "execve",
            SpawnStep::MountNamespace => "making a mount namespace for a private /dev/shm",
            SpawnStep::MountShm => "mounting a private tmpfs on /dev/shm",
            SpawnStep::ShmRule => "granting the private /dev/shm in Landlock",
            SpawnStep::UserNamespace => "joining the node's user namespace",
            SpawnStep::Cgroup => "joining the node's memory cgroup",
            SpawnStep::Identity => "taking the node's uid and gid",
            SpawnStep::Seccomp => "installing the seccomp filter",
        })
    }
}

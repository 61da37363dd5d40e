//! Resource limits applied to every sandboxed process.

/// Resource limits; each `Some` is set as both the soft and the hard limit, so the process
/// cannot raise it again. `None` leaves the limit inherited from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimits {
    /// `RLIMIT_NOFILE`: maximum number of open file descriptors.
    pub open_files: Option<u64>,
    /// `RLIMIT_AS`: maximum address space in bytes. Off by default because V8, the JVM and Go
    /// reserve far more virtual memory than they use and fail under a tight limit; memory
    /// is better bounded by a cgroup.
    pub address_space: Option<u64>,
    /// `RLIMIT_FSIZE`: maximum size in bytes of a file the process writes.
    pub file_size: Option<u64>,
    /// `RLIMIT_CORE`: maximum core dump size; 0 keeps crashing tools from filling workspaces.
    pub core: Option<u64>,
    /// `RLIMIT_CPU`: CPU seconds before SIGXCPU/SIGKILL. Off by default: wall-clock timeouts
    /// belong to the orchestrator, which can also kill the whole process group.
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_NPROC`: processes (and threads) of one node at once, counted per node uid or
    /// per node user namespace, so a fork bomb fails inside its node. Not applied where node
    /// processes share drover's identity (`sandbox.allow_unconfined`).
    pub processes: Option<u64>,
}

impl Default for Rlimits {
    fn default() -> Self {
        Rlimits {
            open_files: Some(4096),
            address_space: None,
            file_size: Some(64 << 30),
            core: Some(0),
            cpu_seconds: None,
            processes: Some(256),
        }
    }
}

/// Number of limits `Rlimits` can carry; sizes the fixed array handed to the child.
pub(crate) const MAX_RLIMITS: usize = 6;

/// The limits in the raw form the child applies with `prlimit64`, prepared in the parent so the
/// child does no allocation or branching on `Option`s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRlimits {
    pub(crate) items: [(libc::c_int, libc::rlimit64); MAX_RLIMITS],
    pub(crate) len: usize,
}

impl From<&Rlimits> for RawRlimits {
    fn from(limits: &Rlimits) -> Self {
        let empty = libc::rlimit64 {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let mut raw = RawRlimits {
            items: [(0, empty); MAX_RLIMITS],
            len: 0,
        };
        let wanted = [
            (libc::RLIMIT_NOFILE, limits.open_files),
            (libc::RLIMIT_AS, limits.address_space),
            (libc::RLIMIT_FSIZE, limits.file_size),
            (libc::RLIMIT_CORE, limits.core),
            (libc::RLIMIT_CPU, limits.cpu_seconds),
            (libc::RLIMIT_NPROC, limits.processes),
        ];
        for (resource, value) in wanted {
            if let (Some(value), Some(slot)) = (value, raw.items.get_mut(raw.len)) {
                // The resource constants are small non-negative ints whose C type differs
                // between libc flavours; the syscall takes them as int.
                *slot = (
                    resource as libc::c_int,
                    libc::rlimit64 {
                        rlim_cur: value,
                        rlim_max: value,
                    },
                );
                raw.len += 1;
            }
        }
        raw
    }
}

//! Landlock detection and the per-node ruleset that confines processes to their workspace.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope,
};

use super::error::SandboxError;

/// The newest ABI whose rights we have vetted. Rights added by later ABIs stay unhandled (that
/// is, allowed), as the Landlock compatibility contract intends; older kernels get the subset
/// they support (the crate's best-effort mode).
const VETTED_ABI: ABI = ABI::V6;

/// Asks the kernel which Landlock ABI it supports.
pub(crate) fn kernel_abi() -> Result<i32, String> {
    // SAFETY: with a null attr, size 0 and the VERSION flag, the syscall only returns a number.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    if v > 0 {
        i32::try_from(v).map_err(|_| format!("nonsensical ABI version {v}"))
    } else {
        let err = io::Error::last_os_error();
        Err(match err.raw_os_error() {
            Some(libc::EOPNOTSUPP) => "it is built in but disabled at boot".to_owned(),
            Some(libc::ENOSYS) => "it is not built into the kernel".to_owned(),
            _ => err.to_string(),
        })
    }
}

/// What a ruleset grants, besides `/dev/null` which is always read-write.
pub(crate) struct Grants<'a> {
    /// Full access, from the node's policy; each must exist.
    pub(crate) read_write_dirs: &'a [&'a Path],
    /// Read and execute, from the sandbox configuration; missing ones are skipped because the
    /// defaults name directories (such as `/lib32`) that not every system has.
    pub(crate) system_read_only: &'a [File],
    /// Read and execute, from the node's policy; each must exist.
    pub(crate) policy_read_only: &'a [std::path::PathBuf],
    pub(crate) network: bool,
}

/// The rights a read-write directory gets (what the workspace gets), as the raw bits
/// landlock_add_rule(2) takes, for a kernel of Landlock ABI `kernel_abi`: only the rights both
/// the kernel and [`VETTED_ABI`] know, as the ruleset handles exactly those.
pub(crate) fn read_write_bits(kernel_abi: i32) -> u64 {
    (AccessFs::from_all(VETTED_ABI) & AccessFs::from_all(ABI::from(kernel_abi))).bits()
}

/// Opens a path with `O_PATH` (std adds `O_CLOEXEC`) to name it in a rule.
fn open_o_path(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
}

fn open_path(what: &'static str, path: &Path) -> Result<File, SandboxError> {
    open_o_path(path).map_err(|source| SandboxError::PolicyPath {
        what,
        path: path.to_owned(),
        source,
    })
}

fn ruleset_err(source: landlock::RulesetError) -> SandboxError {
    SandboxError::Ruleset { source }
}

/// Builds the ruleset and returns its fd, which `landlock_restrict_self` can apply to any number
/// of processes. `Ok(None)` means the kernel cannot enforce Landlock.
/// Opens the system's read-only paths once; missing ones are skipped.
pub(crate) fn open_read_only_paths(paths: &[std::path::PathBuf]) -> Vec<File> {
    paths
        .iter()
        .filter_map(|path| match open_o_path(path) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "skipping missing read-only path");
                None
            }
        })
        .collect()
}

pub(crate) fn build_ruleset(grants: &Grants<'_>) -> Result<Option<OwnedFd>, SandboxError> {
    let abi = VETTED_ABI;
    let all_fs = AccessFs::from_all(abi);
    let read_exec = AccessFs::from_read(abi);
    // Scripts routinely redirect to /dev/null, which opens it with O_TRUNC.
    let dev_null: BitFlags<AccessFs> =
        AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate;

    let mut ruleset = Ruleset::default()
        .handle_access(all_fs)
        .map_err(ruleset_err)?
        // Defense in depth: a process outside its domain cannot be signalled (so a confined
        // process cannot kill the host) and abstract unix sockets of the host are out of reach.
        .scope(Scope::from_all(abi))
        .map_err(ruleset_err)?;
    if !grants.network {
        // Second layer behind the empty network namespace: no TCP bind or connect at all.
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(ruleset_err)?;
    }
    let mut created = ruleset.create().map_err(ruleset_err)?;

    for dir in grants.read_write_dirs {
        let fd = open_path("workspace", dir)?;
        created = created
            .add_rule(PathBeneath::new(fd, all_fs))
            .map_err(ruleset_err)?;
    }
    for fd in grants.system_read_only {
        created = created
            .add_rule(PathBeneath::new(fd, read_exec))
            .map_err(ruleset_err)?;
    }
    for path in grants.policy_read_only {
        let fd = open_path("read-only file", path)?;
        created = created
            .add_rule(PathBeneath::new(fd, read_exec))
            .map_err(ruleset_err)?;
    }
    if let Ok(fd) = open_o_path(Path::new("/dev/null")) {
        created = created
            .add_rule(PathBeneath::new(fd, dev_null))
            .map_err(ruleset_err)?;
    }
    Ok(created.into())
}

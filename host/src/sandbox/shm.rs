//! A private `/dev/shm` for one process: what the parent prepares before the child mounts it.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::Path;

use super::error::SandboxError;
use super::{Policy, Shared, landlock};

/// Where the private tmpfs goes.
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// The tmpfs options: its size, and sticky world-writable like the host's `/dev/shm`.
pub(crate) fn mount_options(bytes: u64) -> CString {
    // Digits and ASCII only: never a NUL byte.
    CString::new(format!("size={bytes},mode=1777")).unwrap_or_default()
}

/// What a private-shm spawn uses instead of the node's shared ruleset.
pub(crate) struct Prepared {
    /// A ruleset for this process alone, to which the child adds its tmpfs; `None` without
    /// Landlock.
    pub(crate) ruleset: Option<OwnedFd>,
    /// The rights the child grants on the tmpfs (0 without Landlock).
    pub(crate) access: u64,
}

/// Checks that the private `/dev/shm` hides nothing the process is granted, and builds the
/// process's own ruleset (the node's grants; the child adds the tmpfs).
pub(crate) fn prepare(shared: &Shared, policy: &Policy) -> Result<Prepared, SandboxError> {
    for (what, path) in std::iter::once(("workspace", policy.workspace.as_path())).chain(
        policy
            .read_only_files
            .iter()
            .map(|f| ("read-only file", f.as_path())),
    ) {
        let real = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if real.starts_with(Path::new(SHM_DIR)) {
            return Err(SandboxError::InvalidRequest {
                reason: format!(
                    "the {what} {} lies under {SHM_DIR}, which a private /dev/shm would hide \
                     from the process; set workspace_dir (and keep DAG files) outside {SHM_DIR} \
                     for drivers that ask for a private /dev/shm",
                    path.display()
                ),
            });
        }
    }
    let Some(abi) = shared.landlock_abi else {
        return Ok(Prepared {
            ruleset: None,
            access: 0,
        });
    };
    let grants = landlock::Grants {
        read_write_dirs: &[policy.workspace.as_path()],
        system_read_only: &shared.read_only_paths,
        policy_read_only: &policy.read_only_files,
        network: policy.network,
    };
    let ruleset =
        landlock::build_ruleset(&grants)?.ok_or_else(|| SandboxError::LandlockUnsupported {
            reason: "the kernel refused to create a ruleset".to_owned(),
        })?;
    Ok(Prepared {
        ruleset: Some(ruleset),
        access: landlock::read_write_bits(abi),
    })
}

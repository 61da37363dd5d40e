//! The seccomp filter every node process gets: no Unix socket of its own, no io_uring.
//!
//! Landlock (up to ABI 7) does not check `connect()` to a pathname Unix socket, and a network
//! namespace does not scope them, so without this a process reaches every socket its uid may
//! open: Docker's (host root), D-Bus, systemd's, or a `0666` one in `/tmp`. The filter refuses
//! `socket(AF_UNIX, ...)` with `EACCES` unless the node was granted Unix sockets; without a
//! socket of its own a process can reach none. `socketpair(AF_UNIX)` stays allowed: an
//! anonymous pair reaches nothing, and shells, Node.js and Python use it for pipes.
//!
//! `io_uring_setup` is refused (`ENOSYS`, as on kernels without it) because its
//! `IORING_OP_SOCKET` and `IORING_OP_CONNECT` would make a socket behind the filter's back.
//! The 32-bit entry points (x32, and i386's `socketcall`, whose arguments a filter cannot read)
//! get the same refusals.

/// A compiled filter, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`. The program lives as long
/// as this value; the pointer in [`Filter::prog`] points into it.
#[derive(Debug)]
pub(crate) struct Filter {
    code: Box<[libc::sock_filter]>,
}

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
/// The low 32 bits of the first argument (little-endian targets).
const OFFSET_ARG0_LOW: u32 = 16;

const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const RET_EACCES: u32 = libc::SECCOMP_RET_ERRNO | libc::EACCES as u32;
const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// The native architecture's numbers.
#[cfg(target_arch = "x86_64")]
mod native {
    pub(super) const AUDIT_ARCH: u32 = 0xC000_003E;
    pub(super) const SOCKET: u32 = 41;
    pub(super) const IO_URING_SETUP: u32 = 425;
    /// x32 system calls are the x86-64 numbers with this bit set.
    pub(super) const X32_BIT: Option<u32> = Some(0x4000_0000);
    /// i386, the compat architecture, as (arch, socket, socketcall, io_uring_setup).
    pub(super) const COMPAT: Option<(u32, u32, u32, u32)> = Some((0x4000_0003, 359, 102, 425));
}

#[cfg(target_arch = "aarch64")]
mod native {
    pub(super) const AUDIT_ARCH: u32 = 0xC000_00B7;
    pub(super) const SOCKET: u32 = 198;
    pub(super) const IO_URING_SETUP: u32 = 425;
    pub(super) const X32_BIT: Option<u32> = None;
    /// 32-bit ARM processes: (arch, socket, socketcall (none: 0), io_uring_setup).
    pub(super) const COMPAT: Option<(u32, u32, u32, u32)> = Some((0x4000_0028, 281, 0, 425));
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Appends the checks for one architecture, `nr` already loaded: refuse io_uring, refuse
/// `socketcall` if there is one, refuse `socket(AF_UNIX)` unless `unix_sockets`, allow the rest.
fn refusals(
    code: &mut Vec<libc::sock_filter>,
    socket: u32,
    socketcall: u32,
    io_uring_setup: u32,
    unix_sockets: bool,
) {
    code.push(jump(BPF_JEQ_K, io_uring_setup, 0, 1));
    code.push(stmt(BPF_RET_K, RET_ENOSYS));
    if socketcall != 0 && !unix_sockets {
        code.push(jump(BPF_JEQ_K, socketcall, 0, 1));
        code.push(stmt(BPF_RET_K, RET_EACCES));
    }
    if !unix_sockets {
        code.push(jump(BPF_JEQ_K, socket, 0, 3));
        code.push(stmt(BPF_LD_W_ABS, OFFSET_ARG0_LOW));
        code.push(jump(BPF_JEQ_K, libc::AF_UNIX as u32, 0, 1));
        code.push(stmt(BPF_RET_K, RET_EACCES));
    }
    code.push(stmt(BPF_RET_K, RET_ALLOW));
}

impl Filter {
    /// The filter for this architecture; `None` where drover has no numbers for it (the
    /// process then runs without the filter, and the sandbox says so at start).
    pub(crate) fn new(unix_sockets: bool) -> Option<Filter> {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            use native::*;
            let mut code = vec![stmt(BPF_LD_W_ABS, OFFSET_ARCH)];
            let mut native_checks = Vec::new();
            native_checks.push(stmt(BPF_LD_W_ABS, OFFSET_NR));
            if let Some(bit) = X32_BIT {
                native_checks.push(jump(BPF_JGE_K, bit, 0, 1));
                native_checks.push(stmt(BPF_RET_K, RET_ENOSYS));
            }
            refusals(&mut native_checks, SOCKET, 0, IO_URING_SETUP, unix_sockets);
            let skip = u8::try_from(native_checks.len()).ok()?;
            code.push(jump(BPF_JEQ_K, AUDIT_ARCH, 0, skip));
            code.extend(native_checks);
            if let Some((arch, socket, socketcall, io_uring_setup)) = COMPAT {
                let mut compat = vec![stmt(BPF_LD_W_ABS, OFFSET_NR)];
                refusals(
                    &mut compat,
                    socket,
                    socketcall,
                    io_uring_setup,
                    unix_sockets,
                );
                let skip = u8::try_from(compat.len()).ok()?;
                code.push(jump(BPF_JEQ_K, arch, 0, skip));
                code.extend(compat);
            }
            // An architecture the kernel should never report for our processes.
            code.push(stmt(BPF_RET_K, RET_ENOSYS));
            Some(Filter {
                code: code.into_boxed_slice(),
            })
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            let _ = unix_sockets;
            None
        }
    }

    /// The `sock_fprog` for seccomp(2); valid while `self` lives.
    pub(crate) fn prog(&self) -> libc::sock_fprog {
        libc::sock_fprog {
            // At most a few dozen instructions (see `new`).
            len: self.code.len() as u16,
            filter: self.code.as_ptr() as *mut libc::sock_filter,
        }
    }
}

// SAFETY: the filter is immutable once built; the raw pointer in a `sock_fprog` made from it is
// only read by the kernel.
unsafe impl Send for Filter {}
// SAFETY: as above.
unsafe impl Sync for Filter {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_stay_inside_the_program() {
        for unix in [false, true] {
            let filter = Filter::new(unix).expect("a filter for this architecture");
            let len = filter.code.len();
            for (i, ins) in filter.code.iter().enumerate() {
                if ins.code & 0x07 == libc::BPF_JMP as u16 {
                    assert!(i + 1 + (ins.jt.max(ins.jf) as usize) < len, "jump at {i}");
                }
            }
            assert_eq!(filter.code.last().map(|i| i.code), Some(BPF_RET_K));
        }
    }
}

//! A running sandboxed process: its pipes, exit status, and cleanup of its process group.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::spawn::reap_blocking;

/// How a process ended: exactly one of the two fields is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code, if the process exited.
    pub code: Option<i32>,
    /// The signal that killed it, if it was killed.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// True if the process exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => write!(f, "killed by signal {signal}"),
            (None, None) => f.write_str("unknown exit status"),
        }
    }
}

/// A process started by [`Confinement::spawn`](super::Confinement::spawn).
///
/// The process leads its own process group. Its exit is observed without reaping it, so its
/// pid (and with it the process group id) cannot be recycled while this handle exists, which
/// keeps [`Child::kill_group`] safe at any time. Dropping the handle kills the whole group and
/// reaps the process.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
    /// `None` only while being dropped.
    pidfd: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
    stdin: Option<pipe::Sender>,
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
}

impl Child {
    pub(crate) fn new(
        pid: libc::pid_t,
        pidfd: AsyncFd<OwnedFd>,
        stdin: Option<pipe::Sender>,
        stdout: pipe::Receiver,
        stderr: pipe::Receiver,
    ) -> Child {
        Child {
            pid,
            pidfd: Some(pidfd),
            status: None,
            stdin,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// The process id, which is also its process group id.
    pub fn id(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// The read end of the process's stdout, once.
    pub fn take_stdout(&mut self) -> Option<pipe::Receiver> {
        self.stdout.take()
    }

    /// The read end of the process's stderr, once.
    pub fn take_stderr(&mut self) -> Option<pipe::Receiver> {
        self.stderr.take()
    }

    /// The write end of the process's stdin, once, if a stdin pipe was requested.
    pub fn take_stdin(&mut self) -> Option<pipe::Sender> {
        self.stdin.take()
    }

    /// Returns the exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none()
            && let Some(pidfd) = &self.pidfd
        {
            self.status = peek_exit(pidfd.get_ref())?;
        }
        Ok(self.status)
    }

    /// Waits for the process to exit. Closes the stdin pipe first if it was not taken, so a
    /// process reading stdin cannot wait for us while we wait for it.
    ///
    /// Cancel-safe: dropping the future loses nothing, and waiting again (or after exit)
    /// returns the same status. Only the process itself is waited for, not the rest of its group.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            let Some(pidfd) = &self.pidfd else {
                return Err(io::Error::other("child handle is being dropped"));
            };
            let mut guard = pidfd.readable().await?;
            match peek_exit(pidfd.get_ref())? {
                Some(status) => {
                    self.status = Some(status);
                    return Ok(status);
                }
                None => guard.clear_ready(),
            }
        }
    }

    /// Sends SIGKILL to the process and everything in its process group. Safe to call at any
    /// time, also after exit: the unreaped process keeps its group id reserved.
    pub fn kill_group(&self) {
        // SAFETY: kill has no memory-safety preconditions; -pid names our process group.
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill_group();
        let pid = self.pid;
        let Some(pidfd) = self.pidfd.take() else {
            return;
        };
        if self.status.is_some() || matches!(peek_exit(pidfd.get_ref()), Ok(Some(_))) {
            reap_blocking(pid, pidfd.get_ref());
            return;
        }
        // SIGKILL takes a moment to land; reap from the reactor rather than block this thread.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    // Readable means exited; on error reap anyway (blocking, but it is dying).
                    let _ = pidfd.readable().await;
                    reap_blocking(pid, pidfd.get_ref());
                });
            }
            Err(_) => reap_blocking(pid, pidfd.get_ref()),
        }
    }
}

/// Checks, without reaping, whether the process behind `pidfd` has exited.
fn peek_exit(pidfd: &OwnedFd) -> io::Result<Option<ExitStatus>> {
    // SAFETY: all-zero is a valid siginfo_t, and lets us tell "not exited" (si_pid == 0).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pidfd and out-pointer; WNOWAIT leaves the process to be reaped later.
    let rc = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: waitid filled in a SIGCHLD siginfo, whose pid/status fields are valid to read.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(match info.si_code {
        libc::CLD_EXITED => ExitStatus {
            code: Some(status),
            signal: None,
        },
        _ => ExitStatus {
            code: None,
            signal: Some(status),
        },
    }))
}

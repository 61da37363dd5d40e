//! Starting processes on the host, inside the node's sandbox.
//!
//! A driver may only start the programs it lists in
//! [`Capabilities::exec`](crate::Capabilities) and the operator allows. Each
//! process runs in the node's workspace, with no network unless the node has
//! it, and its standard output and error are streamed to the node's log.
//!
//! ```no_run
//! use drover_sdk::exec::Command;
//!
//! # fn main() -> Result<(), drover_sdk::exec::Error> {
//! let status = Command::new("sh")
//!     .arg("-c")
//!     .arg("echo answer=42")
//!     .env("GREETING", "hello")
//!     .capture_stdout()
//!     .timeout_ms(60_000)
//!     .run()?;
//! if status.success() {
//!     drover_sdk::info!("said: {}", status.stdout);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Outside WebAssembly (in unit tests) these functions panic: only the drover
//! host can serve them.

use std::fmt;

use crate::bindings::drover::driver::exec as raw;

pub use raw::ExitStatus;

/// Why a process could not be started or waited for.
///
/// Its `Display` form is `<kind>: <host's message>`, e.g.
/// `not allowed: curl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The program is not on the driver's allowlist (or the operator's).
    NotAllowed(String),
    /// The program was not found on the host's `PATH`.
    NotFound(String),
    /// The command is malformed: a `cwd` outside the workspace, a NUL byte in
    /// an argument, ...
    Invalid(String),
    /// The sandbox could not be set up, and the host will not run the
    /// process unconfined.
    Sandbox(String),
    /// Any other operating-system error.
    Io(String),
}

impl Error {
    /// The host's message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::NotAllowed(m)
            | Error::NotFound(m)
            | Error::Invalid(m)
            | Error::Sandbox(m)
            | Error::Io(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Error::NotAllowed(_) => "not allowed",
            Error::NotFound(_) => "not found",
            Error::Invalid(_) => "invalid command",
            Error::Sandbox(_) => "sandbox error",
            Error::Io(_) => "I/O error",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for Error {}

impl From<raw::Error> for Error {
    fn from(e: raw::Error) -> Self {
        match e {
            raw::Error::NotAllowed(m) => Error::NotAllowed(m),
            raw::Error::NotFound(m) => Error::NotFound(m),
            raw::Error::Invalid(m) => Error::Invalid(m),
            raw::Error::Sandbox(m) => Error::Sandbox(m),
            raw::Error::Io(m) => Error::Io(m),
        }
    }
}

impl ExitStatus {
    /// Whether the process exited by itself with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// The exit code to report for the node: the process's own, or 128 +
    /// the signal that killed it (the shell's convention), or -1 when the
    /// host knows neither.
    pub fn exit_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => -1,
        }
    }
}

impl fmt::Display for ExitStatus {
    /// `exit code 3`, `killed by signal 9`, `timed out`, or `ended`
    /// (nothing known).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.timed_out {
            f.write_str("timed out")
        } else if let Some(code) = self.code {
            write!(f, "exit code {code}")
        } else if let Some(signal) = self.signal {
            write!(f, "killed by signal {signal}")
        } else {
            f.write_str("ended")
        }
    }
}

/// A process to start, built like `std::process::Command`.
///
/// Call [`spawn`](Command::spawn) to start it and get a [`Process`], or
/// [`run`](Command::run) to start it and wait for it to end.
#[derive(Clone, Debug)]
pub struct Command {
    inner: raw::Command,
    options: raw::SpawnOptions,
}

impl Command {
    /// A command that starts `program`: a bare name (looked up on the host's
    /// `PATH`) or an absolute path, which must be in the driver's
    /// [`Capabilities::exec`](crate::Capabilities).
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            inner: raw::Command {
                program: program.into(),
                args: Vec::new(),
                env: Vec::new(),
                cwd: None,
                stdin: None,
                capture_stdout: false,
                timeout_ms: None,
            },
            options: raw::SpawnOptions {
                read_stdout: false,
                private_shm: false,
            },
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl Into<String>) -> &mut Self {
        self.inner.args.push(arg.into());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable. The process gets only the variables
    /// set here, plus `PATH` (the host's, unless set here) and
    /// `DROVER_WORKSPACE`; pass the node's [`Task::env`](crate::Task) with
    /// [`envs`](Command::envs) to forward it.
    pub fn env(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.inner.env.push((key.into(), value.into()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.inner
            .env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Sets the working directory, relative to the node's workspace (the
    /// default). It may not leave the workspace.
    pub fn cwd(&mut self, dir: impl Into<String>) -> &mut Self {
        self.inner.cwd = Some(dir.into());
        self
    }

    /// Sets bytes to write to the process's standard input, which is then
    /// closed. Without it, standard input is empty.
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.inner.stdin = Some(bytes.into());
        self
    }

    /// Keeps the process's standard output, to be returned in
    /// [`ExitStatus::stdout`] (up to a host limit; see
    /// `ExitStatus::stdout_truncated`). It goes to the log either way.
    pub fn capture_stdout(&mut self) -> &mut Self {
        self.inner.capture_stdout = true;
        self
    }

    /// Kills the process after `ms` milliseconds. The node's own deadline
    /// applies in any case.
    pub fn timeout_ms(&mut self, ms: u64) -> &mut Self {
        self.inner.timeout_ms = Some(ms);
        self
    }

    /// Hands the process's standard output to the driver line by line,
    /// through [`Process::read_line`] or [`Process::lines`], while it runs.
    /// The lines still go to the node's log.
    pub fn read_stdout(&mut self) -> &mut Self {
        self.options.read_stdout = true;
        self
    }

    /// Gives the process a private, empty, writable `/dev/shm`, for programs
    /// that need POSIX semaphores or shared memory (Python's
    /// `multiprocessing`, and so ansible).
    pub fn private_shm(&mut self) -> &mut Self {
        self.options.private_shm = true;
        self
    }

    /// Starts the process.
    pub fn spawn(&self) -> Result<Process, Error> {
        let started = if self.options.read_stdout || self.options.private_shm {
            raw::spawn_with(&self.inner, self.options)
        } else {
            raw::spawn(&self.inner)
        };
        started.map(|inner| Process { inner }).map_err(Error::from)
    }

    /// Starts the process and waits for it to end.
    pub fn run(&self) -> Result<ExitStatus, Error> {
        self.spawn()?.wait()
    }
}

/// A started process. Dropping it kills the process and its whole process
/// group, so keep it until [`wait`](Process::wait) returns.
#[derive(Debug)]
pub struct Process {
    inner: raw::Process,
}

impl Process {
    /// The process id, as the host sees it.
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Waits for the process to end, streaming its output to the log
    /// meanwhile.
    pub fn wait(&self) -> Result<ExitStatus, Error> {
        self.inner.wait().map_err(Error::from)
    }

    /// Kills the process and its whole process group.
    pub fn kill(&self) {
        self.inner.kill();
    }

    /// The next line of standard output, as soon as the process has written
    /// it, or `None` once its output has ended. Only for a process started
    /// with [`Command::read_stdout`].
    pub fn read_line(&self) -> Result<Option<String>, Error> {
        self.inner.read_line().map_err(Error::from)
    }

    /// The process's standard output, line by line, as it comes; ends at the
    /// end of output or at the first error. Only for a process started with
    /// [`Command::read_stdout`].
    pub fn lines(&self) -> impl Iterator<Item = Result<String, Error>> + '_ {
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            match self.read_line() {
                Ok(Some(line)) => Some(Ok(line)),
                Ok(None) => {
                    done = true;
                    None
                }
                Err(e) => {
                    done = true;
                    Some(Err(e))
                }
            }
        })
    }
}

/// The absolute path of the node's workspace, as processes see it (to pass
/// paths to programs). Through WASI, the driver sees the same folder as `.`.
pub fn workspace_path() -> String {
    raw::workspace_path()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Option<i32>, signal: Option<i32>, timed_out: bool) -> ExitStatus {
        ExitStatus {
            code,
            signal,
            timed_out,
            stdout: String::new(),
            stdout_truncated: false,
        }
    }

    #[test]
    fn exit_status_display_and_success() {
        assert!(status(Some(0), None, false).success());
        assert!(!status(Some(3), None, false).success());
        assert_eq!(status(Some(3), None, false).to_string(), "exit code 3");
        assert_eq!(
            status(None, Some(9), false).to_string(),
            "killed by signal 9"
        );
        assert_eq!(status(None, Some(9), true).to_string(), "timed out");
        assert!(!status(None, Some(9), true).success());
        assert_eq!(status(None, None, false).to_string(), "ended");
        assert_eq!(status(Some(3), None, false).exit_code(), 3);
        assert_eq!(status(None, Some(9), false).exit_code(), 137);
        assert_eq!(status(None, None, false).exit_code(), -1);
    }

    #[test]
    fn error_display() {
        let e = Error::from(raw::Error::NotAllowed("curl".into()));
        assert_eq!(e, Error::NotAllowed("curl".into()));
        assert_eq!(e.to_string(), "not allowed: curl");
        assert_eq!(e.message(), "curl");
        assert_eq!(
            Error::from(raw::Error::Io("boom".into())).to_string(),
            "I/O error: boom"
        );
    }

    #[test]
    fn command_builder() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .args(["echo", "x"])
            .env("A", "1")
            .envs([("B", "2")])
            .cwd("sub")
            .stdin("in")
            .capture_stdout()
            .timeout_ms(5)
            .read_stdout()
            .private_shm();
        assert!(cmd.options.read_stdout && cmd.options.private_shm);
        let c = &cmd.inner;
        assert_eq!(c.program, "sh");
        assert_eq!(c.args, vec!["-c", "echo", "x"]);
        assert_eq!(
            c.env,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(c.cwd.as_deref(), Some("sub"));
        assert_eq!(c.stdin.as_deref(), Some(&b"in"[..]));
        assert!(c.capture_stdout);
        assert_eq!(c.timeout_ms, Some(5));
    }
}

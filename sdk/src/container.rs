//! Running commands in fresh containers on the host's Docker engine.
//!
//! A driver that declares [`Capabilities::with_container`](crate::Capabilities::with_container)
//! may start containers from the images the operator allows it
//! (`[drivers.<name>] images = [...]`). Each container has the node's
//! workspace mounted at [`WORKSPACE`] (its default working directory), no
//! network unless the node is granted network, and is removed when the
//! [`Container`] is dropped or the node ends, however it ends. Command
//! output goes to the node's log line by line as it comes.
//!
//! ```no_run
//! use drover_sdk::container::{Container, Spec};
//!
//! # fn main() -> Result<(), drover_sdk::container::Error> {
//! let container = Container::start(
//!     &Spec::new("debian:12")
//!         .env("CI", "true")
//!         .memory_mib(512)
//!         .file("/run/secrets/token", "s3cret"),
//! )?;
//! let status = container.sh("make test", Some(600_000))?;
//! if !status.success() {
//!     drover_sdk::error!("tests failed: {status}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Outside WebAssembly (in unit tests) these functions panic: only the drover
//! host can serve them.

use std::fmt;

use crate::bindings::drover::driver::container as raw;

pub use raw::ExitStatus;

/// Where the node's workspace is mounted in every container.
pub const WORKSPACE: &str = "/workspace";

/// Why a container could not be started or a command run.
///
/// Its `Display` form is `<kind>: <host's message>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The driver may not run containers, or not this image; the message
    /// says what the operator can add to the configuration.
    NotAllowed(String),
    /// The engine does not have the image (no registry is reachable).
    ImageNotFound(String),
    /// The Docker engine could not be reached or refused the request.
    Engine(String),
    /// The request is malformed.
    Invalid(String),
}

impl Error {
    /// The host's message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::NotAllowed(m)
            | Error::ImageNotFound(m)
            | Error::Engine(m)
            | Error::Invalid(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Error::NotAllowed(_) => "not allowed",
            Error::ImageNotFound(_) => "image not found",
            Error::Engine(_) => "container engine error",
            Error::Invalid(_) => "invalid request",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for Error {}

impl From<raw::Error> for Error {
    fn from(e: raw::Error) -> Self {
        match e {
            raw::Error::NotAllowed(m) => Error::NotAllowed(m),
            raw::Error::ImageNotFound(m) => Error::ImageNotFound(m),
            raw::Error::Engine(m) => Error::Engine(m),
            raw::Error::Invalid(m) => Error::Invalid(m),
        }
    }
}

impl ExitStatus {
    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

impl fmt::Display for ExitStatus {
    /// `exit code 3`, `timed out`, or `ended`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.timed_out, self.code) {
            (true, _) => f.write_str("timed out"),
            (false, Some(code)) => write!(f, "exit code {code}"),
            (false, None) => f.write_str("ended"),
        }
    }
}

/// What container to start, built step by step.
#[derive(Clone, Debug)]
pub struct Spec {
    inner: raw::Spec,
}

impl Spec {
    /// A container from `image`, which must be on the driver's allowlist and
    /// on the engine.
    pub fn new(image: impl Into<String>) -> Self {
        Spec {
            inner: raw::Spec {
                image: image.into(),
                env: Vec::new(),
                workdir: None,
                limits: raw::Limits {
                    memory_mib: None,
                    cpu_millis: None,
                    pids: None,
                },
                files: Vec::new(),
            },
        }
    }

    /// Sets an environment variable for every command.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner.env.push((key.into(), value.into()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
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

    /// The default working directory (absolute, in the container); without
    /// it, [`WORKSPACE`].
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.inner.workdir = Some(dir.into());
        self
    }

    /// Caps memory (and swap) at `mib` MiB.
    pub fn memory_mib(mut self, mib: u64) -> Self {
        self.inner.limits.memory_mib = Some(mib);
        self
    }

    /// Caps CPU at `millis` thousandths of a CPU (1000 = one CPU).
    pub fn cpu_millis(mut self, millis: u32) -> Self {
        self.inner.limits.cpu_millis = Some(millis);
        self
    }

    /// Caps the number of processes and threads.
    pub fn pids(mut self, pids: u32) -> Self {
        self.inner.limits.pids = Some(pids);
        self
    }

    /// Places a read-only file at `path` (absolute, outside [`WORKSPACE`]),
    /// e.g. a secret. It never touches the workspace and is deleted from the
    /// host with the container.
    pub fn file(mut self, path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        self.inner.files.push(raw::File {
            path: path.into(),
            contents: contents.into(),
        });
        self
    }
}

/// A running container; dropping it kills and removes it.
pub struct Container {
    inner: raw::Container,
}

impl Container {
    /// Starts a fresh container from `spec`.
    pub fn start(spec: &Spec) -> Result<Container, Error> {
        Ok(Container {
            inner: raw::start(&spec.inner)?,
        })
    }

    /// The engine's id of the container.
    pub fn id(&self) -> String {
        self.inner.id()
    }

    /// Runs `argv` (program and arguments, no shell) in the working
    /// directory of the spec, streaming its output to the node's log.
    /// After `timeout_ms` the container is killed and takes no more commands.
    pub fn exec(&self, argv: &[&str], timeout_ms: Option<u64>) -> Result<ExitStatus, Error> {
        self.exec_with(argv, &[], None, timeout_ms)
    }

    /// Like [`exec`](Container::exec), with more environment variables and
    /// another working directory.
    pub fn exec_with(
        &self,
        argv: &[&str],
        env: &[(&str, &str)],
        workdir: Option<&str>,
        timeout_ms: Option<u64>,
    ) -> Result<ExitStatus, Error> {
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(self.inner.exec(&argv, &env, workdir, timeout_ms)?)
    }

    /// Runs `script` with `sh -c`.
    pub fn sh(&self, script: &str, timeout_ms: Option<u64>) -> Result<ExitStatus, Error> {
        self.exec(&["sh", "-c", script], timeout_ms)
    }
}

/// Where the node's workspace is mounted, as the host says ([`WORKSPACE`]).
pub fn workspace_path() -> String {
    raw::workspace_path()
}

//! Reading the secrets the node was granted.
//!
//! A node lists the secrets it needs in its DAG, by name:
//!
//! ```yaml
//! deploy:
//!   driver: my-driver
//!   secrets: {DB_PASS: "vault:secret/data/app#password"}
//! ```
//!
//! The host reads them from the operator's Vault just before
//! [`Driver::run`](crate::Driver::run) and the driver gets exactly those, by
//! name. Only a driver whose [`Capabilities`](crate::Capabilities) ask for
//! secrets ([`Capabilities::with_secrets`](crate::Capabilities::with_secrets))
//! can be given any; `describe` and `validate` never get them.
//!
//! ```no_run
//! use drover_sdk::secrets;
//!
//! # fn main() -> Result<(), secrets::Error> {
//! for name in secrets::names() {
//!     drover_sdk::info!("granted: {name}");
//! }
//! let password = secrets::get("DB_PASS")?;
//! # let _ = password;
//! # Ok(())
//! # }
//! ```
//!
//! The host hides every value from the node's log (through [`log`](crate::log),
//! the output of processes, the driver's own stdout/stderr) and from its
//! outcome (message, output keys and values), writing `[redacted]` instead.
//! It can only recognise a value as it is: one printed in pieces, or
//! encoded (base64, hex, URL escapes, ...), is not hidden. Never transform a
//! secret where it can be seen.
//!
//! Outside WebAssembly (in unit tests) these functions panic: only the drover
//! host can serve them.

use std::fmt;

use crate::bindings::drover::driver::secrets as raw;

/// Why a secret cannot be read.
///
/// Its `Display` form is `<kind>: <host's message>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The node was not granted a secret of this name; the message lists
    /// the names it has.
    NotGranted(String),
    /// Secrets cannot be read here (in `describe` or `validate`).
    Unavailable(String),
}

impl Error {
    /// The host's message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::NotGranted(m) | Error::Unavailable(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Error::NotGranted(_) => "not granted",
            Error::Unavailable(_) => "unavailable",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for Error {}

impl From<raw::Error> for Error {
    fn from(e: raw::Error) -> Self {
        match e {
            raw::Error::NotGranted(m) => Error::NotGranted(m),
            raw::Error::Unavailable(m) => Error::Unavailable(m),
        }
    }
}

/// The names of the secrets this node was granted, sorted.
pub fn names() -> Vec<String> {
    raw::names()
}

/// The value of the secret `name`, one of [`names`].
pub fn get(name: &str) -> Result<String, Error> {
    raw::get(name).map_err(Error::from)
}

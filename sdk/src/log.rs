//! Writing to the node's log, which the host streams live to whoever watches the run.
//!
//! Use the functions ([`info`], [`warn`], ...) for fixed text and the macros
//! ([`info!`](crate::info!), [`warn!`](crate::warn!), ...) to format, as
//! with `format!`:
//!
//! ```no_run
//! drover_sdk::log::info("starting");
//! let attempt = 2;
//! drover_sdk::warn!("retrying, attempt {attempt}");
//! ```
//!
//! Each call writes one log entry; newlines in the message stay part of it.
//! Outside WebAssembly (in unit tests) the entries go to standard error.

pub use crate::bindings::drover::driver::log::Level;

/// Writes one entry at `level` to the node's log.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::drover::driver::log::write(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{}] {message}", level_name(level));
}

#[cfg(not(target_arch = "wasm32"))]
fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// Writes a [`Level::Trace`] entry: fine detail, usually hidden.
pub fn trace(message: impl AsRef<str>) {
    write(Level::Trace, message.as_ref());
}

/// Writes a [`Level::Debug`] entry: detail useful when something goes wrong.
pub fn debug(message: impl AsRef<str>) {
    write(Level::Debug, message.as_ref());
}

/// Writes a [`Level::Info`] entry: what the driver is doing.
pub fn info(message: impl AsRef<str>) {
    write(Level::Info, message.as_ref());
}

/// Writes a [`Level::Warn`] entry: something looks wrong, but the node goes on.
pub fn warn(message: impl AsRef<str>) {
    write(Level::Warn, message.as_ref());
}

/// Writes a [`Level::Error`] entry: something went wrong.
pub fn error(message: impl AsRef<str>) {
    write(Level::Error, message.as_ref());
}

/// Formats its arguments like `format!` and writes them to the node's log as
/// a [`Level::Trace`](crate::log::Level::Trace) entry.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Trace, &::std::format!($($arg)+))
    };
}

/// Formats its arguments like `format!` and writes them to the node's log as
/// a [`Level::Debug`](crate::log::Level::Debug) entry.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)+))
    };
}

/// Formats its arguments like `format!` and writes them to the node's log as
/// a [`Level::Info`](crate::log::Level::Info) entry.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)+))
    };
}

/// Formats its arguments like `format!` and writes them to the node's log as
/// a [`Level::Warn`](crate::log::Level::Warn) entry.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)+))
    };
}

/// Formats its arguments like `format!` and writes them to the node's log as
/// an [`Level::Error`](crate::log::Level::Error) entry.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)+))
    };
}

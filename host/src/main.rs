//! The `drover` command line.

mod cli;

// The server allocates many small, short-lived objects per request and
// event; mimalloc serves them markedly faster than glibc's malloc (see
// BENCHMARKS.md, `--bench serve`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// For `drover run`, a short-lived process that frees and allocates the same
/// per-node memory again and again: mimalloc keeps freed memory instead of
/// returning it to the OS 10 ms later, so the next node's allocations do
/// not fault in fresh pages (about a tenth of drover's CPU per short node).
/// Peak memory is unchanged; only its return to the OS waits for the exit.
pub(crate) fn keep_freed_memory() {
    // mimalloc's `mi_option_purge_delay` (15 in both its v2 and v3
    // headers); -1 means never purge.
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // SAFETY: sets one of mimalloc's options, read atomically on each purge.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() -> std::process::ExitCode {
    cli::main()
}

//! The `drover` command line.

mod cli;

// The server allocates many small, short-lived objects per request and
// event; mimalloc serves them markedly faster than glibc's malloc (see
// BENCHMARKS.md, `--bench serve`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}

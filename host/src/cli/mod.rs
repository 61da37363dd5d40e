//! Command-line parsing and the dispatch to each subcommand.

mod config;
mod driver;
mod drone;
mod import;
mod log_writer;
mod plugin;
mod run;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use drover::config::Config;

/// Run DAGs of work through sandboxed WebAssembly drivers.
#[derive(Debug, Parser)]
#[command(name = "drover", version, about)]
struct Cli {
    /// Configuration file (TOML): limits, sandbox settings, driver policy. Without one,
    /// $XDG_CONFIG_HOME/drover/config.toml (~/.config/...), then /etc/drover/config.toml, is
    /// read if it exists (`drover config path` says which).
    #[arg(long, global = true, env = "DROVER_CONFIG")]
    config: Option<PathBuf>,
    /// Where drover keeps compiled drivers, workspaces and (for serve) its runs database.
    #[arg(long, global = true, env = "DROVER_DATA")]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a DAG file: nodes start as soon as their needs succeed.
    Run(run::RunArgs),
    /// Serve the HTTP API: submit DAGs, watch them run; runs survive restarts.
    Serve(serve::ServeArgs),
    /// Print a DAG file as a graph (Graphviz dot or Mermaid).
    Graph(run::GraphArgs),
    /// Turn another tool's file into a DAG (TOSCA service templates), or run it at once.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Try a driver on its own: run one node, describe a driver, list the built-in ones.
    #[command(subcommand)]
    Driver(driver::DriverCommand),
    /// Publish, list, inspect and sign plugins (driver components) of a running drover.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Run nodes for leaders: take them from Redis, run them here, report back.
    Drone(drone::DroneArgs),
    /// Show the configuration in effect and where it comes from.
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Human-readable, with live logs.
    #[default]
    Text,
    /// One JSON object on stdout (logs go to stderr).
    Json,
}

/// Exit codes shared by every subcommand.
pub mod exit {
    /// Everything succeeded.
    pub const SUCCESS: u8 = 0;
    /// The work ran and failed.
    pub const FAILURE: u8 = 1;
    /// The input was invalid; nothing ran.
    pub const BAD_INPUT: u8 = 2;
}

/// An error for the user: what went wrong, and the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl CliError {
    /// Bad input: exit code 2.
    pub fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            code: exit::BAD_INPUT,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(error: E) -> Self {
        CliError {
            code: exit::FAILURE,
            error: error.into(),
        }
    }
}

pub use drover::runs::new_run_id;

/// A token that Ctrl-C cancels, saying `message` on stderr when it does.
pub fn cancel_on_ctrl_c(message: &'static str) -> tokio_util::sync::CancellationToken {
    let cancel = tokio_util::sync::CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("{message}");
            trigger.cancel();
        }
    });
    cancel
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = log_writer::StderrThread::start();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DROVER_LOG").unwrap_or_else(|_| {
                // A server logs each request it answers; the rest of drover
                // speaks up only about trouble.
                tracing_subscriber::EnvFilter::new(match cli.command {
                    Command::Serve(_) => "warn,drover::access=info",
                    _ => "warn",
                })
            }),
        )
        // Colours only for a person watching: a log sent to a file or a
        // pipe stays plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match &log {
        Some(log) => subscriber.with_writer(log.clone()).init(),
        None => subscriber.with_writer(std::io::stderr).init(),
    }
    // `drover run` drives its nodes from one thread (see
    // `transport::NodeThreads`): on few cores, every wake-up between the
    // worker threads of a multi-threaded runtime shows on short nodes.
    let runs_dag = match &cli.command {
        Command::Run(_) => true,
        Command::Import(import) => import.runs(),
        _ => false,
    };
    if runs_dag {
        crate::keep_freed_memory();
    }
    let mut builder = if runs_dag {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    if !matches!(cli.command, Command::Serve(_) | Command::Drone(_)) {
        // Printing commands end quietly when their reader goes away
        // (`drover driver describe x | head`), as other Unix tools do. The
        // server keeps Rust's default: a closed socket is an error there.
        // SAFETY: changing a disposition to SIG_DFL installs no Rust code.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = runtime.block_on(async move {
        let file = config_file(&cli);
        let config = load_config(&cli, file.as_deref())?;
        match cli.command {
            Command::Run(args) => run::run(args, config).await,
            Command::Graph(args) => run::graph(args, config),
            Command::Import(cmd) => import::run(cmd, config).await,
            Command::Serve(args) => serve::serve(args, config).await,
            Command::Driver(cmd) => driver::run(cmd, config).await,
            Command::Plugin(cmd) => plugin::run(cmd).await,
            Command::Drone(args) => drone::drone(args, config).await,
            Command::Config(cmd) => config::run(cmd, &config, file.as_deref()),
        }
    });
    // What was logged goes out before the process ends.
    if let Some(log) = &log {
        log.flush();
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {:#}", e.error);
            ExitCode::from(e.code)
        }
    }
}

/// The plugin registry over `runtime`, with the plugins folder (if any)
/// published; what the folder could not publish is a warning, not an error.
pub async fn open_registry(
    runtime: drover::runtime::Runtime,
) -> Result<drover::registry::Registry, CliError> {
    let registry = drover::registry::Registry::open(runtime)?;
    for problem in registry.sync_folder().await {
        eprintln!("warning: plugins folder: {problem}");
    }
    Ok(registry)
}

/// The configuration file in use: the one named, else the first default that exists.
fn config_file(cli: &Cli) -> Option<PathBuf> {
    cli.config.clone().or_else(config::default_file)
}

fn load_config(cli: &Cli, file: Option<&std::path::Path>) -> Result<Config, CliError> {
    let mut config = match file {
        Some(path) => Config::load(path).map_err(CliError::bad_input)?,
        None => Config::default(),
    };
    if let Some(data) = &cli.data {
        config.data_dir = Some(data.clone());
    }
    // The one place the environment's VAULT_* variables count, so that serve, run, drone
    // and `config show` all see the same Vault, and its token file is checked below.
    config.vault = drover::config::resolve_vault(
        config.vault.take(),
        &drover::config::VaultEnv::from_process(),
    )
    .map_err(|e| match (file, &e) {
        (Some(path), drover::config::VaultSettingsError::Partial { .. }) => CliError::bad_input(
            anyhow::Error::new(e).context(format!("invalid config file {}", path.display())),
        ),
        _ => CliError::bad_input(e),
    })?;
    check_private_paths(&config, file, &[])?;
    Ok(config)
}

/// Refuses to start when a node could read one of drover's own secrets
/// through the sandbox's read-only paths (`extra`: more such paths).
pub fn check_private_paths(
    config: &Config,
    file: Option<&std::path::Path>,
    extra: &[(&'static str, PathBuf)],
) -> Result<(), CliError> {
    let mut private = config.private_paths(file);
    private.extend(extra.iter().cloned());
    let private: Vec<(&str, &std::path::Path)> =
        private.iter().map(|(w, p)| (*w, p.as_path())).collect();
    drover::runtime::exec::sandbox_config(&config.sandbox)
        .check_private(&private)
        .map_err(CliError::bad_input)
}

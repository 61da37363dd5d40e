//! `drover driver`: run one node with one driver, outside any DAG, so that
//! driver authors can try what they wrote; describe and list drivers.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use drover::config::Config;
use drover::registry::Origin;
use drover::runtime::{Driver, NodeContext, Runtime};
use drover::task::{LogLevel, LogLine, LogSource, NodeStatus, Outcome, Task};
use drover_duration::parse_duration;
use serde::Serialize;

use super::{CliError, OutputFormat, cancel_on_ctrl_c, exit, new_run_id, open_registry};

#[derive(Debug, Subcommand)]
pub enum DriverCommand {
    /// Run one node with a driver and print its outcome.
    Run(RunArgs),
    /// Print what a driver says about itself.
    Describe {
        /// A built-in driver name or a path to a `.wasm` component.
        driver: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// List the built-in drivers.
    List,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A built-in driver name (`shell`, `noop`, `sleep`) or a path to a `.wasm` component.
    driver: String,
    /// The node's artifact (for `shell`: a script file or an inline script).
    #[arg(long, default_value = "")]
    artifact: String,
    /// An argument for the node; repeat for more.
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    args: Vec<String>,
    /// An environment variable for the node, as KEY=VALUE; repeat for more.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// A secret for the node, as NAME=vault:PATH#KEY (read from the
    /// configured `[vault]`); repeat for more.
    #[arg(long = "secret", value_name = "NAME=REFERENCE")]
    secrets: Vec<String>,
    /// The name of an output the node is expected to produce; repeat for more.
    #[arg(long = "expect-output", value_name = "NAME")]
    outputs: Vec<String>,
    /// Stop the node after this long (`30s`, `5m`, ...).
    #[arg(long)]
    timeout: Option<String>,
    /// Run in this folder instead of a fresh one (kept afterwards).
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// Keep the fresh workspace instead of removing it.
    #[arg(long)]
    keep_workspace: bool,
    /// The node's name.
    #[arg(long, default_value = "node")]
    name: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

pub async fn run(cmd: DriverCommand, config: Config) -> Result<u8, CliError> {
    match cmd {
        DriverCommand::Run(args) => run_node(args, config).await,
        DriverCommand::Describe { driver, output } => {
            let runtime = Runtime::new(config)?;
            let driver = load(&runtime, &driver).await?;
            let d = driver.description();
            match output {
                OutputFormat::Json => {
                    #[derive(Serialize)]
                    struct Described<'a> {
                        digest: &'a str,
                        #[serde(flatten)]
                        description: &'a drover::runtime::Description,
                    }
                    let json = serde_json::to_string_pretty(&Described {
                        digest: driver.digest(),
                        description: d,
                    })?;
                    println!("{json}");
                }
                OutputFormat::Text => {
                    let c = &d.capabilities;
                    println!("{} {} (sha256:{})", d.name, d.version, driver.digest());
                    println!("  {}", d.summary);
                    println!("artifact: {}", d.artifact);
                    println!("args:     {}", d.args);
                    println!("outputs:  {}", d.outputs);
                    println!(
                        "needs:    exec [{}], workspace {}, network {}, container {}, secrets {}",
                        c.exec.join(", "),
                        c.workspace,
                        c.network,
                        c.container,
                        c.secrets
                    );
                }
            }
            Ok(exit::SUCCESS)
        }
        DriverCommand::List => {
            let registry = open_registry(Runtime::new(config)?).await?;
            for (name, versions) in registry.list() {
                let versions: Vec<String> = versions
                    .iter()
                    .map(|v| format!("{} ({})", v.version, origin_label(&v.origin)))
                    .collect();
                println!("{name}\t{}", versions.join(", "));
            }
            Ok(exit::SUCCESS)
        }
    }
}

/// How a version got into the registry, in a word.
pub fn origin_label(origin: &Origin) -> &'static str {
    match origin {
        Origin::Builtin => "built-in",
        Origin::Upload => "uploaded",
        Origin::Folder(_) => "plugins folder",
    }
}

/// Loads a driver as a DAG node would name it: a published name (with an
/// optional version requirement or digest) or a component file.
async fn load(runtime: &Runtime, spec: &str) -> Result<Driver, CliError> {
    let registry = open_registry(runtime.clone()).await?;
    // Component files are named relative to where the user stands.
    let here = std::env::current_dir()?;
    registry
        .resolve(spec, Some(&here), None)
        .await
        .map_err(|e| CliError::bad_input(anyhow!("cannot load driver `{spec}`: {e}")))
}

fn parse_env(pairs: &[String]) -> Result<Vec<(String, String)>, CliError> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(CliError::bad_input(anyhow!(
                "--env `{pair}` must be KEY=VALUE"
            ))),
        })
        .collect()
}

/// `--secret` pairs, checked as a DAG's `secrets` are.
fn parse_secrets(
    pairs: &[String],
    config: &Config,
    driver: &Driver,
) -> Result<Vec<(String, String)>, CliError> {
    let secrets: Vec<(String, String)> = pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(CliError::bad_input(anyhow!(
                "--secret `{pair}` must be NAME=vault:PATH#KEY"
            ))),
        })
        .collect::<Result<_, _>>()?;
    let mut problems: Vec<String> = drover::secrets::syntax_problems(&secrets)
        .into_iter()
        .map(|(field, message)| format!("  --secret ({field}): {message}"))
        .collect();
    problems.extend(
        drover::secrets::grant_problems(
            config,
            "node",
            &secrets,
            driver.name(),
            driver.description().capabilities.secrets,
        )
        .into_iter()
        .map(|p| format!("  --secret: {}", p.message)),
    );
    if problems.is_empty() {
        Ok(secrets)
    } else {
        Err(CliError::bad_input(anyhow!(
            "the node's secrets cannot be given:\n{}",
            problems.join("\n")
        )))
    }
}

async fn run_node(args: RunArgs, config: Config) -> Result<u8, CliError> {
    let env = parse_env(&args.env)?;
    let timeout: Option<Duration> = args
        .timeout
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(CliError::bad_input)?;
    let runtime = Runtime::new(config)?;
    let driver = load(&runtime, &args.driver).await?;
    let secrets = parse_secrets(&args.secrets, runtime.config(), &driver)?;

    let run_id = new_run_id();
    let mut task = Task {
        run_id: run_id.clone(),
        node: args.name.clone(),
        attempt: 1,
        artifact: args.artifact.clone(),
        artifact_file: None,
        args: args.args.clone(),
        env,
        inputs: Vec::new(),
        outputs: args.outputs.clone(),
        deadline: timeout.map(|t| SystemTime::now() + t),
        grants: None,
        secrets,
    };
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    task.resolve_artifact_file(&cwd);

    let problems = runtime
        .validate(&driver, &task)
        .await
        .map_err(CliError::bad_input)?;
    if !problems.is_empty() {
        let list: Vec<String> = problems
            .iter()
            .map(|p| format!("  node `{}`, field `{}`: {}", task.node, p.field, p.message))
            .collect();
        return Err(CliError::bad_input(anyhow!(
            "driver `{}` refused the node:\n{}",
            driver.name(),
            list.join("\n")
        )));
    }

    let (workspace, remove_after) = match &args.workspace {
        Some(dir) => (dir.clone(), false),
        None => (
            runtime
                .config()
                .workspace_dir()
                .join(&run_id)
                .join(&task.node),
            !args.keep_workspace,
        ),
    };

    let (logs, mut lines) = tokio::sync::mpsc::channel::<LogLine>(1024);
    let format = args.output;
    let printer = tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            print_log_line(&line, format);
        }
    });
    let cancel = cancel_on_ctrl_c("canceling…");
    let outcome = runtime
        .run(
            &driver,
            task,
            NodeContext {
                workspace: workspace.clone(),
                logs,
                cancel,
            },
        )
        .await;
    // All senders are gone once `run` returns: the printer drains and ends.
    let _ = printer.await;
    if remove_after && workspace.exists() {
        let _ = std::fs::remove_dir_all(workspace.parent().unwrap_or(&workspace));
    }
    print_outcome(&outcome, format)?;
    Ok(match outcome.status {
        NodeStatus::Success => exit::SUCCESS,
        _ => exit::FAILURE,
    })
}

fn print_log_line(line: &LogLine, format: OutputFormat) {
    let tag = match (line.source, line.level) {
        (LogSource::Stderr, _) => "stderr",
        (LogSource::Stdout, _) => "stdout",
        (LogSource::Driver | LogSource::Drover, LogLevel::Error) => "error",
        (LogSource::Driver | LogSource::Drover, LogLevel::Warn) => "warn",
        (LogSource::Driver | LogSource::Drover, LogLevel::Info) => "info",
        (LogSource::Driver | LogSource::Drover, LogLevel::Debug) => "debug",
        (LogSource::Driver | LogSource::Drover, LogLevel::Trace) => "trace",
    };
    // Escaped: a driver's text must not end the line and forge drover's.
    let text = format!(
        "[{}] {tag}: {}",
        line.node,
        drover::runtime::escape_controls(&line.message)
    );
    match format {
        // stdout is reserved for the JSON outcome.
        OutputFormat::Json => eprintln!("{text}"),
        OutputFormat::Text => println!("{text}"),
    }
}

fn print_outcome(outcome: &Outcome, format: OutputFormat) -> Result<(), CliError> {
    match format {
        OutputFormat::Json => {
            println!("{}", serde_json::to_string(outcome)?);
        }
        OutputFormat::Text => {
            let code = outcome
                .exit_code
                .map(|c| format!(" (exit code {c})"))
                .unwrap_or_default();
            println!("{}{code}", outcome.status);
            if !outcome.message.is_empty() {
                println!("  {}", outcome.message);
            }
            for (key, value) in &outcome.outputs {
                println!("  output {key}={value}");
            }
        }
    }
    Ok(())
}

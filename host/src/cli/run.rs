//! `drover run FILE` and `drover graph FILE`: run a DAG from the command
//! line with live progress, or print it as a graph.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use drover::admission;
use drover::config::Config;
use drover::dag::{self, Dag, DagError, NodeState};
use drover::engine::{self, Event, Options, RunRecord, RunState};
use drover::registry::Registry;
use drover::runtime::Runtime;
use drover::task::{LogLine, LogSource};
use drover::transport::{LocalDispatch, NodeThreads};
use drover_duration::parse_duration;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{CliError, OutputFormat, cancel_on_ctrl_c, exit, new_run_id, open_registry};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The DAG file: drover's YAML/JSON format or gorchestrator's JSON.
    file: PathBuf,
    #[command(flatten)]
    options: RunOptions,
}

/// How a DAG runs: `drover run`'s flags, which `drover import tosca --run` shares.
#[derive(Debug, Args)]
pub struct RunOptions {
    /// How many nodes may run at once (default: the number of cores).
    #[arg(long, short = 'j')]
    pub parallelism: Option<usize>,
    /// Stop the run at the first node that fails for good.
    #[arg(long)]
    pub fail_fast: bool,
    /// Stop the whole run after this long (`10m`, `1h`, ...).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Keep the nodes' workspaces after the run (under the data folder).
    #[arg(long)]
    pub keep_workspaces: bool,
    /// Output format: live progress and a summary, or the run record as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// A DAG to run: its text, the folder its relative paths are in, and the
/// file it is named by in messages.
pub struct DagSource {
    pub text: String,
    pub base: Option<PathBuf>,
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The DAG file.
    file: PathBuf,
    /// Graph language. (`--output` is the one name every command gives its output format;
    /// `--format` is still read, for scripts written before.)
    #[arg(long, alias = "format", value_enum, default_value_t = GraphFormat::Dot)]
    output: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Reads and validates a DAG file (structure and driver names only).
fn read_dag(file: &Path, registry: &Registry) -> Result<Dag, CliError> {
    let text = read_text(file)?;
    let base = base_dir(file);
    let exists = |driver: &str| registry.exists(driver, base.as_deref());
    dag::parse(&text, base.as_deref(), &exists).map_err(|e| invalid(file, e))
}

/// Checks a DAG for running, everything before it runs: every problem, of
/// the graph and of each node's driver, in one answer.
async fn accept_source(
    source: &DagSource,
    registry: &Registry,
    parallelism: usize,
) -> Result<admission::Accepted, CliError> {
    admission::accept(
        registry,
        &source.text,
        source.base.as_deref(),
        parallelism,
        &BTreeMap::new(),
    )
    .await
    .map_err(|refused| invalid(&source.file, refused.problems().clone()))
}

fn read_text(file: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(CliError::bad_input)
}

/// The DAG file's folder, canonical: where relative drivers and artifact files are.
fn base_dir(file: &Path) -> Option<PathBuf> {
    file.parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .and_then(|p| p.canonicalize().ok())
}

pub(super) fn invalid(file: &Path, e: DagError) -> CliError {
    CliError::bad_input(anyhow!(
        "{} is not a valid DAG ({} problem{}):\n{}",
        file.display(),
        e.problems.len(),
        if e.problems.len() == 1 { "" } else { "s" },
        e.problems
            .iter()
            .map(|p| format!("  {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

pub fn graph(args: GraphArgs, config: Config) -> Result<u8, CliError> {
    let registry = Registry::open(Runtime::new(config)?)?;
    let dag = read_dag(&args.file, &registry)?;
    let text = match args.output {
        GraphFormat::Dot => dag::to_dot(&dag),
        GraphFormat::Mermaid => dag::to_mermaid(&dag),
    };
    println!("{}", text.trim_end());
    Ok(exit::SUCCESS)
}

pub async fn run(args: RunArgs, config: Config) -> Result<u8, CliError> {
    let source = DagSource {
        text: read_text(&args.file)?,
        base: base_dir(&args.file),
        file: args.file,
    };
    run_source(source, args.options, config).await
}

/// Runs a DAG with live progress and a summary (or the run record as JSON).
pub async fn run_source(
    source: DagSource,
    args: RunOptions,
    config: Config,
) -> Result<u8, CliError> {
    let started = Instant::now();
    let run_timeout = args
        .timeout
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(CliError::bad_input)?;
    let parallelism = args
        .parallelism
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if parallelism == 0 {
        return Err(CliError::bad_input(anyhow!(
            "--parallelism must be at least 1"
        )));
    }
    // Each running node holds a driver instance from a fixed pool.
    let max_instances = config.limits.max_instances.max(1) as usize;
    let parallelism = if parallelism > max_instances {
        eprintln!(
            "warning: --parallelism {parallelism} is more than limits.max_instances ({max_instances}); running {max_instances} nodes at once"
        );
        max_instances
    } else {
        parallelism
    };
    let registry = open_registry(Runtime::new(config)?).await?;
    let runtime = registry.runtime().clone();
    // Containers of drovers that died are removed before new ones start.
    runtime.containers().remove_leftovers().await;
    let admission::Accepted { dag, drivers } =
        accept_source(&source, &registry, parallelism).await?;

    let run_id = new_run_id();
    let workspaces = runtime.config().workspace_dir().join(&run_id);
    // As many threads for nodes as run at once, up to the cores; kept until
    // the containers removed from them have settled.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = NodeThreads::start(parallelism.min(cores))
        .map_err(|e| CliError::from(anyhow!("cannot start the node threads: {e}")))?;
    let mut dispatch = LocalDispatch::new(runtime.clone(), drivers, workspaces.clone())
        .on_threads(threads.clone());
    // Unless they are kept, nodes work in recycled folders, and a folder a
    // node left files in goes when the node is final, on a thread of its
    // own: removing a thousand folders at the end took whole seconds on a
    // busy ext4, all of it after the last node.
    if !args.keep_workspaces {
        dispatch = dispatch.recycling_workspaces();
    }
    let node_workspaces = Arc::clone(dispatch.workspaces());
    let dispatch = Arc::new(dispatch);
    let cancel = cancel_on_ctrl_c("canceling the run…");
    let (events, rx) = tokio::sync::mpsc::channel(4096);
    let progress = tokio::spawn(show_progress(dag.clone(), rx, args.output));
    let options = Options {
        parallelism,
        fail_fast: args.fail_fast,
        run_timeout,
        log_limits: runtime.config().limits.log_limits(),
        ..Options::default()
    };
    let record = engine::run(dag.clone(), run_id, dispatch, options, events, cancel).await;
    // Containers whose removal began when their node was dropped.
    runtime
        .containers()
        .settle(std::time::Duration::from_secs(30))
        .await;
    let _ = progress.await;
    drop(threads);
    node_workspaces.finish();
    if !args.keep_workspaces {
        let _ = std::fs::remove_dir_all(&workspaces);
    }
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string(&record)?),
        OutputFormat::Text => print_summary(
            &record,
            started.elapsed(),
            args.keep_workspaces.then_some(&workspaces),
        ),
    }
    Ok(match record.state {
        RunState::Success => exit::SUCCESS,
        _ => exit::FAILURE,
    })
}

/// Live progress: a bar with counts per state and the running nodes on a
/// terminal; plain lines otherwise. Log lines are prefixed with their node.
async fn show_progress(
    dag: Arc<Dag>,
    mut events: tokio::sync::mpsc::Receiver<Event>,
    format: OutputFormat,
) {
    let interactive = format == OutputFormat::Text && std::io::stderr().is_terminal();
    let bar = if interactive {
        let bar = ProgressBar::with_draw_target(
            Some(dag.nodes.len() as u64),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    } else {
        None
    };
    let mut states = vec![NodeState::Initial; dag.nodes.len()];
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    counts.insert(NodeState::Initial.as_str(), dag.nodes.len());
    let mut running: BTreeMap<usize, ()> = BTreeMap::new();
    let mut done = 0u64;
    while let Some(event) = events.recv().await {
        match event {
            Event::Log(line) => {
                let text = log_text(&line);
                match (&bar, format) {
                    (Some(bar), _) => bar.println(text),
                    (None, OutputFormat::Text) => println!("{text}"),
                    (None, OutputFormat::Json) => eprintln!("{text}"),
                }
            }
            Event::NodeState {
                node,
                state,
                attempt,
                ..
            } => {
                let old = std::mem::replace(&mut states[node], state);
                if let Some(c) = counts.get_mut(old.as_str()) {
                    *c = c.saturating_sub(1);
                }
                *counts.entry(state.as_str()).or_default() += 1;
                if state == NodeState::Running {
                    running.insert(node, ());
                } else {
                    running.remove(&node);
                }
                if state.is_final() {
                    done += 1;
                }
                match &bar {
                    Some(bar) => {
                        bar.set_position(done);
                        let names: Vec<&str> = running
                            .keys()
                            .take(4)
                            .map(|&i| dag.nodes[i].name.as_str())
                            .collect();
                        let more = running.len().saturating_sub(names.len());
                        let tally: Vec<String> = counts
                            .iter()
                            .filter(|(_, n)| **n > 0)
                            .map(|(s, n)| format!("{s} {n}"))
                            .collect();
                        bar.set_message(format!(
                            "{} | running: {}{}",
                            tally.join(", "),
                            names.join(" "),
                            if more > 0 {
                                format!(" +{more}")
                            } else {
                                String::new()
                            }
                        ));
                    }
                    None if format == OutputFormat::Text && state != NodeState::ToRun => {
                        let retry = if attempt > 1 {
                            format!(" (attempt {attempt})")
                        } else {
                            String::new()
                        };
                        println!("[{}] {}{retry}", dag.nodes[node].name, state.as_str());
                    }
                    None => {}
                }
            }
            Event::Retry {
                node,
                attempt,
                state,
                delay,
                error,
            } => {
                let name = &dag.nodes[node].name;
                let text = if state == NodeState::Interrupted {
                    format!("[{name}] attempt {attempt} was interrupted; running it again")
                } else {
                    format!("[{name}] attempt {attempt} failed ({error}); retrying in {delay:?}")
                };
                match &bar {
                    Some(bar) => bar.println(text),
                    None => eprintln!("{text}"),
                }
            }
            Event::Attempt { .. } => {}
            Event::Finished(_) => break,
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

fn log_text(line: &LogLine) -> String {
    let stream = match line.source {
        LogSource::Stdout => "",
        LogSource::Stderr => "stderr: ",
        LogSource::Driver => "driver: ",
        LogSource::Drover => "drover: ",
    };
    // Escaped: a driver's or a process's text must not end the line (or
    // move the cursor) and forge drover's own lines.
    format!(
        "[{}] {stream}{}",
        line.node,
        drover::runtime::escape_controls(&line.message)
    )
}

fn print_summary(record: &RunRecord, took: Duration, workspaces: Option<&PathBuf>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for node in &record.nodes {
        *counts.entry(node.state.as_str()).or_default() += 1;
    }
    let tally: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!(
        "\nrun {} `{}`: {} in {:.2}s ({})",
        record.id,
        record.name,
        record.state.as_str(),
        took.as_secs_f64(),
        tally.join(", ")
    );
    let bad: Vec<_> = record
        .nodes
        .iter()
        .filter(|n| !matches!(n.state, NodeState::Success | NodeState::NotRunnable))
        .collect();
    for node in bad.iter().take(20) {
        println!(
            "  {} {}: {}",
            node.state.as_str(),
            node.name,
            node.error.as_deref().unwrap_or("")
        );
    }
    if bad.len() > 20 {
        println!("  … and {} more", bad.len() - 20);
    }
    if let Some(dir) = workspaces {
        println!("workspaces kept in {}", dir.display());
    }
}

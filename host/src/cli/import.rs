//! `drover import tosca FILE`: turn a TOSCA service template into a DAG in drover's native
//! format, printed or written to a file, or run at once the way `drover run` runs a file.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use drover::config::Config;
use drover::dag;
use drover::registry::Registry;
use drover::runtime::Runtime;
use drover::tosca::{self, ImportError, Issue, IssueKind};

use super::run::{self, DagSource, RunOptions};
use super::{CliError, OutputFormat, exit};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// A TOSCA Simple Profile YAML service template: its node templates' create, configure and
    /// start operations become `template:operation` nodes, requirements their needs.
    Tosca(ToscaArgs),
}

impl ImportCommand {
    /// Whether the command runs the DAG (then it runs as `drover run` does).
    pub fn runs(&self) -> bool {
        match self {
            ImportCommand::Tosca(args) => args.run,
        }
    }
}

#[derive(Debug, Args)]
pub struct ToscaArgs {
    /// The service template (YAML).
    file: PathBuf,
    /// A YAML file of values for the template's inputs (`name: value`); inputs it does not
    /// give take their defaults.
    #[arg(long, value_name = "FILE")]
    inputs: Option<PathBuf>,
    /// Leave out what drover does not translate, with a warning for each, instead of refusing
    /// the template.
    #[arg(long)]
    allow_unsupported: bool,
    /// The DAG's format.
    #[arg(long, value_enum, default_value_t)]
    format: DagFormat,
    /// Write the DAG to this file instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
    /// Run the DAG at once, as `drover run` runs a file (with `-o`, also write it).
    #[arg(long)]
    run: bool,
    /// With --run: how many nodes may run at once (default: the number of cores).
    #[arg(long, short = 'j', requires = "run")]
    parallelism: Option<usize>,
    /// With --run: stop the run at the first node that fails for good.
    #[arg(long, requires = "run")]
    fail_fast: bool,
    /// With --run: stop the whole run after this long (`10m`, `1h`, ...).
    #[arg(long, requires = "run")]
    timeout: Option<String>,
    /// With --run: keep the nodes' workspaces after the run (under the data folder).
    #[arg(long, requires = "run")]
    keep_workspaces: bool,
    /// With --run: live progress and a summary, or the run record as JSON.
    #[arg(long, value_enum, default_value_t, requires = "run")]
    output: OutputFormat,
}

/// The format a DAG is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DagFormat {
    #[default]
    Yaml,
    Json,
}

pub async fn run(cmd: ImportCommand, config: Config) -> Result<u8, CliError> {
    match cmd {
        ImportCommand::Tosca(args) => tosca(args, config).await,
    }
}

async fn tosca(args: ToscaArgs, config: Config) -> Result<u8, CliError> {
    let options = tosca::Options {
        inputs: args.inputs.clone(),
        allow_unsupported: args.allow_unsupported,
    };
    let imported = match tosca::import(&args.file, &options) {
        Ok(imported) => imported,
        Err(ImportError::Refused { issues }) => return Err(refused(&args, &issues)),
        Err(e) => return Err(CliError::bad_input(e)),
    };
    for warning in &imported.warnings {
        let mark = match warning.kind {
            IssueKind::Unsupported => " (unsupported)",
            _ => "",
        };
        eprintln!("warning: {warning}{mark}");
    }
    let source = args.file.display().to_string();
    let yaml = imported
        .dag
        .to_yaml(&source)
        .context("cannot write the DAG as YAML")?;
    let written = match args.format {
        DagFormat::Yaml => yaml.clone(),
        DagFormat::Json => imported
            .dag
            .to_json()
            .context("cannot write the DAG as JSON")?,
    };
    if args.run {
        if let Some(out) = &args.out {
            write(out, &written)?;
        }
        let options = RunOptions {
            parallelism: args.parallelism,
            fail_fast: args.fail_fast,
            timeout: args.timeout,
            keep_workspaces: args.keep_workspaces,
            output: args.output,
        };
        let dag = DagSource {
            text: yaml,
            base: Some(imported.folder),
            file: args.file,
        };
        return run::run_source(dag, options, config).await;
    }
    // What is printed is what `drover run` would accept.
    let registry = Registry::open(Runtime::new(config)?)?;
    let base = imported.folder.as_path();
    dag::parse_native(&yaml, Some(base), &|driver| {
        registry.exists(driver, Some(base))
    })
    .map_err(|e| run::invalid(&args.file, e))?;
    match &args.out {
        Some(out) => write(out, &written)?,
        None => print!("{written}"),
    }
    Ok(exit::SUCCESS)
}

fn write(path: &PathBuf, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text)
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(CliError::from)
}

/// Every problem of a refused template, each with where it is.
fn refused(args: &ToscaArgs, issues: &[Issue]) -> CliError {
    let problems: Vec<&Issue> = issues
        .iter()
        .filter(|i| i.kind != IssueKind::Warning)
        .collect();
    let unsupported = problems
        .iter()
        .filter(|i| i.kind == IssueKind::Unsupported)
        .count();
    for warning in issues.iter().filter(|i| i.kind == IssueKind::Warning) {
        eprintln!("warning: {warning}");
    }
    let allowed = match unsupported {
        0 => String::new(),
        n if n == problems.len() => {
            "; all are unsupported constructs, which --allow-unsupported leaves out".to_owned()
        }
        n => format!(
            "; the {n} marked (unsupported) are left out with --allow-unsupported, the others must be fixed"
        ),
    };
    let lines: Vec<String> = problems
        .iter()
        .map(|i| {
            let mark = if i.kind == IssueKind::Unsupported {
                " (unsupported)"
            } else {
                ""
            };
            format!("  {i}{mark}")
        })
        .collect();
    CliError::bad_input(anyhow!(
        "{} cannot be imported ({} problem{}{allowed}):\n{}",
        args.file.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        lines.join("\n")
    ))
}

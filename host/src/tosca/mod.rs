//! Imports TOSCA Simple Profile service templates as DAGs in drover's native format, as
//! gorchestrator's `tosca2gorch` did.
//!
//! Each node template's Standard lifecycle operations (`create`, `configure`,
//! `start`) become shell nodes named `template:operation`, each needing the
//! one before it; a template without operations becomes one `noop` node,
//! `template:noop`, so that what requires it still waits for what it
//! requires. A requirement makes the requiring template's first node need
//! the required template's last one. Operation inputs become the node's
//! environment (TOSCA hands them to scripts as environment variables):
//! `get_input` and `get_property` are resolved here, `get_attribute` and
//! `get_operation_output` become references to upstream nodes' outputs, and
//! a template type's attributes become the outputs of its script nodes.
//! Whatever drover does not translate is reported with where it is, never
//! dropped silently.

mod functions;
mod inputs;
mod model;
mod output;
mod read;
mod translate;
mod types;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::dag::raw::{self, Raw};

pub use model::{Issue, IssueKind};
pub use output::{NativeDag, NativeNode, Ordered};

use model::{Definitions, Issues, NodeType};
use read::Reader;

/// How deep imports may import others.
const MAX_IMPORT_DEPTH: usize = 16;

/// Why a template was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The template or the inputs file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// What is wrong with the template, every problem with where it is.
    #[error("{} problem{}", issues.len(), if issues.len() == 1 { "" } else { "s" })]
    Refused { issues: Vec<Issue> },
}

/// A template turned into a DAG.
#[derive(Debug)]
pub struct Imported {
    pub dag: NativeDag,
    /// What was left out (when allowed) and what is worth knowing.
    pub warnings: Vec<Issue>,
    /// The template's folder, canonical: where its scripts are.
    pub folder: PathBuf,
}

/// What to import with.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// A YAML file of input values, `name: value`.
    pub inputs: Option<PathBuf>,
    /// Leave out what drover does not translate (reported as warnings)
    /// instead of refusing the template.
    pub allow_unsupported: bool,
}

/// Imports the service template in `file`.
pub fn import(file: &Path, options: &Options) -> Result<Imported, ImportError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| ImportError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let text = read(file)?;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let folder = parent.canonicalize().map_err(|source| ImportError::Read {
        path: parent.to_path_buf(),
        source,
    })?;
    let inputs = match &options.inputs {
        Some(path) => Some((read(path)?, path.display().to_string())),
        None => None,
    };
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tosca".to_owned());
    from_text(
        &text,
        &folder,
        &name,
        inputs
            .as_ref()
            .map(|(text, source)| (text.as_str(), source.as_str())),
        options.allow_unsupported,
    )
}

/// Imports a service template given as text. `folder` is where its
/// relative paths (imports, scripts) are; `name` names the DAG when the
/// template does not; `inputs` is the text of an inputs file and its name.
pub fn from_text(
    text: &str,
    folder: &Path,
    name: &str,
    inputs: Option<(&str, &str)>,
    allow_unsupported: bool,
) -> Result<Imported, ImportError> {
    let mut issues = Issues::default();
    let tree = raw::read_document(text).map_err(|problem| ImportError::Refused {
        issues: vec![Issue {
            location: problem.location,
            message: problem.message,
            kind: IssueKind::Error,
        }],
    })?;
    let mut template = Reader {
        issues: &mut issues,
        folder,
        prefix: String::new(),
    }
    .service_template(&tree);

    // The template's own types first: they win over imported ones.
    let mut defined = std::mem::take(&mut template.definitions.node_types);
    let imports_missing = load_imports(&template.definitions, folder, &mut defined, &mut issues);
    let types = types::Types::new(defined);

    let given = match inputs {
        Some((text, source)) => given_inputs(text, source, &mut issues),
        None => Vec::new(),
    };
    let source = inputs.map_or("--inputs", |(_, source)| source);
    let values = inputs::resolve(&template.inputs, &given, source, &mut issues);

    let dag_name = template.name.clone().unwrap_or_else(|| name.to_owned());
    let dag = translate::translate(
        &template,
        &types,
        &values,
        dag_name,
        imports_missing,
        &mut issues,
    );
    let refused =
        issues.has(IssueKind::Error) || (!allow_unsupported && issues.has(IssueKind::Unsupported));
    if refused {
        return Err(ImportError::Refused { issues: issues.0 });
    }
    Ok(Imported {
        dag,
        warnings: issues.0,
        folder: folder.to_path_buf(),
    })
}

/// The values of an inputs file, `name: value`.
fn given_inputs(text: &str, source: &str, issues: &mut Issues) -> Vec<(String, Raw)> {
    let tree = match raw::read_document(text) {
        Ok(tree) => tree,
        Err(problem) => {
            issues.error(&format!("{source}, {}", problem.location), problem.message);
            return Vec::new();
        }
    };
    match tree {
        Raw::Map(entries) => {
            let mut given: Vec<(String, Raw)> = Vec::with_capacity(entries.len());
            for (name, value) in entries {
                if given.iter().any(|(n, _)| n == &name) {
                    issues.error(&format!("{source}, {name}"), "given twice");
                } else {
                    given.push((name, value));
                }
            }
            given
        }
        other => {
            issues.error(
                source,
                format!(
                    "expected a mapping of input names to values, found {}",
                    other.kind()
                ),
            );
            Vec::new()
        }
    }
}

/// Reads the imported files (and theirs) for their node types; true if one
/// could not be read.
fn load_imports(
    definitions: &Definitions,
    folder: &Path,
    node_types: &mut Vec<NodeType>,
    issues: &mut Issues,
) -> bool {
    let mut missing = false;
    let mut seen: Vec<PathBuf> = Vec::new();
    // (where it is written, file as written, the importing file's folder, depth)
    let mut queue: Vec<(String, String, PathBuf, usize)> = definitions
        .imports
        .iter()
        .map(|i| (i.at.clone(), i.file.clone(), folder.to_path_buf(), 1))
        .collect();
    queue.reverse();
    while let Some((location, file, base, depth)) = queue.pop() {
        let path = base.join(&file);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                missing = true;
                issues.unsupported(
                    &location,
                    format!(
                        "cannot read `{file}` ({}: {e}): the types it defines are unknown, and with them their attributes and any operations they define",
                        path.display()
                    ),
                );
                continue;
            }
        };
        let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
        if seen.contains(&canonical) {
            continue;
        }
        seen.push(canonical);
        if depth > MAX_IMPORT_DEPTH {
            issues.error(
                &location,
                "imports nest too deep (do they import each other?)",
            );
            continue;
        }
        let tree = match raw::read_document(&text) {
            Ok(tree) => tree,
            Err(problem) => {
                issues.error(&format!("{file}, {}", problem.location), problem.message);
                continue;
            }
        };
        let import_folder = path
            .parent()
            .map_or_else(|| base.clone(), Path::to_path_buf);
        let mut reader = Reader {
            issues,
            folder: &import_folder,
            prefix: format!("{file}, "),
        };
        let defined = reader.definitions(&tree);
        node_types.extend(defined.node_types);
        let nested: Vec<_> = defined
            .imports
            .into_iter()
            .rev()
            .map(|i| (i.at, i.file, import_folder.clone(), depth + 1))
            .collect();
        queue.extend(nested);
    }
    missing
}

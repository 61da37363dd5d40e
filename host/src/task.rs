//! What a node asks of a driver, what it gets back, and the log lines it
//! produces: the plain types shared by the runtime, the engine and the CLI.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// One node, ready for a driver: upstream outputs already substituted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The run this node belongs to.
    pub run_id: String,
    /// The node's name, unique in its DAG.
    pub node: String,
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub attempt: u32,
    /// What to run; its meaning is the driver's.
    pub artifact: String,
    /// The absolute path of `artifact` when it names an existing file or
    /// folder relative to the DAG file's folder. See [`Task::resolve_artifact_file`].
    pub artifact_file: Option<PathBuf>,
    /// Arguments; their meaning is the driver's.
    pub args: Vec<String>,
    /// Environment variables the node sets.
    pub env: Vec<(String, String)>,
    /// Outputs of upstream nodes: (node, key, value).
    pub inputs: Vec<(String, String, String)>,
    /// Names of the outputs the node is expected to produce.
    pub outputs: Vec<String>,
    /// Wall-clock deadline, if the node has one.
    pub deadline: Option<SystemTime>,
    /// What the node takes away from its driver's grants.
    pub grants: Option<crate::dag::NodeGrants>,
    /// The node's secrets: (name, reference). Only references: the host
    /// reads the values just before the driver runs.
    #[serde(default)]
    pub secrets: Vec<(String, String)>,
}

impl Task {
    /// Sets `artifact_file` when the artifact names a regular file or a
    /// folder relative to `base` (the DAG file's folder). The check is
    /// driver-agnostic: any driver whose artifact is a file (a script, a
    /// playbook, a tarball) or a folder (a package) gets its path, and its
    /// processes may read it. The filesystem's root is never an artifact
    /// folder: that would open every file to them.
    pub fn resolve_artifact_file(&mut self, base: &std::path::Path) {
        if self.artifact.is_empty() || self.artifact.contains('\n') || self.artifact.len() > 4096 {
            return;
        }
        let candidate = base.join(&self.artifact);
        // One stat, not one for is_file and one for is_dir: this runs per node.
        if std::fs::metadata(&candidate).is_ok_and(|m| m.is_file() || m.is_dir()) {
            self.artifact_file = candidate
                .canonicalize()
                .ok()
                .filter(|path| path.parent().is_some());
        }
    }
}

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeStatus {
    /// The driver did the node's work.
    Success,
    /// The driver reported failure, trapped, or broke a limit.
    Failure,
    /// The node's deadline passed.
    Timeout,
    /// The node was canceled.
    Canceled,
}

impl NodeStatus {
    /// The lower-case name used in output and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Success => "success",
            NodeStatus::Failure => "failure",
            NodeStatus::Timeout => "timeout",
            NodeStatus::Canceled => "canceled",
        }
    }
}

impl std::fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of running one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// How the node ended.
    pub status: NodeStatus,
    /// The exit code of the node's main process, when it has one.
    pub exit_code: Option<i32>,
    /// The node's outputs.
    pub outputs: BTreeMap<String, String>,
    /// A one-line summary; says why on anything but success.
    pub message: String,
}

impl Outcome {
    /// An outcome of the given status with a message and nothing else.
    pub fn with_message(status: NodeStatus, message: impl Into<String>) -> Self {
        Outcome {
            status,
            exit_code: None,
            outputs: BTreeMap::new(),
            message: message.into(),
        }
    }

    /// A failure with a message and nothing else.
    pub fn failure(message: impl Into<String>) -> Self {
        Self::with_message(NodeStatus::Failure, message)
    }
}

/// A reason a driver refuses a node at validation (a DAG's own problems are
/// [`crate::dag::Problem`]s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverProblem {
    /// The node field at fault.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// The driver, through the `log` interface (or its own stdout/stderr).
    Driver,
    /// Standard output of a process the driver started.
    Stdout,
    /// Standard error of a process the driver started.
    Stderr,
    /// drover itself, about the node (for example: no drone serves its
    /// pool yet).
    Drover,
}

/// One line of a node's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The node that wrote it.
    pub node: Arc<str>,
    /// Where it came from.
    pub source: LogSource,
    /// How important it is.
    pub level: LogLevel,
    /// The text, without a trailing newline.
    pub message: String,
}

/// The longest log line kept, in bytes; the rest of a longer line is cut
/// (see [`cap_line`]), so that one line cannot fill a node's log.
pub const MAX_LOG_LINE: usize = 64 * 1024;

/// `message` cut to [`MAX_LOG_LINE`] bytes (on a character boundary),
/// saying how much was cut.
pub fn cap_line(mut message: String) -> String {
    if message.len() <= MAX_LOG_LINE {
        return message;
    }
    let total = message.len();
    let mut end = MAX_LOG_LINE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(&format!(" [... {} more bytes cut]", total - end));
    message
}

/// Where a node's log lines go. Bounded: a slow reader slows the node down
/// rather than losing lines or growing memory without bound.
pub type LogSink = tokio::sync::mpsc::Sender<LogLine>;

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(artifact: &str, base: &std::path::Path) -> Option<PathBuf> {
        let mut task = Task {
            artifact: artifact.into(),
            ..Task::default()
        };
        task.resolve_artifact_file(base);
        task.artifact_file
    }

    #[test]
    fn artifact_files_and_folders_resolve_but_never_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::write(base.join("build.sh"), "true").unwrap();
        std::fs::create_dir(base.join("pkg")).unwrap();
        assert_eq!(resolved("build.sh", &base), Some(base.join("build.sh")));
        assert_eq!(resolved("./pkg", &base), Some(base.join("pkg")));
        assert_eq!(resolved("echo hi", &base), None);
        assert_eq!(resolved("missing.tgz", &base), None);
        assert_eq!(resolved("/", &base), None);
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let line = "é".repeat(MAX_LOG_LINE);
        let cut = cap_line(line);
        assert!(cut.len() < MAX_LOG_LINE + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!("[... {} more bytes cut]", MAX_LOG_LINE)));
        assert_eq!(cap_line("short".into()), "short");
    }
}

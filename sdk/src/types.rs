//! Constructors and helpers for the contract's types, re-exported at the crate root.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Capabilities, Description, Outcome, Problem, Status, Task};

impl Capabilities {
    /// No capabilities at all: no processes, no workspace, no network.
    ///
    /// Add what the driver needs with the `with_*` methods.
    pub fn none() -> Self {
        Self {
            exec: Vec::new(),
            workspace: false,
            network: false,
            container: false,
            secrets: false,
        }
    }

    /// Adds programs the driver starts through [`exec`](crate::exec): bare
    /// names looked up on the host's `PATH`, or absolute paths.
    ///
    /// Starting processes implies a workspace, so this also sets
    /// `workspace`.
    pub fn with_exec<I, S>(mut self, programs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exec.extend(programs.into_iter().map(Into::into));
        self.workspace = true;
        self
    }

    /// Asks for the node's workspace, seen through WASI as the directory `.`.
    pub fn with_workspace(mut self) -> Self {
        self.workspace = true;
        self
    }

    /// Asks for the network, for the driver and the processes it starts.
    pub fn with_network(mut self) -> Self {
        self.network = true;
        self
    }

    /// Asks to run containers through [`container`](crate::container).
    pub fn with_container(mut self) -> Self {
        self.container = true;
        self
    }

    /// Asks for the node's secrets, read through [`secrets`](crate::secrets).
    /// Nodes may list secrets only when their driver asks for them.
    pub fn with_secrets(mut self) -> Self {
        self.secrets = true;
        self
    }
}

impl Default for Capabilities {
    /// Same as [`Capabilities::none`].
    fn default() -> Self {
        Self::none()
    }
}

impl Description {
    /// A description with the driver's short name (the one DAG nodes use)
    /// and version (semver; `env!("CARGO_PKG_VERSION")` is a good choice),
    /// empty texts, and no capabilities.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            summary: String::new(),
            artifact: String::new(),
            args: String::new(),
            outputs: String::new(),
            capabilities: Capabilities::none(),
        }
    }

    /// Sets the one-line summary of what the driver does.
    pub fn with_summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// Sets what a node's `artifact` means to the driver.
    pub fn with_artifact(mut self, artifact: impl Into<String>) -> Self {
        self.artifact = artifact.into();
        self
    }

    /// Sets what a node's `args` mean to the driver.
    pub fn with_args(mut self, args: impl Into<String>) -> Self {
        self.args = args.into();
        self
    }

    /// Sets how the driver produces the node's outputs.
    pub fn with_outputs(mut self, outputs: impl Into<String>) -> Self {
        self.outputs = outputs.into();
        self
    }

    /// Sets the capabilities the driver needs.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }
}

impl Outcome {
    /// A successful outcome with no outputs, no exit code and no message.
    pub fn success() -> Self {
        Self {
            status: Status::Success,
            exit_code: None,
            outputs: Vec::new(),
            message: String::new(),
        }
    }

    /// A failed outcome; `message` says why, on one line.
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            status: Status::Failure,
            exit_code: None,
            outputs: Vec::new(),
            message: message.into(),
        }
    }

    /// Whether the outcome is a success.
    pub fn is_success(&self) -> bool {
        self.status == Status::Success
    }

    /// Adds an output, available to downstream nodes. An output with the
    /// same key that was added before is replaced.
    pub fn with_output(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_output(key, value);
        self
    }

    /// Adds several outputs, as [`with_output`](Outcome::with_output) does.
    pub fn with_outputs<I, K, V>(mut self, outputs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        for (key, value) in outputs {
            self.set_output(key, value);
        }
        self
    }

    /// Sets the exit code of the node's main process.
    pub fn with_exit_code(mut self, code: i32) -> Self {
        self.exit_code = Some(code);
        self
    }

    /// Sets the one-line human-readable summary (required on failure, and
    /// already set by [`Outcome::failure`]).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The value of the output `key`, if the outcome has it.
    pub fn output(&self, key: &str) -> Option<&str> {
        self.outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn set_output(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.outputs.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.outputs.push((key, value)),
        }
    }
}

impl Problem {
    /// A problem with the node field at fault (`artifact`, `args`, `env`,
    /// `outputs`, ...) and what is wrong with it.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Task {
    /// A task for node `node` with `artifact`, on its first attempt, and
    /// everything else empty. The host builds the tasks a driver gets; this
    /// is for unit tests of a driver's pure parts.
    pub fn new(node: impl Into<String>, artifact: impl Into<String>) -> Self {
        Self {
            run_id: String::new(),
            node: node.into(),
            attempt: 1,
            artifact: artifact.into(),
            artifact_file: None,
            args: Vec::new(),
            env: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            deadline_ms: None,
        }
    }

    /// The value of the node's environment variable `name`, if it sets it.
    /// The last setting wins.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of output `key` of upstream node `node`, if it has one.
    pub fn input(&self, node: &str, key: &str) -> Option<&str> {
        self.inputs
            .iter()
            .rev()
            .find(|i| i.node == node && i.key == key)
            .map(|i| i.value.as_str())
    }

    /// The time left before the node's deadline, if it has one (zero once
    /// the deadline has passed). Useful as a timeout for the driver's own
    /// work.
    pub fn remaining(&self) -> Option<Duration> {
        let deadline = Duration::from_millis(self.deadline_ms?);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Some(deadline.saturating_sub(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    #[test]
    fn outcome_builders() {
        let ok = Outcome::success()
            .with_output("a", "1")
            .with_output("b", "2")
            .with_output("a", "3")
            .with_exit_code(0);
        assert!(ok.is_success());
        assert_eq!(ok.exit_code, Some(0));
        assert_eq!(
            ok.outputs,
            vec![("a".to_string(), "3".to_string()), ("b".into(), "2".into())]
        );
        assert_eq!(ok.output("a"), Some("3"));
        assert_eq!(ok.output("c"), None);

        let bad = Outcome::failure("exit code 3").with_outputs([("x", "y")]);
        assert!(!bad.is_success());
        assert_eq!(bad.message, "exit code 3");
        assert_eq!(bad.output("x"), Some("y"));
    }

    #[test]
    fn description_and_capabilities() {
        let d = Description::new("shell", "1.0.0")
            .with_summary("s")
            .with_artifact("a")
            .with_args("g")
            .with_outputs("o")
            .with_capabilities(Capabilities::none().with_exec(["sh"]));
        assert_eq!(d.name, "shell");
        assert_eq!(d.version, "1.0.0");
        assert_eq!(
            (d.summary.as_str(), d.artifact.as_str(), d.args.as_str()),
            ("s", "a", "g")
        );
        assert_eq!(d.outputs, "o");
        assert_eq!(d.capabilities.exec, vec!["sh".to_string()]);
        assert!(d.capabilities.workspace);
        assert!(!d.capabilities.network);
        assert_eq!(Capabilities::default(), Capabilities::none());
        assert!(Capabilities::none().with_network().network);
    }

    #[test]
    fn task_lookups() {
        let mut t = Task::new("n", "art");
        t.env = vec![("A".into(), "1".into()), ("A".into(), "2".into())];
        t.inputs = vec![Input {
            node: "up".into(),
            key: "k".into(),
            value: "v".into(),
        }];
        assert_eq!(t.attempt, 1);
        assert_eq!(t.env_var("A"), Some("2"));
        assert_eq!(t.env_var("B"), None);
        assert_eq!(t.input("up", "k"), Some("v"));
        assert_eq!(t.input("up", "x"), None);
        assert_eq!(t.remaining(), None);
        t.deadline_ms = Some(1);
        assert_eq!(t.remaining(), Some(Duration::ZERO));
    }

    #[test]
    fn problem_new() {
        let p = Problem::new("artifact", "must not be empty");
        assert_eq!(p.field, "artifact");
        assert_eq!(p.message, "must not be empty");
    }
}

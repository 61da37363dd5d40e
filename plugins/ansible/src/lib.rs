//! The `ansible` driver: runs the node's playbook with `ansible-playbook`, in the node's
//! sandbox with a private `/dev/shm`, and turns ansible's results into the node's outputs.

mod args;
/// Public so that the fuzz targets (host/fuzz) reach the parser natively.
pub mod events;

use std::io::ErrorKind;

use drover_sdk::exec::{self, Command, Error as ExecError, ExitStatus};
use drover_sdk::{Capabilities, Description, Driver, Outcome, Problem, Task};

use args::PlaybookArgs;
use events::Run;

/// Where `tests/setup.sh` (and host/docs/drivers.md) install ansible-core: a venv under `/opt`,
/// which processes may read by default.
const VENV_PLAYBOOK: &str = "/opt/drover/ansible/bin/ansible-playbook";
/// Otherwise, `ansible-playbook` on the host's `PATH`.
const PATH_PLAYBOOK: &str = "ansible-playbook";
/// A node's environment variable naming another `ansible-playbook` (which the driver's exec
/// policy must allow).
const PROGRAM_VAR: &str = "DROVER_ANSIBLE_PLAYBOOK";

/// The driver's own files, inside the workspace.
const STATE_DIR: &str = ".drover-ansible";
/// An inline playbook is written here, at the workspace's top, so that paths relative to
/// the playbook resolve inside the workspace.
const INLINE_PLAYBOOK: &str = "playbook.yml";
/// The playbook of a project folder when the node names none: ansible's own convention.
const DEFAULT_PLAYBOOK: &str = "site.yml";

/// The callback plugin that reports what ansible does (see `callback.py`).
const CALLBACK: &str = include_str!("callback.py");

/// The inventory used when the node names none: this machine, without SSH, with the
/// Python that runs ansible-playbook.
const LOCAL_INVENTORY: &str = "localhost ansible_connection=local ansible_python_interpreter=\"{{ ansible_playbook_python }}\"\n";

struct Ansible;

impl Driver for Ansible {
    fn describe() -> Description {
        Description::new("ansible", env!("CARGO_PKG_VERSION"))
            .with_summary("Runs an ansible playbook with `ansible-playbook`.")
            .with_artifact(
                "A playbook: a `.yml`/`.yaml` file relative to the DAG file's folder (only that \
                 file is readable in the sandbox), a project folder relative to it whose \
                 playbook is `site.yml` or `--playbook` (the whole folder is readable: roles, \
                 templates and files beside the playbook), or inline YAML (written to \
                 playbook.yml in the workspace). Tasks run in the node's workspace: relative \
                 paths such as `dest: ./out.txt` land there.",
            )
            .with_args(
                "`-i/--inventory INVENTORY` (a host list such as `web1,web2,` or a readable \
                 path; default: localhost with a local connection), `-e/--extra-vars \
                 key=value|JSON|@file` (repeatable), `-l/--limit`, `-t/--tags`, `--skip-tags`, \
                 `--check`, `--diff`, `-v`..`-vvvv`; `--playbook FILE`: the playbook inside a \
                 project folder artifact (default `site.yml`).",
            )
            .with_outputs(
                "`ok`, `changed`, `failed`, `unreachable`, `skipped`, `rescued`, `ignored`: \
                 totals over all hosts; `hosts`: JSON of those counts per host; `report`: JSON \
                 of every task result (play, task, host, status, changed, msg); every key of \
                 `set_stats` data; and each declared output that a `set_fact` task set. \
                 The node fails when a host failed or was unreachable, or ansible-playbook \
                 failed (its error is the message).",
            )
            .with_capabilities(
                Capabilities::none()
                    .with_exec([VENV_PLAYBOOK, PATH_PLAYBOOK])
                    .with_workspace(),
            )
    }

    fn validate(task: &Task) -> Vec<Problem> {
        let mut problems = Vec::new();
        if task.artifact.trim().is_empty() {
            problems.push(Problem::new(
                "artifact",
                "a playbook is required: a playbook file, a project folder or inline YAML",
            ));
        } else if task.artifact_file.is_none() && looks_like_a_path(&task.artifact) {
            problems.push(Problem::new(
                "artifact",
                format!(
                    "`{}` does not exist relative to the DAG file's folder (a playbook file or \
                     a project folder); inline YAML would be a list of plays",
                    task.artifact.trim()
                ),
            ));
        }
        match PlaybookArgs::parse(&task.args) {
            Ok(args) => {
                if let Err(message) = Playbook::of(task, &args) {
                    problems.push(Problem::new("args", message));
                }
            }
            Err(message) => problems.push(Problem::new("args", message)),
        }
        problems
    }

    fn run(task: Task) -> Outcome {
        match run_playbook(&task) {
            Ok(outcome) => outcome,
            Err(message) => Outcome::failure(message),
        }
    }
}

drover_sdk::export_driver!(Ansible);

/// A one-line artifact ending in `.yml`/`.yaml` is a file name, not a playbook.
fn looks_like_a_file_name(artifact: &str) -> bool {
    let text = artifact.trim();
    !text.contains('\n') && (text.ends_with(".yml") || text.ends_with(".yaml"))
}

/// A file name, or one word that is no YAML list of plays (a folder name): a path that was
/// meant to exist, not inline YAML.
fn looks_like_a_path(artifact: &str) -> bool {
    let text = artifact.trim();
    looks_like_a_file_name(text)
        || (!text.chars().any(char::is_whitespace) && !text.starts_with(['-', '[', '#']))
}

/// Where the node's playbook comes from.
#[derive(Debug, PartialEq, Eq)]
enum Playbook {
    /// Inline YAML, written into the workspace.
    Inline,
    /// A playbook file beside the DAG: processes may read that one file.
    File(String),
    /// A playbook inside a project folder beside the DAG: processes may read the whole
    /// folder, so roles, templates and files next to the playbook are found.
    Project { playbook: String },
}

impl Playbook {
    /// The node's playbook, or why `--playbook` does not fit its artifact. The driver cannot
    /// look outside the workspace, so a `.yml`/`.yaml` artifact is a file and any other
    /// existing one a folder.
    fn of(task: &Task, args: &PlaybookArgs) -> Result<Playbook, String> {
        let playbook = match &task.artifact_file {
            None => Playbook::Inline,
            Some(file) if looks_like_a_file_name(&task.artifact) => Playbook::File(file.clone()),
            Some(folder) => {
                let name = args.playbook.as_deref().unwrap_or(DEFAULT_PLAYBOOK).trim();
                return Ok(Playbook::Project {
                    playbook: format!("{}/{name}", folder.trim_end_matches('/')),
                });
            }
        };
        if args.playbook.is_some() {
            return Err(
                "--playbook names the playbook inside a project folder, but the artifact is \
                 not a folder: name the folder beside the DAG as the artifact"
                    .to_owned(),
            );
        }
        Ok(playbook)
    }
}

/// The workspace-relative paths of the driver's files, and the same as processes see them.
struct Files {
    workspace: String,
}

impl Files {
    fn local(name: &str) -> String {
        format!("{STATE_DIR}/{name}")
    }
    fn host(&self, name: &str) -> String {
        format!(
            "{}/{STATE_DIR}/{name}",
            self.workspace.trim_end_matches('/')
        )
    }
    fn host_top(&self, name: &str) -> String {
        format!("{}/{name}", self.workspace.trim_end_matches('/'))
    }
}

fn write(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {path} in the workspace: {e}"))
}

fn run_playbook(task: &Task) -> Result<Outcome, String> {
    let args = PlaybookArgs::parse(&task.args)?;
    let files = Files {
        workspace: exec::workspace_path(),
    };
    // A retry starts from a clean slate: no events or log of the attempt before.
    match std::fs::remove_dir_all(STATE_DIR) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot clear {STATE_DIR} in the workspace: {e}")),
    }
    for dir in ["callbacks", "home", "tmp"] {
        let path = Files::local(dir);
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {path} in the workspace: {e}"))?;
    }
    write(&Files::local("callbacks/drover.py"), CALLBACK)?;
    write(&Files::local("events.jsonl"), "")?;

    let source = Playbook::of(task, &args)?;
    let playbook = match &source {
        Playbook::File(file) => file.clone(),
        Playbook::Project { playbook } => playbook.clone(),
        Playbook::Inline => {
            write(INLINE_PLAYBOOK, &task.artifact)?;
            files.host_top(INLINE_PLAYBOOK)
        }
    };
    let inventory = match &args.inventory {
        Some(inventory) => inventory.clone(),
        None => {
            write(&Files::local("inventory.ini"), LOCAL_INVENTORY)?;
            files.host("inventory.ini")
        }
    };

    let mut cmd_args = vec!["-i".to_owned(), inventory];
    cmd_args.extend(args.passthrough.iter().cloned());
    cmd_args.push(playbook);

    // The node's environment first, so that it may tune ansible (ANSIBLE_*), but not the
    // variables the driver depends on.
    let mut env: Vec<(String, String)> = task
        .env
        .iter()
        .filter(|(k, _)| !is_reserved(k))
        .cloned()
        .collect();
    let defaults = [
        ("HOME", files.host("home")),
        ("TMPDIR", files.host("tmp")),
        ("ANSIBLE_LOCAL_TEMP", files.host("tmp")),
        ("ANSIBLE_REMOTE_TEMP", files.host("tmp")),
        // ansible refuses to start without a UTF-8 locale.
        ("LC_ALL", "C.UTF-8".to_owned()),
        ("ANSIBLE_NOCOLOR", "1".to_owned()),
        ("ANSIBLE_RETRY_FILES_ENABLED", "false".to_owned()),
    ];
    for (key, value) in defaults {
        if !env.iter().any(|(k, _)| k == key) {
            env.push((key.to_owned(), value));
        }
    }
    let fixed = [
        ("ANSIBLE_CALLBACK_PLUGINS", files.host("callbacks")),
        ("ANSIBLE_STDOUT_CALLBACK", "drover".to_owned()),
        ("ANSIBLE_LOAD_CALLBACK_PLUGINS", "true".to_owned()),
        ("ANSIBLE_LOG_PATH", files.host("ansible.log")),
        ("DROVER_ANSIBLE_EVENTS", files.host("events.jsonl")),
        ("PYTHONUNBUFFERED", "1".to_owned()),
    ];
    env.extend(fixed.into_iter().map(|(k, v)| (k.to_owned(), v)));

    let status = run_ansible(task, &cmd_args, &env)?;

    let events = std::fs::read_to_string(Files::local("events.jsonl"))
        .map_err(|e| format!("cannot read ansible's events: {e}"))?;
    let run = Run::parse(&events);
    let mut outcome = match run.failure() {
        Some(message) => Outcome::failure(with_hint(&source, message)),
        None if status.success() => Outcome::success(),
        None if status.timed_out => Outcome::failure("ansible-playbook timed out"),
        None => Outcome::failure(with_hint(&source, ansible_error(&status))),
    };
    outcome = outcome.with_exit_code(status.exit_code());
    if run.stats.is_some() {
        outcome = outcome.with_outputs(run.outputs(&task.outputs));
    }
    for name in &task.outputs {
        if outcome.output(name).is_none() && outcome.is_success() {
            drover_sdk::warn!(
                "declared output `{name}` was not produced: set it with set_stats \
                 (data: {{{name}: ...}}) or set_fact"
            );
        }
    }
    Ok(outcome)
}

/// Variables the driver sets itself; the node cannot override them.
fn is_reserved(key: &str) -> bool {
    matches!(
        key,
        "ANSIBLE_CALLBACK_PLUGINS"
            | "ANSIBLE_STDOUT_CALLBACK"
            | "ANSIBLE_LOAD_CALLBACK_PLUGINS"
            | "ANSIBLE_LOG_PATH"
            | "DROVER_ANSIBLE_EVENTS"
            | "PYTHONUNBUFFERED"
            | PROGRAM_VAR
    )
}

/// Starts ansible-playbook: the node's choice, else the venv's, else the one on `PATH`.
fn run_ansible(
    task: &Task,
    args: &[String],
    env: &[(String, String)],
) -> Result<ExitStatus, String> {
    let candidates: Vec<&str> = match task.env_var(PROGRAM_VAR) {
        Some(program) => vec![program],
        None => vec![VENV_PLAYBOOK, PATH_PLAYBOOK],
    };
    let mut tried = Vec::new();
    for program in candidates {
        let mut cmd = Command::new(program);
        cmd.args(args.iter().map(String::as_str))
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            // ansible's task queue is made of POSIX semaphores, which live in /dev/shm.
            .private_shm();
        if let Some(left) = task.remaining() {
            cmd.timeout_ms(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
        }
        match cmd.run() {
            Ok(status) => return Ok(status),
            Err(e @ (ExecError::NotFound(_) | ExecError::NotAllowed(_))) => {
                tried.push(format!("{program}: {e}"));
            }
            Err(e) => return Err(format!("cannot run {program}: {e}")),
        }
    }
    Err(format!(
        "ansible-playbook is not available ({}). Install ansible-core into a venv at \
         /opt/drover/ansible (`bash tests/setup.sh` does), or name another ansible-playbook \
         in {PROGRAM_VAR} and allow it in [drivers.ansible] exec",
        tried.join("; ")
    ))
}

/// A failure to read what lies beside a playbook file says how to make it readable: only
/// the file itself is granted, which surprises whoever keeps roles next to it.
fn with_hint(source: &Playbook, message: String) -> String {
    let unreadable = ["Permission denied", "Could not find or access"]
        .iter()
        .any(|sign| message.contains(sign));
    if !unreadable || !matches!(source, Playbook::File(_)) {
        return message;
    }
    format!(
        "{message} (only the playbook file itself is readable in the sandbox: to use roles, \
         templates or files beside it, name its folder as the artifact and the playbook with \
         --playbook)"
    )
}

/// Why ansible-playbook failed, in its own words, from its log file (its stderr already went
/// to the node's log).
fn ansible_error(status: &ExitStatus) -> String {
    let kind = match status.code {
        Some(4) => "a syntax or parse error",
        Some(5) => "bad options",
        Some(250) => "an unexpected error",
        _ => "an error",
    };
    let log = std::fs::read_to_string(Files::local("ansible.log")).unwrap_or_default();
    let errors = events::log_errors(&log);
    match errors.first() {
        Some(error) => format!(
            "ansible-playbook failed ({status}, {kind}): {}",
            events::one_line(error)
        ),
        None => format!("ansible-playbook failed ({status}, {kind}); see the node's log"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_wants_a_playbook_and_known_args() {
        assert_eq!(Ansible::validate(&Task::new("n", " ")).len(), 1);
        let missing = Ansible::validate(&Task::new("n", "site.yml"));
        assert_eq!(missing.len(), 1);
        assert!(missing[0].message.contains("site.yml"));
        assert!(Ansible::validate(&Task::new("n", "- hosts: all\n  tasks: []\n")).is_empty());
        let mut task = Task::new("n", "- hosts: all\n");
        task.args = vec!["--become".into()];
        let problems = Ansible::validate(&task);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "args");
        let missing_folder = Ansible::validate(&Task::new("n", "deploy"));
        assert_eq!(missing_folder.len(), 1, "{missing_folder:?}");
        assert!(missing_folder[0].message.contains("project folder"));
    }

    fn with_file(artifact: &str, file: &str, args: &[&str]) -> (Task, PlaybookArgs) {
        let mut task = Task::new("n", artifact);
        task.artifact_file = Some(file.to_owned());
        task.args = args.iter().map(|a| a.to_string()).collect();
        let parsed = PlaybookArgs::parse(&task.args).unwrap();
        (task, parsed)
    }

    #[test]
    fn a_folder_artifact_is_a_project_whose_playbook_is_site_yml_or_named() {
        let (task, args) = with_file("deploy", "/dags/deploy", &[]);
        assert_eq!(
            Playbook::of(&task, &args),
            Ok(Playbook::Project {
                playbook: "/dags/deploy/site.yml".into()
            })
        );
        let (task, args) = with_file("deploy/", "/dags/deploy/", &["--playbook", "web.yml"]);
        assert_eq!(
            Playbook::of(&task, &args),
            Ok(Playbook::Project {
                playbook: "/dags/deploy/web.yml".into()
            })
        );
        let (task, args) = with_file("site.yml", "/dags/site.yml", &[]);
        assert_eq!(
            Playbook::of(&task, &args),
            Ok(Playbook::File("/dags/site.yml".into()))
        );
        let (task, _) = with_file("site.yml", "/dags/site.yml", &["--playbook", "x.yml"]);
        let problems = Ansible::validate(&task);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("not a folder"));
        let mut inline = Task::new("n", "- hosts: all\n");
        inline.args = vec!["--playbook".into(), "x.yml".into()];
        assert_eq!(Ansible::validate(&inline).len(), 1);
    }

    #[test]
    fn unreadable_files_beside_a_playbook_file_get_a_hint() {
        let denied = "ERROR! [Errno 13] Permission denied: '/dags/roles/x/tasks/main.yml'";
        let hinted = with_hint(&Playbook::File("/dags/site.yml".into()), denied.into());
        assert!(
            hinted.starts_with(denied) && hinted.contains("--playbook"),
            "{hinted}"
        );
        let project = Playbook::Project {
            playbook: "/dags/p/site.yml".into(),
        };
        assert_eq!(with_hint(&project, denied.into()), denied);
        let other = "task `x` failed on localhost: boom";
        assert_eq!(
            with_hint(&Playbook::File("/s.yml".into()), other.into()),
            other
        );
    }
}

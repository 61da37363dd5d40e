//! Running npm inside the node's workspace: its HOME, cache and temporary folder there, installing the package, and the `npm test` command.

use std::io::ErrorKind;

use drover_sdk::exec::Command;
use serde_json::Value;

/// npm's settings for every command, as `npm_config_*` variables: no update
/// check, audit or funding notice (each a request to the registry), and a
/// failed fetch retried once after about two seconds rather than npm's
/// default of two retries with backoff up to a minute.
const NPM_SETTINGS: &[(&str, &str)] = &[
    ("npm_config_update_notifier", "false"),
    ("npm_config_audit", "false"),
    ("npm_config_fund", "false"),
    ("npm_config_progress", "false"),
    ("npm_config_fetch_retries", "1"),
    ("npm_config_fetch_retry_mintimeout", "2000"),
    ("npm_config_fetch_retry_maxtimeout", "2000"),
    ("npm_config_fetch_timeout", "30000"),
];

/// Error codes of npm (from node) that mean the registry was out of reach.
const NETWORK_CODES: &[&str] = &[
    "ENOTFOUND",
    "EAI_AGAIN",
    "ECONNREFUSED",
    "ENETUNREACH",
    "EHOSTUNREACH",
    "ETIMEDOUT",
    "ECONNRESET",
    "connect EACCES",
];

/// npm, set up in one attempt's folder of the workspace.
pub struct Npm {
    /// The attempt's folder, relative to the workspace (as WASI sees it).
    root: String,
    /// The node's environment plus npm's folders and settings.
    env: Vec<(String, String)>,
}

/// The package that was installed.
pub struct Package {
    pub name: String,
    pub version: Option<String>,
    pub test_script: Option<String>,
}

impl Package {
    /// `name@version`, or the name alone.
    pub fn id(&self) -> String {
        match &self.version {
            Some(version) => format!("{}@{version}", self.name),
            None => self.name.clone(),
        }
    }
}

impl Npm {
    /// Makes a clean folder for this attempt, with npm's HOME, cache and
    /// temporary folder inside it (the sandbox lets processes write nowhere
    /// else).
    pub fn prepare(
        workspace: &str,
        attempt: u32,
        node_env: &[(String, String)],
    ) -> Result<Npm, String> {
        let root = format!("npm-test-{attempt}");
        match std::fs::remove_dir_all(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot clear {root} in the workspace: {e}")),
        }
        for dir in ["home", "cache", "tmp"] {
            let path = format!("{root}/.npm/{dir}");
            std::fs::create_dir_all(&path)
                .map_err(|e| format!("cannot create {path} in the workspace: {e}"))?;
        }
        let root_abs = format!("{}/{root}", workspace.trim_end_matches('/'));
        let mut env: Vec<(String, String)> = node_env
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "HOME" | "TMPDIR" | "npm_config_cache"))
            .cloned()
            .collect();
        env.push(("HOME".into(), format!("{root_abs}/.npm/home")));
        env.push(("npm_config_cache".into(), format!("{root_abs}/.npm/cache")));
        env.push(("TMPDIR".into(), format!("{root_abs}/.npm/tmp")));
        for (key, value) in NPM_SETTINGS {
            if !env.iter().any(|(k, _)| k == key) {
                env.push((key.to_string(), value.to_string()));
            }
        }
        Ok(Npm { root, env })
    }

    /// Installs `spec` (a path, or a registry spec when `from_registry`)
    /// into the attempt's folder and moves it to `package/` there, out of
    /// `node_modules` (test runners skip files under `node_modules`); its
    /// dependencies stay in `node_modules` beside it, where node finds them.
    pub fn install(&self, spec: &str, from_registry: bool) -> Result<Package, String> {
        drover_sdk::info!("installing {spec}");
        let status = Command::new("npm")
            .args([
                "install",
                // A folder is packed and copied like a tarball, not linked:
                // it is read-only to the processes here.
                "--install-links",
                "--no-package-lock",
                spec,
            ])
            .envs(self.env.iter().cloned())
            .cwd(self.root.as_str())
            .run()
            .map_err(|e| format!("cannot run npm install: {e}"))?;
        if !status.success() {
            return Err(self.install_failure(spec, from_registry, &status.to_string()));
        }
        let manifest = read_json(&format!("{}/package.json", self.root))?;
        let name = manifest
            .get("dependencies")
            .and_then(Value::as_object)
            .and_then(|deps| deps.keys().next().cloned())
            .ok_or_else(|| {
                format!("npm install of {spec} succeeded but added no package to package.json")
            })?;
        let installed = format!("{}/node_modules/{name}", self.root);
        let moved = format!("{}/package", self.root);
        std::fs::rename(&installed, &moved)
            .map_err(|e| format!("cannot move {installed} to {moved}: {e}"))?;
        let manifest = read_json(&format!("{moved}/package.json"))?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        Ok(Package {
            name,
            version: text(manifest.get("version")),
            test_script: text(manifest.get("scripts").and_then(|s| s.get("test")))
                .filter(|s| !s.trim().is_empty()),
        })
    }

    /// `npm test -- <args>` in the installed package, with node's test
    /// runner told to report in TAP.
    pub fn test_command(&self, args: &[String]) -> Command {
        let mut cmd = Command::new("npm");
        cmd.arg("test");
        if !args.is_empty() {
            cmd.arg("--").args(args.iter().map(String::as_str));
        }
        let node_options = match self.env.iter().find(|(k, _)| k == "NODE_OPTIONS") {
            Some((_, given)) => format!("{given} --test-reporter=tap"),
            None => "--test-reporter=tap".to_string(),
        };
        cmd.envs(
            self.env
                .iter()
                .filter(|(k, _)| k != "NODE_OPTIONS")
                .cloned(),
        )
        .env("NODE_OPTIONS", node_options)
        .cwd(format!("{}/package", self.root));
        cmd
    }

    /// Why `npm install` failed, from npm's own debug log: its error lines,
    /// and what to do when the registry was out of reach.
    fn install_failure(&self, spec: &str, from_registry: bool, status: &str) -> String {
        let errors = self.npm_errors();
        let detail = if errors.is_empty() {
            String::new()
        } else {
            format!(": {}", errors.join("; "))
        };
        let unreachable = NETWORK_CODES
            .iter()
            .any(|code| errors.iter().any(|e| e.contains(code)));
        if from_registry && unreachable {
            format!(
                "npm could not reach the registry to fetch `{spec}`{detail}. Fetching from the \
                 registry needs the network: grant it to this driver with \
                 `[drivers.npm-test] network = true` in drover's config (or use a tarball or \
                 folder next to the DAG file)"
            )
        } else {
            format!("npm install of `{spec}` failed ({status}){detail}")
        }
    }

    /// The `error` lines of npm's newest debug log, without npm's prefixes.
    fn npm_errors(&self) -> Vec<String> {
        let logs = format!("{}/.npm/cache/_logs", self.root);
        let newest = std::fs::read_dir(&logs).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with("-debug-0.log"))
                .max()
        });
        let Some(newest) = newest else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(format!("{logs}/{newest}")).unwrap_or_default();
        text.lines()
            // `123 error code ENOTFOUND`
            .filter_map(|line| line.split_once(" error ").map(|(_, rest)| rest.trim()))
            .filter(|rest| !rest.is_empty() && !rest.starts_with("A complete log"))
            .take(4)
            .map(str::to_owned)
            .collect()
    }
}

fn read_json(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path} is not valid JSON: {e}"))
}

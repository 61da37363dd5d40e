//! The build file: an image, an environment and named stages of shell steps.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A build file, e.g.
///
/// ```yaml
/// image: debian:12
/// env: {CI: "true"}
/// secret_files: {DEPLOY_KEY: /run/secrets/deploy_key}
/// stages:
///   - name: build
///     script: ["make"]
///   - name: test
///     script: ["make test"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildFile {
    /// The image every stage runs in (one container for the whole build).
    pub image: String,
    /// Environment variables of every step.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The default working directory, absolute; `/workspace` when unset.
    #[serde(default)]
    pub workdir: Option<String>,
    /// The node's secrets to place as read-only files (name to absolute
    /// path, outside `/workspace`) instead of in the steps' environment.
    #[serde(default)]
    pub secret_files: BTreeMap<String, String>,
    /// Memory cap in MiB.
    #[serde(default)]
    pub memory_mib: Option<u64>,
    /// CPU cap, in CPUs (`1.5`).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Process cap.
    #[serde(default)]
    pub pids: Option<u32>,
    /// Run in order; the build stops at the first failing step.
    pub stages: Vec<Stage>,
}

/// One stage: a name and its steps, each run with `sh -c`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    pub script: Vec<String>,
}

impl BuildFile {
    /// Parses and checks a build file's text.
    pub fn parse(text: &str) -> Result<BuildFile, String> {
        let build: BuildFile =
            serde_yaml_ng::from_str(text).map_err(|e| format!("not a valid build file: {e}"))?;
        if build.image.trim().is_empty() {
            return Err("the build file's `image` is empty".into());
        }
        if build.stages.is_empty() {
            return Err("the build file has no stages".into());
        }
        for (i, stage) in build.stages.iter().enumerate() {
            if stage.name.trim().is_empty() {
                return Err(format!("stage {} has an empty name", i + 1));
            }
            if stage.script.is_empty() {
                return Err(format!("stage `{}` has no script", stage.name));
            }
        }
        for (name, path) in &build.secret_files {
            check_secret_file(name, path)?;
            if let Some((other, _)) = build
                .secret_files
                .iter()
                .find(|(other, p)| *p == path && other.as_str() < name.as_str())
            {
                return Err(format!(
                    "`secret_files`: `{other}` and `{name}` both go to `{path}`"
                ));
            }
        }
        if let Some(cpus) = build.cpus
            && !(cpus > 0.0 && cpus < 4096.0)
        {
            return Err(format!("`cpus: {cpus}` must be a positive number of CPUs"));
        }
        Ok(build)
    }
}

/// A `secret_files` entry: a name a node's secret can have, and a path the
/// host will mount a file at (absolute, outside the workspace).
fn check_secret_file(name: &str, path: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid_name = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(format!(
            "`secret_files`: `{name}` is not a secret name (letters, digits and `_`)"
        ));
    }
    let absolute = path.starts_with('/')
        && path.len() > 1
        && !path.split('/').any(|p| p == "..")
        && !path.contains([':', ',', '\0']);
    if !absolute {
        return Err(format!(
            "`secret_files.{name}`: `{path}` must be an absolute file path in the container, \
             without `..`, `:` or `,`"
        ));
    }
    if path == "/workspace" || path.starts_with("/workspace/") {
        return Err(format!(
            "`secret_files.{name}`: `{path}` lies in the workspace, where a secret would stay \
             behind; use a path such as `/run/secrets/{}`",
            name.to_ascii_lowercase()
        ));
    }
    Ok(())
}

/// The artifact's text when it is an inline build file: YAML with a
/// `stages:` key at the top level.
pub fn inline(artifact: &str) -> Option<&str> {
    artifact
        .lines()
        .any(|l| l.starts_with("stages:"))
        .then_some(artifact)
}

/// Whether the artifact names a build file rather than an image.
pub fn is_file_name(artifact: &str) -> bool {
    artifact.ends_with(".yml") || artifact.ends_with(".yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stages_and_refuses_what_is_wrong() {
        let b = BuildFile::parse(
            "image: x:1\nenv: {A: b}\nstages:\n  - name: s\n    script: [\"true\", \"echo\"]\n",
        )
        .unwrap();
        assert_eq!(b.stages[0].script.len(), 2);
        assert_eq!(b.env["A"], "b");
        assert!(
            BuildFile::parse("image: x\nstages: []\n")
                .unwrap_err()
                .contains("no stages")
        );
        assert!(
            BuildFile::parse("image: x\nstages:\n  - name: s\n    script: []\n")
                .unwrap_err()
                .contains("no script")
        );
        let with_files = BuildFile::parse(
            "image: x\nsecret_files: {KEY: /run/secrets/key}\nstages:\n  - name: s\n    script: [\"true\"]\n",
        )
        .unwrap();
        assert_eq!(with_files.secret_files["KEY"], "/run/secrets/key");
        for (files, says) in [
            ("{KEY: run/key}", "must be an absolute"),
            ("{KEY: /run/../etc/key}", "without `..`"),
            ("{KEY: /workspace/key}", "lies in the workspace"),
            ("{2KEY: /run/key}", "not a secret name"),
            (
                "{A: /run/key, B: /run/key}",
                "`A` and `B` both go to `/run/key`",
            ),
        ] {
            let text = format!(
                "image: x\nsecret_files: {files}\nstages:\n  - name: s\n    script: [\"true\"]\n"
            );
            let err = BuildFile::parse(&text).unwrap_err();
            assert!(err.contains(says), "{files}: {err}");
        }
        assert!(
            BuildFile::parse("image: x\nstage: []\n")
                .unwrap_err()
                .contains("stage")
        );
    }
}

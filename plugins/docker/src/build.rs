//! The build file: an image, an environment and named stages of shell steps.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A build file, e.g.
///
/// ```yaml
/// image: debian:12
/// env: {CI: "true"}
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
        if let Some(cpus) = build.cpus
            && !(cpus > 0.0 && cpus < 4096.0)
        {
            return Err(format!("`cpus: {cpus}` must be a positive number of CPUs"));
        }
        Ok(build)
    }
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
        assert!(
            BuildFile::parse("image: x\nstage: []\n")
                .unwrap_err()
                .contains("stage")
        );
    }
}

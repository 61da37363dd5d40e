//! Whether a plugin asks for more than the operator's policy lets it have.

use crate::config::{Config, DriverPolicy, Policy};
use crate::runtime::Capabilities;

/// The policy that bounds a plugin of this name: its own `[drivers.<name>]`
/// section, or else `[plugins.allow]`.
pub fn for_plugin<'c>(config: &'c Config, name: &'c str) -> &'c DriverPolicy {
    Policy::of(config, name).publish_bound()
}

/// What `wanted` asks for beyond `policy`, one entry per capability, each
/// saying what to add to the configuration to allow it. Empty when the
/// plugin fits.
pub fn excess(policy: &DriverPolicy, wanted: &Capabilities) -> Vec<String> {
    let mut over = Vec::new();
    let allowed_programs = policy.exec.as_deref().unwrap_or_default();
    let programs: Vec<&str> = wanted
        .exec
        .iter()
        .filter(|p| !allowed_programs.contains(p))
        .map(String::as_str)
        .collect();
    if !programs.is_empty() {
        over.push(format!("exec of {}", quoted(&programs)));
    }
    for (asked, allowed, what) in [
        (wanted.network, policy.network, "network"),
        (wanted.secrets, policy.secrets, "secrets"),
        (wanted.container, policy.container, "container"),
    ] {
        if asked && allowed != Some(true) {
            over.push(what.to_owned());
        }
    }
    over
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(exec: &[&str], network: bool) -> Capabilities {
        Capabilities {
            exec: exec.iter().map(|s| s.to_string()).collect(),
            workspace: true,
            network,
            container: false,
            secrets: false,
        }
    }

    #[test]
    fn nothing_beyond_the_workspace_by_default() {
        let policy = DriverPolicy::default();
        assert!(excess(&policy, &caps(&[], false)).is_empty());
        assert_eq!(
            excess(&policy, &caps(&["curl", "sh"], true)),
            ["exec of `curl`, `sh`", "network"]
        );
    }

    #[test]
    fn a_policy_allows_what_it_lists() {
        let policy = DriverPolicy {
            exec: Some(vec!["curl".into()]),
            network: Some(true),
            ..DriverPolicy::default()
        };
        assert!(excess(&policy, &caps(&["curl"], true)).is_empty());
        assert_eq!(
            excess(&policy, &caps(&["curl", "sh"], true)),
            ["exec of `sh`"]
        );
    }
}

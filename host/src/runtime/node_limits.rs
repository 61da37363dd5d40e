//! The limits of one node's processes together: the operator's value for its driver,
//! lowered by the node's own `grants`.

use crate::config::Policy;
use crate::dag::{NodeGrants, Problem};
use crate::sandbox::NodeLimits;

const MIB: u64 = 1024 * 1024;

/// The lower of a driver's limit and what a node asks for (a node can only take away).
fn lower(driver: Option<u64>, node: Option<u64>) -> Option<u64> {
    match (driver, node) {
        (Some(d), Some(n)) => Some(d.min(n)),
        (d, n) => d.or(n),
    }
}

/// What one node of the driver under `policy`, with these `grants`, may take.
pub fn for_node(policy: &Policy<'_>, grants: Option<&NodeGrants>) -> NodeLimits {
    let memory_mib = lower(
        policy.node_memory_mib().value,
        grants.and_then(|g| g.memory_mib),
    );
    NodeLimits {
        memory_bytes: memory_mib.map(|m| m.saturating_mul(MIB)),
        processes: lower(
            policy.node_processes().value,
            grants.and_then(|g| g.processes),
        ),
    }
}

/// Why a node's `grants` ask for more than its driver (under `policy`) may
/// have, if they do.
pub fn problems(policy: &Policy<'_>, node: &str, grants: &NodeGrants) -> Vec<Problem> {
    let driver = policy.name();
    [
        (
            "memory_mib",
            " MiB",
            grants.memory_mib,
            policy.node_memory_mib(),
        ),
        (
            "processes",
            " processes",
            grants.processes,
            policy.node_processes(),
        ),
    ]
    .into_iter()
    .filter_map(|(field, unit, asked, limit)| {
        let (asked, most) = (asked?, limit.value?);
        (asked > most).then(|| {
            Problem::new(
                format!("node `{node}`, field `grants.{field}`"),
                format!(
                    "{asked}{unit} is more than driver `{driver}` may have ({most}{unit}, \
                     `{}`); a node can only take grants away",
                    limit.setting
                ),
            )
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, DriverPolicy};

    fn config(sandbox_mib: u64, driver_mib: Option<u64>) -> Config {
        let mut config = Config::default();
        config.sandbox.max_node_memory_mib = Some(sandbox_mib);
        config.drivers.insert(
            "shell".into(),
            DriverPolicy {
                max_node_memory_mib: driver_mib,
                ..DriverPolicy::default()
            },
        );
        config
    }

    fn asking(memory_mib: Option<u64>, processes: Option<u64>) -> NodeGrants {
        NodeGrants {
            memory_mib,
            processes,
            ..NodeGrants::default()
        }
    }

    #[test]
    fn a_driver_section_wins_over_the_sandbox_and_zero_is_unlimited() {
        let config = config(2048, Some(512));
        assert_eq!(
            for_node(&Policy::of(&config, "shell"), None).memory_bytes,
            Some(512 * MIB)
        );
        assert_eq!(
            for_node(&Policy::of(&config, "other"), None).memory_bytes,
            Some(2048 * MIB)
        );
        let config = self::config(2048, Some(0));
        assert_eq!(
            for_node(&Policy::of(&config, "shell"), None).memory_bytes,
            None
        );
        assert_eq!(
            for_node(&Policy::of(&config, "shell"), None).processes,
            Some(256)
        );
    }

    #[test]
    fn a_node_may_lower_its_limits_but_never_raise_them() {
        let config = config(2048, None);
        let lowered = for_node(
            &Policy::of(&config, "shell"),
            Some(&asking(Some(64), Some(8))),
        );
        assert_eq!(lowered.memory_bytes, Some(64 * MIB));
        assert_eq!(lowered.processes, Some(8));
        assert!(
            problems(
                &Policy::of(&config, "shell"),
                "build",
                &asking(Some(64), Some(8))
            )
            .is_empty()
        );

        let over = problems(
            &Policy::of(&config, "shell"),
            "build",
            &asking(Some(4096), Some(1000)),
        );
        let texts: Vec<String> = over.iter().map(ToString::to_string).collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(
            texts[0].contains("node `build`, field `grants.memory_mib`")
                && texts[0].contains("4096 MiB is more than driver `shell` may have (2048 MiB")
                && texts[0].contains("[sandbox] max_node_memory_mib"),
            "{texts:?}"
        );
        assert!(
            texts[1].contains("1000 processes") && texts[1].contains("(256 processes"),
            "{texts:?}"
        );
        // Even a raising node is held to its driver's limit at run time.
        let held = for_node(
            &Policy::of(&config, "shell"),
            Some(&asking(Some(4096), None)),
        );
        assert_eq!(held.memory_bytes, Some(2048 * MIB));
    }

    #[test]
    fn a_node_of_an_unlimited_driver_may_set_any_limit() {
        let config = config(0, None);
        assert!(
            problems(
                &Policy::of(&config, "shell"),
                "n",
                &asking(Some(1 << 20), None)
            )
            .is_empty()
        );
        assert_eq!(
            for_node(
                &Policy::of(&config, "shell"),
                Some(&asking(Some(100), None))
            )
            .memory_bytes,
            Some(100 * MIB)
        );
    }
}

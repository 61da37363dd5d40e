//! The limits of one node's processes together: the operator's value for its driver,
//! lowered by the node's own `grants`.

use crate::config::Config;
use crate::dag::{NodeGrants, Problem};
use crate::sandbox::NodeLimits;

const MIB: u64 = 1024 * 1024;

/// One limit as the operator set it for a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverLimit {
    /// The value; `None`: unlimited.
    pub value: Option<u64>,
    /// The setting it comes from, e.g. `[drivers.shell] max_node_processes`.
    pub setting: String,
}

/// A driver's limit, from `[drivers.<name>]` or else `[sandbox]`, each under the field `field`
/// of those sections; 0 means unlimited.
fn driver_limit(
    driver: &str,
    field: &str,
    of_driver: Option<u64>,
    of_sandbox: Option<u64>,
) -> DriverLimit {
    let (value, setting) = match of_driver {
        Some(value) => (Some(value), format!("[drivers.{driver}] {field}")),
        None => (of_sandbox, format!("[sandbox] {field}")),
    };
    DriverLimit {
        value: value.filter(|v| *v > 0),
        setting,
    }
}

/// The most memory, in MiB, one node of `driver` may have for its processes together.
pub fn driver_memory_mib(config: &Config, driver: &str) -> DriverLimit {
    let policy = config.drivers.get(driver);
    driver_limit(
        driver,
        "max_node_memory_mib",
        policy.and_then(|p| p.max_node_memory_mib),
        config.sandbox.max_node_memory_mib,
    )
}

/// The most processes (and threads) one node of `driver` may have at once.
pub fn driver_processes(config: &Config, driver: &str) -> DriverLimit {
    let policy = config.drivers.get(driver);
    driver_limit(
        driver,
        "max_node_processes",
        policy.and_then(|p| p.max_node_processes),
        config.sandbox.max_node_processes,
    )
}

/// The lower of a driver's limit and what a node asks for (a node can only take away).
fn lower(driver: Option<u64>, node: Option<u64>) -> Option<u64> {
    match (driver, node) {
        (Some(d), Some(n)) => Some(d.min(n)),
        (d, n) => d.or(n),
    }
}

/// What one node of `driver` with these `grants` may take.
pub fn for_node(config: &Config, driver: &str, grants: Option<&NodeGrants>) -> NodeLimits {
    let memory_mib = lower(
        driver_memory_mib(config, driver).value,
        grants.and_then(|g| g.memory_mib),
    );
    NodeLimits {
        memory_bytes: memory_mib.map(|m| m.saturating_mul(MIB)),
        processes: lower(
            driver_processes(config, driver).value,
            grants.and_then(|g| g.processes),
        ),
    }
}

/// Why a node's `grants` ask for more than its driver may have, if they do.
pub fn problems(config: &Config, node: &str, driver: &str, grants: &NodeGrants) -> Vec<Problem> {
    [
        (
            "memory_mib",
            " MiB",
            grants.memory_mib,
            driver_memory_mib(config, driver),
        ),
        (
            "processes",
            " processes",
            grants.processes,
            driver_processes(config, driver),
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
    use crate::config::DriverPolicy;

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
            for_node(&config, "shell", None).memory_bytes,
            Some(512 * MIB)
        );
        assert_eq!(
            for_node(&config, "other", None).memory_bytes,
            Some(2048 * MIB)
        );
        let config = self::config(2048, Some(0));
        assert_eq!(for_node(&config, "shell", None).memory_bytes, None);
        assert_eq!(for_node(&config, "shell", None).processes, Some(256));
    }

    #[test]
    fn a_node_may_lower_its_limits_but_never_raise_them() {
        let config = config(2048, None);
        let lowered = for_node(&config, "shell", Some(&asking(Some(64), Some(8))));
        assert_eq!(lowered.memory_bytes, Some(64 * MIB));
        assert_eq!(lowered.processes, Some(8));
        assert!(problems(&config, "build", "shell", &asking(Some(64), Some(8))).is_empty());

        let over = problems(&config, "build", "shell", &asking(Some(4096), Some(1000)));
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
        let held = for_node(&config, "shell", Some(&asking(Some(4096), None)));
        assert_eq!(held.memory_bytes, Some(2048 * MIB));
    }

    #[test]
    fn a_node_of_an_unlimited_driver_may_set_any_limit() {
        let config = config(0, None);
        assert!(problems(&config, "n", "shell", &asking(Some(1 << 20), None)).is_empty());
        assert_eq!(
            for_node(&config, "shell", Some(&asking(Some(100), None))).memory_bytes,
            Some(100 * MIB)
        );
    }
}

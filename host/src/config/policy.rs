//! The operator's policy for one driver, read in one place: its
//! `[drivers.<name>]` section over what the driver declares, and over the
//! `[sandbox]` defaults. Every capability (exec, container, secrets, node
//! limits) and the registry's publish bounds ask it, never the sections.

use super::{Config, DriverPolicy};

/// One limit as the operator set it for a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverLimit {
    /// The value; `None`: unlimited.
    pub value: Option<u64>,
    /// The setting it comes from, e.g. `[drivers.shell] max_node_processes`.
    pub setting: String,
}

/// The policy for the driver `name`.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'c> {
    config: &'c Config,
    name: &'c str,
    section: Option<&'c DriverPolicy>,
}

impl<'c> Policy<'c> {
    /// The policy `config` sets for the driver `name`.
    pub fn of(config: &'c Config, name: &'c str) -> Policy<'c> {
        Policy {
            config,
            name,
            section: config.drivers.get(name),
        }
    }

    /// The driver's name.
    pub fn name(&self) -> &'c str {
        self.name
    }

    /// The programs it may start: its section's list, or else what it
    /// `declared`.
    pub fn programs(&self, declared: &[String]) -> Vec<String> {
        self.section
            .and_then(|p| p.exec.clone())
            .unwrap_or_else(|| declared.to_vec())
    }

    /// Whether it gets the network: its section's word, or else what it
    /// `declared`.
    pub fn network(&self, declared: bool) -> bool {
        self.section.and_then(|p| p.network).unwrap_or(declared)
    }

    /// Whether its processes may open Unix sockets (off unless set).
    pub fn unix_sockets(&self) -> bool {
        self.section.and_then(|p| p.unix_sockets).unwrap_or(false)
    }

    /// Whether it may run containers (`Err` says why not): it must have
    /// `declared` them and not be denied them by its section.
    pub fn containers(&self, declared: bool) -> Result<(), String> {
        let name = self.name;
        if !declared {
            Err(format!(
                "driver `{name}` did not declare `capabilities.container`, so it may not run containers"
            ))
        } else if self.section.and_then(|p| p.container) == Some(false) {
            Err(format!(
                "driver `{name}` may not run containers: the config sets `container = false` \
                 under [drivers.{name}]"
            ))
        } else {
            Ok(())
        }
    }

    /// The image patterns its containers may use (none unless listed).
    pub fn images(&self) -> Vec<String> {
        self.section
            .and_then(|p| p.images.clone())
            .unwrap_or_default()
    }

    /// Whether it may be given secrets: it `declared` them and its section
    /// does not say `false` (for a published plugin, what it declares was
    /// bounded by the policy when it was published).
    pub fn secrets(&self, declared: bool) -> bool {
        declared && self.section.and_then(|p| p.secrets).unwrap_or(true)
    }

    /// The most memory, in MiB, one of its nodes' processes may have
    /// together.
    pub fn node_memory_mib(&self) -> DriverLimit {
        self.limit(
            "max_node_memory_mib",
            self.section.and_then(|p| p.max_node_memory_mib),
            self.config.sandbox.max_node_memory_mib,
        )
    }

    /// The most processes (and threads) one of its nodes may have at once.
    pub fn node_processes(&self) -> DriverLimit {
        self.limit(
            "max_node_processes",
            self.section.and_then(|p| p.max_node_processes),
            self.config.sandbox.max_node_processes,
        )
    }

    /// What bounds a plugin of this name when it is published: its own
    /// section, or else `[plugins.allow]`.
    pub fn publish_bound(&self) -> &'c DriverPolicy {
        self.section.unwrap_or(&self.config.plugins.allow)
    }

    /// A limit from the section, or else from `[sandbox]`, each under
    /// `field`; 0 means unlimited.
    fn limit(&self, field: &str, of_driver: Option<u64>, of_sandbox: Option<u64>) -> DriverLimit {
        let (value, setting) = match of_driver {
            Some(value) => (Some(value), format!("[drivers.{}] {field}", self.name)),
            None => (of_sandbox, format!("[sandbox] {field}")),
        };
        DriverLimit {
            value: value.filter(|v| *v > 0),
            setting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut config = Config::default();
        config.drivers.insert(
            "shell".into(),
            DriverPolicy {
                exec: Some(vec!["sh".into()]),
                network: Some(false),
                container: Some(false),
                secrets: Some(false),
                max_node_processes: Some(0),
                ..DriverPolicy::default()
            },
        );
        config
    }

    #[test]
    fn a_section_wins_over_what_the_driver_declares() {
        let config = config();
        let shell = Policy::of(&config, "shell");
        assert_eq!(shell.programs(&["bash".into()]), ["sh"]);
        assert!(!shell.network(true));
        assert!(!shell.secrets(true));
        let refused = shell.containers(true).unwrap_err();
        assert!(refused.contains("[drivers.shell]"), "{refused}");
        assert_eq!(shell.node_processes().value, None);
        assert_eq!(
            shell.node_processes().setting,
            "[drivers.shell] max_node_processes"
        );
    }

    #[test]
    fn without_a_section_the_declaration_and_the_sandbox_defaults_hold() {
        let config = config();
        let other = Policy::of(&config, "other");
        assert_eq!(other.programs(&["bash".into()]), ["bash"]);
        assert!(other.network(true));
        assert!(other.secrets(true) && !other.secrets(false));
        assert!(other.containers(true).is_ok());
        assert!(other.containers(false).is_err());
        assert!(!other.unix_sockets());
        assert!(other.images().is_empty());
        assert_eq!(
            other.node_processes().setting,
            "[sandbox] max_node_processes"
        );
        assert!(std::ptr::eq(other.publish_bound(), &config.plugins.allow));
    }
}

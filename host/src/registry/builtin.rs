//! The standard drivers built into this binary, as registry entries.

use std::sync::OnceLock;

use super::{Origin, PluginVersion};
use crate::runtime::digest;

include!(concat!(env!("OUT_DIR"), "/builtin_drivers.rs"));

/// The names of the built-in drivers.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN_DRIVERS.iter().map(|(name, _, _)| *name)
}

/// The component bytes of a built-in driver.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTIN_DRIVERS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, bytes)| *bytes)
}

/// The digests of the built-in drivers, computed once.
fn digests() -> &'static [String] {
    static DIGESTS: OnceLock<Vec<String>> = OnceLock::new();
    DIGESTS.get_or_init(|| {
        BUILTIN_DRIVERS
            .iter()
            .map(|(_, _, bytes)| digest(bytes))
            .collect()
    })
}

/// The built-in driver with this digest.
pub(super) fn by_digest(wanted: &str) -> Option<&'static [u8]> {
    digests()
        .iter()
        .position(|d| d == wanted)
        .map(|i| BUILTIN_DRIVERS[i].2)
}

/// Registry entries for the built-in drivers (described when first asked).
pub(super) fn entries() -> Vec<PluginVersion> {
    BUILTIN_DRIVERS
        .iter()
        .zip(digests())
        .filter_map(|((name, version, bytes), digest)| {
            let Ok(version) = version.parse() else {
                tracing::error!(driver = %name, %version, "built-in driver without a semver version");
                return None;
            };
            Some(PluginVersion {
                name: (*name).to_owned(),
                version,
                digest: digest.clone(),
                size: bytes.len() as u64,
                origin: Origin::Builtin,
                published_at: None,
                signed_by: None,
                description: None,
                world: None,
                blocked: None,
            })
        })
        .collect()
}

//! `drover config`: where the configuration comes from, and what it says once defaults are
//! filled in (secrets masked).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use drover::config::{Config, VaultSettings};

use super::{CliError, exit};

/// What to show of the configuration.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML: the file's settings with every default
    /// filled in, tokens and Vault credentials masked.
    Show,
    /// Print the path of the configuration file in use, or say that none is.
    Path,
}

/// Where the configuration is looked for when neither `--config` nor `DROVER_CONFIG` names
/// one: `$XDG_CONFIG_HOME/drover/config.toml` (`~/.config/...` when unset), then
/// `/etc/drover/config.toml`. The first that exists is used; none means every default.
pub fn default_file() -> Option<PathBuf> {
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .map(|dir| dir.join("drover").join("config.toml"));
    user.into_iter()
        .chain(std::iter::once(PathBuf::from("/etc/drover/config.toml")))
        .find(|path| path.is_file())
}

/// Runs `drover config …` on the configuration read from `file`.
pub fn run(command: ConfigCommand, config: &Config, file: Option<&Path>) -> Result<u8, CliError> {
    match command {
        ConfigCommand::Path => match file {
            Some(file) => println!("{}", file.display()),
            None => println!(
                "none: every setting has its default (looked for --config, DROVER_CONFIG, \
                 $XDG_CONFIG_HOME/drover/config.toml and /etc/drover/config.toml)"
            ),
        },
        ConfigCommand::Show => {
            let mut value = toml::Value::try_from(config)?;
            mask_secrets(&mut value);
            match file {
                Some(file) => println!("# from {}, with defaults filled in", file.display()),
                None => println!("# no configuration file: every setting is its default"),
            }
            println!("# {}", vault_source(config.vault.as_ref()));
            print!("{}", toml::to_string_pretty(&value)?);
        }
    }
    Ok(exit::SUCCESS)
}

/// Where the `[vault]` shown comes from: the file, or the environment when the file has no
/// such section (see `drover::config::resolve_vault`), or nowhere.
fn vault_source(vault: Option<&VaultSettings>) -> String {
    match vault {
        Some(settings) => format!("[vault] from {}", settings.source.describe(settings)),
        None => "no [vault] section and no VAULT_ADDR: nodes cannot have secrets".to_owned(),
    }
}

/// What stands for a secret in `drover config show`.
const MASK: &str = "********";

/// Replaces what would let a reader act as drover: API tokens, the Vault token and the
/// AppRole secret id. Paths to files holding them stay, since they are not the secret.
fn mask_secrets(config: &mut toml::Value) {
    if let Some(tokens) = config
        .get_mut("server")
        .and_then(|s| s.get_mut("tokens"))
        .and_then(toml::Value::as_array_mut)
    {
        for token in tokens {
            mask(token, "token");
        }
    }
    if let Some(vault) = config.get_mut("vault") {
        mask(vault, "token");
        if let Some(approle) = vault.get_mut("approle") {
            mask(approle, "secret_id");
        }
    }
}

fn mask(table: &mut toml::Value, key: &str) {
    if let Some(value) = table.get_mut(key) {
        *value = toml::Value::String(MASK.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_vault_credentials_are_masked() {
        let config: Config = toml::from_str(
            "[[server.tokens]]\ntoken = \"s3cret-admin\"\nrole = \"admin\"\n\n\
             [vault]\naddress = \"http://127.0.0.1:8200\"\ntoken = \"hvs.s3cret\"\n\
             [vault.approle]\nrole_id = \"role\"\nsecret_id = \"approle-s3cret\"\n",
        )
        .unwrap();
        let mut value = toml::Value::try_from(&config).unwrap();
        mask_secrets(&mut value);
        let text = toml::to_string_pretty(&value).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.contains("role_id = \"role\"") && text.contains(MASK),
            "{text}"
        );
        // The masked text still reads as a configuration.
        let _: Config = toml::from_str(&text).unwrap();
    }
}

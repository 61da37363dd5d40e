//! `drover plugin`: publish driver components to a running drover, list and
//! inspect them, and sign them.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use drover::registry::signature;
use reqwest::StatusCode;
use serde_json::Value;

use super::{CliError, exit};

/// The header carrying a signature; see the API's upload route.
const SIGNATURE_HEADER: &str = "X-Drover-Signature";

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Publish a component to a running drover (admin token needed when the
    /// server has tokens). `FILE.sig`, if present, is sent as its signature.
    Push {
        /// The component (.wasm).
        file: PathBuf,
        /// The name to publish it under (default: the one it describes).
        #[arg(long)]
        name: Option<String>,
        /// Its semver version (default: the one it describes).
        #[arg(long)]
        version: Option<String>,
        /// A signature file made by `drover plugin sign` (default: FILE.sig if it exists).
        #[arg(long)]
        signature: Option<PathBuf>,
        #[command(flatten)]
        server: Server,
    },
    /// List the plugins of a running drover.
    Ls {
        #[command(flatten)]
        server: Server,
    },
    /// Show a plugin's versions: digest, capabilities, the WIT world it
    /// implements and what it imports.
    Inspect {
        /// `NAME` (every version) or `NAME@VERSION`.
        plugin: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: Server,
    },
    /// Withdraw a version; runs that use it keep it until they end.
    Rm {
        /// `NAME@VERSION`.
        plugin: String,
        #[command(flatten)]
        server: Server,
    },
    /// Sign a component with an ed25519 key: writes FILE.sig.
    Sign {
        /// The component (.wasm).
        file: PathBuf,
        /// The signing key file made by `drover plugin keygen`.
        #[arg(long)]
        key: PathBuf,
    },
    /// Make a signing key: KEY (secret, mode 0600) and KEY.pub, whose
    /// contents go into the server's `plugins.trusted_keys`.
    Keygen {
        /// Where to write the secret key.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Which server to talk to, and as whom.
#[derive(Debug, Args)]
pub struct Server {
    /// The server's base URL.
    #[arg(long, env = "DROVER_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A bearer token.
    #[arg(long, env = "DROVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl Server {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.server.trim_end_matches('/'));
        let request = reqwest::Client::new().request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request and returns its JSON, or the server's error as the CLI's.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Value), CliError> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach drover at {}", self.server))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("drover answered {status} with a body that is not JSON"))?;
        if status.is_success() {
            return Ok((status, body));
        }
        // Problem details (RFC 9457); servers before them answered `error`.
        let message = body["detail"]
            .as_str()
            .or_else(|| body["error"].as_str())
            .unwrap_or("no reason given");
        let error = anyhow!("{status}: {message}");
        Err(if status.is_client_error() {
            CliError::bad_input(error)
        } else {
            error.into()
        })
    }
}

pub async fn run(cmd: PluginCommand) -> Result<u8, CliError> {
    match cmd {
        PluginCommand::Push {
            file,
            name,
            version,
            signature,
            server,
        } => push(&file, name, version, signature, &server).await,
        PluginCommand::Ls { server } => {
            let (_, body) = server
                .call(server.request(reqwest::Method::GET, "/api/v1/plugins"))
                .await?;
            for plugin in body["plugins"].as_array().into_iter().flatten() {
                let versions: Vec<&str> = plugin["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{:<20} {:<10} {}{}",
                    plugin["name"].as_str().unwrap_or("?"),
                    plugin["latest"].as_str().unwrap_or("-"),
                    versions.join(", "),
                    if plugin["builtin"] == true {
                        " (built-in)"
                    } else {
                        ""
                    }
                );
            }
            Ok(exit::SUCCESS)
        }
        PluginCommand::Inspect {
            plugin,
            json,
            server,
        } => inspect(&plugin, json, &server).await,
        PluginCommand::Rm { plugin, server } => {
            let (name, version) = plugin
                .split_once('@')
                .ok_or_else(|| CliError::bad_input(anyhow!("give the version: NAME@VERSION")))?;
            let (_, body) = server
                .call(server.request(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/plugins/{name}/{version}"),
                ))
                .await?;
            let in_use = if body["in_use"] == true {
                " (runs still using it keep it until they end)"
            } else {
                ""
            };
            println!("withdrew {name} {version}{in_use}");
            Ok(exit::SUCCESS)
        }
        PluginCommand::Sign { file, key } => {
            let secret = std::fs::read_to_string(&key)
                .with_context(|| format!("cannot read the key {}", key.display()))
                .map_err(CliError::bad_input)?;
            let bytes = read_component(&file)?;
            let digest = drover::runtime::digest(&bytes);
            let signed = signature::sign(&secret, &digest).map_err(CliError::bad_input)?;
            let out = signature_path(&file);
            std::fs::write(&out, format!("{signed}\n"))
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!("signed sha256:{digest}");
            println!("{}", out.display());
            Ok(exit::SUCCESS)
        }
        PluginCommand::Keygen { out } => {
            let (secret, public) = signature::generate().map_err(|e| anyhow!(e))?;
            write_secret(&out, &secret)?;
            let public_path = PathBuf::from(format!("{}.pub", out.display()));
            std::fs::write(&public_path, format!("{public}\n"))
                .with_context(|| format!("cannot write {}", public_path.display()))?;
            eprintln!(
                "secret key in {}; trust it on a server with:\n  [plugins]\n  trusted_keys = [\"{public}\"]",
                out.display()
            );
            println!("{public}");
            Ok(exit::SUCCESS)
        }
    }
}

async fn push(
    file: &Path,
    name: Option<String>,
    version: Option<String>,
    signature: Option<PathBuf>,
    server: &Server,
) -> Result<u8, CliError> {
    let bytes = read_component(file)?;
    let signature = match signature {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the signature {}", path.display()))
                .map_err(CliError::bad_input)?,
        ),
        None => std::fs::read_to_string(signature_path(file)).ok(),
    };
    let mut query = Vec::new();
    if let Some(name) = &name {
        query.push(("name", name.as_str()));
    }
    if let Some(version) = &version {
        query.push(("version", version.as_str()));
    }
    let mut request = server
        .request(reqwest::Method::POST, "/api/v1/plugins")
        .query(&query)
        .header(reqwest::header::CONTENT_TYPE, "application/wasm")
        .body(bytes);
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature.trim());
    }
    let started = std::time::Instant::now();
    let (status, body) = server.call(request).await?;
    let what = if status == StatusCode::CREATED {
        "published"
    } else {
        "already published"
    };
    println!(
        "{what} {} {} ({}) in {:.2?}",
        body["name"].as_str().unwrap_or("?"),
        body["version"].as_str().unwrap_or("?"),
        body["digest"].as_str().unwrap_or("?"),
        started.elapsed()
    );
    Ok(exit::SUCCESS)
}

async fn inspect(plugin: &str, json: bool, server: &Server) -> Result<u8, CliError> {
    let (name, version) = match plugin.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (plugin, None),
    };
    let (_, body) = server
        .call(server.request(reqwest::Method::GET, &format!("/api/v1/plugins/{name}")))
        .await?;
    let versions: Vec<&Value> = body["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| version.is_none_or(|want| v["version"] == want))
        .collect();
    if versions.is_empty() {
        return Err(CliError::bad_input(anyhow!(
            "plugin `{name}` has no version {}",
            version.unwrap_or("at all")
        )));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&versions)?);
        return Ok(exit::SUCCESS);
    }
    for v in versions {
        let d = &v["description"];
        let caps = &d["capabilities"];
        let list = |value: &Value| -> String {
            let items: Vec<&str> = value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if items.is_empty() {
                "none".into()
            } else {
                items.join(", ")
            }
        };
        println!("{name} {}", v["version"].as_str().unwrap_or("?"));
        println!("  digest:       {}", v["digest"].as_str().unwrap_or("?"));
        println!(
            "  origin:       {}",
            v["origin"]["kind"].as_str().unwrap_or("?")
        );
        println!("  summary:      {}", d["summary"].as_str().unwrap_or(""));
        println!(
            "  implements:   {}",
            v["world"]["implements"].as_str().unwrap_or("?")
        );
        println!("  imports:      {}", list(&v["world"]["imports"]));
        println!(
            "  capabilities: exec [{}], workspace {}, network {}, container {}, secrets {}",
            list(&caps["exec"]),
            caps["workspace"],
            caps["network"],
            caps["container"],
            caps["secrets"]
        );
        if let Some(key) = v["signed_by"].as_str() {
            println!("  signed by:    {key}");
        }
        if let Some(blocked) = v["blocked"].as_str() {
            println!("  BLOCKED:      {blocked}");
        }
    }
    Ok(exit::SUCCESS)
}

fn read_component(file: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(CliError::bad_input)
}

fn signature_path(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", file.display()))
}

/// Writes a secret readable by its owner only.
fn write_secret(path: &Path, secret: &str) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))
        .map_err(CliError::bad_input)?;
    file.write_all(format!("{secret}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

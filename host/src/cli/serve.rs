//! `drover serve`: the HTTP service, with runs kept in the data folder (or
//! in Redis, shared with other leaders) and carried on after a restart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::Args;
use drover::api::{self, AppState, Auth, Listen};
use drover::backend::{Backend, Distributed, Embedded};
use drover::config::Config;
use drover::runs::{Runs, Stopped};
use drover::runtime::Runtime;
use drover::store::Store;
use drover::store::redis::RedisStore;
use drover::transport::redis::RedisDispatcher;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{CliError, exit, open_registry};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:8080", env = "DROVER_LISTEN")]
    listen: String,
    /// Listen on a non-loopback address without any token: anyone who can
    /// reach the port may run anything.
    #[arg(long)]
    insecure: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// How many nodes of one run may run at once, unless a submission says
    /// (default: server.parallelism, else the number of cores; 1024 with --redis).
    #[arg(long, short = 'j')]
    parallelism: Option<usize>,
    /// Keep runs in this Redis (redis://host:port) instead of the data
    /// folder, shared with other leaders (default: redis.url).
    #[arg(long, env = "DROVER_REDIS")]
    redis: Option<String>,
}

/// How many nodes of one run a leader keeps on the drones at once, unless
/// told otherwise.
const DISTRIBUTED_PARALLELISM: usize = 1024;

pub async fn serve(args: ServeArgs, config: Config) -> Result<u8, CliError> {
    let addr: SocketAddr = tokio::net::lookup_host(&args.listen)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| {
            CliError::bad_input(anyhow!(
                "--listen `{}` is not an address (try 127.0.0.1:8080)",
                args.listen
            ))
        })?;
    let env_tokens = std::env::var(api::TOKENS_ENV).ok();
    let auth = Auth::new(&config.server.tokens, env_tokens.as_deref())
        .map_err(|e| CliError::bad_input(anyhow!(e)))?;
    if auth.is_open() && !addr.ip().is_loopback() && !args.insecure {
        return Err(CliError::bad_input(anyhow!(
            "refusing to listen on {addr} without tokens: anyone reaching it could run anything. \
             Add [[server.tokens]] to the config file or set {}=admin:<token>, \
             listen on a loopback address, or pass --insecure",
            api::TOKENS_ENV
        )));
    }
    if let Some(key) = &args.tls_key {
        super::check_private_paths(&config, None, &[("TLS key", key.clone())])?;
    }
    let tls = match (&args.tls_cert, &args.tls_key, &config.server.tls) {
        (Some(cert), Some(key), _) => Some(api::load_tls(cert, key).map_err(CliError::bad_input)?),
        (_, _, Some(tls)) => Some(api::load_tls(&tls.cert, &tls.key).map_err(CliError::bad_input)?),
        _ => None,
    };
    let redis_url = args.redis.clone().or_else(|| config.redis.url.clone());
    // A leader runs nothing itself: the drones' concurrency bounds a run,
    // not this machine's cores.
    let parallelism = args
        .parallelism
        .or(config.server.parallelism)
        .unwrap_or_else(|| match redis_url {
            Some(_) => DISTRIBUTED_PARALLELISM,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        });
    if parallelism == 0 {
        return Err(CliError::bad_input(anyhow!(
            "--parallelism must be at least 1"
        )));
    }
    let max_body = config.server.max_body_bytes();
    let max_connections = config.server.max_connections;
    let lease_ms = config.redis.lease_ms();
    // The store is opened before the runtime so that a second server on
    // the same data folder stops before touching anything.
    let store = match &redis_url {
        // Runs live in Redis: the embedded database is not opened, so that
        // leaders may share a data folder (compile cache, workspaces).
        Some(url) => Kept::Redis(
            RedisStore::connect(url, lease_ms)
                .await
                .map_err(|e| redis_error(url, e))?,
            url,
        ),
        None => Kept::Embedded(
            Store::open(&config.data_dir().join("drover.redb"))
                .with_context(|| "is another `drover serve` using the same data folder?")?,
        ),
    };
    // Which Vault secrets come from, and why: the environment's counts only without a
    // [vault] section, which surprises whoever set both.
    let vault = config.vault.as_ref().map(|v| {
        format!(
            "secrets from Vault at {}, set by {}",
            v.address,
            v.source.describe(v)
        )
    });
    let registry = open_registry(Runtime::new(config)?).await?;
    // Containers of drovers that died are removed before new ones start.
    registry.runtime().containers().remove_leftovers().await;
    // The one place the backend is chosen.
    let backend: Arc<dyn Backend> = match store {
        Kept::Embedded(store) => Arc::new(Embedded::new(store, registry.runtime().clone())),
        Kept::Redis(store, url) => {
            // Nodes go to drones through the same Redis.
            let dispatcher = RedisDispatcher::connect(url, registry.clone())
                .await
                .map_err(|e| redis_error(url, e))?;
            Arc::new(Distributed::new(store, dispatcher))
        }
    };
    let kept_in = backend.describe();
    let runs = Runs::new(registry.clone(), backend, parallelism);
    let recovered = runs.recover().await?;
    if recovered > 0 {
        eprintln!("carrying on {recovered} unfinished run(s) from before the restart");
    }
    // Interrupted runs hold their components again: the rest may go.
    registry.collect_garbage();
    let _watch = registry
        .watch_folder()
        .map_err(|e| CliError::bad_input(anyhow!(e)))?;

    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "drover {} listening on {scheme}://{local} ({kept_in}{})",
        env!("CARGO_PKG_VERSION"),
        if auth.is_open() {
            ", no tokens: every caller is admin"
        } else {
            ""
        }
    );
    if let Some(vault) = vault {
        eprintln!("{vault}");
    }
    let shutdown = CancellationToken::new();
    let router = api::router(
        AppState::new(runs.clone(), auth, shutdown.clone())
            .beyond_loopback(!addr.ip().is_loopback())
            .secure_cookies(tls.is_some()),
        max_body,
    );
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            shutdown.cancel();
        });
    }
    api::serve(Listen {
        listener,
        router,
        tls,
        max_connections,
        shutdown,
    })
    .await?;
    match runs.stop().await {
        Stopped::HandedOver(0) | Stopped::Left(0) => {}
        Stopped::HandedOver(n) => {
            eprintln!("stopping; {n} run(s) in progress go to another leader");
        }
        Stopped::Left(n) => {
            eprintln!(
                "stopping; {n} run(s) in progress will carry on when drover serve starts again"
            );
        }
    }
    // Their nodes' commands stop with drover, not at its next start.
    registry.runtime().containers().remove_own().await;
    Ok(exit::SUCCESS)
}

/// Where runs are kept, as opened at start.
enum Kept<'a> {
    Embedded(Store),
    /// In Redis at this URL.
    Redis(RedisStore, &'a str),
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// A URL that is not Redis's is bad input (exit 2); a Redis that does not answer is a failure
/// (exit 1), as `drover drone` says of it too.
fn redis_error(url: &str, error: drover::transport::redis::RedisError) -> CliError {
    if matches!(error, drover::transport::redis::RedisError::Url { .. }) {
        CliError::bad_input(anyhow!("cannot use Redis at {url}: {error}"))
    } else {
        CliError::from(anyhow!("cannot reach Redis at {url}: {error}"))
    }
}

//! `drover drone`: take nodes from Redis, run them in this process's
//! runtime, report back; stop gracefully on SIGTERM or Ctrl-C.

use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use drover::config::Config;
use drover::drone::{self, Drone, DroneOptions};
use drover::runtime::Runtime;
use drover::transport::redis::protocol::valid_pool;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::{CliError, exit};

#[derive(Debug, Args)]
pub struct DroneArgs {
    /// The Redis the leaders use, e.g. redis://127.0.0.1:6379 (default:
    /// redis.url).
    #[arg(long, env = "DROVER_REDIS", value_name = "URL")]
    redis: Option<String>,
    /// A pool whose nodes to take (repeat for several; default: drone.pools,
    /// else `default`).
    #[arg(long = "pool", value_name = "NAME")]
    pools: Vec<String>,
    /// How many nodes to run at once (default: drone.concurrency, else the
    /// number of cores).
    #[arg(long, short = 'j', value_name = "K")]
    concurrency: Option<usize>,
    /// The drone's id, unique among drones (default: `<host>-<pid>-<random>`).
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Take over a node from a drone silent for this long, e.g. `30s` (default:
    /// drone.claim_idle, 30s).
    #[arg(long, value_name = "DURATION", value_parser = duration_flag)]
    claim_idle: Option<Duration>,
    /// Write the heartbeat this often, e.g. `2s` (default: drone.heartbeat, 2s).
    #[arg(long, value_name = "DURATION", value_parser = duration_flag)]
    heartbeat: Option<Duration>,
    /// On SIGTERM or Ctrl-C, let running nodes finish for this long, e.g. `30s`
    /// (default: drone.grace, 30s); a second signal stops them at once.
    #[arg(long, value_name = "DURATION", value_parser = duration_flag)]
    grace: Option<Duration>,
}

pub async fn drone(args: DroneArgs, config: Config) -> Result<u8, CliError> {
    let options = options(args, &config).map_err(CliError::bad_input)?;
    let runtime = Runtime::new(config)?;
    // Containers of drovers that died are removed before new ones start.
    runtime.containers().remove_leftovers().await;
    let drone = Drone::start(options.clone(), runtime)
        .await
        .map_err(|e| match e {
            drone::DroneError::Url(_) => CliError::bad_input(e),
            e => CliError::from(e),
        })?;
    // Handlers in place before the drone says it is up: a signal right
    // after that line stops it gracefully instead of killing it.
    let mut signals = Signals::new()?;
    let (quit, force) = (CancellationToken::new(), CancellationToken::new());
    {
        let (quit, force) = (quit.clone(), force.clone());
        tokio::spawn(async move {
            signals.next().await;
            eprintln!("drone stopping: no new nodes; running ones may finish");
            quit.cancel();
            signals.next().await;
            eprintln!("drone stopping now");
            force.cancel();
        });
    }
    eprintln!(
        "drone {} up: pools {}, concurrency {}, redis {}",
        drone.id(),
        options.pools.join(", "),
        options.concurrency,
        options.redis
    );
    drone.run(quit, force).await;
    eprintln!("drone {} stopped", options.id);
    Ok(exit::SUCCESS)
}

/// The flags over the `[drone]` settings, checked.
fn options(args: DroneArgs, config: &Config) -> anyhow::Result<DroneOptions> {
    let settings = &config.drone;
    let mut pools = if args.pools.is_empty() {
        settings.pools.clone()
    } else {
        args.pools
    };
    if pools.is_empty() {
        pools.push(drover::transport::redis::protocol::DEFAULT_POOL.to_owned());
    }
    if let Some(bad) = pools.iter().find(|p| !valid_pool(p)) {
        return Err(anyhow!(
            "`{bad}` is not a pool name: 1 to 64 letters, digits, `_`, `.` or `-`"
        ));
    }
    pools.sort();
    pools.dedup();
    let concurrency = args
        .concurrency
        .or(settings.concurrency)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if concurrency == 0 {
        return Err(anyhow!("--concurrency must be at least 1"));
    }
    let claim_idle = args.claim_idle.unwrap_or(settings.claim_idle);
    let heartbeat = args.heartbeat.unwrap_or(settings.heartbeat);
    for (value, flag) in [(claim_idle, "--claim-idle"), (heartbeat, "--heartbeat")] {
        if value < Duration::from_millis(1) {
            return Err(anyhow!("{flag} must be at least 1ms"));
        }
    }
    let id = args
        .id
        .or_else(|| settings.id.clone())
        .unwrap_or_else(drone::default_id);
    if !drone::valid_id(&id) {
        return Err(anyhow!(
            "`{id}` is not a drone id: 1 to 128 printable characters without spaces"
        ));
    }
    let redis = args
        .redis
        .or_else(|| config.redis.url.clone())
        .ok_or_else(|| {
            anyhow!(
                "no Redis to take nodes from: pass --redis URL or set [redis] url in the config"
            )
        })?;
    // Checked here so that a bad URL is bad input, before anything starts.
    drover::transport::redis::client(&redis)?;
    Ok(DroneOptions {
        redis,
        id,
        pools,
        concurrency,
        claim_idle,
        heartbeat,
        grace: args.grace.unwrap_or(settings.grace),
    })
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from creation on.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// A duration flag in drover's one grammar (`250ms`, `30s`, `1.5m`), with its unit written:
/// these flags took bare milliseconds before, which the grammar would read as seconds.
fn duration_flag(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "`{text}` has no unit: write e.g. `{text}ms` or `{text}s` (this flag took \
             milliseconds before; durations now carry their unit, as --timeout's do)"
        ));
    }
    drover_duration::parse_duration(text).map_err(|e| e.to_string())
}

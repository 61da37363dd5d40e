//! `drover run` against `ninja` on the same DAGs, in one benchmark run so the
//! ratios are fair on a noisy machine: `chain`, `wide` (one root, N-2
//! parallel nodes, one sink) and `layered` DAGs, with `shell` running `true`
//! (ninja runs `true` through `/bin/sh -c` too) and with `noop`.
//!
//! Run with `cargo bench -p drover --bench dag` (release). Needs `ninja`
//! (Debian's `ninja-build`; `tests/setup.sh` installs it). Options:
//! `-- --shell-nodes N` (default 1000), `--noop-nodes N` (default 10000),
//! `-j N` (default: the number of cores), `--repeat N` (default 3, best of),
//! `--workspaces DIR` (where node workspaces go, e.g. `/dev/shm/drover`),
//! `--drover PATH` (the binary to measure; default: the one built with it).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{arg, text_arg};

/// For each node, the indexes of the nodes it needs.
type Shape = Vec<Vec<usize>>;

fn chain(n: usize) -> Shape {
    (0..n)
        .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
        .collect()
}

fn wide(n: usize) -> Shape {
    let mut shape = vec![vec![]];
    shape.extend((1..n - 1).map(|_| vec![0]));
    shape.push((1..n - 1).collect());
    shape
}

/// Layers of `width` nodes, each needing two nodes of the layer before.
fn layered(n: usize) -> Shape {
    let width = 50.min(n);
    (0..n)
        .map(|i| {
            let (layer, pos) = (i / width, i % width);
            if layer == 0 {
                vec![]
            } else {
                let prev = (layer - 1) * width;
                let mut needs = vec![prev + pos, prev + (pos + 1) % width];
                needs.dedup();
                needs
            }
        })
        .collect()
}

fn drover_dag(name: &str, shape: &Shape, driver: &str, artifact: &str) -> String {
    let mut nodes = serde_json::Map::new();
    for (i, needs) in shape.iter().enumerate() {
        let needs: Vec<String> = needs.iter().map(|n| format!("n{n}")).collect();
        nodes.insert(
            format!("n{i}"),
            serde_json::json!({"driver": driver, "artifact": artifact, "needs": needs}),
        );
    }
    serde_json::json!({"name": name, "nodes": nodes}).to_string()
}

fn ninja_file(shape: &Shape) -> String {
    // Outputs are never written, so ninja runs every edge every time, in
    // dependency order: the same work as drover's DAG.
    let mut out = String::from("rule run\n  command = true\n\n");
    for (i, needs) in shape.iter().enumerate() {
        let _ = write!(out, "build n{i}: run");
        if !needs.is_empty() {
            out.push_str(" |");
            for n in needs {
                let _ = write!(out, " n{n}");
            }
        }
        out.push('\n');
    }
    out
}

fn time(mut cmd: Command) -> Duration {
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .status()
        .expect("run benchmark command");
    let took = started.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    took
}

fn best(repeat: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..repeat).map(|_| f()).min().unwrap_or_default()
}

fn main() {
    let shell_nodes = arg("--shell-nodes", 1000);
    let noop_nodes = arg("--noop-nodes", 10_000);
    let jobs = arg(
        "-j",
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    );
    let repeat = arg("--repeat", 3).max(1);
    if Command::new("ninja").arg("--version").output().is_err() {
        eprintln!("ninja is not installed: run `bash tests/setup.sh` (Debian package ninja-build)");
        std::process::exit(1);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let drover = common::drover_binary();
    // `--workspaces DIR` puts node workspaces there (e.g. on tmpfs).
    let workspaces = text_arg("--workspaces");
    let config = dir.path().join("drover.toml");
    let mut toml = String::new();
    if let Some(w) = &workspaces {
        toml.push_str(&format!("workspace_dir = {w:?}\n"));
    }
    std::fs::write(&config, toml).expect("write config");
    let drover_run = |file: &Path| {
        let mut cmd = Command::new(&drover);
        cmd.arg("run")
            .arg(file)
            .args(["-j", &jobs.to_string(), "--output", "json", "--data"])
            .arg(&data)
            .arg("--config")
            .arg(&config);
        cmd
    };

    println!(
        "drover vs ninja, -j {jobs}, best of {repeat} (wall time of the whole command); workspaces in {}\n",
        workspaces
            .as_deref()
            .unwrap_or("the data folder (a tempdir)")
    );
    println!(
        "{:<8} {:>6} {:<6} {:>10} {:>10} {:>8}",
        "dag", "nodes", "driver", "drover", "ninja", "ratio"
    );
    for (shape_name, make) in [
        ("chain", chain as fn(usize) -> Shape),
        ("wide", wide),
        ("layered", layered),
    ] {
        let shape = make(shell_nodes);
        let dag_file = dir.path().join(format!("{shape_name}-shell.json"));
        std::fs::write(&dag_file, drover_dag(shape_name, &shape, "shell", "true"))
            .expect("write dag");
        let ninja_dir = dir.path().join(format!("{shape_name}-ninja"));
        std::fs::create_dir_all(&ninja_dir).expect("mkdir");
        std::fs::write(ninja_dir.join("build.ninja"), ninja_file(&shape))
            .expect("write build.ninja");
        // Warm up: compile the driver into the cache, fault in both binaries.
        time(drover_run(&dag_file));
        let ninja = || {
            let mut cmd = Command::new("ninja");
            cmd.args(["-j", &jobs.to_string(), "-C"]).arg(&ninja_dir);
            cmd
        };
        time(ninja());
        let d = best(repeat, || time(drover_run(&dag_file)));
        let n = best(repeat, || time(ninja()));
        println!(
            "{:<8} {:>6} {:<6} {:>8.0}ms {:>8.0}ms {:>7.2}x",
            shape_name,
            shell_nodes,
            "shell",
            d.as_secs_f64() * 1e3,
            n.as_secs_f64() * 1e3,
            d.as_secs_f64() / n.as_secs_f64()
        );
    }
    println!();
    for (shape_name, make) in [
        ("chain", chain as fn(usize) -> Shape),
        ("wide", wide),
        ("layered", layered),
    ] {
        let shape = make(noop_nodes);
        let dag_file = dir.path().join(format!("{shape_name}-noop.json"));
        std::fs::write(&dag_file, drover_dag(shape_name, &shape, "noop", "")).expect("write dag");
        time(drover_run(&dag_file));
        let took = best(repeat, || time(drover_run(&dag_file)));
        println!(
            "{:<8} {:>6} {:<6} {:>8.0}ms {:>10} {:>7.0} nodes/s (whole command: parse, validate, run)",
            shape_name,
            noop_nodes,
            "noop",
            took.as_secs_f64() * 1e3,
            "-",
            noop_nodes as f64 / took.as_secs_f64()
        );
    }
}

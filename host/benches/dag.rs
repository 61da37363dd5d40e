//! `drover run` against `ninja` on the same DAGs, in one benchmark run so the
//! ratios are fair on a noisy machine: `chain`, `wide` (one root, N-2
//! parallel nodes, one sink) and `layered` DAGs, with `shell` running `true`
//! (ninja runs `true` through `/bin/sh -c` too) and with `noop`.
//!
//! drover and ninja take turns (drover, ninja, drover, ninja, ...), so a
//! change in the machine's load hits both alike; each pair gives a ratio,
//! and the median of those is the figure to compare. Beside wall time it
//! prints the ratio of CPU time (user + system, the `sh` processes
//! included, from `getrusage` of the bench's children), which idle moments
//! on a shared machine do not blur.
//!
//! Run with `cargo bench -p drover --bench dag` (release). Needs `ninja`
//! (Debian's `ninja-build`; `tests/setup.sh` installs it). Options:
//! `-- --shell-nodes N` (default 1000), `--noop-nodes N` (default 10000),
//! `-j N` (default: the number of cores), `--repeat N` (default 5: pairs
//! of runs per DAG), `--workspaces DIR` (where node workspaces go, e.g.
//! `/dev/shm/drover`), `--drover PATH` (the binary to measure; default: the
//! one built with it), `--phases` (also run the shell chain once with
//! trace logging and print where a node's time goes, phase by phase).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{arg, median, text_arg};

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

/// One run of a command: its wall time, and the CPU time (user + system)
/// of it and every process it waited for.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

fn run(mut cmd: Command) -> Sample {
    let before = children_cpu();
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .status()
        .expect("run benchmark command");
    let wall = started.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    // The bench waits for one command at a time, so the children's total
    // grew by that command's CPU and that of the processes it waited for.
    Sample {
        wall,
        cpu: children_cpu().saturating_sub(before),
    }
}

/// User + system time of this process's waited-for children, so far.
fn children_cpu() -> Duration {
    // SAFETY: all-zero is a valid rusage; getrusage fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a valid out-pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let shell_nodes = arg("--shell-nodes", 1000);
    let noop_nodes = arg("--noop-nodes", 10_000);
    let jobs = arg(
        "-j",
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    );
    let repeat = arg("--repeat", 5).max(1);
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
        "drover vs ninja, -j {jobs}, {repeat} pairs of runs taken in turns; workspaces in {}",
        workspaces
            .as_deref()
            .unwrap_or("the data folder (a tempdir)")
    );
    println!(
        "wall: the whole command, median of the pairs' ratios (and their range); \
         cpu: user + system of all its processes, median ratio\n"
    );
    println!(
        "{:<8} {:>6} {:<6} {:>10} {:>10} {:>8} {:>15} {:>10} {:>10}",
        "dag", "nodes", "driver", "drover", "ninja", "wall", "wall range", "cpu", "cpu/node+"
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
        run(drover_run(&dag_file));
        let ninja = || {
            let mut cmd = Command::new("ninja");
            cmd.args(["-j", &jobs.to_string(), "-C"]).arg(&ninja_dir);
            cmd
        };
        run(ninja());
        let pairs: Vec<(Sample, Sample)> = (0..repeat)
            .map(|_| (run(drover_run(&dag_file)), run(ninja())))
            .collect();
        let ratios = |f: fn(&Sample) -> Duration| -> Vec<f64> {
            pairs
                .iter()
                .map(|(d, n)| f(d).as_secs_f64() / f(n).as_secs_f64())
                .collect()
        };
        let wall = ratios(|s| s.wall);
        let (low, high) = wall
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        let drover_wall = median(pairs.iter().map(|(d, _)| millis(d.wall)).collect());
        let ninja_wall = median(pairs.iter().map(|(_, n)| millis(n.wall)).collect());
        // drover's CPU per node beyond ninja's, in microseconds.
        let extra = median(
            pairs
                .iter()
                .map(|(d, n)| (millis(d.cpu) - millis(n.cpu)) * 1e3 / shell_nodes as f64)
                .collect(),
        );
        println!(
            "{:<8} {:>6} {:<6} {:>8.0}ms {:>8.0}ms {:>7.2}x {:>6.2}x–{:>5.2}x {:>9.2}x {:>8.0}µs",
            shape_name,
            shell_nodes,
            "shell",
            drover_wall,
            ninja_wall,
            median(wall),
            low,
            high,
            median(ratios(|s| s.cpu)),
            extra,
        );
    }
    if common::flag("--phases") {
        let dag_file = dir.path().join("chain-shell.json");
        let mut cmd = drover_run(&dag_file);
        cmd.env("DROVER_LOG", "drover=trace");
        print_phases(cmd);
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
        run(drover_run(&dag_file));
        let took = median(
            (0..repeat)
                .map(|_| run(drover_run(&dag_file)).wall.as_secs_f64())
                .collect(),
        );
        println!(
            "{:<8} {:>6} {:<6} {:>8.0}ms {:>10} {:>7.0} nodes/s (whole command: parse, validate, run; median)",
            shape_name,
            noop_nodes,
            "noop",
            took * 1e3,
            "-",
            noop_nodes as f64 / took
        );
    }
}

/// The spans the runtime logs at trace level for each node, in the order
/// they come on a chain (one node at a time).
const SPANS: [&str; 6] = [
    "instance state ready",
    "confinement ready",
    "process spawned",
    "process exited",
    "process output drained",
    "node done",
];

/// Runs `cmd` (a shell chain with `DROVER_LOG=drover=trace`) and prints the
/// median time between each span and the next, over all nodes.
fn print_phases(mut cmd: Command) {
    let output = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run drover with trace logging");
    assert!(output.status.success(), "{cmd:?} failed");
    // Builds before 2026-12-06 coloured their log even into a pipe.
    let log = strip_colours(&String::from_utf8_lossy(&output.stderr));
    // (span, when) for each line that is one of SPANS.
    let events: Vec<(usize, std::time::SystemTime)> = log
        .lines()
        .filter_map(|line| {
            let span = SPANS
                .iter()
                .position(|s| line.contains(&format!(": {s} ")))?;
            let when = drover::rfc3339::parse(line.split_whitespace().next()?)?;
            Some((span, when))
        })
        .collect();
    let mut gaps: Vec<Vec<f64>> = vec![Vec::new(); SPANS.len()];
    for pair in events.windows(2) {
        let ((from, t0), (to, t1)) = (pair[0], pair[1]);
        if to == (from + 1) % SPANS.len()
            && let Ok(took) = t1.duration_since(t0)
        {
            gaps[from].push(took.as_secs_f64() * 1e6);
        }
    }
    println!(
        "\nwhere a chain node's time goes (trace spans, median over the nodes; logging adds a few µs each):"
    );
    for (from, gap) in gaps.into_iter().enumerate() {
        let to = SPANS[(from + 1) % SPANS.len()];
        if gap.is_empty() {
            println!("  {:<24} → {:<24} (not seen)", SPANS[from], to);
        } else {
            let seen = gap.len();
            println!(
                "  {:<24} → {:<24} {:>7.0} µs  (n = {seen})",
                SPANS[from],
                to,
                median(gap),
            );
        }
    }
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

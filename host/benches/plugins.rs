//! Plugin benchmark: for a Rust driver and the example drivers in C, Python
//! and JavaScript, the time from publishing the component (cold: nothing
//! compiled yet) to the end of its first node, and the per-node cost of a
//! fresh instance (instantiate and one `validate` call).
//!
//! Run with `cargo bench -p drover --bench plugins` (a release build); the
//! examples are built first by their own `build.sh` (cached), the Rust driver
//! (`tests/drivers/greet`) with the other test drivers. Pass
//! `-- --nodes N` for the per-node sample size (default 200).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover::config::{Config, DriverPolicy};
use drover::registry::{Origin, Registry, Upload};
use drover::runtime::{NodeContext, Runtime};
use drover::task::{NodeStatus, Task};
use tokio_util::sync::CancellationToken;

// The test drivers are built on first use, as for the integration tests.
#[path = "../tests/integration/support/test_drivers.rs"]
mod test_drivers;

fn main() {
    let nodes = std::env::args()
        .skip_while(|a| a != "--nodes")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200usize);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(bench(nodes));
}

/// A driver to measure: its language, component, and a node it can run.
struct Case {
    language: &'static str,
    component: PathBuf,
    artifact: String,
    args: Vec<String>,
}

fn example(language: &str) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/drivers")
        .join(language)
        .join("build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("run build.sh");
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default(),
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

async fn bench(nodes: usize) {
    // A local endpoint for the C driver to check.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"status\":\"ok\"}",
            );
        }
    });
    let cases = [
        Case {
            language: "Rust",
            component: test_drivers::folder().join("test_driver_greet.wasm"),
            artifact: "bench".into(),
            args: vec![],
        },
        Case {
            language: "C",
            component: example("c"),
            artifact: format!("http://127.0.0.1:{port}/health"),
            args: vec![],
        },
        Case {
            language: "Python",
            component: example("python"),
            artifact: "hello {{ who }}\n".into(),
            args: vec!["out=hello.txt".into(), "who=bench".into()],
        },
        Case {
            language: "JavaScript",
            component: example("js"),
            artifact: r#"{"status": "ok"}"#.into(),
            args: vec!["status=.status".into()],
        },
    ];
    println!(
        "| driver | component | publish → first node done | per node (instantiate + validate) |"
    );
    println!("|---|---|---|---|");
    for case in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            data_dir: Some(dir.path().to_path_buf()),
            ..Config::default()
        };
        config.drivers.insert(
            "http-health".into(),
            DriverPolicy {
                exec: Some(vec!["curl".into()]),
                network: Some(true),
                ..DriverPolicy::default()
            },
        );
        let runtime = Runtime::new(config).expect("runtime");
        let registry = Registry::open(runtime.clone()).expect("registry");
        let bytes: Arc<[u8]> = std::fs::read(&case.component).expect("component").into();
        let size = bytes.len();

        let started = Instant::now();
        let published = registry
            .publish(Upload {
                name: None,
                version: None,
                bytes,
                signature: None,
                origin: Origin::Upload,
            })
            .await
            .expect("publish");
        let driver = registry
            .resolve(&published.plugin.name, None, None)
            .await
            .expect("resolve");
        let task = Task {
            run_id: "bench".into(),
            node: "first".into(),
            attempt: 1,
            artifact: case.artifact.clone(),
            args: case.args.clone(),
            ..Task::default()
        };
        let (logs, mut rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let outcome = runtime
            .run(
                &driver,
                task.clone(),
                NodeContext {
                    workspace: dir.path().join("ws"),
                    logs,
                    cancel: CancellationToken::new(),
                },
            )
            .await;
        let first = started.elapsed();
        assert_eq!(
            outcome.status,
            NodeStatus::Success,
            "{}: {outcome:?}",
            case.language
        );

        let started = Instant::now();
        for _ in 0..nodes {
            let problems = runtime.validate(&driver, &task).await.expect("validate");
            assert!(problems.is_empty(), "{problems:?}");
        }
        let per_node = started.elapsed() / nodes as u32;
        println!(
            "| {} `{}` | {:.1} MiB | {} | {:.3} ms |",
            case.language,
            published.plugin.name,
            size as f64 / (1024.0 * 1024.0),
            ms(first),
            per_node.as_secs_f64() * 1e3
        );
    }
}

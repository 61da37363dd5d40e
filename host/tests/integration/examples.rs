//! The example drivers in other languages (C, Python, JavaScript), end to
//! end: each is built by its own `build.sh` (cached between runs), pushed to
//! a running `drover serve` with `drover plugin push`, and used by one DAG
//! that chains all three against the server's own health endpoint.

use crate::support;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};
use support::server::{Server, get_json, submit, wait_end};
use support::{Drover, node, stderr, stdout};

/// Builds an example driver with its script; returns the component's path.
fn build(language: &str) -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/drivers")
        .join(language)
        .join("build.sh");
    let started = Instant::now();
    let out = Command::new("bash").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    eprintln!("{language}: {path} ready in {:.1?}", started.elapsed());
    PathBuf::from(path)
}

#[tokio::test]
async fn drivers_written_in_c_python_and_javascript_run_end_to_end() {
    // Built side by side: each script only waits on its own tools.
    let builds: Vec<_> = ["c", "python", "js"]
        .into_iter()
        .map(|language| std::thread::spawn(move || build(language)))
        .collect();
    let components: Vec<PathBuf> = builds.into_iter().map(|b| b.join().unwrap()).collect();

    let drover = Drover::new();
    // http-health runs curl, with the network: the operator allows exactly that.
    drover.configure("[drivers.http-health]\nexec = [\"curl\"]\nnetwork = true\n");
    let server = Server::start(&drover, &[]);

    for (component, name) in components
        .iter()
        .zip(["http-health", "template", "json-pick"])
    {
        let started = Instant::now();
        let out = drover.run(&[
            "plugin",
            "push",
            component.to_str().unwrap(),
            "--name",
            name,
            "--version",
            "1.0.0",
            "--server",
            &server.base,
        ]);
        assert!(out.status.success(), "push {name}: {}", stderr(&out));
        assert!(
            stdout(&out).starts_with(&format!("published {name} 1.0.0")),
            "{}",
            stdout(&out)
        );
        eprintln!("{name}: pushed and compiled in {:.1?}", started.elapsed());
    }

    let dag = format!(
        r#"
name: examples
nodes:
  health:
    driver: http-health@1
    artifact: {base}/api/v1/health
    args: [expect=200]
    outputs: [status, body]
  pick:
    driver: json-pick@1
    needs: [health]
    artifact: '${{{{ nodes.health.outputs.body }}}}'
    args: [status=.status, version=.version]
    outputs: [status, version]
  render:
    driver: template@^1
    needs: [health, pick]
    artifact: "drover {{{{ pick.version }}}} is {{{{ pick.status }}}} ({{{{ health.status }}}}, by {{{{ who }}}})\n"
    args: [out=report/health.txt, who=ci]
    outputs: [file, bytes, sha256]
  down:
    driver: http-health
    artifact: http://127.0.0.1:9/nothing-listens-here
"#,
        base = server.base
    );
    let started = Instant::now();
    let id = submit(&server, &dag).await;
    let record = wait_end(&server, &id).await;
    eprintln!("the DAG ran in {:.1?}", started.elapsed());

    let health = node(&record, "health");
    assert_eq!(health["state"], "success", "{record}");
    assert_eq!(health["outputs"]["status"], "200");
    let pick = node(&record, "pick");
    assert_eq!(pick["state"], "success", "{record}");
    assert_eq!(pick["outputs"]["status"], "ok");
    assert_eq!(pick["outputs"]["version"], env!("CARGO_PKG_VERSION"));
    let render = node(&record, "render");
    assert_eq!(render["state"], "success", "{record}");
    let text = format!("drover {} is ok (200, by ci)\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(render["outputs"]["file"], "report/health.txt");
    assert_eq!(render["outputs"]["bytes"], text.len().to_string());
    assert_eq!(
        render["outputs"]["sha256"],
        hex::encode(Sha256::digest(text.as_bytes()))
    );
    // The C driver's failure is a clear one, with curl's exit code.
    let down = node(&record, "down");
    assert_eq!(down["state"], "failure", "{record}");
    assert_eq!(down["exit_code"], 7, "{record}");
    assert!(
        down["error"]
            .as_str()
            .unwrap_or_default()
            .contains("connection refused"),
        "{record}"
    );
    // Each node ran the very component that was pushed.
    let (_, plugins) = get_json(&server, "/api/v1/plugins/template").await;
    assert_eq!(render["driver_digest"], plugins["versions"][0]["digest"]);

    // Each driver's own validation refuses bad nodes at submit time.
    let response = support::server::post(
        &server,
        "/api/v1/runs",
        "name: bad\nnodes:\n  h: {driver: http-health, artifact: 'ftp://x/'}\n  \
         p: {driver: json-pick, artifact: '{\"a\": 1}', args: [nope]}\n  \
         t: {driver: template, artifact: 'x {{ y'}\n",
    )
    .await;
    assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let answer: serde_json::Value = response.json().await.unwrap();
    let problems = answer["problems"].to_string();
    for location in [
        "node `h`, field `artifact`",
        "node `p`, field `args`",
        "node `t`, field `artifact`",
        "node `t`, field `args`",
    ] {
        assert!(problems.contains(location), "{location} in {problems}");
    }
}

//! Spawn cost: std's posix_spawn vs the sandboxed clone(CLONE_VM|CLONE_VFORK) spawn, with a
//! small parent and with 512 MB of touched parent memory, and the extra cost of a private
//! `/dev/shm`. Run with `cargo bench --bench spawn`.

use std::hint::black_box;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Instant;

use drover::sandbox::{Confinement, Policy, Sandbox, SandboxConfig, SpawnRequest};
use tokio::io::AsyncReadExt;

const N: usize = 500;
const WARMUP: usize = 20;

fn std_spawn() {
    let out = Command::new("/bin/sh")
        .args(["-c", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("std spawn");
    assert!(out.status.success());
}

fn std_fork_spawn() {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the hook does nothing; it only forces std onto its fork+exec path.
    unsafe { cmd.pre_exec(|| Ok(())) };
    assert!(cmd.output().expect("fork spawn").status.success());
}

async fn sandboxed_spawn(conf: &Confinement, req: &SpawnRequest) {
    let mut child = conf.spawn(req).expect("sandboxed spawn");
    let mut out = child.take_stdout().expect("stdout");
    let mut err = child.take_stderr().expect("stderr");
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let (a, b) = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
    a.expect("read stdout");
    b.expect("read stderr");
    assert!(child.wait().await.expect("wait").success());
}

fn time_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..WARMUP {
        f();
    }
    let start = Instant::now();
    for _ in 0..N {
        f();
    }
    start.elapsed().as_secs_f64() * 1000.0 / N as f64
}

fn round(label: &str, rt: &tokio::runtime::Runtime, conf: &Confinement, req: &SpawnRequest) {
    let std_ms = time_ms(std_spawn);
    let sandbox_ms = time_ms(|| rt.block_on(sandboxed_spawn(conf, req)));
    let fork_ms = time_ms(std_fork_spawn);
    println!("{label}:");
    println!("  (a) std::process::Command (posix_spawn): {std_ms:.3} ms/spawn");
    println!(
        "  (b) sandboxed spawn (landlock+netns+rlimits): {sandbox_ms:.3} ms/spawn  (ratio b/a = {:.2})",
        sandbox_ms / std_ms
    );
    println!(
        "  (ref) std Command with pre_exec (fork):  {fork_ms:.3} ms/spawn  (ratio /a = {:.2})",
        fork_ms / std_ms
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let ws = tempfile::tempdir().expect("tempdir");
    let conf = sandbox
        .confine(&Policy {
            workspace: ws.path().to_owned(),
            read_only_files: vec![],
            network: false,
            unix_sockets: false,
            limits: None,
        })
        .expect("confine");
    assert!(conf.is_landlocked());
    let req = SpawnRequest {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), "true".into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: ws.path().to_owned(),
        stdin: false,
        private_shm: false,
    };
    println!(
        "{N} spawns + waits of /bin/sh -c true each (Landlock ABI {:?})",
        sandbox.landlock_abi()
    );
    round("small parent", &rt, &conf, &req);
    let shm_req = SpawnRequest {
        private_shm: true,
        ..req.clone()
    };
    let plain_ms = time_ms(|| rt.block_on(sandboxed_spawn(&conf, &req)));
    let shm_ms = time_ms(|| rt.block_on(sandboxed_spawn(&conf, &shm_req)));
    println!("private /dev/shm (small parent):");
    println!("  (b) sandboxed spawn:                  {plain_ms:.3} ms/spawn");
    println!(
        "  (c) sandboxed spawn with private-shm: {shm_ms:.3} ms/spawn  (c - b = {:.3} ms)",
        shm_ms - plain_ms
    );

    let mut ballast = vec![0u8; 512 << 20];
    for page in ballast.chunks_mut(4096) {
        page[0] = 1;
    }
    black_box(&mut ballast);
    round("after touching 512 MB in the parent", &rt, &conf, &req);
    black_box(&ballast);
}

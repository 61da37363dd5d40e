//! Starting processes in the sandbox for the sandbox's own tests: requests and a run to the end.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use drover::sandbox::{Confinement, ExitStatus, SpawnRequest};
use tokio::io::AsyncReadExt;

/// `program args…` in `cwd`, with a minimal `PATH` and nothing else of the host's environment.
pub fn request(cwd: &Path, program: &str, args: &[&str]) -> SpawnRequest {
    SpawnRequest {
        program: PathBuf::from(program),
        args: args.iter().map(OsString::from).collect(),
        env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("LC_ALL".into(), "C".into()),
        ],
        cwd: cwd.to_owned(),
        stdin: false,
        private_shm: false,
    }
}

/// `/bin/sh -c script` in `cwd`.
pub fn sh(cwd: &Path, script: &str) -> SpawnRequest {
    request(cwd, "/bin/sh", &["-c", script])
}

/// Runs to completion; returns status, stdout, stderr.
pub async fn run(conf: &Confinement, req: &SpawnRequest) -> (ExitStatus, String, String) {
    let mut child = conf.spawn(req).expect("spawn");
    let mut out = child.take_stdout().unwrap();
    let mut err = child.take_stderr().unwrap();
    let (mut o, mut e) = (String::new(), String::new());
    let (r1, r2) = tokio::join!(out.read_to_string(&mut o), err.read_to_string(&mut e));
    r1.unwrap();
    r2.unwrap();
    let status = child.wait().await.unwrap();
    (status, o, e)
}

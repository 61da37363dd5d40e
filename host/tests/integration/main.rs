//! drover's integration tests, as one binary (one link of wasmtime instead of one per file):
//! real drivers built from `plugins/` and `tests/drivers/`, real processes, HTTP over loopback,
//! Redis, Docker, OpenBao, ansible and npm. `cargo test --test integration <module>::` runs one
//! file's tests, e.g. `hostile::`.

mod common;
mod support;

mod ansible;
mod cli;
mod container;
mod container_lifecycle;
mod dispatch;
mod distributed;
mod drone;
mod engine;
mod examples;
mod hostile;
mod layering;
mod leader;
mod npm_test;
mod plugins;
mod rerun;
mod run;
mod runtime;
mod sandbox;
mod secrets;
mod serve;
mod session;
mod tosca;
mod ui;

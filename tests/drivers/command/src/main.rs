//! A plain WASI program: a component, but of the `wasi:cli/command` world.

fn main() {
    println!("not a driver");
}

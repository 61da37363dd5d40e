//! Times parse + validate of large layered DAGs in each format (plain main, no harness).

use std::fmt::Write;
use std::time::Instant;

use drover::dag::parse;

const WIDTH: usize = 100;

fn drivers(name: &str) -> bool {
    name == "shell"
}

/// `layers` × `WIDTH` nodes, each needing two of the layer before; every
/// 97th node references an output two layers up.
fn native_json(layers: usize) -> String {
    let mut text = String::from("{\"name\": \"layered\", \"nodes\": {");
    for layer in 0..layers {
        for i in 0..WIDTH {
            let n = layer * WIDTH + i;
            let comma = if n > 0 { "," } else { "" };
            let _ = write!(
                text,
                "{comma}\n\"n{n}\": {{\"driver\": \"shell\", \"outputs\": [\"o\"]"
            );
            if layer > 0 {
                let a = (layer - 1) * WIDTH + i;
                let b = (layer - 1) * WIDTH + (i + 1) % WIDTH;
                let _ = write!(text, ", \"needs\": [\"n{a}\", \"n{b}\"]");
            }
            if layer > 1 && n.is_multiple_of(97) {
                let up = (layer - 2) * WIDTH + (i + 1) % WIDTH;
                let _ = write!(text, ", \"args\": [\"${{{{ nodes.n{up}.outputs.o }}}}\"]");
            }
            text.push('}');
        }
    }
    text.push_str("\n}}");
    text
}

/// The same shape in YAML.
fn native_yaml(layers: usize) -> String {
    let mut text = String::from("name: layered\nnodes:\n");
    for layer in 0..layers {
        for i in 0..WIDTH {
            let n = layer * WIDTH + i;
            let _ = write!(text, "  n{n}:\n    driver: shell\n    outputs: [o]\n");
            if layer > 0 {
                let a = (layer - 1) * WIDTH + i;
                let b = (layer - 1) * WIDTH + (i + 1) % WIDTH;
                let _ = writeln!(text, "    needs: [n{a}, n{b}]");
            }
            if layer > 1 && n.is_multiple_of(97) {
                let up = (layer - 2) * WIDTH + (i + 1) % WIDTH;
                let _ = writeln!(text, "    args: ['${{{{ nodes.n{up}.outputs.o }}}}']");
            }
        }
    }
    text
}

/// The same shape in gorchestrator's format, with its N×N matrix.
fn gorchestrator(layers: usize) -> String {
    let n = layers * WIDTH;
    let mut text = String::with_capacity(n * n * 2 + n * 120);
    text.push_str("{\"name\": \"layered\", \"state\": 0, \"digraph\": [");
    for row in 0..n {
        let (layer, i) = (row / WIDTH, row % WIDTH);
        for col in 0..n {
            let edge = layer + 1 < layers
                && col / WIDTH == layer + 1
                && (col % WIDTH == i || (col % WIDTH + 1) % WIDTH == i);
            if row + col > 0 {
                text.push(',');
            }
            text.push(if edge { '1' } else { '0' });
        }
    }
    text.push_str("], \"nodes\": [");
    for k in 0..n {
        let comma = if k > 0 { "," } else { "" };
        let _ = write!(
            text,
            "{comma}\n{{\"id\": {k}, \"name\": \"n{k}\", \"engine\": \"shell\", \"artifact\": \"run.sh\", \"args\": null, \"output\": {{\"o\": \"\"}}}}"
        );
    }
    text.push_str("]}");
    text
}

fn time(label: &str, text: &str) {
    let mut best = f64::MAX;
    let mut nodes = 0;
    for _ in 0..3 {
        let start = Instant::now();
        match parse(text, None, &drivers) {
            Ok(dag) => nodes = dag.nodes.len(),
            Err(e) => panic!("{label}: {e}"),
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{label:<28} {nodes:>7} nodes  {:>8.1} MB  {:>8.1} ms (best of 3)",
        text.len() as f64 / 1e6,
        best * 1e3
    );
}

fn main() {
    for layers in [100, 1000] {
        let nodes = layers * WIDTH;
        time(&format!("native JSON {nodes}"), &native_json(layers));
        time(&format!("native YAML {nodes}"), &native_yaml(layers));
    }
    time("gorchestrator 10000", &gorchestrator(100));
}

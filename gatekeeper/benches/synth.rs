//! `cargo bench -p gatekeeper --bench synth`: how long synthesizing the example service takes,
//! in process (parse + validate + build + render) and as a whole `gatekeeper synth` process.
//! Prints a table; the goal is under 10 ms.

#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn stats(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (pick(0.5), pick(0.95), samples[samples.len() - 1])
}

fn row(name: &str, samples: Vec<Duration>) {
    let n = samples.len();
    let (p50, p95, max) = stats(samples);
    let ok = if p95 < Duration::from_millis(10) {
        "yes"
    } else {
        "NO"
    };
    println!(
        "| {name:<40} | {n:>6} | {:>9.3} | {:>9.3} | {:>9.3} | {ok:>6} |",
        p50.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = root.join("examples/photos/prod.toml");
    let text = std::fs::read_to_string(&example).unwrap();

    println!(
        "| {:<40} | {:>6} | {:>9} | {:>9} | {:>9} | {:>6} |",
        "synth of examples/photos/prod.toml", "runs", "p50 ms", "p95 ms", "max ms", "<10ms"
    );
    println!(
        "|{:-<42}|{:-<8}|{:-<11}|{:-<11}|{:-<11}|{:-<8}|",
        "", "", "", "", "", ""
    );

    for (label, format) in [
        ("in process, JSON", stacks::Format::Json),
        ("in process, YAML", stacks::Format::Yaml),
    ] {
        let mut samples = Vec::new();
        for _ in 0..2000 {
            let start = Instant::now();
            let config = stacks::config::parse(&example, &text).unwrap();
            let built = stacks::synth(&config).unwrap();
            let body = built[0].template.render(format);
            samples.push(start.elapsed());
            assert!(body.len() > 1000);
        }
        row(label, samples);
    }

    let bin = env!("CARGO_BIN_EXE_gatekeeper");
    let out = tempfile::tempdir().unwrap();
    let mut samples = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let status = Command::new(bin)
            .args(["synth", "--config"])
            .arg(&example)
            .arg("--out")
            .arg(out.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        samples.push(start.elapsed());
        assert!(status.success());
    }
    row("whole process: gatekeeper synth --out", samples);
}

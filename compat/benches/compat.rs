//! How long check-config takes on the largest configuration it accepts.
//!
//! Generates configurations just under `parse::MAX_BYTES` (10 MiB) in YAML, TOML and JSON, in
//! two shapes (one flat map; services nested three levels with lists), and times the whole
//! check as the CLI runs it (load both files, on two threads; compare; render the text
//! report; what was read is freed after the clock stops, as the CLI leaves it to the OS at
//! exit): against an
//! identical copy, and against a changed copy (about 1% of keys removed, added, renamed or
//! retyped, 1% of values changed). Prints the median of `COMPAT_BENCH_RUNS` runs (default 5),
//! wall time and CPU time. `COMPAT_BENCH_BYTES` sets another size.
//!
//! `cargo bench -p compat --bench compat`

#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::time::{Duration, Instant};

use std::path::Path;

use compat::{parse, Format, Ignores, Source};
use serde_json::{json, Map, Value as J};

/// Just under the limit by default; `COMPAT_BENCH_BYTES` sets another size.
fn target() -> usize {
    std::env::var("COMPAT_BENCH_BYTES")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(compat::parse::MAX_BYTES as usize - 64 * 1024)
}

#[derive(Clone, Copy)]
enum Shape {
    Flat,
    Nested,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Flat => "flat",
            Shape::Nested => "nested",
        }
    }
}

/// Entry `i` of a configuration.
fn entry(shape: Shape, i: usize) -> (String, J) {
    match shape {
        Shape::Flat => {
            let value = match i % 4 {
                0 => json!(format!("value-{i}-abcdefghij")),
                1 => json!(i as i64 * 7),
                2 => json!(i.is_multiple_of(3)),
                _ => json!(format!("https://host-{i}.example.com/path")),
            };
            (format!("key_{i:07}"), value)
        }
        Shape::Nested => (
            format!("svc_{i:06}"),
            json!({
                "host": format!("svc-{i}.internal"),
                "port": 1024 + (i % 50_000),
                "enabled": i.is_multiple_of(2),
                "tags": [format!("team-{}", i % 17), "prod", format!("tier-{}", i % 3)],
                "limits": { "cpu": (i % 8) as f64 + 0.5, "memory_mb": 256 * (1 + i % 8) },
            }),
        ),
    }
}

/// The changed copy of an entry: `None` removes it.
fn change(i: usize, name: String, value: J) -> Option<(String, J)> {
    match i % 100 {
        10 => None,
        20 => Some((format!("{name}_renamed"), value)),
        30 => Some((name, json!(["retyped", i]))),
        40 => Some((name, json!(format!("changed-{i}")))),
        _ => Some((name, value)),
    }
}

type Entries = Vec<(String, J)>;

/// Builds `(old, new)` as ordered entries.
fn build(shape: Shape, count: usize) -> (Entries, Entries) {
    let mut old = Vec::with_capacity(count);
    let mut new = Vec::with_capacity(count);
    for i in 0..count {
        let (name, value) = entry(shape, i);
        old.push((name.clone(), value.clone()));
        if let Some(e) = change(i, name, value) {
            new.push(e);
        }
        if i % 100 == 50 {
            new.push((format!("added_{i:07}"), json!(format!("new-{i}"))));
        }
    }
    (old, new)
}

fn to_json(entries: &[(String, J)]) -> String {
    let mut out = String::from("{\n");
    for (n, (k, v)) in entries.iter().enumerate() {
        let sep = if n + 1 == entries.len() { "" } else { "," };
        out.push_str(&format!("  {}: {v}{sep}\n", J::from(k.as_str())));
    }
    out.push_str("}\n");
    out
}

fn to_toml(entries: &[(String, J)]) -> String {
    let map: Map<String, J> = entries.iter().cloned().collect();
    toml::to_string(&J::Object(map)).expect("a generated configuration serializes")
}

fn yaml_value(out: &mut String, v: &J, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        J::Object(m) => {
            for (k, v) in m {
                match v {
                    J::Object(_) | J::Array(_) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml_value(out, v, indent + 2);
                    }
                    _ => out.push_str(&format!("{pad}{k}: {v}\n")),
                }
            }
        }
        J::Array(items) => {
            for item in items {
                out.push_str(&format!("{pad}- {item}\n"));
            }
        }
        other => out.push_str(&format!("{pad}{other}\n")),
    }
}

fn to_yaml(entries: &[(String, J)]) -> String {
    let mut out = String::new();
    for (k, v) in entries {
        yaml_value(&mut out, &json!({ k.as_str(): v }), 0);
    }
    out
}

fn render(format: Format, entries: &[(String, J)]) -> String {
    match format {
        Format::Yaml => to_yaml(entries),
        Format::Json => to_json(entries),
        Format::Toml => to_toml(entries),
        Format::Env => unreachable!("not benchmarked"),
    }
}

/// The largest pair of this shape and format that stays under [`target`].
fn generate(shape: Shape, format: Format) -> (String, String) {
    // Size a small sample, scale, then trim until both fit.
    let sample = 2_000;
    let (o, n) = build(shape, sample);
    let per = render(format, &o).len().max(render(format, &n).len()) as f64 / sample as f64;
    let target = target();
    let mut count = (target as f64 / per) as usize;
    loop {
        let (o, n) = build(shape, count);
        let (o, n) = (render(format, &o), render(format, &n));
        if o.len() <= target && n.len() <= target {
            return (o, n);
        }
        count = count * 98 / 100;
    }
}

fn keys(node: &compat::Node) -> usize {
    match &node.value {
        compat::Value::Map(m) => m.len() + m.iter().map(|(_, v)| keys(v)).sum::<usize>(),
        compat::Value::List(items) => items.iter().map(keys).sum(),
        _ => 0,
    }
}

/// The whole check as the CLI runs it, on two files: load both (on two threads), compare,
/// render the text report. Returns the number of findings, and what was read, to be freed
/// after the clock stops (the CLI leaves it to the OS at exit).
fn check(old: &Path, new: &Path) -> (usize, Box<dyn std::any::Any>) {
    let file = |p: &Path| Source::File(p.display().to_string());
    let (old, new) = compat::load_both(&file(old), &file(new), None).expect("both load");
    let report = compat::check(&old, &new, None, &Ignores::default());
    std::hint::black_box(report.to_text());
    let findings = report.findings.len();
    (findings, Box::new((old, new, report)))
}

/// CPU time this process has run, all its threads (Linux `/proc/self/stat`: user and system
/// time, in ticks of 10 ms), to tell the work from waiting for a core on a busy machine; zero
/// where it cannot be read.
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The fields after the command name, which is in parentheses and may hold spaces.
            let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        });
    ticks.map_or(Duration::ZERO, |t| Duration::from_millis(t * 10))
}

/// Median wall time and median CPU time of `runs` runs; what a run returns is freed after its
/// clock stops.
fn median<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let (mut wall, mut cpu): (Vec<Duration>, Vec<Duration>) = (0..runs)
        .map(|_| {
            let (start, start_cpu) = (Instant::now(), cpu_time());
            let kept = f();
            let times = (start.elapsed(), cpu_time().saturating_sub(start_cpu));
            drop(kept);
            times
        })
        .unzip();
    wall.sort();
    cpu.sort();
    (wall[runs / 2], cpu[runs / 2])
}

fn ms((wall, cpu): (Duration, Duration)) -> String {
    format!(
        "{:.0} / {:.0}",
        wall.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and wants one quick run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runs: usize = std::env::var("COMPAT_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(if quick { 1 } else { 5 });
    println!(
        "check-config on configurations of at most {} bytes: load both, compare, render the report.",
        target()
    );
    println!("Median of {runs} run(s); times in ms, wall / CPU (the wall time includes waiting for a core).\n");
    println!(
        "| format | shape  |      size |    keys |      load (ms) |      self (ms) |   changed (ms) | findings |"
    );
    println!(
        "| ------ | ------ | --------: | ------: | -------------: | -------------: | -------------: | -------: |"
    );
    for format in [Format::Yaml, Format::Toml, Format::Json] {
        for shape in [Shape::Flat, Shape::Nested] {
            let (old, new) = generate(shape, format);
            let dir = tempfile::tempdir().expect("a temporary directory");
            let ext = format!("{format:?}").to_lowercase();
            let (old_file, new_file) = (
                dir.path().join(format!("old.{ext}")),
                dir.path().join(format!("new.{ext}")),
            );
            std::fs::write(&old_file, &old).expect("written");
            std::fs::write(&new_file, &new).expect("written");
            let config = parse(old.as_bytes(), format, "old").expect("old loads");
            let keys = keys(&config.root);
            drop(config);
            let load = median(runs, || {
                parse(old.as_bytes(), format, "old").expect("loads")
            });
            let same = median(runs, || {
                let (findings, read) = check(&old_file, &old_file);
                assert_eq!(findings, 0);
                read
            });
            let mut findings = 0;
            let changed = median(runs, || {
                let (n, read) = check(&old_file, &new_file);
                findings = n;
                read
            });
            println!(
                "| {:<6} | {:<6} | {:>5.2} MiB | {:>7} | {:>14} | {:>14} | {:>14} | {:>8} |",
                format!("{format:?}").to_lowercase(),
                shape.name(),
                old.len() as f64 / (1024.0 * 1024.0),
                keys,
                ms(load),
                ms(same),
                ms(changed),
                findings
            );
        }
    }
}

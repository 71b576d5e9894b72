//! Gate overhead of a three-stage pipeline (the rails stack on staging, a canary on prod, its
//! promotion) against moto with drain and bake at zero: wall time of `pipeline run` and the three
//! `pipeline stage` processes together, and the AWS requests they and their stage commands sent.
//! Run with `bench/canary/run.sh` (it runs this after the canary cycle).
#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::time::Instant;

use gatekeeper_e2e::fleet::{Fleet, HEALTHY};

fn main() {
    let (runs, moto, rt) = gatekeeper_e2e::bench_against_moto("pipeline_overhead");
    println!("| nodes | stages | runs | wall ms p50 | wall ms max | AWS requests |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for nodes in [3usize, 9] {
        let mut walls = Vec::new();
        let mut calls = 0u64;
        for _ in 0..runs {
            let fleet = rt.block_on(Fleet::new(&moto, nodes, ""));
            rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
            let file = fleet.pipeline("");
            let gk = |args: &[&str]| {
                let mut cmd = fleet.moto.gatekeeper();
                cmd.args(args)
                    .arg("--config")
                    .arg(&file)
                    .env("CANARY_STATE_DIR", fleet.dir.path().join("state"))
                    .env("GATEKEEPER_AWS_CALLS", "1");
                cmd
            };
            let count = |stderr: &[u8]| -> u64 {
                String::from_utf8_lossy(stderr)
                    .lines()
                    .filter_map(|l| l.strip_prefix("aws calls: "))
                    .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
                    .sum()
            };
            let start = Instant::now();
            let out = gk(&["pipeline", "run", "--revision", "v2"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let run = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let mut sent = count(&out.stderr);
            for stage in ["staging", "prod-canary", "promote"] {
                let out = gk(&["pipeline", "stage", stage, "--run", &run])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{stage}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                sent += count(&out.stderr);
            }
            walls.push(start.elapsed().as_secs_f64() * 1000.0);
            rt.block_on(fleet.assert_safe_on("v2"));
            calls = sent;
        }
        walls.sort_by(|a, b| a.total_cmp(b));
        println!(
            "| {nodes} | 3 | {runs} | {:.0} | {:.0} | {calls} |",
            walls[walls.len() / 2],
            walls[walls.len() - 1]
        );
    }
}

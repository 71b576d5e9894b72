//! Gate overhead: full canary cycles (preflight, lock, depool, deploy, smoke, canary group,
//! weights, judge, promotion in waves, unlock) against moto, with drain and bake at zero, so
//! what is measured is the gate itself: wall time of the whole `gatekeeper canary run
//! --auto-promote` process and the AWS requests it sends. Run with `bench/canary/run.sh`.

#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::time::Instant;

use gatekeeper_e2e::fleet::Fleet;

fn main() {
    let (runs, moto, rt) = gatekeeper_e2e::bench_against_moto("canary_overhead");
    println!("| nodes | waves | runs | wall ms p50 | wall ms max | AWS requests | most frequent requests (count) |");
    println!("|---:|---:|---:|---:|---:|---:|---|");
    for nodes in [3usize, 9] {
        let mut walls = Vec::new();
        let mut calls_line = String::new();
        for _ in 0..runs {
            let fleet = rt.block_on(Fleet::new(&moto, nodes, ""));
            rt.block_on(fleet.put_metrics((19_000.0, 19.0, 0.120), (1_000.0, 1.0, 0.121)));
            let start = Instant::now();
            let out = fleet
                .gatekeeper(&["canary", "run", "--revision", "v2", "--auto-promote"])
                .env("GATEKEEPER_AWS_CALLS", "1")
                .output()
                .expect("run gatekeeper");
            let wall = start.elapsed();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{}\n{stderr}",
                String::from_utf8_lossy(&out.stdout)
            );
            rt.block_on(fleet.assert_safe_on("v2"));
            walls.push(wall.as_secs_f64() * 1000.0);
            calls_line = stderr
                .lines()
                .find_map(|l| l.strip_prefix("aws calls: "))
                .expect("GATEKEEPER_AWS_CALLS report")
                .to_string();
        }
        walls.sort_by(|a, b| a.total_cmp(b));
        let (total, each) = calls_line.split_once(' ').unwrap_or((&calls_line, ""));
        let mut ops: Vec<(&str, u64)> = each
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.parse().unwrap_or(0)))
            .collect();
        ops.sort_by_key(|op| std::cmp::Reverse(op.1));
        let top: Vec<String> = ops
            .iter()
            .take(4)
            .map(|(k, v)| format!("{k} ({v})"))
            .collect();
        let waves = (nodes - 1).div_ceil(2);
        println!(
            "| {nodes} | {waves} | {runs} | {:.0} | {:.0} | {total} | {} |",
            walls[walls.len() / 2],
            walls[walls.len() - 1],
            top.join(", ")
        );
    }
}

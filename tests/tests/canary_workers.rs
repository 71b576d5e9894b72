//! A worker fleet's canary end to end against moto: queue consumers behind no load balancer,
//! depooled by stopping consumption (`examples/photos/canary/consume.sh`), judged on the
//! workers' own metrics (put into moto's CloudWatch by the test, one series per node).
//!
//! A worker keeps its series in both roles, so the bake judges only the whole minutes after
//! the canary's repool: the tests stamp the new revision's metrics in the next two minutes,
//! and the minute before the run with what the node did on the old revision, which must never
//! reach the judge. With `bake_seconds = 0` a run waits for the first minute after its repool
//! to begin (at most a minute).

use std::path::PathBuf;

use gatekeeper_e2e::fleet::{put_datapoints, put_datapoints_at, sdk, JUDGE};
use gatekeeper_e2e::{moto, output, repo_root, rt, unique, Moto};

const NAMESPACE: &str = "Photos/UnzipWorkers";

/// What the canary node processed on the old revision in the minute before the run: many
/// messages, none failed. Counted by the judge, it would dilute the new revision's failures.
const OLD_REVISION: (f64, f64, f64) = (5_000.0, 0.0, 0.80);

struct Workers {
    moto: Moto,
    nodes: Vec<String>,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Workers {
    fn new(moto: &Moto) -> Workers {
        let service = unique("wk");
        let nodes: Vec<String> = (1..=3).map(|i| format!("{service}-w{i}")).collect();
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        for n in &nodes {
            std::fs::write(state.join(n), "v1\n").unwrap();
            std::fs::write(state.join(format!("{n}.consuming")), "on\n").unwrap();
        }
        rt().block_on(async {
            let ssm = aws_sdk_ssm::Client::new(&sdk(moto).await);
            ssm.put_parameter()
                .name(format!("/{service}/e2e/maintenance"))
                .value(r#"{"enabled":false}"#)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .unwrap();
        });
        let scripts = repo_root().join("examples/photos/canary");
        let consume = scripts.join("consume.sh").display().to_string();
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let config = dir.path().join("gatekeeper.toml");
        std::fs::write(
            &config,
            format!(
                r#"service = "{service}"
environment = "e2e"
region = "us-east-1"

[canary]
fleet = "workers"
nodes = [{nodes}]
depool_command = ["{consume}", "stop"]
repool_command = ["{consume}", "start"]
wave_size = 2
poll_seconds = 1
bake_seconds = 0
interval_seconds = 0
smoke_command = ["{smoke}"]

[canary.deployer]
kind = "command"
command = ["{deploy}"]
current = ["{current}"]

[canary.metrics]
namespace = "{NAMESPACE}"
node_dimension = "Node"
requests_metric = "MessagesProcessed"
errors_metric = "MessagesFailed"
latency_metric = "ProcessingTime"
latency_statistic = "Average"

{JUDGE}
[state]
dir = "{state}"
"#,
                nodes = list(&nodes),
                smoke = scripts.join("smoke.sh").display(),
                deploy = scripts.join("deploy.sh").display(),
                current = scripts.join("current.sh").display(),
                state = dir.path().join("gk-state").display(),
            ),
        )
        .unwrap();
        Workers {
            moto: moto.clone(),
            nodes,
            dir,
            config,
        }
    }

    /// Each node's metrics, (processed, failed, seconds), for the canary node (the first) and
    /// for each of the others, in each of the next two minutes (the bake's first minute after
    /// the repool is one of them); and, stamped now, what the canary node did on the old
    /// revision before the run: `OLD_REVISION`.
    fn put_metrics(&self, canary: (f64, f64, f64), other: (f64, f64, f64)) {
        #[expect(
            clippy::disallowed_methods,
            reason = "datapoints are stamped with moto's wall clock"
        )]
        let now = std::time::SystemTime::now();
        let epoch = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let next_minute = epoch.div_ceil(60) * 60;
        rt().block_on(async {
            let cw = aws_sdk_cloudwatch::Client::new(&sdk(&self.moto).await);
            let datum = |(processed, failed, seconds): (f64, f64, f64)| {
                [
                    ("MessagesProcessed", processed),
                    ("MessagesFailed", failed),
                    ("ProcessingTime", seconds),
                ]
            };
            put_datapoints(
                &cw,
                NAMESPACE,
                &[("Node", &self.nodes[0])],
                &datum(OLD_REVISION),
            )
            .await;
            for minute in [next_minute, next_minute + 60] {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(minute + 5);
                for (i, node) in self.nodes.iter().enumerate() {
                    let values = if i == 0 { canary } else { other };
                    put_datapoints_at(&cw, NAMESPACE, &[("Node", node)], &datum(values), at).await;
                }
            }
        });
    }

    /// The canary's (processed, failed) the bake's judge was fed, summed over its looks
    /// (`gatekeeper canary export`).
    fn judged_canary(&self) -> (u64, u64) {
        let (code, out, err) = self.gatekeeper(&["canary", "export"]);
        assert_eq!(code, Some(0), "{err}");
        let mut sum = (0, 0);
        for line in out.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["group"] == "canary" {
                sum.0 += v["requests"].as_u64().unwrap();
                sum.1 += v["errors"].as_u64().unwrap();
            }
        }
        sum
    }

    fn gatekeeper(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut cmd = self.moto.gatekeeper();
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .env("CANARY_STATE_DIR", self.dir.path().join("state"));
        output(cmd)
    }

    fn state(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("state").join(file))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Every node consuming, on `revision`.
    fn assert_safe_on(&self, revision: &str) {
        for n in &self.nodes {
            assert_eq!(self.state(n), revision, "revision of {n}");
            assert_eq!(self.state(&format!("{n}.consuming")), "on", "{n} consuming");
        }
    }
}

#[test]
fn a_healthy_worker_canary_promotes_the_fleet() {
    let Some(moto) = moto() else { return };
    let w = Workers::new(&moto);
    w.put_metrics((1_000.0, 1.0, 0.80), (9_500.0, 9.0, 0.80));
    let (code, stdout, stderr) =
        w.gatekeeper(&["canary", "run", "--revision", "v2", "--auto-promote"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("promoted"), "{stdout}");
    w.assert_safe_on("v2");
    // One minute after the repool, the new revision's own: nothing of the old revision's.
    assert_eq!(w.judged_canary(), (1_000, 1));
    // The canary node stopped, restarted as the canary, and stayed on; the others were
    // stopped and restarted around their deploys, a wave of two.
    let (c, a, b) = (&w.nodes[0], &w.nodes[1], &w.nodes[2]);
    let log = w.state("consume.log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(&lines[..2], [format!("stop {c}"), format!("start {c}")]);
    for n in [a, b] {
        let stop = lines
            .iter()
            .position(|l| *l == format!("stop {n}"))
            .unwrap();
        let start = lines
            .iter()
            .position(|l| *l == format!("start {n}"))
            .unwrap();
        assert!(stop < start, "{log}");
    }
}

#[test]
fn a_worker_canary_failing_more_messages_rolls_back() {
    let Some(moto) = moto() else { return };
    let w = Workers::new(&moto);
    w.put_metrics((1_000.0, 300.0, 0.80), (9_500.0, 9.0, 0.80));
    let (code, stdout, stderr) =
        w.gatekeeper(&["canary", "run", "--revision", "v2", "--auto-promote"]);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("rolled-back: judge: fail"), "{stdout}");
    w.assert_safe_on("v1");
    // The new revision failed 30% of its messages, and that is what was judged: the 5,000
    // messages the node processed on the old revision before the run never reached the judge.
    assert_eq!(w.judged_canary(), (1_000, 300));
    let c = &w.nodes[0];
    assert_eq!(w.state("deploy.log"), format!("{c} v2\n{c} v1"));
}

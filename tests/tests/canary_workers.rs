//! A worker fleet's canary end to end against moto: queue consumers behind no load balancer,
//! depooled by stopping consumption (`examples/photos/canary/consume.sh`), judged on the
//! workers' own metrics (put into moto's CloudWatch by the test, one series per node).

use std::path::PathBuf;

use gatekeeper_e2e::fleet::{put_datapoints, sdk, JUDGE};
use gatekeeper_e2e::{moto, output, repo_root, rt, unique, Moto};

const NAMESPACE: &str = "Photos/UnzipWorkers";

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

    /// One minute of each node's metrics: (processed, failed, seconds) for the canary node
    /// (the first) and for each of the others.
    fn put_metrics(&self, canary: (f64, f64, f64), other: (f64, f64, f64)) {
        rt().block_on(async {
            let cw = aws_sdk_cloudwatch::Client::new(&sdk(&self.moto).await);
            for (i, node) in self.nodes.iter().enumerate() {
                let (processed, failed, seconds) = if i == 0 { canary } else { other };
                put_datapoints(
                    &cw,
                    NAMESPACE,
                    &[("Node", node)],
                    &[
                        ("MessagesProcessed", processed),
                        ("MessagesFailed", failed),
                        ("ProcessingTime", seconds),
                    ],
                )
                .await;
            }
        });
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
    w.put_metrics((1_000.0, 150.0, 0.80), (9_500.0, 9.0, 0.80));
    let (code, stdout, stderr) =
        w.gatekeeper(&["canary", "run", "--revision", "v2", "--auto-promote"]);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("rolled-back: judge: fail"), "{stdout}");
    w.assert_safe_on("v1");
    let c = &w.nodes[0];
    assert_eq!(w.state("deploy.log"), format!("{c} v2\n{c} v1"));
}

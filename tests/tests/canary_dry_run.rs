//! `promote`, `canary resume` and `canary abort` with `--dry-run`, against moto: each reads the
//! run, the lock and the fleet for real, prints the actions it would take, and changes nothing
//! (listener weights, both target groups, every node's revision, the lock object with its
//! generation, the run's journal), then the real command still works.

use std::collections::{BTreeMap, BTreeSet};

use gatekeeper_e2e::fleet::Fleet;
use gatekeeper_e2e::{moto, output, rt};

const HEALTHY: ((f64, f64, f64), (f64, f64, f64)) =
    ((19_000.0, 19.0, 0.120), (1_000.0, 1.0, 0.121));

/// Everything a command could change, as moto and the deploy script hold it.
#[derive(Debug, PartialEq)]
struct World {
    weights: (i32, i32),
    prod: BTreeSet<String>,
    canary: BTreeSet<String>,
    revisions: BTreeMap<String, String>,
    lock: Option<serde_json::Value>,
    runs: Vec<String>,
    records: Vec<Vec<serde_json::Value>>,
}

async fn world(fleet: &Fleet) -> World {
    let runs = fleet.runs().await;
    let mut records = Vec::new();
    for run in &runs {
        records.push(fleet.records(run).await);
    }
    World {
        weights: fleet.weights().await,
        prod: fleet.members(&fleet.prod_tg).await,
        canary: fleet.members(&fleet.canary_tg).await,
        revisions: fleet.revisions(),
        lock: fleet.lock().await,
        runs,
        records,
    }
}

#[test]
fn promote_resume_and_abort_dry_runs_print_the_plan_and_change_nothing() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let (code, stdout, stderr) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("awaiting-approval"), "{stdout}");
    let before = rt.block_on(world(&fleet));
    assert_eq!(before.weights, (95, 5));
    assert_eq!(before.lock.as_ref().unwrap()["state"], "parked");
    let n = &fleet.nodes;

    // promote: the promotion's steps, and no confirmation asked (stdin is not a terminal).
    let (code, stdout, stderr) = output(fleet.gatekeeper(&["promote", "--dry-run"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for line in [
        format!("would deploy v2 to {},{}", n[1], n[2]),
        "would set listener weights 100/0 (prod/canary)".to_string(),
    ] {
        assert!(
            stderr.contains(&line),
            "promote: missing {line:?} in\n{stderr}"
        );
    }
    assert!(stdout.contains("dry-run: dry run"), "{stdout}");
    assert!(!stdout.contains("promoted"), "never an outcome: {stdout}");
    assert_eq!(
        rt.block_on(world(&fleet)),
        before,
        "promote --dry-run changed something"
    );

    // abort: the rollback's steps.
    let (code, stdout, stderr) = output(fleet.gatekeeper(&["canary", "abort", "--dry-run"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("would deploy v1 to {}", n[0])),
        "abort: {stderr}"
    );
    assert!(stdout.contains("it would roll back"), "{stdout}");
    assert!(
        !stdout.contains("rolled-back"),
        "never an outcome: {stdout}"
    );
    assert_eq!(
        rt.block_on(world(&fleet)),
        before,
        "canary abort --dry-run changed something"
    );

    // resume: a passed canary awaiting approval is left for promote or abort.
    let (code, stdout, stderr) =
        output(fleet.gatekeeper(&["canary", "resume", "--dry-run", "--output", "json"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    // With --output json, the sentence is JSON too.
    let said: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(said["outcome"], "not_driven", "{stdout}");
    assert!(
        said["message"]
            .as_str()
            .unwrap()
            .contains("awaits approval"),
        "{stdout}"
    );
    assert_eq!(
        rt.block_on(world(&fleet)),
        before,
        "canary resume --dry-run changed something"
    );

    // The dry runs left the run as it was: the real promote takes it from there.
    let (code, stdout, stderr) = output(fleet.gatekeeper(&["promote", "--yes"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    rt.block_on(fleet.assert_safe_on("v2"));

    // Over and clean: nothing to do, still nothing written.
    let after = rt.block_on(world(&fleet));
    for args in [
        &["promote", "--dry-run"][..],
        &["promote", "--dry-run", "--output", "json"],
        &["canary", "abort", "--dry-run"],
    ] {
        let (code, stdout, stderr) = output(fleet.gatekeeper(args));
        if args.contains(&"json") {
            // A refusal a pipeline reads as JSON.
            assert_eq!(code, Some(2), "{args:?}: {stdout}\n{stderr}");
            let refused: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
            assert_eq!(refused["outcome"], "refused", "{stdout}");
            assert!(
                refused["reason"].as_str().unwrap().starts_with("run "),
                "{stdout}"
            );
        } else if args[0] == "promote" {
            assert_eq!(code, Some(2), "{args:?}: {stdout}\n{stderr}");
            assert!(stdout.contains("refused: run"), "{stdout}");
        } else {
            assert_eq!(code, Some(0), "{args:?}: {stdout}\n{stderr}");
            assert!(stdout.contains("nothing to do"), "{stdout}");
        }
        assert_eq!(
            rt.block_on(world(&fleet)),
            after,
            "{args:?} changed something"
        );
    }
}

//! Two actors at once, against moto: the fenced lock lets exactly one drive a run, the
//! others are refused (exit 2) having changed nothing, and a killed driver is taken over.
//! Every test asserts the end state in moto: target-group members, weights, each node's
//! revision, the lock object.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use gatekeeper_e2e::fleet::{Fleet, HEALTHY};
use gatekeeper_e2e::{moto, output, rt, run_id};

fn spawn(fleet: &Fleet, args: &[&str]) -> Child {
    fleet
        .gatekeeper(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sixteen_runs_at_once_one_drives_fifteen_are_refused_having_changed_nothing() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    for round in 0..5 {
        // Datapoints of this minute: the bake reads the minutes around it, and a long test
        // outlives the first ones.
        rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
        let revision = format!("v{}", round + 2);
        let previous = format!("v{}", round + 1);
        let started = Instant::now();
        let children: Vec<Child> = (0..16)
            .map(|_| spawn(&fleet, &["canary", "run", "--revision", &revision]))
            .collect();
        let mut winners = Vec::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            match out.status.code() {
                Some(0) => winners.push(stdout),
                Some(2) => {
                    assert!(
                        stdout.contains("refused: the deploy lock"),
                        "round {round}: {stdout}\n{stderr}"
                    );
                    // Refused ones wrote nothing and did no step.
                    assert!(!stderr.contains("[canary 1/"), "round {round}: {stderr}");
                }
                other => panic!("round {round}: exit {other:?}: {stdout}\n{stderr}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        // Everyone was answered quickly: the refused ones took the lock's word for it.
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "round {round}: {:?}",
            started.elapsed()
        );
        let winner = run_id(&winners[0]);
        assert!(winners[0].contains("awaiting-approval"), "{}", winners[0]);
        // One run journaled this round: the winner's.
        let runs = rt.block_on(fleet.runs());
        assert_eq!(runs.last().unwrap(), &winner, "round {round}: {runs:?}");
        assert_eq!(runs.len(), round + 1, "round {round}: {runs:?}");
        // The world: only the canary node moved, at the canary weight.
        assert_eq!(rt.block_on(fleet.weights()), (95, 5), "round {round}");
        assert_eq!(
            rt.block_on(fleet.members(&fleet.canary_tg)),
            [fleet.nodes[0].clone()].into(),
            "round {round}"
        );
        // status, then promote or abort, act on the winner's run.
        let (code, status, _) = output(fleet.gatekeeper(&["canary", "status"]));
        assert_eq!(code, Some(0));
        assert!(status.contains(&winner), "round {round}: {status}");
        assert!(
            status.contains("awaiting approval"),
            "round {round}: {status}"
        );
        if round % 2 == 0 {
            let (code, stdout, stderr) = output(fleet.gatekeeper(&["promote", "--yes"]));
            assert_eq!(code, Some(0), "round {round}: {stdout}\n{stderr}");
            assert!(stdout.contains(&winner), "round {round}: {stdout}");
            rt.block_on(fleet.assert_safe_on(&revision));
        } else {
            let (code, stdout, stderr) = output(fleet.gatekeeper(&["canary", "abort"]));
            assert_eq!(code, Some(2), "round {round}: {stdout}\n{stderr}");
            assert!(stdout.contains(&winner), "round {round}: {stdout}");
            assert!(stdout.contains("rolled-back"), "round {round}: {stdout}");
            rt.block_on(fleet.assert_safe_on(&previous));
            // The next round deploys over what the fleet runs.
            for n in &fleet.nodes {
                std::fs::write(
                    fleet.dir.path().join("state").join(n),
                    format!("{revision}\n"),
                )
                .unwrap();
            }
        }
    }
}

#[test]
fn two_promotes_at_once_one_promotes_the_other_is_refused() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    let rounds: usize = std::env::var("PROMOTE_RACE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    for round in 0..rounds {
        // Datapoints of this minute: the bake reads the minutes around it, and a long test
        // outlives the first ones.
        rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
        let revision = format!("v{}", round + 2);
        let (code, stdout, stderr) =
            output(fleet.gatekeeper(&["canary", "run", "--revision", &revision]));
        assert_eq!(code, Some(0), "round {round}: {stdout}\n{stderr}");
        let run = run_id(&stdout);
        let a = spawn(&fleet, &["promote", "--yes"]);
        let b = spawn(&fleet, &["promote", "--yes"]);
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
        let text: Vec<String> = outs
            .iter()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .collect();
        let mut sorted = codes.clone();
        sorted.sort();
        assert_eq!(sorted, [Some(0), Some(2)], "round {round}: {text:?}");
        let loser = &text[codes.iter().position(|c| *c == Some(2)).unwrap()];
        assert!(loser.contains("refused"), "round {round}: {loser}");
        // The loser did no step of its own.
        assert!(!loser.contains("[promote 1/"), "round {round}: {loser}");
        rt.block_on(fleet.assert_safe_on(&revision));
        // One approval in the run's journal.
        let records = rt.block_on(fleet.records(&run));
        let approvals = records
            .iter()
            .filter(|r| r["record"]["event"] == "approved")
            .count();
        assert_eq!(approvals, 1, "round {round}");
    }
}

#[test]
fn a_promote_killed_at_any_moment_is_finished_by_a_plain_resume() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    // Ten moments spread over a promotion (which takes a second or two here), in a fixed
    // pseudo-random order so a failure can be replayed.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..10 {
        // Datapoints of this minute: the bake reads the minutes around it, and a long test
        // outlives the first ones.
        rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(100 + seed % 2_500);
        let revision = format!("v{}", round + 2);
        let (code, stdout, stderr) =
            output(fleet.gatekeeper(&["canary", "run", "--revision", &revision]));
        assert_eq!(code, Some(0), "round {round}: {stdout}\n{stderr}");
        let mut promote = spawn(&fleet, &["promote", "--yes"]);
        std::thread::sleep(delay);
        let _ = promote.kill();
        // Reaped, so its pid is gone (not a zombie) when resume checks it.
        let _ = promote.wait();
        let (code, stdout, stderr) = output(fleet.gatekeeper(&["canary", "resume"]));
        assert_eq!(
            code,
            Some(0),
            "round {round} ({delay:?}): {stdout}\n{stderr}"
        );
        if stdout.contains("awaits approval") {
            // Killed before its approval was journaled: nothing was promoted yet, and the
            // run waits as before; a promote finishes it.
            assert_eq!(rt.block_on(fleet.weights()), (95, 5), "round {round}");
            let (code, stdout, stderr) = output(fleet.gatekeeper(&["promote", "--yes"]));
            assert_eq!(code, Some(0), "round {round}: {stdout}\n{stderr}");
        }
        rt.block_on(fleet.assert_safe_on(&revision));
    }
}

#[test]
fn a_lock_or_record_that_is_not_ours_is_an_error_naming_it_and_nothing_changes() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    let key = format!("gatekeeper/{}-e2e/lock.json", fleet.service);
    for (body, says) in [
        (&b"<xml/>"[..], "not a gatekeeper lock"),
        (
            br#"{"format":"gatekeeper.lock/9"}"#,
            "newer than this gatekeeper reads",
        ),
    ] {
        rt.block_on(async {
            fleet
                .s3
                .put_object()
                .bucket(&fleet.state_bucket)
                .key(&key)
                .body(body.to_vec().into())
                .send()
                .await
                .unwrap();
        });
        for args in [
            &["canary", "run", "--revision", "v2"][..],
            &["canary", "status"],
            &["canary", "abort"],
            &["promote", "--yes"],
        ] {
            let (code, stdout, stderr) = output(fleet.gatekeeper(args));
            assert_eq!(code, Some(1), "{args:?}: {stdout}\n{stderr}");
            assert!(
                stderr.contains(&format!("s3://{}/{key}", fleet.state_bucket))
                    && stderr.contains(says),
                "{args:?}: {stderr}"
            );
        }
        rt.block_on(fleet.assert_safe_on_with_lock("v1"));
        assert!(rt.block_on(fleet.runs()).is_empty());
    }
    // A run whose record is not ours: status names the object.
    rt.block_on(async {
        fleet
            .s3
            .delete_object()
            .bucket(&fleet.state_bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        fleet
            .s3
            .put_object()
            .bucket(&fleet.state_bucket)
            .key(format!(
                "gatekeeper/{}-e2e/runs/canary-20260101T000000Z-1/00000000.json",
                fleet.service
            ))
            .body(br#"{"format":"gatekeeper.record/2"}"#.to_vec().into())
            .send()
            .await
            .unwrap();
    });
    let (code, _, stderr) = output(fleet.gatekeeper(&["canary", "status"]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("canary-20260101T000000Z-1/00000000.json") && stderr.contains("newer"),
        "{stderr}"
    );
}

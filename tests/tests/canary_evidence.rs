//! The bake's evidence through the binary, against moto: a canary run writes it into the run's
//! journal in the state layer; `canary report` renders it, `canary export` replays to the same
//! verdict in `gatekeeper judge`, `promote` shows it and needs `--yes` without a terminal,
//! `--reason` is recorded with the approver, `canary history` lists the run.

use gatekeeper_e2e::fleet::{Fleet, HEALTHY};
use gatekeeper_e2e::{gatekeeper, moto, output};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("canary ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id in {stdout}"))
        .to_string()
}

#[test]
fn a_run_keeps_its_evidence_and_promote_shows_it_before_it_acts() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let (code, out, err) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0), "{out}{err}");
    let run = run_id(&out);
    let dir = fleet.dir.path();

    // The record, as JSON: the run, its looks, the pass.
    let (code, json, err) = output(fleet.gatekeeper(&["canary", "report", "--output", "json"]));
    assert_eq!(code, Some(0), "{err}");
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["run_id"], run.as_str());
    assert_eq!(record["revision"], "v2");
    assert_eq!(record["previous"], "v1");
    assert!(record["started_by"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws"));
    let looks = record["looks"].as_array().unwrap();
    assert!(!looks.is_empty());
    assert!(looks
        .iter()
        .all(|l| l["groups"]["canary"]["requests"].as_u64() > Some(0)));
    assert_eq!(record["verdict"]["outcome"], "pass", "{json}");

    // HTML: one self-contained file, the same bytes twice.
    let html = dir.join("report.html");
    let again = dir.join("again.html");
    for path in [&html, &again] {
        let (code, _, err) = output(fleet.gatekeeper(&[
            "canary",
            "report",
            "--run",
            &run,
            "--output",
            "html",
            "--out",
            path.to_str().unwrap(),
        ]));
        assert_eq!(code, Some(0), "{err}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page, std::fs::read_to_string(&again).unwrap());
    assert!(page.contains("<svg") && page.contains(&run));
    for external in ["src=\"http", "href=\"http", "<script"] {
        assert!(!page.contains(external), "{external}");
    }

    // The export replays to the live verdict.
    let observations = dir.join("run.jsonl");
    let judge_toml = dir.join("judge.toml");
    let (code, _, err) = output(fleet.gatekeeper(&[
        "canary",
        "export",
        "--out",
        observations.to_str().unwrap(),
        "--judge-config",
        judge_toml.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(0), "{err}");
    let mut judge = gatekeeper();
    judge.args(["judge", "--input"]).arg(&observations);
    judge.arg("--config").arg(&judge_toml);
    judge.args(["--output", "json"]);
    let (code, replay, err) = output(judge);
    assert_eq!(code, Some(0), "{replay}{err}");
    let replay: serde_json::Value = serde_json::from_str(&replay).unwrap();
    assert_eq!(replay["verdict"], record["verdict"]["outcome"], "{replay}");
    assert_eq!(
        replay["decided_at"], record["verdict"]["decided_at"],
        "{replay}"
    );

    // promote without a terminal and without --yes: shows the evidence, changes nothing.
    let lock = rt.block_on(fleet.lock()).unwrap();
    let records = rt.block_on(fleet.records(&run)).len();
    let (code, out, err) = output(fleet.gatekeeper(&["promote"]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        out.contains("canary bake of") && out.contains(": pass"),
        "{out}"
    );
    assert!(
        out.contains("metric ") && out.contains("error_rate"),
        "{out}"
    );
    assert!(
        out.contains("canary report") && out.contains("--yes"),
        "{out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(
        rt.block_on(fleet.lock()).unwrap(),
        lock,
        "the lock untouched"
    );
    assert_eq!(rt.block_on(fleet.records(&run)).len(), records);
    assert_eq!(rt.block_on(fleet.weights()), (95, 5));

    // With --yes and a reason: promoted, the approval recorded with who and why.
    let (code, out, err) = output(fleet.gatekeeper(&[
        "promote",
        "--yes",
        "--reason",
        "error rate within tolerance",
    ]));
    assert_eq!(code, Some(0), "{out}{err}");
    rt.block_on(fleet.assert_safe_on("v2"));
    let (_, json, _) = output(fleet.gatekeeper(&["canary", "report", "--output", "json"]));
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        record["approved_by"]["reason"],
        "error rate within tolerance"
    );
    assert!(record["approved_by"]["who"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws"));
    let (_, text, _) = output(fleet.gatekeeper(&["canary", "report", "--output", "markdown"]));
    assert!(text.contains("error rate within tolerance"), "{text}");

    // history: the run, its revisions, its outcome and approver.
    let (code, history, err) = output(fleet.gatekeeper(&["canary", "history", "--output", "json"]));
    assert_eq!(code, Some(0), "{err}");
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history[0]["run_id"], run.as_str());
    assert_eq!(history[0]["revision"], "v2");
    assert_eq!(history[0]["outcome"], "promoted", "{history}");
    assert!(history[0]["approved_by"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws"));
}

#[test]
fn report_of_a_run_that_does_not_exist_or_names_a_path_is_an_error() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    let (code, _, err) = output(fleet.gatekeeper(&["canary", "report"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("no canary run in s3://"), "{err}");
    let (code, _, err) = output(fleet.gatekeeper(&["canary", "report", "--run", "../lock"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("--run \"../lock\": not a run id"), "{err}");
    let (code, _, err) = output(fleet.gatekeeper(&["canary", "export", "--run", "canary-nope"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("no run canary-nope"), "{err}");
}

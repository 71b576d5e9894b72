//! The export replays: the observations of a bake, exported in `gatekeeper judge`'s input
//! format and replayed through the judge with the exported `[canary.judge]` table, reach the
//! live verdict at the same `decided_at`.

mod common;

use canary::judge::{self, JudgeConfig};
use evidence::export;
use evidence::record::{BakeRecord, Outcome};

fn replayed(record: &BakeRecord) -> judge::Report {
    let text = export::jsonl(record);
    let toml_text = export::judge_toml(record);
    let value: toml::Value = toml::from_str(&toml_text).expect("valid TOML");
    let config: JudgeConfig = value["canary"]["judge"]
        .clone()
        .try_into()
        .expect("the exported table is a [canary.judge] table");
    judge::replay(&config, text.as_bytes()).expect("the export replays as judge input")
}

fn assert_replays(record: &BakeRecord) {
    let live = record.verdict.as_ref().expect("the bake decided");
    // Exported from the record as the journal gives it back: through JSON.
    let json = serde_json::to_string(record).unwrap();
    let read_back: BakeRecord = serde_json::from_str(&json).unwrap();
    let report = replayed(&read_back);
    let outcome = report.verdict.map(|v| v.as_str());
    assert_eq!(outcome, Some(live.outcome.as_str()), "verdict");
    assert_eq!(report.decided_at, live.decided_at, "decided_at");
    // The reason may differ in its words: the replay's last line is the bake's end, where
    // the live bake had not ended (a "critical metric failed" is then "failed").
}

#[test]
fn a_pass_replays_to_the_same_verdict_and_time() {
    let r = common::pass();
    assert_eq!(r.verdict.as_ref().unwrap().outcome, Outcome::Pass);
    assert_replays(&r);
}

#[test]
fn a_fail_replays_to_the_same_verdict_and_time() {
    let r = common::fail();
    assert_eq!(r.verdict.as_ref().unwrap().outcome, Outcome::Fail);
    assert!(
        r.looks.len() < 30,
        "failed early, at look {}",
        r.looks.len()
    );
    assert_replays(&r);
}

#[test]
fn an_inconclusive_bake_replays_to_the_same_verdict() {
    let r = common::inconclusive();
    assert_eq!(r.verdict.as_ref().unwrap().outcome, Outcome::Inconclusive);
    assert_replays(&r);
}

#[test]
fn sixty_looks_of_samples_replay_to_the_same_verdict_and_time() {
    let r = common::sixty_by_four();
    assert_eq!(r.looks.len(), 60);
    assert_replays(&r);
}

#[test]
fn each_line_is_the_judge_s_own_interval() {
    let r = common::fail();
    let text = export::jsonl(&r);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * r.looks.len());
    for line in &lines {
        let interval: judge::Interval = serde_json::from_str(line).unwrap();
        // The judge writes its intervals byte for byte as the export does.
        assert_eq!(*line, serde_json::to_string(&interval).unwrap());
    }
    assert!(lines[0].starts_with(r#"{"t":60.0,"group":"baseline","requests":19000,"#));
}

#[test]
fn a_look_without_a_window_fed_the_judge_nothing_and_is_not_exported() {
    let mut r = common::inconclusive();
    let all = export::jsonl(&r).lines().count();
    r.looks[3].window = None;
    let text = export::jsonl(&r);
    assert_eq!(text.lines().count(), all - 2);
    assert!(!text.contains(&format!("\"t\":{:?},", r.looks[3].t)));
}

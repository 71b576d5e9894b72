//! The text and markdown reports of a pass, a fail and an inconclusive bake (snapshots), and
//! the record's JSON and journal entries read back.

mod common;

use evidence::record::{BakeRecord, Entry, RecordError};
use evidence::render::{self, Format};

#[test]
fn text_reports() {
    insta::assert_snapshot!("text_pass", render::render(&common::pass(), Format::Text));
    insta::assert_snapshot!("text_fail", render::render(&common::fail(), Format::Text));
    insta::assert_snapshot!(
        "text_inconclusive",
        render::render(&common::inconclusive(), Format::Text)
    );
}

#[test]
fn markdown_reports() {
    insta::assert_snapshot!(
        "markdown_pass",
        render::render(&common::pass(), Format::Markdown)
    );
    insta::assert_snapshot!(
        "markdown_fail",
        render::render(&common::fail(), Format::Markdown)
    );
    insta::assert_snapshot!(
        "markdown_inconclusive",
        render::render(&common::inconclusive(), Format::Markdown)
    );
}

#[test]
fn a_bake_under_way_says_so() {
    let mut r = common::pass();
    r.verdict = None;
    r.approved_by = None;
    r.looks.truncate(4);
    let text = render::render(&r, Format::Text);
    assert!(
        text.starts_with("canary bake of checkout (prod): baking\n"),
        "{text}"
    );
    assert!(text.contains("The bake goes on: 4 looks so far, no verdict yet."));
}

#[test]
fn the_json_report_reads_back_as_the_same_record() {
    for r in [common::pass(), common::fail(), common::inconclusive()] {
        let json = render::render(&r, Format::Json);
        let back: BakeRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
    let json = render::render(&common::pass(), Format::Json);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    // The stable names a reader relies on.
    assert_eq!(v["run_id"], "run-20261204-0930-7f3a");
    assert_eq!(
        v["approved_by"]["who"],
        "arn:aws:iam::123456789012:user/bob"
    );
    assert_eq!(v["verdict"]["outcome"], "pass");
    let look = &v["looks"][0];
    for key in [
        "t",
        "at",
        "window",
        "configured_weight",
        "canary_share",
        "groups",
        "metrics",
        "alarms",
    ] {
        assert!(look.get(key).is_some(), "look.{key}");
    }
    for key in [
        "estimate",
        "lower",
        "upper",
        "e_value",
        "e_threshold",
        "threshold",
        "status",
    ] {
        assert!(look["metrics"][0].get(key).is_some(), "metrics[].{key}");
    }
}

#[test]
fn optional_fields_may_be_missing() {
    let r = common::inconclusive();
    let mut v = serde_json::to_value(&r).unwrap();
    let o = v.as_object_mut().unwrap();
    for key in [
        "previous",
        "canary_node",
        "config_check",
        "alarms_watched",
        "verdict",
        "approved_by",
        "bake_s",
        "interval_s",
    ] {
        o.remove(key);
    }
    let back: BakeRecord = serde_json::from_value(v).unwrap();
    assert_eq!(back.start.config_check, None);
    assert_eq!(back.looks, r.looks);
}

/// The journal's view: one entry per record.
fn entries(r: &BakeRecord) -> Vec<Entry> {
    let mut e = vec![Entry::Start(r.start.clone())];
    e.extend(r.looks.iter().cloned().map(Entry::Look));
    e.extend(r.verdict.clone().map(Entry::Verdict));
    e.extend(r.approved_by.clone().map(Entry::Approval));
    e
}

#[test]
fn a_record_is_rebuilt_from_its_journal_entries_one_a_line() {
    let r = common::pass();
    let lines: Vec<String> = entries(&r)
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert!(
        lines[1].starts_with(r#"{"entry":"look","index":1,"#),
        "{}",
        lines[1]
    );
    let back = BakeRecord::from_entries(lines.iter().map(|l| serde_json::from_str(l).unwrap()));
    assert_eq!(back, Ok(r));
}

#[test]
fn entries_out_of_place_are_refused() {
    let r = common::fail();
    let mut e = entries(&r);
    // A look after the verdict.
    let look = e[1].clone();
    e.push(look);
    assert!(matches!(
        BakeRecord::from_entries(e),
        Err(RecordError::LookAfterVerdict { index: 1, .. })
    ));
    // Looks out of order.
    let mut e = entries(&r);
    e.swap(1, 2);
    assert!(matches!(
        BakeRecord::from_entries(e),
        Err(RecordError::LookOutOfOrder { index: 1, .. })
    ));
    // No start.
    let e = entries(&r)[1..].to_vec();
    assert_eq!(
        BakeRecord::from_entries(e),
        Err(RecordError::NoStart("look"))
    );
    // An approval of a bake that has not ended.
    let mut unfinished = entries(&r);
    unfinished.retain(|x| !matches!(x, Entry::Verdict(_)));
    unfinished.push(Entry::Approval(evidence::record::Approval {
        who: "bob".into(),
        at: 0,
        reason: None,
    }));
    assert_eq!(
        BakeRecord::from_entries(unfinished),
        Err(RecordError::ApprovalBeforeVerdict)
    );
}

#[test]
fn a_bake_with_no_look_yet_and_one_stopped_by_an_alarm_render_in_every_format() {
    use evidence::record::{AlarmState, Outcome, RunVerdict};
    let mut empty = common::pass();
    empty.looks.clear();
    empty.verdict = None;
    empty.approved_by = None;
    let mut aborted = common::pass();
    aborted.approved_by = None;
    aborted.looks.truncate(5);
    aborted.looks[4].alarms[0] = AlarmState {
        name: "checkout-5xx".into(),
        state: "ALARM".into(),
    };
    aborted.verdict = Some(RunVerdict {
        outcome: Outcome::Aborted,
        metric: None,
        decided_at: None,
        at: Some(aborted.looks[4].at),
        reason: "alarm checkout-5xx went into ALARM during the bake".into(),
    });
    for r in [&empty, &aborted] {
        for f in [Format::Text, Format::Markdown, Format::Json, Format::Html] {
            assert!(!render::render(r, f).is_empty());
        }
        let page = render::render(r, Format::Html);
        for id in [
            "evalue",
            "share",
            "latency",
            "alarms",
            "metric-error_rate",
            "metric-latency",
        ] {
            assert!(page.contains(&format!("<svg id=\"{id}\"")), "{id}");
        }
    }
    let text = render::render(&aborted, Format::Text);
    assert!(
        text.contains("ABORTED: the bake stopped before the judge decided."),
        "{text}"
    );
    assert!(text.contains("went into ALARM: checkout-5xx"), "{text}");
    assert!(
        text.contains("ALARM checkout-5xx"),
        "the look shows the alarm: {text}"
    );
    let page = render::render(&aborted, Format::Html);
    // One look of one alarm in ALARM: one red cell in the alarms panel.
    assert_eq!(
        page.matches(r##"height="20" fill="#c62828""##).count(),
        1,
        "the ALARM cell is drawn"
    );
}

#[test]
fn a_mann_whitney_bake_is_not_described_in_e_values() {
    use canary::judge::{JudgeConfig, Method};
    let config = JudgeConfig {
        method: Method::MannWhitney,
        ..common::two_metrics()
    };
    let r = common::bake(&config, 10, 5, &mut |_, rng| {
        let lat = |rng: &mut common::Rng| vec![(120.0 + 6.0 * rng.normal()).round()];
        (
            evidence::record::GroupLook {
                requests: 19_000,
                errors: rng.errors(19_000, 0.002),
                latency_ms: lat(rng),
            },
            evidence::record::GroupLook {
                requests: 1_000,
                errors: rng.errors(1_000, 0.002),
                latency_ms: lat(rng),
            },
        )
    });
    let text = render::render(&r, Format::Text);
    assert!(
        text.contains("the mann-whitney judge decides at the bake's end only"),
        "{text}"
    );
    assert!(!text.contains("e-value against"), "{text}");
    let page = render::render(&r, Format::Html);
    assert!(page.contains("the mann-whitney judge keeps no e-values"));
}

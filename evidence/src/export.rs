//! The bake's observations in `gatekeeper judge`'s input format, so anyone can replay the
//! decision: `gatekeeper judge --input run.jsonl --config judge.toml`.
//!
//! One JSON object a line, per look the judge was fed (a look with a `window`) and per group,
//! baseline first: `{"t":60.0,"group":"baseline","requests":19000,"errors":12,"latency_ms":[41.5]}`,
//! the fields and their order those of the judge's `Interval`. Looks without a window fed the
//! judge nothing and are left out, so the replay sees exactly the live judge's input.
//!
//! The replay asks for a verdict after each `t` and treats the last line as the bake's end,
//! as the live bake did at its last look. A bake stopped before its end (an alarm, a signal)
//! replays as if it had ended at its last look.

use serde::Serialize;

use crate::record::{BakeRecord, GroupLook, JudgeSpec};

#[derive(Serialize)]
struct Line<'a> {
    t: f64,
    group: &'static str,
    requests: u64,
    errors: u64,
    latency_ms: &'a [f64],
}

/// The observations as JSON lines, each ending in a newline.
pub fn jsonl(record: &BakeRecord) -> String {
    let mut out = String::new();
    for look in record.looks.iter().filter(|l| l.window.is_some()) {
        let groups: [(&str, &GroupLook); 2] = [
            ("baseline", &look.groups.baseline),
            ("canary", &look.groups.canary),
        ];
        for (group, g) in groups {
            let line = Line {
                t: look.t,
                group,
                requests: g.requests,
                errors: g.errors,
                latency_ms: &g.latency_ms,
            };
            // Numbers and fixed strings only: serialising cannot fail.
            out.push_str(&serde_json::to_string(&line).expect("an interval serialises"));
            out.push('\n');
        }
    }
    out
}

#[derive(Serialize)]
struct ConfigFile<'a> {
    canary: CanaryTable<'a>,
}

#[derive(Serialize)]
struct CanaryTable<'a> {
    judge: &'a JudgeSpec,
}

/// The `[canary.judge]` table the bake ran with, as a `gatekeeper.toml` that
/// `gatekeeper judge --config` reads: the other half of a replay.
pub fn judge_toml(record: &BakeRecord) -> String {
    let file = ConfigFile {
        canary: CanaryTable {
            judge: &record.start.judge,
        },
    };
    toml::to_string(&file).expect("the judge's table serialises")
}

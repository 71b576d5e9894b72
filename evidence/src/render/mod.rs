//! Reports rendered from a [`BakeRecord`]: [`text`], [`markdown`], [`json`] and [`html`]. Each
//! is a pure function of the record, so the same record gives the same bytes.

pub mod html;
pub mod json;
pub mod markdown;
mod svg;
pub mod text;

use crate::record::{BakeRecord, Direction, Kind, Look, MetricLook, MetricSpec, Outcome, Status};

/// The output formats of `gatekeeper canary report --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
    Html,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Text, Format::Markdown, Format::Json, Format::Html];

    /// The name of `--output`: `text`, `markdown`, `json`, `html`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Json => "json",
            Format::Html => "html",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown output `{s}`: text, markdown, json or html"))
    }
}

/// Renders the record in `format`.
pub fn render(record: &BakeRecord, format: Format) -> String {
    match format {
        Format::Text => text::render(record),
        Format::Markdown => markdown::render(record),
        Format::Json => json::render(record),
        Format::Html => html::render(record),
    }
}

/// RFC 3339, UTC, whole seconds: `2026-12-04T09:34:49Z`.
pub fn fmt_time(unix: u64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(unix as i64) else {
        return format!("@{unix}");
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `HH:MM:SS` of a time, UTC.
pub(crate) fn fmt_clock(unix: u64) -> String {
    fmt_time(unix)
        .get(11..19)
        .map_or_else(|| format!("@{unix}"), str::to_string)
}

/// The judge's `t` as minutes and seconds into the bake: `9:00`.
pub(crate) fn fmt_t(t: f64) -> String {
    let s = t.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// A duration in words: `30 min`, `45 s`, `1 h 30 min`.
pub(crate) fn fmt_duration(s: u64) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3600 if s.is_multiple_of(60) => format!("{} min", s / 60),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// A ratio for people: `1.20x`; unbounded as `∞`.
pub(crate) fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{r:.2}x"),
        Some(_) => "∞".to_string(),
        None => "-".to_string(),
    }
}

/// The bounds of a ratio: `0.80x .. 1.15x`.
pub(crate) fn fmt_bounds(m: &MetricLook) -> String {
    if m.lower.is_none() && m.upper.is_none() {
        return "-".to_string();
    }
    let upper = m
        .upper
        .map_or_else(|| "∞".to_string(), |u| fmt_ratio(Some(u)));
    format!("{} .. {upper}", fmt_ratio(Some(m.lower.unwrap_or(0.0))))
}

/// An e-value for people, as the judge writes them: 3 significant digits, scientific when
/// large or tiny.
pub(crate) fn fmt_e(e: Option<f64>) -> String {
    let Some(e) = e else {
        return "-".to_string();
    };
    if e >= 1e4 {
        format!("{e:.2e}")
    } else if e.fract() == 0.0 || e >= 100.0 {
        format!("{e:.0}")
    } else if e >= 0.01 {
        format!("{e:.3}")
    } else {
        format!("{e:.2e}")
    }
}

/// A metric's value: an error rate as a percentage, a latency in ms.
pub(crate) fn fmt_value(kind: Kind, v: Option<f64>) -> String {
    match (kind, v) {
        (_, None) => "-".to_string(),
        (Kind::Count, Some(v)) => format!("{:.3}%", v * 100.0),
        (Kind::Continuous, Some(v)) => format!("{v:.1} ms"),
    }
}

/// A percentage: `5.0%`.
pub(crate) fn fmt_pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}%"))
}

/// The verdict's headline: the outcome, or `baking` while the bake goes on.
pub(crate) fn headline(record: &BakeRecord) -> &'static str {
    record
        .verdict
        .as_ref()
        .map_or("baking", |v| v.outcome.as_str())
}

/// The metric that decided the run: the verdict's, or the first to fail, or the last to pass.
pub(crate) fn deciding_metric(record: &BakeRecord) -> Option<&MetricLook> {
    let last = record.last_look()?;
    let v = record.verdict.as_ref()?;
    if let Some(name) = &v.metric {
        return last.metric(name);
    }
    match v.outcome {
        Outcome::Fail => last.metrics.iter().find(|m| m.status == Status::Fail),
        Outcome::Pass => last
            .metrics
            .iter()
            .filter(|m| m.decided_at.is_some())
            .max_by(|a, b| {
                a.decided_at
                    .unwrap_or(0.0)
                    .total_cmp(&b.decided_at.unwrap_or(0.0))
            })
            .or(last.metrics.first()),
        Outcome::Inconclusive => last
            .metrics
            .iter()
            .find(|m| m.status == Status::Inconclusive),
        Outcome::Aborted => None,
    }
}

/// The look at which the judge decided, if it did.
pub(crate) fn decided_look(record: &BakeRecord) -> Option<&Look> {
    let t = record.verdict.as_ref()?.decided_at?;
    record.looks.iter().find(|l| l.t == t)
}

/// "the canary's error rate".
fn what(name: &str) -> String {
    format!("the canary's {}", name.replace('_', " "))
}

/// The confidence of each bound: `97.5%`.
fn level(e_threshold: f64) -> String {
    let pct = 100.0 * (1.0 - 1.0 / e_threshold);
    let s = format!("{pct:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// The verdict in words, sentence by sentence: what was decided, when, on which metric and
/// evidence, what evidence was needed, and what the result rules out.
pub fn verdict_words(record: &BakeRecord) -> Vec<String> {
    let mut out = Vec::new();
    let last = record.last_look();
    let Some(v) = &record.verdict else {
        let n = record.looks.len();
        out.push(format!(
            "The bake goes on: {n} look{} so far, no verdict yet.",
            if n == 1 { "" } else { "s" }
        ));
        push_evidence_needed(record, &mut out);
        return out;
    };
    let when = match (v.decided_at, decided_look(record)) {
        (Some(t), Some(l)) => format!(
            " at t={} (look {}{}, {})",
            fmt_t(t),
            l.index,
            if l.of > 0 {
                format!(" of {}", l.of)
            } else {
                String::new()
            },
            fmt_time(l.at)
        ),
        (Some(t), None) => format!(" at t={}", fmt_t(t)),
        _ => String::new(),
    };
    let first = match v.outcome {
        Outcome::Pass if last.is_some_and(|l| l.metrics.iter().all(|m| m.decided_at.is_some())) => format!("PASS{when}: every metric's bounds exclude a regression beyond its tolerance."),
        Outcome::Pass => format!("PASS{when}: no metric showed evidence of a regression beyond its tolerance by the bake's end."),
        Outcome::Fail => format!("FAIL{when}: the canary regressed."),
        Outcome::Inconclusive => format!("INCONCLUSIVE{when}: the bake ended without the data to decide."),
        Outcome::Aborted => format!("ABORTED{when}: the bake stopped before the judge decided."),
    };
    out.push(first);
    out.push(format!("Reason: {}.", v.reason.trim_end_matches('.')));
    let decided = matches!(v.outcome, Outcome::Pass | Outcome::Fail);
    if let (true, Some(m), Some(spec)) = (
        decided,
        deciding_metric(record),
        deciding_metric(record).and_then(|m| record.spec(&m.name)),
    ) {
        out.push(format!(
            "Deciding metric: {} ({}{}): canary {} vs baseline {}, estimated ratio {} with {} bounds {}; a regression begins at {}.",
            m.name,
            match spec.kind {
                Kind::Count => "count",
                Kind::Continuous => "continuous",
            },
            if spec.critical { ", critical" } else { "" },
            fmt_value(spec.kind, m.canary_value),
            fmt_value(spec.kind, m.baseline_value),
            fmt_ratio(m.estimate),
            level(m.e_threshold),
            fmt_bounds(m),
            fmt_ratio(Some(m.threshold)),
        ));
    }
    push_evidence_needed(record, &mut out);
    if let Some(last) = last {
        match v.outcome {
            Outcome::Pass => {
                let ruled: Vec<String> = last
                    .metrics
                    .iter()
                    .filter_map(|m| rules_out(record.spec(&m.name)?, m))
                    .collect();
                if ruled.is_empty() {
                    out.push("The pass rules out no regression with confidence: no metric's bounds exclude one; it passed for want of evidence against it.".to_string());
                } else {
                    out.push(format!("What the pass rules out: {}.", ruled.join("; ")));
                }
            }
            Outcome::Fail => {
                for m in last.metrics.iter().filter(|m| m.status == Status::Fail) {
                    if let Some(spec) = record.spec(&m.name) {
                        out.push(shows(spec, m));
                    }
                }
            }
            // The judge's reason for an inconclusive run already names each metric's want.
            Outcome::Inconclusive => {}
            Outcome::Aborted => {
                for m in last.metrics.iter().filter(|m| m.status != Status::Pass) {
                    out.push(format!("{}: {}.", m.name, m.reason.trim_end_matches('.')));
                }
            }
        }
    }
    out
}

fn push_evidence_needed(record: &BakeRecord, out: &mut Vec<String>) {
    let Some(m) = record.last_look().and_then(|l| l.metrics.first()) else {
        return;
    };
    let alpha = record.start.judge.alpha;
    let n = record.start.judge.metrics.len();
    if !is_sequential(record) {
        out.push(format!(
            "Evidence needed: the {} judge decides at the bake's end only: a metric fails when its two-sided p-value is below {} (α {alpha} split over {n} metric{}) and its estimate is beyond the tolerance.",
            record.start.judge.method,
            1.0 / m.e_threshold,
            if n == 1 { "" } else { "s" },
        ));
        return;
    }
    out.push(format!(
        "Evidence needed: a metric fails once its e-value against \"no regression\" reaches 1/α = {} (α {} split over {n} metric{}), and passes early once its e-value against a regression does; either holds with probability at most α however often the judge looks.",
        fmt_e(Some(m.e_threshold)),
        alpha,
        if n == 1 { "" } else { "s" },
    ));
}

/// Whether the judge was the sequential one, whose e-values the reports draw.
pub(crate) fn is_sequential(record: &BakeRecord) -> bool {
    record.start.judge.method == "sequential"
}

/// What a metric's bounds rule out, when they exclude a regression.
fn rules_out(spec: &MetricSpec, m: &MetricLook) -> Option<String> {
    match spec.direction {
        Direction::IncreaseIsBad => {
            let u = m.upper?;
            Some(format!(
                "{} above {} the baseline's ({} confidence)",
                what(&m.name),
                fmt_ratio(Some(u)),
                level(m.e_threshold)
            ))
        }
        Direction::DecreaseIsBad => {
            let l = m.lower.filter(|l| *l > 0.0)?;
            Some(format!(
                "{} below {} the baseline's ({} confidence)",
                what(&m.name),
                fmt_ratio(Some(l)),
                level(m.e_threshold)
            ))
        }
    }
}

/// What a failed metric's bounds show.
fn shows(spec: &MetricSpec, m: &MetricLook) -> String {
    let (side, bound) = match spec.direction {
        Direction::IncreaseIsBad => ("at least", m.lower),
        Direction::DecreaseIsBad => ("at most", m.upper),
    };
    format!(
        "{}: with {} confidence {} is {side} {} the baseline's, beyond the {} where a regression begins (e-value {}, needed {}).",
        m.name,
        level(m.e_threshold),
        what(&m.name),
        fmt_ratio(bound),
        fmt_ratio(Some(m.threshold)),
        fmt_e(m.e_value),
        fmt_e(Some(m.e_threshold)),
    )
}

/// The latency values a group reported over the bake, in look order.
pub(crate) fn latencies(record: &BakeRecord, canary: bool) -> Vec<f64> {
    record
        .looks
        .iter()
        .filter(|l| l.window.is_some())
        .flat_map(|l| {
            let g = if canary {
                &l.groups.canary
            } else {
                &l.groups.baseline
            };
            g.latency_ms.iter().copied()
        })
        .collect()
}

/// The alarms that went into ALARM at some look, in the order watched.
pub(crate) fn alarms_fired(record: &BakeRecord) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for l in &record.looks {
        for a in l.alarms.iter().filter(|a| a.firing()) {
            if !names.contains(&a.name.as_str()) {
                names.push(&a.name);
            }
        }
    }
    names
}

/// A table: headers and rows of cells, shared by the text and markdown renderers.
pub(crate) struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Where every metric ended: one row per metric.
pub(crate) fn summary_table(record: &BakeRecord) -> Table {
    let headers = [
        "metric", "status", "canary", "baseline", "ratio", "bounds", "e-value", "needed", "decided",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    if let Some(last) = record.last_look() {
        for m in &last.metrics {
            let kind = record.spec(&m.name).map_or(Kind::Count, |s| s.kind);
            rows.push(vec![
                m.name.clone(),
                m.status.as_str().to_string(),
                fmt_value(kind, m.canary_value),
                fmt_value(kind, m.baseline_value),
                fmt_ratio(m.estimate),
                fmt_bounds(m),
                fmt_e(m.e_value),
                fmt_e(Some(m.e_threshold)),
                m.decided_at
                    .map_or_else(|| "-".to_string(), |t| format!("t={}", fmt_t(t))),
            ]);
        }
    }
    Table { headers, rows }
}

/// The bake over time: one row per look.
pub(crate) fn timeline_table(record: &BakeRecord) -> Table {
    let mut headers: Vec<String> = ["look", "t", "time", "share", "weight", "baseline", "canary"]
        .map(String::from)
        .to_vec();
    for m in &record.start.judge.metrics {
        headers.push(m.name.clone());
    }
    headers.push("alarms".to_string());
    let rows = record
        .looks
        .iter()
        .map(|l| {
            let group = |g: &crate::record::GroupLook| {
                if l.window.is_none() {
                    return "-".to_string();
                }
                match g.latency_ms.as_slice() {
                    [] => format!("{} req {} err", g.requests, g.errors),
                    [v] => format!("{} req {} err {v:.0} ms", g.requests, g.errors),
                    s => format!("{} req {} err {} samples", g.requests, g.errors, s.len()),
                }
            };
            let mut row = vec![
                l.index.to_string(),
                fmt_t(l.t),
                fmt_clock(l.at),
                fmt_pct(l.canary_share),
                format!("{}%", l.configured_weight),
                group(&l.groups.baseline),
                group(&l.groups.canary),
            ];
            for spec in &record.start.judge.metrics {
                row.push(l.metric(&spec.name).map_or_else(
                    || "-".to_string(),
                    |m| {
                        let mark = match m.status {
                            Status::Pass => " pass",
                            Status::Fail => " FAIL",
                            Status::Inconclusive => " inconclusive",
                            Status::Pending => "",
                        };
                        match m.estimate {
                            None => format!("no data{mark}"),
                            Some(_) => format!(
                                "{} [{}] e={}{mark}",
                                fmt_ratio(m.estimate),
                                fmt_bounds(m),
                                fmt_e(m.e_value)
                            ),
                        }
                    },
                ));
            }
            let firing: Vec<&str> = l
                .alarms
                .iter()
                .filter(|a| a.firing())
                .map(|a| a.name.as_str())
                .collect();
            row.push(if firing.is_empty() {
                "ok".to_string()
            } else {
                format!("ALARM {}", firing.join(", "))
            });
            row
        })
        .collect();
    Table { headers, rows }
}

/// The run's facts as (label, value) pairs.
pub(crate) fn facts(record: &BakeRecord) -> Vec<(&'static str, String)> {
    let s = &record.start;
    let mut out = vec![
        ("run", s.run_id.clone()),
        (
            "revision",
            format!(
                "{}{}{}",
                s.revision,
                s.previous
                    .as_ref()
                    .map(|p| format!(" (previous {p})"))
                    .unwrap_or_default(),
                s.canary_node
                    .as_ref()
                    .map(|n| format!(" on {n}"))
                    .unwrap_or_default()
            ),
        ),
        (
            "started",
            format!("{} by {}", fmt_time(s.started_at), s.started_by),
        ),
        (
            "approved",
            match &record.approved_by {
                Some(a) => format!(
                    "{} by {}{}",
                    fmt_time(a.at),
                    a.who,
                    a.reason
                        .as_ref()
                        .map(|r| format!(": \"{r}\""))
                        .unwrap_or_default()
                ),
                None => "not yet".to_string(),
            },
        ),
        (
            "config check",
            match &s.config_check {
                Some(c) => {
                    let r = match c.result {
                        crate::record::CheckResult::Pass => "pass",
                        crate::record::CheckResult::Fail => "fail",
                        crate::record::CheckResult::Skipped => "skipped",
                    };
                    if c.summary.is_empty() {
                        r.to_string()
                    } else {
                        format!("{r}: {}", c.summary)
                    }
                }
                None => "not configured".to_string(),
            },
        ),
        (
            "judge",
            format!(
                "{}, alpha {}, {} metric{}{}",
                s.judge.method,
                s.judge.alpha,
                s.judge.metrics.len(),
                if s.judge.metrics.len() == 1 { "" } else { "s" },
                if s.bake_s > 0 {
                    format!(
                        ", bake {} with a look every {}",
                        fmt_duration(s.bake_s),
                        fmt_duration(s.interval_s)
                    )
                } else {
                    String::new()
                }
            ),
        ),
    ];
    let fired = alarms_fired(record);
    out.push((
        "alarms",
        if s.alarms_watched.is_empty() {
            "none watched".to_string()
        } else if fired.is_empty() {
            format!("{} (none fired)", s.alarms_watched.join(", "))
        } else {
            format!(
                "{}; went into ALARM: {}",
                s.alarms_watched.join(", "),
                fired.join(", ")
            )
        },
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(fmt_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt_time(1_796_376_889), "2026-12-04T09:34:49Z");
        assert_eq!(fmt_clock(1_796_376_889), "09:34:49");
        assert_eq!(fmt_t(540.0), "9:00");
        assert_eq!(fmt_duration(1800), "30 min");
    }

    #[test]
    fn formats_go_by_their_names() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
        }
        assert!("pdf"
            .parse::<Format>()
            .unwrap_err()
            .contains("text, markdown, json or html"));
    }

    #[test]
    fn confidence_levels_read_as_percentages() {
        assert_eq!(level(40.0), "97.5%");
        assert_eq!(level(20.0), "95%");
    }
}

//! Canary reports: run outcomes and refusals, status, history, the evidence `promote` shows
//! before it asks; [`progress`] draws a run's progress on stderr.

use std::io::Write;

use canary::run::Reply;
use canary::status::{HistoryLine, StatusReport};
use state::lock::LockState;

use crate::commands::common::Output;

pub mod progress;

/// What a run command ends with: a refusal, a sentence, or the run's report. With
/// `--output json` each is one JSON object: a refusal is `{"outcome": "refused", "reason"}`,
/// a sentence (nothing was driven) `{"outcome": "not_driven", "message"}`, and a report has
/// the run's `state`.
pub fn reply(reply: &Reply, output: Output, out: &mut dyn Write) -> anyhow::Result<()> {
    match reply {
        Reply::Refused(why) => refusal(why, output, out)?,
        Reply::Said(text) if output == Output::Json => writeln!(
            out,
            "{:#}",
            serde_json::json!({"outcome": "not_driven", "message": text})
        )?,
        Reply::Said(text) => writeln!(out, "{text}")?,
        Reply::Driven { report, .. } if output == Output::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(report)?)?
        }
        Reply::Driven { report: r, .. } => writeln!(
            out,
            "canary {} ({} → {} on {}): {}: {}",
            r.run_id, r.previous, r.revision, r.canary_node, r.state, r.detail
        )?,
    }
    Ok(())
}

/// A refusal: nothing was changed or written.
pub fn refusal(why: &str, output: Output, out: &mut dyn Write) -> anyhow::Result<()> {
    if output == Output::Json {
        let refusal = serde_json::json!({"outcome": "refused", "reason": why});
        writeln!(out, "{refusal:#}")?;
    } else {
        writeln!(out, "refused: {why}")?;
    }
    Ok(())
}

/// `2026-12-04T10:15:00Z` and how far from now: `in 12 min`, `3 min ago`.
fn when(at: u64, now: u64) -> String {
    let stamp = canary::journal::rfc3339(at);
    let (d, later) = if at >= now {
        (at - now, true)
    } else {
        (now - at, false)
    };
    let span = if d < 90 {
        format!("{d} s")
    } else if d < 90 * 60 {
        format!("{} min", (d + 30) / 60)
    } else {
        format!("{:.1} h", d as f64 / 3600.0)
    };
    if later {
        format!("{stamp} (in {span})")
    } else {
        format!("{stamp} ({span} ago)")
    }
}

/// `canary status`, as of `now`.
pub fn status(
    report: &StatusReport,
    output: Output,
    now: u64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if output == Output::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(report)?)?;
        return Ok(());
    }
    match &report.lock {
        Some(l) if l.state == LockState::Held => writeln!(
            out,
            "lock {}: held by {} for {} run {} (generation {}), since {}, lease until {}",
            report.lock_object,
            l.holder,
            l.purpose,
            l.run_id,
            l.generation,
            when(l.acquired_at, now),
            when(l.expires_at, now)
        )?,
        Some(l) if l.state == LockState::Parked => writeln!(
            out,
            "lock {}: parked: {} run {} is in flight with no process driving it (generation {})",
            report.lock_object, l.purpose, l.run_id, l.generation
        )?,
        _ => writeln!(out, "lock {}: free", report.lock_object)?,
    }
    if let Some(w) = report.canary_weight {
        writeln!(
            out,
            "listener weights: {}/{w} (prod/canary)",
            100 - w as u16
        )?;
    }
    match &report.run {
        Some(r) => {
            writeln!(
                out,
                "last run {} by {}: {} → {} on {}, started {}",
                r.run_id, r.holder, r.previous, r.revision, r.canary_node, r.started_at
            )?;
            writeln!(out, "  mode {}: {}", r.mode.as_str(), r.state)?;
            if let Some(who) = &r.approved_by {
                writeln!(out, "  approved by {who}")?;
            }
        }
        None => writeln!(out, "no canary run in {}", report.location)?,
    }
    for n in &report.nodes {
        writeln!(
            out,
            "  node {}: {}{}, revision {}",
            n.node,
            n.group,
            n.health
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default(),
            n.revision.as_deref().unwrap_or("unknown")
        )?;
    }
    if let Some(b) = &report.bake {
        writeln!(
            out,
            "  bake: look {} of {}{}",
            b.look,
            b.of,
            b.verdict
                .map(|v| format!(", verdict {v}"))
                .unwrap_or_default()
        )?;
        for m in &b.metrics {
            let bound = |v: Option<f64>| v.map_or("∞".to_string(), |v| format!("{v:.2}x"));
            writeln!(
                out,
                "    {}: {} ratio {} [{} .. {}] e-value {} (fails at {:.0})",
                m.name,
                m.status.as_str(),
                m.estimate.map_or("-".to_string(), |e| format!("{e:.2}x")),
                m.lower.map_or("0.00x".to_string(), |v| format!("{v:.2}x")),
                bound(m.upper),
                m.e_value.map_or("-".to_string(), |e| format!("{e:.3}")),
                m.e_threshold
            )?;
        }
    }
    Ok(())
}

/// `canary history`; `location` names the state when there is no run.
pub fn history(
    lines: &[HistoryLine],
    output: Output,
    location: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if output == Output::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(lines)?)?;
        return Ok(());
    }
    if lines.is_empty() {
        writeln!(out, "no canary run in {location}")?;
    }
    for l in lines {
        writeln!(
            out,
            "{}  {} -> {}  {}  started {} by {}, {}{}",
            l.run_id,
            l.previous,
            l.revision,
            l.outcome,
            l.started_at,
            l.started_by,
            duration(l.duration_s),
            l.approved_by
                .as_ref()
                .map(|w| format!(", approved by {w}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

fn duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// What `promote` shows before it asks: the evidence's summary and per-metric table (the
/// look-by-look table is in the full report), and how to get the full report.
pub fn promote_evidence(
    record: &anyhow::Result<evidence::BakeRecord>,
    config: &std::path::Path,
    run_id: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match record {
        Ok(record) => {
            let report = evidence::render(record, evidence::Format::Text);
            let summary = report.split("\nlook ").next().unwrap_or(&report);
            writeln!(out, "{}", summary.trim_end())?;
            writeln!(
                out,
                "full report: gatekeeper canary report --config {} --run {run_id} --output html --out report.html",
                config.display()
            )?;
        }
        Err(e) => writeln!(out, "no evidence to show: {e:#}")?,
    }
    Ok(())
}

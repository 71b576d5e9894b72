//! One self-contained HTML page for a release manager: the verdict in words on top, then the
//! charts, each an inline `<svg class="panel">` with an `id`:
//!
//! - `metric-<name>`: per metric, canary vs baseline per interval, and the running ratio with
//!   its anytime-valid bounds against the threshold where a regression begins;
//! - `evalue`: each metric's e-values against the `1/α` line, `decided_at` marked;
//! - `share`: the canary's actual share of the requests against the configured weight;
//! - `latency`: the empirical distribution (ECDF) of each group's latency;
//! - `alarms`: the watched alarms' states at every look.
//!
//! No JavaScript, no external `src` or `href`, no network (a Content-Security-Policy of
//! `default-src 'none'` says so to the browser too), no fonts but the system's.
//!
//! The SVG is written by hand (`svg.rs`, some 300 lines): the charts are a few polylines,
//! bands and axes over at most a few hundred points. plotters' SVG backend would bring a
//! drawing model, text layout and its own number formatting for the same result, and tying
//! the report's bytes (which tests hold byte-identical) to its output across releases is a
//! cost; here every coordinate is written with one decimal by this crate.

use std::fmt::Write;

use super::svg::{esc, legend, n, tick_label, Key, Plot, Scale};
use super::{facts, fmt_t, headline, latencies, summary_table, verdict_words};
use crate::record::{BakeRecord, Kind, Look, MetricSpec, Outcome, Status};

const BASELINE: &str = "#4c78a8";
const CANARY: &str = "#e4572e";
const THRESHOLD: &str = "#b2182b";
const DECIDED: &str = "#333333";
const PALETTE: [&str; 6] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d",
];

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#222;background:#fff}\
h1{font-size:24px;margin:0 0 8px}h2{font-size:18px;margin:24px 0 8px}\
.verdict{padding:14px 18px;border-radius:6px;border-left:8px solid}\
.verdict p{margin:4px 0;font-size:14px;line-height:1.4}\
.pass{background:#eaf6ec;border-color:#2e7d32}.fail{background:#fdecea;border-color:#c62828}\
.inconclusive,.aborted{background:#fff8e1;border-color:#f9a825}.baking{background:#e8f0fe;border-color:#1a73e8}\
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}\
th{background:#f3f3f3}#metrics td,#metrics th{white-space:nowrap}.facts td:first-child{font-weight:600}\
.row{display:flex;gap:20px;align-items:flex-start}\
.grid{display:flex;flex-wrap:wrap;gap:20px}\
svg.panel{display:block;background:#fff}\
svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;fill:#222}\
svg .title{font-size:14px;font-weight:600}svg .tick{font-size:11px;fill:#555}svg .axis{font-size:12px}\
svg .legend{font-size:11px}svg .ref{font-size:11px;font-weight:600}svg .note{font-size:13px;fill:#555}";

/// The report as one HTML document.
pub fn render(record: &BakeRecord) -> String {
    let s = &record.start;
    let mut out = String::with_capacity(64 * 1024);
    let title = format!(
        "Canary bake of {} ({}): {}",
        s.service,
        s.environment,
        headline(record)
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = write!(
        out,
        "<section id=\"verdict\" class=\"verdict {}\"><h1>{}</h1>",
        headline(record),
        esc(&title)
    );
    for sentence in verdict_words(record) {
        let _ = write!(out, "<p>{}</p>", esc(&sentence));
    }
    out.push_str("</section>\n<div class=\"row\"><div>");
    let summary = summary_table(record);
    out.push_str("<h2>Where every metric ended</h2><table id=\"metrics\"><tr>");
    for h in &summary.headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for r in &summary.rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></div><div><h2>The run</h2><table class=\"facts\">");
    for (label, value) in facts(record) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(label),
            esc(&value)
        );
    }
    out.push_str("</table></div></div>\n");

    let x = x_scale(record);
    out.push_str("<h2>Canary vs baseline, per metric</h2><div class=\"grid\">\n");
    for spec in &s.judge.metrics {
        metric_panel(&mut out, record, spec, x);
    }
    out.push_str("</div>\n<h2>Evidence over time</h2>\n");
    evalue_panel(&mut out, record, x);
    out.push_str("<h2>Traffic and latency</h2><div class=\"grid\">\n");
    share_panel(&mut out, record, x);
    latency_panel(&mut out, record);
    out.push_str("</div>\n<h2>Alarms during the bake</h2>\n");
    alarms_panel(&mut out, record, x);
    out.push_str("</body></html>\n");
    out
}

/// The bake's time axis, in minutes: from 0 to the planned bake or the last look.
fn x_scale(record: &BakeRecord) -> Scale {
    let last = record.looks.last().map_or(0.0, |l| l.t);
    Scale::linear(0.0, min(last.max(record.start.bake_s as f64).max(60.0)))
}

/// The judge's `t` (seconds) on the time axis.
fn min(t: f64) -> f64 {
    t / 60.0
}

fn minutes(v: f64) -> String {
    tick_label(v, false)
}

fn ratio(v: f64) -> String {
    format!("{}x", tick_label(v, false))
}

fn open_svg(out: &mut String, id: &str, class: &str, w: f64, h: f64, title: &str) {
    let _ = write!(
        out,
        r#"<svg id="{}" class="panel {class}" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}"><text x="10" y="20" class="title">{}</text>"#,
        esc(id),
        n(w),
        n(h),
        n(w),
        n(h),
        esc(title),
        esc(title)
    );
}

/// `metric-<name>` with anything but letters, digits, `-` and `_` as `-`.
pub fn metric_panel_id(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("metric-{slug}")
}

/// The looks the judge was fed.
fn fed(record: &BakeRecord) -> impl Iterator<Item = &Look> {
    record.looks.iter().filter(|l| l.window.is_some())
}

/// A group's value for one interval: its error rate (%) or its latency (mean of the
/// samples, or the one aggregate), ms.
fn interval_value(kind: Kind, g: &crate::record::GroupLook) -> Option<f64> {
    match kind {
        Kind::Count => (g.requests > 0).then(|| 100.0 * g.errors as f64 / g.requests as f64),
        Kind::Continuous => (!g.latency_ms.is_empty())
            .then(|| g.latency_ms.iter().sum::<f64>() / g.latency_ms.len() as f64),
    }
}

/// A metric's running ratio at a look: (minutes, estimate, lower, upper).
type Running = (f64, Option<f64>, Option<f64>, Option<f64>);

fn metric_panel(out: &mut String, record: &BakeRecord, spec: &MetricSpec, x: Scale) {
    let (w, h) = (590.0, 376.0);
    let last = record.looks.last().and_then(|l| l.metric(&spec.name));
    let status = last.map_or("no data", |m| m.status.as_str());
    let title = format!(
        "{} ({}{}): {status}",
        spec.name,
        match spec.kind {
            Kind::Count => "error rate",
            Kind::Continuous => "latency",
        },
        if spec.critical { ", critical" } else { "" }
    );
    let id = metric_panel_id(&spec.name);
    open_svg(out, &id, "metric", w, h, &title);

    // Top: each interval's value per group.
    let pts = |canary: bool| -> Vec<(f64, f64)> {
        fed(record)
            .filter_map(|l| {
                let g = if canary {
                    &l.groups.canary
                } else {
                    &l.groups.baseline
                };
                interval_value(spec.kind, g).map(|v| (min(l.t), v))
            })
            .collect()
    };
    let (base, can) = (pts(false), pts(true));
    let ymax = base.iter().chain(&can).map(|p| p.1).fold(0.0f64, f64::max);
    let top = Plot {
        left: 64.0,
        top: 48.0,
        width: w - 84.0,
        height: 120.0,
        x,
        y: Scale::linear(0.0, if ymax > 0.0 { ymax * 1.15 } else { 1.0 }),
    };
    let ylabel = match spec.kind {
        Kind::Count => "errors, % per interval",
        Kind::Continuous => "latency, ms per interval",
    };
    top.axes(out, "", ylabel, &|_| String::new(), &|v| {
        tick_label(v, false)
    });
    top.line(out, &base, BASELINE, None);
    top.dots(out, &base, BASELINE);
    top.line(out, &can, CANARY, None);
    top.dots(out, &can, CANARY);
    legend(
        out,
        64.0,
        40.0,
        &[("baseline", BASELINE, None), ("canary", CANARY, None)],
    );

    // Bottom: the running ratio, its bounds and the threshold.
    let series: Vec<Running> = record
        .looks
        .iter()
        .filter_map(|l| {
            let m = l.metric(&spec.name)?;
            Some((min(l.t), m.estimate, m.lower, m.upper))
        })
        .collect();
    let threshold = last.map_or(1.0 + spec.tolerance, |m| m.threshold);
    let cap = (threshold * 2.0).max(2.0);
    let hi = series
        .iter()
        .flat_map(|(_, e, lo, up)| [*e, *lo, *up])
        .flatten()
        .filter(|v| v.is_finite())
        .fold(threshold * 1.3, f64::max)
        .min(cap);
    let bottom = Plot {
        left: 64.0,
        top: 206.0,
        width: w - 84.0,
        height: 130.0,
        x,
        y: Scale::linear(0.0, hi * 1.05),
    };
    bottom.axes(
        out,
        "minutes into the bake",
        "canary / baseline",
        &minutes,
        &ratio,
    );
    let band: Vec<(f64, f64, f64)> = series
        .iter()
        .filter(|(_, _, lo, up)| lo.is_some() || up.is_some())
        .map(|(t, _, lo, up)| (*t, lo.unwrap_or(0.0), up.unwrap_or(f64::INFINITY).min(1e9)))
        .collect();
    bottom.band(out, &band, CANARY);
    let est: Vec<(f64, f64)> = series
        .iter()
        .filter_map(|(t, e, _, _)| e.map(|e| (*t, e)))
        .collect();
    bottom.line(out, &est, CANARY, None);
    bottom.hline(out, 1.0, "#888888", "");
    bottom.hline(
        out,
        threshold,
        THRESHOLD,
        &format!("a regression begins at {}", ratio(threshold)),
    );
    if let Some(t) = last.and_then(|m| m.decided_at) {
        bottom.vline(out, min(t), DECIDED, &format!("decided at {}", fmt_t(t)));
    }
    legend(
        out,
        64.0,
        198.0,
        &[
            ("estimated ratio", CANARY, None),
            ("bounds", CANARY, Some("box")),
            ("no difference (1x)", "#888888", Some("6 4")),
        ],
    );
    if series.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" class="note" text-anchor="middle">no look judged this metric yet</text>"#,
            n(w / 2.0),
            n(275.0)
        );
    }
    out.push_str("</svg>\n");
}

fn evalue_panel(out: &mut String, record: &BakeRecord, x: Scale) {
    let (w, h) = (1180.0, 380.0);
    open_svg(
        out,
        "evalue",
        "evalue",
        w,
        h,
        "E-values against the 1/α line: a metric fails when its e-value reaches it",
    );
    let limit = record
        .looks
        .iter()
        .flat_map(|l| l.metrics.iter().map(|m| m.e_threshold))
        .fold(1.0 / record.start.judge.alpha.max(1e-9), f64::max);
    let top = 10f64.powf((limit.log10() + 2.0).ceil());
    let plot = Plot {
        left: 70.0,
        top: 70.0,
        width: w - 100.0,
        height: h - 124.0,
        x,
        y: Scale::log(1e-3, top),
    };
    plot.axes(
        out,
        "minutes into the bake",
        "e-value (log scale)",
        &minutes,
        &|v| tick_label(v, true),
    );
    let mut keys: Vec<Key<'_>> = Vec::new();
    for (i, spec) in record.start.judge.metrics.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let path = |pass: bool| -> Vec<(f64, f64)> {
            record
                .looks
                .iter()
                .filter_map(|l| {
                    let m = l.metric(&spec.name)?;
                    let e = if pass { m.e_value_pass } else { m.e_value }?;
                    Some((min(l.t), e))
                })
                .collect()
        };
        plot.line(out, &path(false), color, None);
        plot.line(out, &path(true), color, Some("5 4"));
        // Where the metric decided: a dot on the path that reached 1/α.
        let last = record.looks.last().and_then(|l| l.metric(&spec.name));
        if let Some((t, m)) = last.and_then(|m| Some((m.decided_at?, m))) {
            let failed = m.status == Status::Fail;
            if let Some(at) = record.looks.iter().find(|l| l.t == t) {
                let e =
                    at.metric(&spec.name)
                        .and_then(|m| if failed { m.e_value } else { m.e_value_pass });
                if let Some(e) = e {
                    plot.marker(out, min(t), e, color);
                }
            }
        }
        keys.push((&spec.name, color, None));
    }
    plot.hline(
        out,
        limit,
        THRESHOLD,
        &format!(
            "1/α = {}: evidence needed to decide",
            tick_label(limit, false)
        ),
    );
    plot.hline(out, 1.0, "#888888", "");
    if let Some(t) = record.verdict.as_ref().and_then(|v| v.decided_at) {
        plot.vline(out, min(t), DECIDED, &format!("decided_at {}", fmt_t(t)));
    }
    if !super::is_sequential(record) {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" class="note" text-anchor="middle">the {} judge keeps no e-values: it decides at the bake's end on a p-value</text>"#,
            n(w / 2.0),
            n(h / 2.0),
            esc(&record.start.judge.method)
        );
    }
    legend(out, 70.0, 40.0, &keys);
    legend(
        out,
        70.0,
        58.0,
        &[
            (
                "solid: against no regression (fails at 1/α)",
                "#555555",
                None,
            ),
            (
                "dashed: against a regression (passes at 1/α)",
                "#555555",
                Some("5 4"),
            ),
        ],
    );
    out.push_str("</svg>\n");
}

fn share_panel(out: &mut String, record: &BakeRecord, x: Scale) {
    let (w, h) = (590.0, 320.0);
    open_svg(
        out,
        "share",
        "share",
        w,
        h,
        "The canary's share of the requests vs its configured weight",
    );
    let share: Vec<(f64, f64)> = fed(record)
        .filter_map(|l| l.canary_share.map(|s| (min(l.t), s)))
        .collect();
    let mut weight: Vec<(f64, f64)> = Vec::new();
    let mut prev_t = 0.0;
    for l in &record.looks {
        weight.push((prev_t, l.configured_weight));
        weight.push((min(l.t), l.configured_weight));
        prev_t = min(l.t);
    }
    let ymax = share
        .iter()
        .chain(&weight)
        .map(|p| p.1)
        .fold(1.0f64, f64::max);
    let plot = Plot {
        left: 64.0,
        top: 56.0,
        width: w - 84.0,
        height: h - 110.0,
        x,
        y: Scale::linear(0.0, (ymax * 1.5).min(100.0)),
    };
    plot.axes(
        out,
        "minutes into the bake",
        "canary share, %",
        &minutes,
        &|v| tick_label(v, false),
    );
    plot.line(out, &weight, "#555555", Some("6 4"));
    plot.line(out, &share, CANARY, None);
    plot.dots(out, &share, CANARY);
    legend(
        out,
        64.0,
        44.0,
        &[
            ("actual share (canary requests / all)", CANARY, None),
            ("configured weight", "#555555", Some("6 4")),
        ],
    );
    if share.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" class="note" text-anchor="middle">no requests seen yet</text>"#,
            n(w / 2.0),
            n(h / 2.0)
        );
    }
    out.push_str("</svg>\n");
}

fn latency_panel(out: &mut String, record: &BakeRecord) {
    let (w, h) = (590.0, 320.0);
    open_svg(
        out,
        "latency",
        "latency",
        w,
        h,
        "Latency distribution over the bake (ECDF)",
    );
    let mut groups = [
        ("baseline", BASELINE, latencies(record, false)),
        ("canary", CANARY, latencies(record, true)),
    ];
    for (_, _, v) in &mut groups {
        v.sort_by(f64::total_cmp);
    }
    let lo = groups
        .iter()
        .filter_map(|g| g.2.first())
        .fold(f64::INFINITY, |a, b| a.min(*b));
    let hi = groups
        .iter()
        .filter_map(|g| g.2.last())
        .fold(f64::NEG_INFINITY, |a, b| a.max(*b));
    if !lo.is_finite() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" class="note" text-anchor="middle">no latency reported</text></svg>"#,
            n(w / 2.0),
            n(h / 2.0)
        );
        out.push('\n');
        return;
    }
    let pad = ((hi - lo) * 0.05).max(1.0);
    let plot = Plot {
        left: 64.0,
        top: 56.0,
        width: w - 84.0,
        height: h - 110.0,
        x: Scale::linear((lo - pad).max(0.0), hi + pad),
        y: Scale::linear(0.0, 1.0),
    };
    plot.axes(
        out,
        "latency, ms",
        "share of values ≤ x",
        &|v| tick_label(v, false),
        &|v| tick_label(v, false),
    );
    let mut labels = Vec::new();
    for (name, color, v) in &groups {
        if v.is_empty() {
            labels.push((format!("{name}: no data"), *color));
            continue;
        }
        let len = v.len() as f64;
        let mut pts = vec![(plot.x.min, 0.0)];
        for (i, x) in v.iter().enumerate() {
            pts.push((*x, i as f64 / len));
            pts.push((*x, (i + 1) as f64 / len));
        }
        pts.push((plot.x.max, 1.0));
        plot.line(out, &pts, color, None);
        let median = v[v.len() / 2];
        labels.push((
            format!("{name}: {} values, median {median:.1} ms", v.len()),
            *color,
        ));
    }
    let keys: Vec<Key<'_>> = labels.iter().map(|(l, c)| (l.as_str(), *c, None)).collect();
    legend(out, 64.0, 44.0, &keys);
    out.push_str("</svg>\n");
}

fn alarms_panel(out: &mut String, record: &BakeRecord, x: Scale) {
    let names = &record.start.alarms_watched;
    let rows = names.len().max(1) as f64;
    let (w, h) = (1180.0, 110.0 + 26.0 * rows);
    open_svg(
        out,
        "alarms",
        "alarms",
        w,
        h,
        "Alarms watched during the bake",
    );
    let label_w = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(8, 40) as f64
        * 6.8;
    let plot = Plot {
        left: 20.0 + label_w,
        top: 56.0,
        width: w - 40.0 - label_w,
        height: 26.0 * rows,
        x,
        y: Scale::linear(0.0, rows),
    };
    plot.axes(out, "minutes into the bake", "", &minutes, &|_| {
        String::new()
    });
    if names.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" class="note">no alarms watched</text>"#,
            n(plot.left + 10.0),
            n(plot.top + 18.0)
        );
    }
    for (row, name) in names.iter().enumerate() {
        let y = plot.top + 26.0 * row as f64;
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" class="legend" text-anchor="end">{}</text>"#,
            n(plot.left - 6.0),
            n(y + 17.0),
            esc(name)
        );
        let mut prev = 0.0;
        for l in &record.looks {
            let color = match l.alarms.iter().find(|a| &a.name == name) {
                Some(a) if a.firing() => "#c62828",
                Some(a) if a.state == "OK" => "#66bb6a",
                Some(_) => "#bdbdbd",
                None => "#ffffff",
            };
            let (x0, x1) = (plot.px(prev), plot.px(min(l.t)));
            let _ = write!(
                out,
                r#"<rect x="{}" y="{}" width="{}" height="20" fill="{color}"/>"#,
                n(x0),
                n(y + 3.0),
                n((x1 - x0).max(1.0))
            );
            prev = min(l.t);
        }
    }
    legend(
        out,
        plot.left,
        44.0,
        &[
            ("OK", "#66bb6a", Some("box")),
            ("ALARM", "#c62828", Some("box")),
            ("INSUFFICIENT_DATA", "#bdbdbd", Some("box")),
        ],
    );
    if let Some(v) = record
        .verdict
        .as_ref()
        .filter(|v| v.outcome == Outcome::Aborted)
    {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" class="ref" fill="{THRESHOLD}">{}</text>"#,
            n(plot.left + 300.0),
            n(44.0),
            esc(&format!("the bake stopped: {}", v.reason))
        );
    }
    out.push_str("</svg>\n");
}

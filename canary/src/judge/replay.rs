//! Replaying an exported stream of intervals (JSON lines) through the judge, as if live.

use super::{Interval, Judge, JudgeConfig, JudgeError, Report};

/// A line of the input that is not an interval.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// Parses JSON lines, one interval per line; blank lines are skipped.
pub fn parse_intervals(text: &str) -> Result<Vec<Interval>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let interval: Interval = serde_json::from_str(line).map_err(|e| {
            // serde_json appends " at line 1 column N": within one line, the column is enough.
            let text = e.to_string();
            let text = text.rfind(" at line ").map_or(&text[..], |at| &text[..at]);
            ParseError {
                line: i + 1,
                message: format!("{text} (column {})", e.column()),
            }
        })?;
        interval.check().map_err(|e| ParseError {
            line: i + 1,
            message: match e {
                JudgeError::Interval { message, .. } => message,
                other => other.to_string(),
            },
        })?;
        out.push(interval);
    }
    Ok(out)
}

/// Feeds the intervals in `t` order, asking for a verdict after each `t`, and returns the
/// report at the first interval where the judge decides, or at the last one (the bake end).
pub fn replay(config: &JudgeConfig, intervals: &[Interval]) -> Result<Report, JudgeError> {
    let mut judge = Judge::new(config)?;
    let mut sorted: Vec<&Interval> = intervals.iter().collect();
    sorted.sort_by(|a, b| a.t.total_cmp(&b.t));
    let mut i = 0;
    while i < sorted.len() {
        let t = sorted[i].t;
        while i < sorted.len() && sorted[i].t == t {
            judge.observe(sorted[i])?;
            i += 1;
        }
        let at_end = i == sorted.len();
        if judge.verdict(at_end).is_some() {
            return Ok(judge.report(at_end));
        }
    }
    Ok(judge.report(true))
}

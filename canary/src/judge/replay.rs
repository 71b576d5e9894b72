//! Replaying an exported stream of intervals (JSON lines) through the judge, as if live.
//!
//! The stream is read a line at a time and judged an interval at a time, so memory does not
//! grow with the stream: the judge holds one interval, and the replay stops reading at the
//! interval where the judge decides (having read one line of the next, which tells it the
//! interval is whole).

use std::io::BufRead;

use super::{Interval, Judge, JudgeConfig, JudgeError, Report};

/// A line of the input that is not an interval, or that comes out of `t` order.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// Why a replay stopped without a report.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Config(#[from] JudgeError),
    #[error(transparent)]
    Line(#[from] ParseError),
    #[error("cannot read the input: {0}")]
    Read(#[from] std::io::Error),
}

/// Parses one line of the input: an interval, or `None` for a blank line.
pub fn parse_line(line: usize, text: &str) -> Result<Option<Interval>, ParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let interval: Interval = serde_json::from_str(text).map_err(|e| {
        // serde_json appends " at line 1 column N": within one line, the column is enough.
        let message = e.to_string();
        let message = message
            .rfind(" at line ")
            .map_or(&message[..], |at| &message[..at]);
        ParseError {
            line,
            message: format!("{message} (column {})", e.column()),
        }
    })?;
    interval.check().map_err(|e| ParseError {
        line,
        message: match e {
            JudgeError::Interval { message, .. } => message,
            other => other.to_string(),
        },
    })?;
    Ok(Some(interval))
}

/// Reads JSON lines, one interval per line (blank lines skipped), in `t` order (several lines
/// may share a `t`: both groups, or parts of one), and feeds them to the judge, asking for a
/// verdict as each `t` is complete. Returns the report at the first interval where the judge
/// decides, or at the last one (the bake end).
pub fn replay(config: &JudgeConfig, input: impl BufRead) -> Result<Report, ReplayError> {
    let mut judge = Judge::new(config)?;
    let mut current: Option<f64> = None;
    let mut text = String::new();
    let mut input = input;
    let mut line = 0;
    loop {
        text.clear();
        if input.read_line(&mut text)? == 0 {
            break;
        }
        line += 1;
        let Some(interval) = parse_line(line, &text)? else {
            continue;
        };
        if let Some(t) = current {
            if interval.t < t {
                return Err(ParseError {
                    line,
                    message: format!(
                        "t={} comes after t={t}: the lines must be in t order",
                        interval.t
                    ),
                }
                .into());
            }
            // The interval at `t` is whole: judge it before reading on.
            if interval.t > t && judge.verdict(false).is_some() {
                return Ok(judge.report(false));
            }
        }
        current = Some(interval.t);
        judge.observe(&interval).map_err(|e| ParseError {
            line,
            message: e.to_string(),
        })?;
    }
    judge.verdict(true);
    Ok(judge.report(true))
}

//! Plain text for a terminal: the verdict in words, where every metric ended, and the bake
//! look by look.

use super::{facts, headline, summary_table, timeline_table, verdict_words, Table};
use crate::record::BakeRecord;

pub fn render(record: &BakeRecord) -> String {
    let s = &record.start;
    let mut out = format!(
        "canary bake of {} ({}): {}\n",
        s.service,
        s.environment,
        headline(record)
    );
    for (label, value) in facts(record) {
        out.push_str(&format!("{label:<13}{value}\n"));
    }
    out.push('\n');
    for sentence in verdict_words(record) {
        out.push_str(&sentence);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&pad(&summary_table(record)));
    out.push('\n');
    out.push_str(&pad(&timeline_table(record)));
    out
}

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
fn pad(table: &Table) -> String {
    let width = |i: usize| {
        table
            .rows
            .iter()
            .map(|r| r[i].chars().count())
            .chain([table.headers[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..table.headers.len()).map(width).collect();
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            l.push_str(c);
            if i + 1 < cells.len() {
                let fill = widths[i] - c.chars().count() + 2;
                l.push_str(&" ".repeat(fill));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    let mut out = line(&table.headers);
    for r in &table.rows {
        out.push_str(&line(r));
    }
    out
}

//! Markdown for a pull request or issue comment and for `GITHUB_STEP_SUMMARY`: the verdict in
//! words and where every metric ended, then the bake look by look in a folded table.

use super::{facts, headline, summary_table, timeline_table, verdict_words, Table};
use crate::record::BakeRecord;

pub fn render(record: &BakeRecord) -> String {
    let s = &record.start;
    let mut out = format!(
        "### Canary bake of `{}` ({}): **{}**\n\n",
        cell(&s.service),
        cell(&s.environment),
        headline(record)
    );
    for sentence in verdict_words(record) {
        out.push_str(&format!("{}\n\n", cell(&sentence)));
    }
    out.push_str(&table(&summary_table(record)));
    out.push('\n');
    out.push_str("| run | |\n|---|---|\n");
    for (label, value) in facts(record) {
        out.push_str(&format!("| {label} | {} |\n", cell(&value)));
    }
    out.push_str(&format!(
        "\n<details><summary>The bake look by look ({} looks)</summary>\n\n",
        record.looks.len()
    ));
    out.push_str(&table(&timeline_table(record)));
    out.push_str("\n</details>\n");
    out
}

fn table(t: &Table) -> String {
    let row = |cells: &[String]| {
        format!(
            "| {} |\n",
            cells
                .iter()
                .map(|c| cell(c))
                .collect::<Vec<_>>()
                .join(" | ")
        )
    };
    let mut out = row(&t.headers);
    out.push_str(&format!("|{}\n", "---|".repeat(t.headers.len())));
    for r in &t.rows {
        out.push_str(&row(r));
    }
    out
}

/// Text that cannot break a table or start markup: pipes, angle brackets, newlines escaped.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', " ")
}

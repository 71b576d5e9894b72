//! The renderers of a [`TemplateDiff`]: text for people, JSON for machines, markdown for pull
//! requests and `GITHUB_STEP_SUMMARY`.

use std::fmt::Write;

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use super::{
    display, Action, Change, ChangeAction, EntryDiff, FlagKind, Replacement, TemplateDiff,
};

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn add(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn remove(&self, t: &str) -> String {
        self.paint("31", t)
    }
    fn modify(&self, t: &str) -> String {
        self.paint("33", t)
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
}

fn marker(action: Action) -> &'static str {
    match action {
        Action::Add => "[+]",
        Action::Remove => "[-]",
        Action::Modify => "[~]",
    }
}

fn painted_marker(style: &Style, action: Action) -> String {
    let m = marker(action);
    match action {
        Action::Add => style.add(m),
        Action::Remove => style.remove(m),
        Action::Modify => style.modify(m),
    }
}

fn replacement_note(r: Replacement) -> &'static str {
    match r {
        Replacement::Never => "",
        Replacement::Conditional => " (may replace)",
        Replacement::Always => " (replaces)",
    }
}

/// The text of an `Fn::Sub`, shown as text rather than JSON.
fn sub_text(v: &Value) -> Option<&str> {
    match v.get("Fn::Sub")? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.first()?.as_str(),
        _ => None,
    }
}

/// Whether a value is long enough to show as a line diff.
fn is_long(v: &Value) -> bool {
    if let Some(s) = sub_text(v) {
        return s.contains('\n') || s.len() > 60;
    }
    match v {
        Value::String(s) => s.contains('\n') || s.len() > 60,
        Value::Object(_) | Value::Array(_) => {
            serde_json::to_string_pretty(v).is_ok_and(|s| s.lines().count() > 3)
        }
        _ => false,
    }
}

fn pretty(v: &Value) -> String {
    if let (Some(s), Some(obj)) = (sub_text(v), v.as_object()) {
        if obj.len() == 1 && v["Fn::Sub"].is_string() {
            return format!("Fn::Sub: |\n{s}");
        }
    }
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

fn change_lines(style: &Style, c: &Change, indent: &str, out: &mut String) {
    let _ = writeln!(
        out,
        "{indent}{} {}{}",
        style.modify("~"),
        c.path,
        replacement_note(c.replacement)
    );
    if let Some(reason) = &c.reason {
        let _ = writeln!(out, "{indent}    ({reason})");
    }
    value_lines(style, c, &format!("{indent}    "), out);
}

/// A change's old and new values: a line diff for long ones.
fn value_lines(style: &Style, c: &Change, indent: &str, out: &mut String) {
    let long = c.old.as_ref().is_some_and(is_long) || c.new.as_ref().is_some_and(is_long);
    if long && c.old != c.new {
        let old = c.old.as_ref().map(pretty).unwrap_or_default();
        let new = c.new.as_ref().map(pretty).unwrap_or_default();
        let diff = TextDiff::from_lines(&old, &new);
        for change in diff.iter_all_changes() {
            let text = change.value().trim_end_matches('\n');
            let line = match change.tag() {
                ChangeTag::Delete => style.remove(&format!("- {text}")),
                ChangeTag::Insert => style.add(&format!("+ {text}")),
                ChangeTag::Equal => format!("  {text}"),
            };
            let _ = writeln!(out, "{indent}{line}");
        }
        return;
    }
    if c.old == c.new {
        return;
    }
    if let Some(o) = &c.old {
        let _ = writeln!(
            out,
            "{indent}{}",
            style.remove(&format!("- {}", display(o)))
        );
    }
    if let Some(n) = &c.new {
        let _ = writeln!(out, "{indent}{}", style.add(&format!("+ {}", display(n))));
    }
}

fn entry_section(style: &Style, title: &str, entries: &[EntryDiff], out: &mut String) {
    if entries.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", style.bold(title));
    for e in entries {
        let _ = writeln!(out, "{} {}", painted_marker(style, e.action), e.name);
        for c in &e.changes {
            if e.action != Action::Modify && c.path == e.name {
                // Added or removed as a whole: its value, right under its name.
                value_lines(style, c, "    ", out);
            } else {
                change_lines(style, c, "    ", out);
            }
        }
    }
    out.push('\n');
}

/// The security tables, as rows of cells: a header, then one row per statement or rule added
/// (`+`) or removed (`-`).
fn security_tables(diff: &TemplateDiff) -> Vec<(&'static str, Vec<Vec<String>>)> {
    let sign = |a: ChangeAction| match a {
        ChangeAction::Add => "+".to_string(),
        ChangeAction::Remove => "-".to_string(),
    };
    let mut tables = Vec::new();
    let statements = &diff.security.statements;
    if !statements.is_empty() {
        let mut rows = vec![vec![
            String::new(),
            "Resource".into(),
            "Effect".into(),
            "Action".into(),
            "Principal".into(),
            "Condition".into(),
        ]];
        for s in statements {
            // A statement without `Resource` (a trust or resource policy) is about the
            // resource that holds it.
            let resources = if s.resources.is_empty() {
                "(itself)".to_string()
            } else {
                s.resources.join(", ")
            };
            rows.push(vec![
                sign(s.action),
                format!("{}: {resources}", s.logical_id),
                s.effect.clone(),
                s.actions.join(", "),
                s.principals.join(", "),
                s.condition.clone().unwrap_or_default(),
            ]);
        }
        tables.push(("IAM statement changes", rows));
    }
    let rules = &diff.security.rules;
    if !rules.is_empty() {
        let mut rows = vec![vec![
            String::new(),
            "Group".into(),
            "Dir".into(),
            "Protocol".into(),
            "Peer".into(),
        ]];
        for r in rules {
            rows.push(vec![
                sign(r.action),
                r.group.clone(),
                if r.direction == "ingress" {
                    "In".into()
                } else {
                    "Out".into()
                },
                r.protocol.clone(),
                r.peer.clone(),
            ]);
        }
        tables.push(("Security group changes", rows));
    }
    tables
}

/// Text for a terminal or a log. `color` adds ANSI colours.
pub fn render_text(diff: &TemplateDiff, title: Option<&str>, color: bool) -> String {
    let style = Style { color };
    let mut out = String::new();
    if let Some(t) = title {
        let _ = writeln!(out, "{}\n", style.bold(t));
    }
    if !diff.has_changes {
        out.push_str("No changes.\n");
        return out;
    }
    if !diff.resources.is_empty() {
        let _ = writeln!(out, "{}", style.bold("Resources"));
        for r in &diff.resources {
            let mut head = format!(
                "{} {} {}",
                painted_marker(&style, r.action),
                r.resource_type,
                r.logical_id
            );
            match r.action {
                Action::Modify if r.replacement == Replacement::Always => {
                    head.push_str(&style.remove(" — replaced"))
                }
                Action::Modify if r.replacement == Replacement::Conditional => {
                    head.push_str(&style.modify(" — may be replaced"))
                }
                Action::Remove => {
                    if let Some(p) = &r.deletion_policy {
                        head.push_str(&format!(" (DeletionPolicy {p})"));
                    }
                }
                _ => {}
            }
            let _ = writeln!(out, "{head}");
            for c in &r.changes {
                change_lines(&style, c, "    ", &mut out);
            }
        }
        out.push('\n');
    }
    entry_section(&style, "Parameters", &diff.parameters, &mut out);
    entry_section(&style, "Mappings", &diff.mappings, &mut out);
    entry_section(&style, "Conditions", &diff.conditions, &mut out);
    entry_section(&style, "Outputs", &diff.outputs, &mut out);
    entry_section(&style, "Other", &diff.other, &mut out);
    let tables = security_tables(diff);
    let broadening: Vec<_> = diff.resources.iter().flat_map(|r| &r.broadening).collect();
    if !tables.is_empty() || !broadening.is_empty() {
        let _ = writeln!(out, "{}", style.bold("Security"));
        for (title, rows) in &tables {
            let _ = writeln!(out, "{title}");
            let widths: Vec<usize> = (0..rows[0].len())
                .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
                .collect();
            for row in rows {
                let cells: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                let line = cells.join(" │ ").trim_end().to_string();
                let line = match row[0].as_str() {
                    "+" => style.add(&line),
                    "-" => style.remove(&line),
                    _ => line,
                };
                let _ = writeln!(out, "  {line}");
            }
        }
        if !broadening.is_empty() {
            let _ = writeln!(out, "Broadening");
            for b in broadening {
                let _ = writeln!(out, " {} {}", style.remove("▲"), b.message);
            }
        }
        out.push('\n');
    }
    let flags: Vec<_> = diff.all_flags().collect();
    if !flags.is_empty() {
        let _ = writeln!(out, "{}", style.bold("Warnings"));
        for (_, f) in flags {
            let _ = writeln!(out, " {} {}", style.remove("!"), f.message);
        }
        out.push('\n');
    }
    let s = diff.summary;
    let _ = write!(
        out,
        "Resources: {} to add, {} to change ({} replaced), {} to remove.",
        s.add, s.modify, s.replace, s.remove
    );
    if s.broadening > 0 {
        let _ = write!(out, " Access broadened: {}.", s.broadening);
    }
    out.push('\n');
    out
}

/// The documented JSON contract (see the module docs), pretty-printed.
pub fn render_json(diff: &TemplateDiff) -> String {
    let mut s = serde_json::to_string_pretty(diff).expect("a diff always serializes");
    s.push('\n');
    s
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown for a pull request or `GITHUB_STEP_SUMMARY`.
pub fn render_markdown(diff: &TemplateDiff, title: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### {}\n", title.unwrap_or("Template diff"));
    if !diff.has_changes {
        out.push_str("No changes.\n\n");
        return out;
    }
    let s = diff.summary;
    let _ = writeln!(
        out,
        "**{} to add, {} to change ({} replaced), {} to remove.**\n",
        s.add, s.modify, s.replace, s.remove
    );
    let broadening: Vec<_> = diff.resources.iter().flat_map(|r| &r.broadening).collect();
    if !broadening.is_empty() {
        let _ = writeln!(out, "**Access broadened**\n");
        for b in broadening {
            let _ = writeln!(out, "- 🔓 {}", md_escape(&b.message));
        }
        out.push('\n');
    }
    for (title, rows) in security_tables(diff) {
        let _ = writeln!(out, "**{title}**\n");
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(j, c)| match (i, j) {
                    (0, _) | (_, 0) => md_escape(c),
                    _ if c.is_empty() => String::new(),
                    _ => format!("`{}`", md_escape(c).replace('`', "'")),
                })
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
            if i == 0 {
                let _ = writeln!(out, "|{}", "---|".repeat(row.len()));
            }
        }
        out.push('\n');
    }
    let flags: Vec<_> = diff.all_flags().collect();
    if !flags.is_empty() {
        for (_, f) in &flags {
            let icon = match f.kind {
                FlagKind::StatefulRemoval | FlagKind::StatefulReplacement => "🛑",
                FlagKind::NamedReplacement | FlagKind::ExportRemoved => "⛔",
                FlagKind::SecurityChange => "🔐",
            };
            let _ = writeln!(out, "- {icon} {}", md_escape(&f.message));
        }
        out.push('\n');
    }
    if !diff.resources.is_empty() {
        out.push_str("| | Logical ID | Type | Replacement | Changed |\n|---|---|---|---|---|\n");
        for r in &diff.resources {
            let paths: Vec<String> = r
                .changes
                .iter()
                .map(|c| format!("`{}`{}", c.path, replacement_note(c.replacement)))
                .collect();
            let _ = writeln!(
                out,
                "| {} | `{}` | `{}` | {} | {} |",
                marker(r.action),
                r.logical_id,
                r.resource_type,
                match r.action {
                    Action::Modify => format!("{:?}", r.replacement).to_lowercase(),
                    _ => String::new(),
                },
                md_escape(&paths.join(", "))
            );
        }
        out.push('\n');
    }
    for (name, entries) in [
        ("Parameters", &diff.parameters),
        ("Mappings", &diff.mappings),
        ("Conditions", &diff.conditions),
        ("Outputs", &diff.outputs),
        ("Other", &diff.other),
    ] {
        if entries.is_empty() {
            continue;
        }
        let _ = writeln!(out, "**{name}**\n");
        for e in entries.iter() {
            // An entry added or removed is its one change: no path to list.
            let paths: Vec<String> = e
                .changes
                .iter()
                .filter(|c| e.action == Action::Modify || c.path != e.name)
                .map(|c| format!("`{}`", c.path))
                .collect();
            let _ = write!(out, "- {} `{}`", marker(e.action), e.name);
            if !paths.is_empty() {
                let _ = write!(out, " {}", md_escape(&paths.join(", ")));
            }
            out.push('\n');
        }
        out.push('\n');
    }
    // Every value, old and new, as the text report gives them, folded away.
    let text = render_text(diff, None, false);
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let _ = writeln!(
        out,
        "<details><summary>Values</summary>\n\n{fence}text\n{}{fence}\n\n</details>",
        text
    );
    out
}

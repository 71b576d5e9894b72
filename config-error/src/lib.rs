//! Where a `toml` deserialization error lies in the text of `gatekeeper.toml`: its line, its
//! column and the dotted key at fault.
//!
//! Every crate that reads its own view of `gatekeeper.toml` reports a bad file the same way,
//! `<file>:<line>:<col>: <dotted.key>: <message>`:
//!
//! - a key of the wrong type or an unknown key is named from the table header above it and
//!   the key written on its line (`queues.max_receive_count`);
//! - a missing field is named from the table that lacks it and the field (`queues.name`,
//!   located at the table's header), or the field alone at the top level (`environment`,
//!   located at 1:1).

/// A deserialization error located in the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// Dotted path of the key at fault, when known (`queues.name`).
    pub key: Option<String>,
    /// The deserializer's own message, trimmed.
    pub message: String,
}

impl Located {
    /// `<key>: <message>`, or the message alone when the key is not known.
    pub fn keyed_message(&self) -> String {
        match &self.key {
            Some(key) => format!("{key}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Locates `error`, raised while deserializing `text`.
pub fn locate(text: &str, error: &toml::de::Error) -> Located {
    let span = error.span();
    let (line, column) = span.as_ref().map_or((1, 1), |s| line_col(text, s.start));
    let message = error.message().trim().to_string();
    let key = match missing_field(&message) {
        // The error's span is the table that lacks the field (the whole document, or nothing,
        // for a top-level one): the key is that table's path and the field.
        Some(field) => Some(
            match span
                .as_ref()
                .filter(|s| s.end > 0)
                .and_then(|s| table_at(text, s.start))
            {
                Some(table) => format!("{table}.{field}"),
                None => field.to_string(),
            },
        ),
        None => span.as_ref().and_then(|s| key_at(text, s.start)),
    };
    Located {
        line,
        column,
        key,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset into `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

/// `offset`, clamped to `text` and moved back to the start of the character it falls in.
fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The field a deserializer reports missing (``missing field `name` ``).
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| field)
}

/// The path of the table header on or above the line of `offset` (`queues` for `[[queues]]`).
fn table_at(text: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(text, offset);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    last_header(&text[..line_end])
}

/// The path of the last table header in `text`.
fn last_header(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
}

/// The dotted key written on the line of `offset` (`queues.max_receive_count`), from the
/// nearest table header above it and the key before `=`; on a header line, that header.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = floor_char_boundary(text, offset);
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let table = last_header(&text[..line_start]);
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) if line.trim_start().starts_with('[') => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        service: String,
        environment: String,
        #[serde(default)]
        queues: Vec<Queue>,
        #[serde(default)]
        canary: Option<Canary>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Queue {
        name: String,
        #[serde(default)]
        max_receive_count: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Canary {
        #[serde(default)]
        canary_weight: u8,
        deployer: Deployer,
        check: Option<Check>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Deployer {
        command: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Check {
        old: String,
        new: String,
    }

    fn located(text: &str) -> Located {
        let error = toml::from_str::<Doc>(text).unwrap_err();
        locate(text, &error)
    }

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 8), (2, 3));
        assert_eq!(line_col(text, 999), (3, 1), "clamped to the end");
    }

    #[test]
    fn line_col_counts_characters() {
        let text = "a = \"é\" x";
        assert_eq!(line_col(text, 8), (1, 8));
        // An offset inside a character falls back to its start.
        assert_eq!(line_col(text, 6), (1, 6));
    }

    #[test]
    fn a_wrong_type_names_the_key_on_its_line() {
        let l = located("service = \"photos\"\nenvironment = \"prod\"\n\n[[queues]]\nname = \"q\"\nmax_receive_count = \"five\"\n");
        assert_eq!(l.key.as_deref(), Some("queues.max_receive_count"));
        assert_eq!((l.line, l.column), (6, 21));
        assert!(
            l.keyed_message()
                .starts_with("queues.max_receive_count: invalid type"),
            "{l:?}"
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_table() {
        let l = located("service = \"photos\"\nenvironment = \"prod\"\n\n[canary]\ncanary_wieght = 5\n\n[canary.deployer]\ncommand = [\"d\"]\n");
        assert_eq!(l.key.as_deref(), Some("canary.canary_wieght"), "{l:?}");
        assert_eq!((l.line, l.column), (5, 1));
        assert!(
            l.message.starts_with("unknown field `canary_wieght`"),
            "{l:?}"
        );
    }

    #[test]
    fn a_top_level_missing_field_is_named_alone_at_the_start() {
        for (text, field) in [
            (
                "# photos\nservice = \"photos\"\n\n[[queues]]\nname = \"q\"\n",
                "environment",
            ),
            ("service = \"photos\"\n", "environment"),
            // Not named after the table the file starts with.
            ("[[queues]]\nname = \"q\"\n", "service"),
        ] {
            let l = located(text);
            assert_eq!(l.key.as_deref(), Some(field), "{text}: {l:?}");
            assert_eq!((l.line, l.column), (1, 1), "{text}: {l:?}");
            assert_eq!(
                l.keyed_message(),
                format!("{field}: missing field `{field}`"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_missing_field_is_named_with_its_table() {
        let l = located("service = \"photos\"\nenvironment = \"prod\"\n\n[[queues]]\nname = \"a\"\n\n[[queues]]\nmax_receive_count = 3\n");
        assert_eq!(l.key.as_deref(), Some("queues.name"), "{l:?}");
        assert_eq!((l.line, l.column), (7, 1), "at the table's header: {l:?}");
        assert_eq!(l.keyed_message(), "queues.name: missing field `name`");
    }

    #[test]
    fn a_missing_field_of_a_nested_table_is_named_with_its_path() {
        let text = "service = \"photos\"\nenvironment = \"prod\"\n\n[canary]\ncanary_weight = 5\n\n[canary.deployer]\ncommand = [\"d\"]\n\n[canary.check]\nold = \"a\"\n";
        let l = located(text);
        assert_eq!(l.key.as_deref(), Some("canary.check.new"), "{l:?}");
        assert_eq!((l.line, l.column), (10, 1), "{l:?}");
        assert_eq!(l.keyed_message(), "canary.check.new: missing field `new`");
        // A table without its required sub-table.
        let l = located(
            "service = \"photos\"\nenvironment = \"prod\"\n\n[canary]\ncanary_weight = 5\n",
        );
        assert_eq!(l.key.as_deref(), Some("canary.deployer"), "{l:?}");
        assert_eq!((l.line, l.column), (4, 1), "{l:?}");
    }

    #[test]
    fn a_syntax_error_is_located() {
        let text = "service = \"photos\"\nenvironment = \n";
        let error = toml::from_str::<Doc>(text).unwrap_err();
        let l = locate(text, &error);
        assert_eq!(l.line, 2, "{l:?}");
        assert_eq!(l.key.as_deref(), Some("environment"), "{l:?}");
    }

    #[test]
    fn the_key_is_unknown_without_a_span() {
        let l = Located {
            line: 1,
            column: 1,
            key: None,
            message: "bad".to_string(),
        };
        assert_eq!(l.keyed_message(), "bad");
    }
}

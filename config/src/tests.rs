use std::path::Path;

use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Doc {
    service: String,
    environment: String,
    #[serde(default)]
    queues: Vec<Queue>,
    #[serde(default)]
    buckets: Option<Buckets>,
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
struct Buckets {
    #[serde(default)]
    noncurrent_version_days: u32,
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

fn document(text: &str) -> Document {
    Document::parse(Path::new("g.toml"), text).unwrap()
}

fn located(text: &str) -> Error {
    document(text).view::<Doc>().unwrap_err()
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
fn a_wrong_type_names_the_key_by_its_path() {
    let e = located("service = \"photos\"\nenvironment = \"prod\"\n\n[[queues]]\nname = \"q\"\nmax_receive_count = \"five\"\n");
    assert_eq!(e.key.as_deref(), Some("queues[0].max_receive_count"));
    assert_eq!((e.line, e.column), (6, 21));
    assert!(
        e.to_string()
            .starts_with("g.toml:6:21: queues[0].max_receive_count: invalid type"),
        "{e}"
    );
}

#[test]
fn a_comment_after_a_header_is_not_part_of_the_key() {
    let e = located("service = \"photos\"\nenvironment = \"prod\"\n\n[buckets] # the buckets\nnoncurrent_version_days = \"x\"\n");
    assert_eq!(
        e.key.as_deref(),
        Some("buckets.noncurrent_version_days"),
        "{e}"
    );
    assert_eq!((e.line, e.column), (5, 27), "{e}");
}

#[test]
fn a_field_missing_from_an_inline_table_names_its_index() {
    let e = located("service = \"photos\"\nenvironment = \"prod\"\nqueues = [{ name = \"a\" }, { max_receive_count = 3 }]\n");
    assert_eq!(e.key.as_deref(), Some("queues[1].name"), "{e}");
    assert_eq!(e.line, 3, "{e}");
    assert_eq!(e.keyed_message(), "queues[1].name: missing field `name`");
}

#[test]
fn an_unknown_key_is_named_with_its_table() {
    let e = located("service = \"photos\"\nenvironment = \"prod\"\n\n[canary]\ncanary_wieght = 5\n\n[canary.deployer]\ncommand = [\"d\"]\n");
    assert_eq!(e.key.as_deref(), Some("canary.canary_wieght"), "{e:?}");
    assert_eq!((e.line, e.column), (5, 1));
    assert!(
        e.message.starts_with("unknown field `canary_wieght`"),
        "{e:?}"
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
        let e = located(text);
        assert_eq!(e.key.as_deref(), Some(field), "{text}: {e:?}");
        assert_eq!((e.line, e.column), (1, 1), "{text}: {e:?}");
        assert_eq!(
            e.keyed_message(),
            format!("{field}: missing field `{field}`"),
            "{text}"
        );
    }
}

#[test]
fn a_missing_field_is_named_with_its_table() {
    let e = located("service = \"photos\"\nenvironment = \"prod\"\n\n[[queues]]\nname = \"a\"\n\n[[queues]]\nmax_receive_count = 3\n");
    assert_eq!(e.key.as_deref(), Some("queues[1].name"), "{e:?}");
    assert_eq!((e.line, e.column), (7, 1), "at the table's header: {e:?}");
    assert_eq!(e.keyed_message(), "queues[1].name: missing field `name`");
}

#[test]
fn a_missing_field_of_a_nested_table_is_named_with_its_path() {
    let text = "service = \"photos\"\nenvironment = \"prod\"\n\n[canary]\ncanary_weight = 5\n\n[canary.deployer]\ncommand = [\"d\"]\n\n[canary.check]\nold = \"a\"\n";
    let e = located(text);
    assert_eq!(e.key.as_deref(), Some("canary.check.new"), "{e:?}");
    assert_eq!((e.line, e.column), (10, 1), "{e:?}");
    assert_eq!(e.keyed_message(), "canary.check.new: missing field `new`");
    // A table without its required sub-table.
    let e =
        located("service = \"photos\"\nenvironment = \"prod\"\n\n[canary]\ncanary_weight = 5\n");
    assert_eq!(e.key.as_deref(), Some("canary.deployer"), "{e:?}");
    assert_eq!((e.line, e.column), (4, 1), "{e:?}");
}

#[test]
fn a_syntax_error_is_located() {
    let e = Document::parse(
        Path::new("g.toml"),
        "service = \"photos\"\nenvironment = \n",
    )
    .unwrap_err();
    assert_eq!(e.line, 2, "{e:?}");
    assert!(e.to_string().starts_with("g.toml:2:"), "{e}");
}

#[test]
fn an_unknown_section_is_refused_at_its_key() {
    let e = Document::parse(
        Path::new("g.toml"),
        "service = \"photos\"\nenvironment = \"prod\"\n\n[canery]\ncanary_weight = 5\n",
    )
    .unwrap_err();
    assert_eq!(e.key.as_deref(), Some("canery"), "{e:?}");
    assert_eq!((e.line, e.column), (4, 2), "{e:?}");
    assert!(e.message.starts_with("unknown section `canery`"), "{e}");
    let e = Document::parse(Path::new("g.toml"), "servce = \"photos\"\n").unwrap_err();
    assert_eq!((e.key.as_deref(), e.line, e.column), (Some("servce"), 1, 1));
}

#[test]
fn every_section_is_known() {
    let text: String = SECTIONS
        .iter()
        .map(|(name, _)| format!("{name} = 1\n"))
        .collect();
    document(&text);
}

#[test]
fn validation_errors_are_located_at_the_key_or_its_table() {
    let d =
        document("service = \"photos\"\nenvironment = \"prod\"\n\n[canary]\ncanary_weight = 500\n");
    let e = d.error_at("canary.canary_weight", "at most 100");
    assert_eq!((e.line, e.column), (5, 17), "at the value");
    assert_eq!(
        e.to_string(),
        "g.toml:5:17: canary.canary_weight: at most 100"
    );
    // Not written: its table.
    let e = d.error_at("canary.wave_size", "must be positive");
    assert_eq!((e.line, e.column), (4, 2), "{e}");
    // Nothing written: the start.
    let e = d.error_at("notify.sns_topic_arn", "bad");
    assert_eq!((e.line, e.column), (1, 1), "{e}");
    assert!(d.contains("canary.canary_weight"));
    assert!(!d.contains("canary.wave_size"));
}

#[test]
fn keys_in_arrays_of_tables_have_their_index() {
    let d = document("service = \"a\"\nenvironment = \"b\"\n[[queues]]\nname = \"x\"\n[[queues]]\nname = \"y\"\n");
    let span = d.key_span("queues[1].name").unwrap();
    assert_eq!(line_col(d.text(), span.start), (6, 1));
    assert_eq!(&d.text()[d.value_span("queues[1].name").unwrap()], "\"y\"");
}

#[test]
fn without_a_key_the_message_stands_alone() {
    let e = Error {
        file: "g.toml".into(),
        line: 1,
        column: 1,
        key: None,
        message: "bad".to_string(),
    };
    assert_eq!(e.keyed_message(), "bad");
}

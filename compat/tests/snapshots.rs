//! Reports of a few corpus cases in every output format.

#[path = "corpus.rs"]
#[allow(dead_code)]
mod corpus;

use std::path::Path;

fn snapshot(case: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(case);
    let report = corpus::run_case(&dir);
    let prefix = format!("{}/", dir.display());
    insta::with_settings!({filters => vec![(regex_escape(&prefix), "")], snapshot_suffix => case}, {
        insta::assert_snapshot!("text", report.to_text());
        insta::assert_snapshot!("json", report.to_json());
        insta::assert_snapshot!("markdown", report.to_markdown());
    });
}

fn regex_escape(s: &str) -> &'static str {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Box::leak(out.into_boxed_str())
}

#[test]
fn renamed_key() {
    snapshot("yaml-key-renamed");
}

#[test]
fn list_became_json_string() {
    snapshot("json-array-became-string");
}

#[test]
fn schema_enum_removed() {
    snapshot("schema-enum-removed-used");
}

#[test]
fn new_config_invalid_and_ignores() {
    snapshot("schema-new-config-invalid");
    snapshot("ignore-expired");
    snapshot("ignore-accepts");
}

#[test]
fn required_key_missing_from_the_old_config() {
    snapshot("schema-required-missing-in-old-config");
}

#[test]
fn double_encoded_items() {
    snapshot("yaml-double-encoded-list-items");
    snapshot("json-double-encoded-schema-rejects");
}

//! RULES.md carries the same rule table as the code.

const HEADER: &str = "# check-config rules\n\nEvery finding names one rule by a stable ID (ignore files refer to it), a level (`error` fails the gate with exit 2, `warn` is shown), and the directions it breaks: `rollback` (old code reading the new configuration) and/or `mixed_fleet` (new code reading the old configuration).\n\nWithout schemas, the structural rules judge by the values: keys removed, added or renamed, types, secret storage. With `--old-schema`/`--new-schema` (or one `--schema` for both), each code version's JSON Schema (draft 2020-12) is the judge: rollback is safe when the old schema accepts the new configuration, the mixed fleet when the new schema accepts the old configuration; schema-to-schema changes are errors when the configuration at hand is affected and warnings otherwise. Each schema's `required`, `type` and `enum` are checked against the other side's configuration: `--new-schema` against the old configuration (mixed_fleet: new code on the old configuration) and `--old-schema` against the new configuration (rollback: old code on the new configuration). A structural warning a schema confirms (it rejects the configuration at that path) is an error; a key the new schema requires and the old configuration lacks is `REQUIRED_ADDED_WITHOUT_DEFAULT`, one the old schema requires and the new configuration lacks is `KEY_REMOVED`, a type it rejects `SCHEMA_TYPE_MISMATCH` and a value outside its enum `SCHEMA_ENUM_MISMATCH`. `DEFAULT_CHANGED` is a warning: buf calls a changed default breaking, Confluent compatible, oasdiff informational; nothing fails to parse, but behaviour differs where the key is left out.\n\nExit codes: 0 compatible both ways (warnings allowed), 2 an error-level finding, 1 an error (unreadable or invalid input, the new configuration failing its own schema, an unknown rule in the ignore file, or an expired ignore).\n\n";

#[test]
fn rules_md_matches_the_rule_table() {
    let expected = format!("{HEADER}{}", compat::rules::markdown_table());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/RULES.md");
    if std::env::var_os("COMPAT_WRITE_RULES").is_some() {
        std::fs::write(path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        actual, expected,
        "RULES.md is stale: rerun with COMPAT_WRITE_RULES=1"
    );
}

#[test]
fn every_rule_id_round_trips() {
    for rule in compat::Rule::ALL {
        assert_eq!(compat::Rule::from_id(rule.id()), Some(*rule));
        assert!(!rule.rationale().is_empty());
    }
    assert_eq!(compat::Rule::from_id("NO_SUCH_RULE"), None);
}

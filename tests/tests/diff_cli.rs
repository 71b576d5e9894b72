//! `gatekeeper diff`: exit codes like `terraform plan -detailed-exitcode`, the JSON contract,
//! and located errors.

use std::path::{Path, PathBuf};
use std::process::Output;

use gatekeeper_e2e::{gatekeeper, repo_root};

fn case(name: &str, side: &str) -> PathBuf {
    let dir = repo_root().join("stacks/tests/diff_corpus").join(name);
    for ext in ["json", "yaml"] {
        let p = dir.join(format!("{side}.{ext}"));
        if p.exists() {
            return p;
        }
    }
    panic!("no {side} in {name}");
}

/// A fresh directory under the system temp dir, unique to this process and test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("gatekeeper-diff-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn diff(old: &Path, new: &Path, extra: &[&str]) -> Output {
    gatekeeper()
        .arg("diff")
        .arg(old)
        .arg(new)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn usage_errors_exit_1_never_2() {
    // 2 means "changes present" to a CI stage: a bad flag or value must not read as that.
    let old = case("03-queue-mutable-property", "old");
    let new = case("03-queue-mutable-property", "new");
    for extra in [&["--output", "xml"][..], &["--no-such-flag"][..]] {
        let out = diff(&old, &new, extra);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error"), "{extra:?}: {stderr}");
    }
    let missing = gatekeeper().arg("diff").output().unwrap();
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    let nothing = gatekeeper().output().unwrap();
    assert_eq!(nothing.status.code(), Some(1), "{nothing:?}");
    for asked in ["--help", "--version"] {
        let out = gatekeeper().arg(asked).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{asked}: {out:?}");
    }
}

#[test]
fn no_changes_exits_0() {
    let out = diff(
        &case("01-no-change", "old"),
        &case("01-no-change", "new"),
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("No changes."));
}

#[test]
fn yaml_and_json_of_the_same_template_have_no_changes() {
    let c = "29-json-vs-yaml-same-template";
    let out = diff(&case(c, "old"), &case(c, "new"), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn changes_exit_2_with_the_json_contract() {
    let c = "16-dlq-rename-propagates-to-redrive";
    let out = diff(&case(c, "old"), &case(c, "new"), &["--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    let resources = v["resources"].as_array().unwrap();
    for r in resources {
        for key in ["logical_id", "type", "action", "replacement", "changes"] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        for c in r["changes"].as_array().unwrap() {
            assert!(c.get("path").is_some());
        }
    }
    let dlq = resources.iter().find(|r| r["logical_id"] == "Dlq").unwrap();
    assert_eq!(dlq["replacement"], "always");
    assert_eq!(dlq["changes"][0]["old"], "orders-dlq");
    assert_eq!(dlq["changes"][0]["new"], "orders-dead");
}

#[test]
fn markdown_output() {
    let c = "04-queue-rename";
    let out = diff(&case(c, "old"), &case(c, "new"), &["--output", "markdown"]);
    assert_eq!(out.status.code(), Some(2));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("| [~] | `Q` | `AWS::SQS::Queue` | always |"),
        "{md}"
    );
    // The values, old and new, folded under the tables.
    let values = md.split("<details>").nth(1).expect("a Values block");
    assert!(
        values.contains("- orders\n") && values.contains("+ orders-v2\n"),
        "{md}"
    );
}

#[test]
fn ignore_path_silences_a_change() {
    let c = "03-queue-mutable-property";
    let out = diff(
        &case(c, "old"),
        &case(c, "new"),
        &["--ignore-path", "Resources.*.Properties.VisibilityTimeout"],
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn malformed_json_names_file_and_line() {
    let dir = scratch("json");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\n  \"Resources\": {\n    \"A\": \n  }\n}\n").unwrap();
    let out = diff(&bad, &case("01-no-change", "new"), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json:4"), "{err}");
}

#[test]
fn malformed_yaml_and_missing_files_are_errors() {
    let dir = scratch("yaml");
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "Resources:\n  A: [\n").unwrap();
    let out = diff(&bad, &case("01-no-change", "new"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml"));

    let out = diff(
        Path::new("/nonexistent.json"),
        &case("01-no-change", "new"),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.json"));
}

/// A role whose policy allows `action` on everything, beside `metadata` in its `Metadata`.
fn role_template(action: &str, metadata: &str) -> String {
    format!(
        r#"{{"Resources": {{"Role": {{"Type": "AWS::IAM::Role", "Metadata": {{"note": {metadata}}},
  "Properties": {{"Policies": [{{"PolicyName": "p", "PolicyDocument": {{"Statement": [
    {{"Effect": "Allow", "Action": "{action}", "Resource": "*"}}]}}}}]}}}}}}}}"#
    )
}

#[test]
fn a_value_too_deep_to_read_exits_1_naming_file_and_resource() {
    // 130 nested lists in `Metadata`: past the JSON parser's limit. Once read as null on both
    // sides, the policy widened beside it was "No changes." and exit 0.
    let dir = scratch("deep");
    let deep = format!("{}{}", "[".repeat(130), "]".repeat(130));
    let old = dir.join("old.json");
    let new = dir.join("new.json");
    let shallow = dir.join("shallow.json");
    std::fs::write(&old, role_template("sqs:SendMessage", &deep)).unwrap();
    std::fs::write(&new, role_template("*", &deep)).unwrap();
    std::fs::write(&shallow, role_template("*", "1")).unwrap();
    for (a, b, named) in [
        (&old, &new, &old),
        (&old, &shallow, &old),
        (&shallow, &new, &new),
    ] {
        let out = diff(a, b, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains(&named.display().to_string()) && stderr.contains("resource Role"),
            "{stderr}"
        );
        assert!(stderr.contains("nested deeper than"), "{stderr}");
    }
}

#[test]
fn resources_that_are_not_a_mapping_exit_1() {
    let dir = scratch("resources5");
    for (name, text) in [
        ("five.json", r#"{"Resources": 5}"#),
        ("five.yaml", "Resources: 5\n"),
    ] {
        let bad = dir.join(name);
        std::fs::write(&bad, text).unwrap();
        let out = diff(&bad, &case("01-no-change", "new"), &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains("`Resources`"),
            "{stderr}"
        );
    }
}

//! `gatekeeper check-config` through the binary: exit codes, output formats, malformed input.

use std::path::{Path, PathBuf};
use std::process::Output;

use gatekeeper_e2e::{gatekeeper, repo_root};

fn example(name: &str) -> PathBuf {
    repo_root().join("examples/config-compat").join(name)
}

fn run(args: &[&str]) -> Output {
    gatekeeper()
        .arg("check-config")
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run gatekeeper")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[test]
fn identical_configs_exit_0() {
    let old = example("old.yaml").display().to_string();
    let out = run(&["--old", &old, "--new", &old]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rollback safe, mixed fleet safe"));
}

#[test]
fn breaking_change_exits_2_with_the_json_contract() {
    let (old, new) = (example("old.yaml"), example("new.yaml"));
    let out = run(&[
        "--old",
        old.to_str().unwrap(),
        "--new",
        new.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rollback_safe"], false);
    assert_eq!(report["mixed_fleet_safe"], false);
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["JSON_STRING_TYPE_CHANGED", "KEY_RENAMED"]);
    let renamed = &report["findings"][1];
    assert_eq!(renamed["path"], "db.hostname");
    assert_eq!(
        renamed["breaks"],
        serde_json::json!(["rollback", "mixed_fleet"])
    );
    assert!(renamed["old"]["line"].as_u64().unwrap() > 0);
}

#[test]
fn ignore_file_and_schema_and_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let new = write(
        dir.path(),
        "new.yaml",
        b"service: photos\ndb:\n  host: db.internal\n  port: 5432\nallowed_origins:\n  - https://photos.example.com\n  - https://admin.example.com\nmode: safe\n",
    );
    let old = example("old.yaml");
    let out = run(&[
        "--old",
        old.to_str().unwrap(),
        "--new",
        &new,
        "--schema",
        example("schema.json").to_str().unwrap(),
        "--ignore",
        example("ignore.toml").to_str().unwrap(),
        "--output",
        "markdown",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("compatible both ways"), "{stdout}");
    // The schema requires neither name, so the rename breaks nothing it judges.
    assert!(!stdout.contains("KEY_RENAMED"), "{stdout}");
}

#[test]
fn expired_ignore_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let ignore = write(
        dir.path(),
        "ignore.toml",
        b"[[ignore]]\nrule = \"KEY_RENAMED\"\npath = \"db.hostname\"\nreason = \"r\"\nexpires = 2020-01-01\n",
    );
    let out = run(&[
        "--old",
        example("old.yaml").to_str().unwrap(),
        "--new",
        example("new.yaml").to_str().unwrap(),
        "--ignore",
        &ignore,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("expired on 2020-01-01"));
}

#[test]
fn unknown_rule_in_ignore_file_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let ignore = write(
        dir.path(),
        "ignore.yaml",
        b"ignore:\n  - rule: KEY_GONE\n    path: a\n    reason: r\n    expires: 2099-01-01\n",
    );
    let old = example("old.yaml");
    let out = run(&[
        "--old",
        old.to_str().unwrap(),
        "--new",
        old.to_str().unwrap(),
        "--ignore",
        &ignore,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ignore.yaml:2:11: unknown rule `KEY_GONE`"),
        "{stderr}"
    );
}

#[test]
fn git_revision_source() {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    };
    git(&["init", "-q"]);
    write(
        dir.path(),
        "app.toml",
        b"[db]\nurl = \"postgres://x\"\ntimeout = 5\n",
    );
    git(&["add", "app.toml"]);
    git(&["commit", "-qm", "one"]);
    write(dir.path(), "app.toml", b"[db]\nurl = \"postgres://x\"\n");
    let out = gatekeeper()
        .args([
            "check-config",
            "--old",
            "git:HEAD:app.toml",
            "--new",
            "app.toml",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("git:HEAD:app.toml:3:11: error KEY_REMOVED db.timeout"),
        "{stdout}"
    );

    let out = gatekeeper()
        .args([
            "check-config",
            "--old",
            "git:nope:app.toml",
            "--new",
            "app.toml",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("git:nope:app.toml: git show failed"));
}

fn assert_clear_error(new_name: &str, bytes: &[u8], want: &str) {
    let dir = tempfile::tempdir().unwrap();
    let old = example("old.yaml");
    let new = write(dir.path(), new_name, bytes);
    let out = run(&["--old", old.to_str().unwrap(), "--new", &new]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(want), "want {want:?} in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn truncated_yaml_exits_1_with_a_location() {
    assert_clear_error("new.yaml", b"db:\n  host: \"db.inter", "new.yaml:2:");
}

#[test]
fn duplicate_key_exits_1() {
    assert_clear_error(
        "new.json",
        b"{\"a\": 1,\n \"a\": 2}\n",
        "new.json:2:2: duplicate key `a` (first defined at",
    );
}

#[test]
fn non_utf8_exits_1() {
    assert_clear_error(
        "new.toml",
        b"a = \"\xff\"\n",
        "new.toml:1:6: not valid UTF-8",
    );
}

#[test]
fn fifty_megabytes_exits_1() {
    let line = b"key: value value value value value value value value\n";
    let big = line.repeat(50 * 1024 * 1024 / line.len() + 1);
    assert_clear_error("new.yaml", &big, "over the 10485760-byte limit");
}

#[test]
fn invalid_new_config_points_at_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let new = write(dir.path(), "new.yaml", b"service: photos\nmode: turbo\n");
    let out = run(&[
        "--old",
        example("old.yaml").to_str().unwrap(),
        "--new",
        &new,
        "--schema",
        example("schema.json").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("new.yaml:2:7: invalid: mode:"), "{stdout}");
}

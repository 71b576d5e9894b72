//! CI-friendly exits and annotations: `--exit-code-on-changes 0|2` on `diff`, `plan` and
//! `check-config`, and `check-config --annotations github`.

use std::path::{Path, PathBuf};

use gatekeeper_e2e::{gatekeeper, output, repo_root};

fn compat_example(name: &str) -> String {
    repo_root()
        .join("examples/config-compat")
        .join(name)
        .display()
        .to_string()
}

/// Two templates that differ in one property, and one identical to the first.
fn templates(dir: &Path) -> (PathBuf, PathBuf) {
    let old = dir.join("old.json");
    let new = dir.join("new.json");
    let template = |retention: u32| {
        format!(
            r#"{{"Resources": {{"Q": {{"Type": "AWS::SQS::Queue", "Properties": {{"MessageRetentionPeriod": {retention}}}}}}}}}"#
        )
    };
    std::fs::write(&old, template(60)).unwrap();
    std::fs::write(&new, template(120)).unwrap();
    (old, new)
}

fn code(args: &[&str]) -> Option<i32> {
    let mut cmd = gatekeeper();
    cmd.current_dir(repo_root()).args(args);
    let (code, _, stderr) = output(cmd);
    assert_ne!(code, Some(1), "{args:?}: {stderr}");
    code
}

#[test]
fn diff_exits_2_on_changes_unless_told_0() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = templates(dir.path());
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    assert_eq!(code(&["diff", old, new]), Some(2), "today's default");
    assert_eq!(
        code(&["diff", old, new, "--exit-code-on-changes", "2"]),
        Some(2)
    );
    assert_eq!(
        code(&["diff", old, new, "--exit-code-on-changes", "0"]),
        Some(0)
    );
    assert_eq!(
        code(&["diff", old, old, "--exit-code-on-changes", "2"]),
        Some(0),
        "no changes"
    );
}

#[test]
fn plan_exits_2_on_changes_unless_told_0() {
    // Offline, against an empty account: everything is added.
    assert_eq!(code(&["plan", "--offline"]), Some(2));
    assert_eq!(
        code(&["plan", "--offline", "--exit-code-on-changes", "0"]),
        Some(0)
    );
}

#[test]
fn check_config_exits_2_on_a_breaking_change_unless_told_0() {
    let (old, new) = (compat_example("old.yaml"), compat_example("new.yaml"));
    let args = ["check-config", "--old", &old, "--new", &new];
    assert_eq!(code(&args), Some(2));
    let mut zero = args.to_vec();
    zero.extend(["--exit-code-on-changes", "0"]);
    assert_eq!(code(&zero), Some(0));
}

#[test]
fn an_error_exits_1_whatever_the_flag_says() {
    for args in [
        &[
            "diff",
            "missing-old.json",
            "missing-new.json",
            "--exit-code-on-changes",
            "0",
        ][..],
        &[
            "check-config",
            "--old",
            "missing.yaml",
            "--new",
            "missing.yaml",
            "--exit-code-on-changes",
            "0",
        ],
    ] {
        let mut cmd = gatekeeper();
        cmd.args(args);
        assert_eq!(output(cmd).0, Some(1), "{args:?}");
    }
    // A code other than 0 and 2 is a usage error.
    let mut cmd = gatekeeper();
    cmd.args(["plan", "--offline", "--exit-code-on-changes", "1"]);
    let (code, _, stderr) = output(cmd);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--exit-code-on-changes"), "{stderr}");
}

#[test]
fn check_config_annotates_each_located_finding_for_github() {
    let (old, new) = (compat_example("old.yaml"), compat_example("new.yaml"));
    let mut cmd = gatekeeper();
    cmd.current_dir(repo_root()).args([
        "check-config",
        "--old",
        "examples/config-compat/old.yaml",
        "--new",
        "examples/config-compat/new.yaml",
        "--annotations",
        "github",
    ]);
    let (code, stdout, stderr) = output(cmd);
    assert_eq!(code, Some(2), "{stderr}");
    let annotations: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    // Each text finding with a location has its annotation, at the same place.
    let located: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("examples/config-compat/") && !l.contains(" -> "))
        .collect();
    assert!(!located.is_empty(), "{stdout}");
    assert_eq!(annotations.len(), located.len(), "{stdout}");
    for (a, text) in annotations.iter().zip(&located) {
        // `file:line:col: error RULE path: message [breaks: ...]`
        let mut parts = text.splitn(4, ':');
        let (file, line, col) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let rest = parts.next().unwrap().trim_start();
        let (level, rest) = rest.split_once(' ').unwrap();
        let (rule, message) = rest.split_once(' ').unwrap();
        let level = if level == "warn" { "warning" } else { level };
        assert_eq!(
            *a,
            format!("::{level} file={file},line={line},col={col},title={rule}::{message}"),
        );
    }
    assert!(
        annotations
            .iter()
            .any(|a| a.starts_with("::error file=examples/config-compat/new.yaml,line=")),
        "{stdout}"
    );
    // Without the flag, no annotation.
    let mut cmd = gatekeeper();
    cmd.args(["check-config", "--old", &old, "--new", &new]);
    assert!(!output(cmd).1.lines().any(|l| l.starts_with("::")));
}

#[test]
fn a_compatible_change_has_no_annotation() {
    let old = compat_example("old.yaml");
    let mut cmd = gatekeeper();
    cmd.args([
        "check-config",
        "--old",
        &old,
        "--new",
        &old,
        "--annotations",
        "github",
    ]);
    let (code, stdout, _) = output(cmd);
    assert_eq!(code, Some(0));
    assert!(!stdout.contains("::"), "{stdout}");
}

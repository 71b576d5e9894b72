//! `gatekeeper pipeline emit`: the CI configuration of the photos pipeline, checked with the
//! tools the platforms' users check theirs with (check-jsonschema's vendored schemas, zizmor),
//! offline; and the committed example kept current.

use std::path::{Path, PathBuf};
use std::process::Command;

use gatekeeper_e2e::{gatekeeper, output, repo_root, required_tool};

const PIPELINE: &str = "examples/photos/pipeline.toml";

/// `gatekeeper pipeline emit <platform> --config examples/photos/pipeline.toml`, run from the
/// repository's root as CI would: exit code, stdout, stderr.
fn emit(platform: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = gatekeeper();
    cmd.current_dir(repo_root())
        .args(["pipeline", "emit", platform, "--config", PIPELINE])
        .args(extra);
    output(cmd)
}

fn emitted(platform: &str) -> String {
    let (code, stdout, stderr) = emit(platform, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    stdout
}

/// The emitted file for `platform`, written with `--out` into a fresh directory.
fn emitted_file(platform: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, stdout, stderr) = emit(platform, &["--out", out.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let file = out.join(name);
    assert_eq!(stdout.trim(), file.display().to_string());
    (dir, file)
}

/// A command for a Python test tool that cannot reach the network: every HTTP(S) request goes
/// to a closed local port, so a tool that needed one would fail.
fn offline(tool: &Path) -> Command {
    let mut cmd = Command::new(tool);
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
    ] {
        cmd.env(var, "http://127.0.0.1:9");
    }
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    cmd.env_remove("GH_TOKEN").env_remove("GITHUB_TOKEN");
    cmd
}

fn check_jsonschema(schema: &str, file: &Path) {
    let Some(tool) = required_tool("check-jsonschema") else {
        return;
    };
    let out = offline(&tool)
        .args(["--builtin-schema", schema, "--no-cache"])
        .arg(file)
        .output()
        .expect("run check-jsonschema");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{schema}: {text}");
    assert!(text.contains("ok -- validation done"), "{text}");
}

#[test]
fn the_github_workflow_validates_against_the_vendored_schema() {
    let (_dir, file) = emitted_file("github", "gatekeeper.yml");
    check_jsonschema("vendor.github-workflows", &file);
}

#[test]
fn the_gitlab_pipeline_validates_against_the_vendored_schema() {
    let (_dir, file) = emitted_file("gitlab", ".gitlab-ci.yml");
    check_jsonschema("vendor.gitlab-ci", &file);
}

#[test]
fn the_schema_check_refuses_a_broken_workflow() {
    // The check above can fail: a job without `runs-on` is not a workflow.
    let Some(tool) = required_tool("check-jsonschema") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gatekeeper.yml");
    let broken = emitted("github").replace("    runs-on: \"ubuntu-24.04\"\n", "");
    std::fs::write(&file, broken).unwrap();
    let out = offline(&tool)
        .args(["--builtin-schema", "vendor.github-workflows", "--no-cache"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// zizmor's findings on a workflow, offline, at the pedantic persona, as JSON.
fn zizmor(file: &Path) -> Vec<serde_json::Value> {
    let Some(tool) = required_tool("zizmor") else {
        return Vec::new();
    };
    let out = offline(&tool)
        .args([
            "--offline",
            "--no-config",
            "--persona",
            "pedantic",
            "--format",
            "json",
            "--no-progress",
        ])
        .arg(file)
        .output()
        .expect("run zizmor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let findings: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "zizmor printed no JSON ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // zizmor exits 0 without findings, 10 and above with them.
    assert_eq!(out.status.success(), findings.is_empty(), "{stdout}");
    findings
}

#[test]
fn zizmor_finds_nothing_in_the_github_workflow() {
    let (_dir, file) = emitted_file("github", "gatekeeper.yml");
    let findings = zizmor(&file);
    assert!(
        findings.is_empty(),
        "{}",
        serde_json::to_string_pretty(&findings).unwrap()
    );
}

#[test]
fn zizmor_would_see_a_template_injection_and_an_unpinned_action() {
    if required_tool("zizmor").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gatekeeper.yml");
    let bad = emitted("github")
        .replacen(
            "--run \"$GATEKEEPER_RUN_ID\"",
            "--run \"${{ github.event.head_commit.message }}\"",
            1,
        )
        .replacen(
            "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
            "actions/checkout@v7",
            1,
        );
    std::fs::write(&file, bad).unwrap();
    let findings = zizmor(&file);
    let idents: Vec<&str> = findings
        .iter()
        .filter_map(|f| f["ident"].as_str())
        .collect();
    assert!(idents.contains(&"template-injection"), "{idents:?}");
    assert!(idents.contains(&"unpinned-uses"), "{idents:?}");
}

#[test]
fn emitting_twice_gives_the_same_bytes() {
    for platform in ["github", "gitlab"] {
        let first = emitted(platform);
        assert!(!first.is_empty());
        assert_eq!(first, emitted(platform), "{platform}");
    }
    // And `--out` writes exactly what is printed.
    let (_dir, file) = emitted_file("gitlab", ".gitlab-ci.yml");
    assert_eq!(std::fs::read_to_string(file).unwrap(), emitted("gitlab"));
}

#[test]
fn the_committed_examples_are_current() {
    for (platform, file) in [
        ("github", "examples/ci/github/gatekeeper.yml"),
        ("gitlab", "examples/ci/gitlab/.gitlab-ci.yml"),
    ] {
        let committed = std::fs::read_to_string(repo_root().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            committed == emitted(platform),
            "{file} is stale: run `gatekeeper pipeline emit {platform} --config {PIPELINE} --out {}` from the repository's root",
            Path::new(file).parent().unwrap().display()
        );
    }
}

#[test]
fn a_bad_pipeline_is_refused_with_its_location_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let examples = repo_root().join("examples/photos");
    for f in ["staging.toml", "prod.toml"] {
        std::fs::copy(examples.join(f), dir.path().join(f)).unwrap();
    }
    let text = std::fs::read_to_string(repo_root().join(PIPELINE))
        .unwrap()
        .replace(
            "needs = [\"prod-canary\"]",
            "needs = [\"prod-canary\", \"prod\"]",
        );
    std::fs::write(dir.path().join("pipeline.toml"), &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("\"prod-canary\", \"prod\""))
        .unwrap()
        + 1;
    let out_dir = dir.path().join("out");
    let mut cmd = gatekeeper();
    cmd.current_dir(dir.path()).args([
        "pipeline",
        "emit",
        "github",
        "--config",
        "pipeline.toml",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let (code, stdout, stderr) = output(cmd);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "pipeline.toml:{line}:25: pipeline.stages[2].needs: unknown stage \"prod\""
        )),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "nothing written");
}

//! What any command line tool is expected to do, checked on the built binary: shell
//! completions, a manual page, `-v`/`-q` and `RUST_LOG`, `--color` with `NO_COLOR` and
//! `CLICOLOR_FORCE`, a quiet exit 0 on a closed pipe, exit codes in `--help`, the commit in
//! `--version`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use gatekeeper_e2e::{gatekeeper, output, repo_root};

/// A diff with changes: its text report colours the `[~]` markers.
fn changed_templates() -> (PathBuf, PathBuf) {
    let dir = repo_root().join("stacks/tests/diff_corpus/03-queue-mutable-property");
    (dir.join("old.json"), dir.join("new.json"))
}

/// `gatekeeper <flags> diff old new` with no colour or log settings of the caller.
fn diff(flags: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let (old, new) = changed_templates();
    let mut cmd = gatekeeper();
    for var in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.args(flags).arg("diff").arg(old).arg(new);
    output(cmd)
}

const ESC: &str = "\x1b[";

#[test]
fn completions_for_bash_are_a_valid_script() {
    let (code, stdout, stderr) = output({
        let mut c = gatekeeper();
        c.args(["completions", "bash"]);
        c
    });
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("_gatekeeper()"), "{stdout}");
    for sub in ["canary", "maintenance", "completions", "--color"] {
        assert!(stdout.contains(sub), "the script completes {sub}");
    }
    // `bash -n` parses without running.
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    bash.stdin
        .take()
        .unwrap()
        .write_all(stdout.as_bytes())
        .unwrap();
    let checked = bash.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let mut c = gatekeeper();
        c.args(["completions", shell]);
        let (code, stdout, stderr) = output(c);
        assert_eq!(code, Some(0), "{shell}: {stderr}");
        assert!(stdout.contains("gatekeeper"), "{shell}");
    }
}

#[test]
fn man_renders_roff_with_every_command_and_the_exit_codes() {
    let mut c = gatekeeper();
    c.arg("man");
    let (code, stdout, stderr) = output(c);
    assert_eq!(code, Some(0), "{stderr}");
    // After roff's two-line preamble that defines the apostrophe string, the title.
    let first = stdout
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or_default();
    assert!(
        first.starts_with(".TH gatekeeper"),
        "{}",
        &stdout[..stdout.len().min(200)]
    );
    for text in ["canary", "redrive", "completions", "Exit status"] {
        assert!(stdout.contains(text), "the manual names {text}");
    }
}

#[test]
fn help_lists_the_exit_codes() {
    let mut c = gatekeeper();
    c.arg("--help");
    let (code, stdout, _) = output(c);
    assert_eq!(code, Some(0));
    let tail = stdout
        .split("Exit status:")
        .nth(1)
        .expect("--help ends with the exit statuses");
    for status in ["0  success", "1  error", "2  changes present"] {
        assert!(tail.contains(status), "{status}: {tail}");
    }
}

#[test]
fn version_names_the_commit() {
    let mut c = gatekeeper();
    c.arg("--version");
    let (code, stdout, _) = output(c);
    assert_eq!(code, Some(0));
    let version = stdout.trim();
    assert!(
        version.starts_with(concat!("gatekeeper ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        // Built from this checkout: the version names its commit.
        Some(head) if std::env::var_os("GATEKEEPER_COMMIT").is_none() => {
            assert!(
                version.ends_with(&format!("({head})")),
                "{version} vs {head}"
            )
        }
        _ => {}
    }
}

#[test]
fn verbose_logs_through_tracing_on_stderr_and_quiet_silences() {
    let (code, stdout, stderr) = diff(&["-v"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("INFO") && l.contains("gatekeeper")),
        "-v: {stderr}"
    );
    assert!(!stdout.contains("INFO"), "logs never go to standard output");

    let (_, _, stderr) = diff(&[], &[]);
    assert_eq!(stderr, "", "no log lines by default");

    let (_, _, stderr) = diff(&[], &[("RUST_LOG", "info")]);
    assert!(stderr.contains("INFO"), "RUST_LOG=info: {stderr}");

    let (_, _, stderr) = diff(&["-vv"], &[]);
    assert!(stderr.contains("INFO"), "-vv: {stderr}");

    let (_, _, stderr) = diff(&["-q"], &[("RUST_LOG", "")]);
    assert_eq!(stderr, "", "-q");

    // The flags are global: they may follow the subcommand.
    let (old, new) = changed_templates();
    let mut cmd = gatekeeper();
    cmd.env_remove("RUST_LOG")
        .arg("diff")
        .arg(old)
        .arg(new)
        .arg("-v");
    let (_, _, stderr) = output(cmd);
    assert!(stderr.contains("INFO"), "diff ... -v: {stderr}");
}

#[test]
fn color_follows_the_flag_then_no_color_then_clicolor_force() {
    let colored = |flags: &[&str], env: &[(&str, &str)]| {
        let (code, stdout, stderr) = diff(flags, env);
        assert_eq!(code, Some(2), "{flags:?} {env:?}: {stderr}");
        assert!(stdout.contains("[~]"), "{stdout}");
        stdout.contains(ESC)
    };
    // A pipe is not coloured unless asked.
    assert!(!colored(&[], &[]), "auto on a pipe");
    assert!(colored(&["--color", "always"], &[]), "--color always");
    assert!(
        colored(&["--color=always"], &[("NO_COLOR", "1")]),
        "the flag wins"
    );
    assert!(
        !colored(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]),
        "--color never"
    );
    assert!(colored(&[], &[("CLICOLOR_FORCE", "1")]), "CLICOLOR_FORCE");
    // NO_COLOR counts only when it is not empty.
    assert!(
        colored(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")]),
        "an empty NO_COLOR is not set"
    );
    assert!(
        !colored(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]),
        "NO_COLOR=1"
    );

    // Errors on standard error follow the same choice.
    let mut cmd = gatekeeper();
    cmd.env_remove("NO_COLOR").args([
        "--color",
        "always",
        "diff",
        "/nonexistent/a.json",
        "/nonexistent/b.json",
    ]);
    let (code, _, stderr) = output(cmd);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(ESC) && stderr.contains("error:"),
        "{stderr:?}"
    );
    let mut cmd = gatekeeper();
    cmd.args(["diff", "/nonexistent/a.json", "/nonexistent/b.json"]);
    let (_, _, stderr) = output(cmd);
    assert!(
        stderr.starts_with("error: ") && !stderr.contains(ESC),
        "{stderr:?}"
    );
}

#[test]
fn a_closed_pipe_exits_0_quietly() {
    // `gatekeeper synth | head -c0`: the reader is gone before the first write.
    for args in [&["synth"][..], &["completions", "bash"], &["man"]] {
        let mut child = gatekeeper()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

#[test]
fn output_accepts_only_the_formats_a_command_renders() {
    // No markdown renderer: refused by the parser (exit 1) before anything runs.
    for args in [
        &["canary", "status"][..],
        &["promote"],
        &["maintenance", "status"],
        &["redrive", "--dlq", "q"],
    ] {
        let mut c = gatekeeper();
        c.args(args).args(["--output", "markdown"]);
        let (code, stdout, stderr) = output(c);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(stderr.contains("markdown"), "{args:?}: {stderr}");
    }
    for args in [
        &["canary", "status"][..],
        &["promote"],
        &["maintenance", "status"],
    ] {
        let mut c = gatekeeper();
        c.args(args).arg("--help");
        let (_, stdout, _) = output(c);
        assert!(
            stdout.contains("[possible values: text, json]"),
            "{args:?}: {stdout}"
        );
    }
    // Markdown where it is rendered.
    let (old, new) = changed_templates();
    let mut c = gatekeeper();
    c.arg("diff")
        .arg(old)
        .arg(new)
        .args(["--output", "markdown"]);
    let (code, stdout, _) = output(c);
    assert_eq!(code, Some(2));
    assert!(stdout.contains('|'), "a markdown table: {stdout}");
}

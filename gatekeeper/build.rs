//! `gatekeeper --version` names the commit it was built from: `0.1.0 (3f2c1ab)`.
//!
//! The commit comes from `GATEKEEPER_COMMIT` when set (a build from a source archive), else from
//! `git rev-parse --short HEAD`; without either (no git, not a checkout) the version is the
//! package version alone.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=GATEKEEPER_COMMIT");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = std::env::var("GATEKEEPER_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let commit = git(&["rev-parse", "--short", "HEAD"])?;
            // Build again when HEAD moves: HEAD itself (a checkout), the branch it points at
            // (a commit), and packed-refs (a branch that is only packed).
            let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                watched.push(git(&["rev-parse", "--git-path", &branch]));
            }
            watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
            for path in watched.into_iter().flatten().map(PathBuf::from) {
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
            Some(commit)
        });
    match commit {
        Some(commit) => println!("cargo:rustc-env=GATEKEEPER_VERSION={version} ({commit})"),
        None => println!("cargo:rustc-env=GATEKEEPER_VERSION={version}"),
    }
}

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

/// Relative relocations packed (`DT_RELR`): the binary's 2 MB of relocation entries, read at
/// every start and resident from then on, become about 30 KB. Only where the host's C
/// toolchain links a program with them without a word and that program runs (GNU ld 2.38 or
/// lld, glibc 2.36), for the host itself: elsewhere the binary is linked as before.
fn pack_relative_relocs() {
    let var = |name| std::env::var(name).unwrap_or_default();
    let target = var("TARGET");
    if target != var("HOST") || !target.ends_with("-linux-gnu") {
        return;
    }
    let dir = PathBuf::from(var("OUT_DIR"));
    let (source, program) = (dir.join("relr.c"), dir.join("relr"));
    if std::fs::write(&source, "int main(void) { return 0; }\n").is_err() {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let linked = Command::new(cc)
        .arg("-Wl,-z,pack-relative-relocs")
        .arg("-o")
        .arg(&program)
        .arg(&source)
        .output()
        .is_ok_and(|o| o.status.success() && o.stderr.is_empty());
    if linked && Command::new(&program).status().is_ok_and(|s| s.success()) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    pack_relative_relocs();
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

//! The layering ARCHITECTURE.md promises, read from every `Cargo.toml` of the workspace (like
//! rust-analyzer's `xtask/src/tidy.rs`):
//! - `stacks`, `compat`, `config`, `evidence`, `pipelines`, `command-step`, and with
//!   default features off `canary`, `state` and `maintenance-flag`, have no `aws-*` dependency,
//!   directly or through another crate of the workspace;
//! - `maintenance-flag`, the crate services embed, never depends on `stacks`;
//! - every member takes the workspace's lints;
//! - release builds contain no crash points (only `gatekeeper/src/hooks.rs` reads their
//!   variables, behind the `test-hooks` feature) and keep PIE.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use gatekeeper_e2e::repo_root;
use toml::{Table, Value};

/// The crates that never talk to AWS, checked with their default features off.
const NO_AWS: &[&str] = &[
    "stacks",
    "compat",
    "config",
    "evidence",
    "pipelines",
    "command-step",
    "canary",
    "state",
    "maintenance-flag",
];

struct Manifest {
    path: String,
    doc: Table,
}

struct Workspace {
    root: Table,
    /// By package name.
    members: BTreeMap<String, Manifest>,
}

fn read(path: &Path) -> Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn workspace() -> Workspace {
    let root_dir = repo_root();
    let root = read(&root_dir.join("Cargo.toml"));
    let members = root["workspace"]["members"]
        .as_array()
        .expect("workspace.members")
        .iter()
        .map(|m| {
            let dir = m.as_str().expect("a member is a path");
            let doc = read(&root_dir.join(dir).join("Cargo.toml"));
            let name = doc["package"]["name"].as_str().unwrap().to_string();
            let path = format!("{dir}/Cargo.toml");
            (name, Manifest { path, doc })
        })
        .collect();
    Workspace { root, members }
}

/// One dependency as the member declares it, with `workspace = true` resolved.
struct Dep {
    name: String,
    optional: bool,
    default_features: bool,
    features: Vec<String>,
}

impl Workspace {
    fn dep(&self, name: &str, spec: &Value) -> Dep {
        let own = spec.as_table();
        let get = |t: Option<&Table>, key: &str| t.and_then(|t| t.get(key)).cloned();
        let inherited = own
            .and_then(|t| t.get("workspace"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .then(|| {
                self.root["workspace"]["dependencies"]
                    .get(name)
                    .unwrap_or_else(|| panic!("{name}: not in [workspace.dependencies]"))
                    .as_table()
                    .cloned()
            })
            .flatten();
        let strings = |v: Option<Value>| -> Vec<String> {
            v.and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        };
        let mut features = strings(get(inherited.as_ref(), "features"));
        features.extend(strings(get(own, "features")));
        let default_features = get(own, "default-features")
            .or_else(|| get(inherited.as_ref(), "default-features"))
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        let package = get(own, "package")
            .or_else(|| get(inherited.as_ref(), "package"))
            .and_then(|v| v.as_str().map(str::to_string));
        Dep {
            name: package.unwrap_or_else(|| name.to_string()),
            optional: get(own, "optional")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            default_features,
            features,
        }
    }

    /// The dependencies of a section (`dependencies`, `build-dependencies`, ...), the
    /// target-specific ones included.
    fn section(&self, member: &str, section: &str) -> Vec<Dep> {
        let doc = &self.members[member].doc;
        let mut tables: Vec<&Table> = doc
            .get(section)
            .and_then(Value::as_table)
            .into_iter()
            .collect();
        if let Some(targets) = doc.get("target").and_then(Value::as_table) {
            for target in targets.values() {
                tables.extend(target.get(section).and_then(Value::as_table));
            }
        }
        tables
            .into_iter()
            .flat_map(|t| t.iter().map(|(name, spec)| self.dep(name, spec)))
            .collect()
    }

    /// The features `enabled` turns on, transitively, and the optional dependencies they enable
    /// (`dep:x`, `x/feature`, or a feature named like an optional dependency).
    fn enabled(&self, member: &str, enabled: &[String]) -> (BTreeSet<String>, BTreeSet<String>) {
        let table = self.members[member]
            .doc
            .get("features")
            .and_then(Value::as_table)
            .cloned()
            .unwrap_or_default();
        let mut features = BTreeSet::new();
        let mut deps = BTreeSet::new();
        let mut todo: Vec<String> = enabled.to_vec();
        while let Some(f) = todo.pop() {
            if let Some(dep) = f.strip_prefix("dep:") {
                deps.insert(dep.to_string());
                continue;
            }
            if let Some((dep, _)) = f.split_once('/') {
                deps.insert(dep.trim_end_matches('?').to_string());
                continue;
            }
            if !features.insert(f.clone()) {
                continue;
            }
            match table.get(&f).and_then(Value::as_array) {
                Some(more) => {
                    todo.extend(more.iter().filter_map(|v| v.as_str().map(str::to_string)))
                }
                // An optional dependency is also a feature of its own name.
                None => {
                    deps.insert(f);
                }
            }
        }
        (features, deps)
    }

    /// Every package a build of `member` with `features` links, by name, with the workspace
    /// crate it came through: (package, via).
    fn normal_deps(
        &self,
        member: &str,
        features: &[String],
        via: &str,
        seen: &mut BTreeSet<(String, Vec<String>)>,
        out: &mut Vec<(String, String)>,
    ) {
        if !seen.insert((member.to_string(), features.to_vec())) {
            return;
        }
        let (_, optional_on) = self.enabled(member, features);
        for section in ["dependencies", "build-dependencies"] {
            for dep in self.section(member, section) {
                if dep.optional && !optional_on.contains(&dep.name) {
                    continue;
                }
                let path = if via.is_empty() {
                    member.to_string()
                } else {
                    format!("{via} -> {member}")
                };
                out.push((dep.name.clone(), path.clone()));
                if self.members.contains_key(&dep.name) {
                    let mut wanted = dep.features.clone();
                    if dep.default_features {
                        wanted.push("default".into());
                    }
                    self.normal_deps(&dep.name, &wanted, &path, seen, out);
                }
            }
        }
    }
}

#[test]
fn pure_crates_have_no_aws_dependency() {
    let ws = workspace();
    let mut violations = Vec::new();
    for krate in NO_AWS {
        assert!(ws.members.contains_key(*krate), "{krate} is not a member");
        let mut found = Vec::new();
        ws.normal_deps(krate, &[], "", &mut BTreeSet::new(), &mut found);
        for (dep, via) in found {
            if dep.starts_with("aws-") || dep.starts_with("aws_") {
                violations.push(format!("{krate}: {dep} (through {via})"));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "these crates never talk to AWS (ARCHITECTURE.md), yet with default features off they depend on:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn maintenance_flag_never_depends_on_stacks() {
    let ws = workspace();
    let manifest = &ws.members["maintenance-flag"];
    // Every section, optional and dev-dependencies included: services embed this crate.
    let mut named = Vec::new();
    for section in ["dependencies", "build-dependencies", "dev-dependencies"] {
        named.extend(
            ws.section("maintenance-flag", section)
                .into_iter()
                .map(|d| d.name),
        );
    }
    assert!(
        !named.iter().any(|d| d == "stacks"),
        "{}: maintenance-flag must not depend on stacks (the template engine); the flag contract lives in maintenance-flag",
        manifest.path
    );
    // Nor through another crate of the workspace, whatever its features.
    let mut found = Vec::new();
    ws.normal_deps(
        "maintenance-flag",
        &["default".into()],
        "",
        &mut BTreeSet::new(),
        &mut found,
    );
    let through: Vec<_> = found.iter().filter(|(d, _)| d == "stacks").collect();
    assert!(
        through.is_empty(),
        "maintenance-flag reaches stacks: {through:?}"
    );
}

#[test]
fn every_member_takes_the_workspace_lints() {
    let ws = workspace();
    for (name, m) in &ws.members {
        let lints = m.doc.get("lints").and_then(|l| l.get("workspace"));
        assert_eq!(
            lints.and_then(Value::as_bool),
            Some(true),
            "{} ({name}): add `[lints] workspace = true`",
            m.path
        );
    }
}

/// The crash points' environment variables, read only by `gatekeeper/src/hooks.rs`.
const HOOK_VARIABLES: &[&str] = &[
    "GATEKEEPER_CRASH_AFTER",
    "GATEKEEPER_TEST_KILL_AFTER_COPIES",
];

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A release build contains no crash point: the test hooks' variables are named, as strings,
/// in no library or binary source but `gatekeeper/src/hooks.rs`, and there only in functions
/// compiled with the `test-hooks` feature.
#[test]
fn release_builds_contain_no_test_hooks() {
    let root = repo_root();
    let ws = workspace();
    let mut offenders = Vec::new();
    // The end-to-end tests set the variables for the binary they run: they are not shipped.
    for (_, manifest) in ws
        .members
        .iter()
        .filter(|(name, _)| *name != "gatekeeper-e2e")
    {
        let dir = root
            .join(Path::new(&manifest.path).parent().unwrap())
            .join("src");
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let relative = file.strip_prefix(&root).unwrap().display().to_string();
            for var in HOOK_VARIABLES {
                if text.contains(&format!("\"{var}\"")) && relative != "gatekeeper/src/hooks.rs" {
                    offenders.push(format!("{relative} reads {var}"));
                }
            }
        }
    }
    let hooks = std::fs::read_to_string(root.join("gatekeeper/src/hooks.rs")).unwrap();
    let file = syn::parse_file(&hooks).expect("hooks.rs parses");
    for item in &file.items {
        let syn::Item::Fn(f) = item else { continue };
        let body = quote::quote!(#f).to_string();
        if !HOOK_VARIABLES
            .iter()
            .any(|v| body.contains(&format!("\"{v}\"")))
        {
            continue;
        }
        let gated = f.attrs.iter().any(|a| {
            a.path().is_ident("cfg")
                && quote::quote!(#a)
                    .to_string()
                    .replace(' ', "")
                    .contains("feature=\"test-hooks\"")
        });
        if !gated {
            offenders.push(format!(
                "gatekeeper/src/hooks.rs: fn {} reads a hook variable without #[cfg(feature = \"test-hooks\")]",
                f.sig.ident
            ));
        }
    }
    let manifest = &ws.members["gatekeeper"].doc;
    let default = manifest
        .get("features")
        .and_then(|f| f.get("default"))
        .and_then(Value::as_array)
        .map(|d| d.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .unwrap_or_default();
    if default.contains(&"test-hooks") {
        offenders.push("gatekeeper's default features include test-hooks".to_string());
    }
    assert!(
        offenders.is_empty(),
        "crash points must stay out of release builds:\n  {}",
        offenders.join("\n  ")
    );
}

/// Release builds keep PIE: nothing in the workspace's build configuration turns off
/// position-independent executables (address-space randomisation for a tool that holds
/// production credentials is worth more than the millisecond it costs at start-up).
#[test]
fn release_builds_keep_pie() {
    let root = repo_root();
    let mut sources = vec![
        root.join("Cargo.toml"),
        root.join(".ci/run"),
        root.join("scripts/test"),
        root.join("gatekeeper/build.rs"),
    ];
    for dir in [".cargo", "bench"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if let Ok(inner) = std::fs::read_dir(&path) {
                    sources.extend(inner.flatten().map(|e| e.path()));
                }
            } else {
                sources.push(path);
            }
        }
    }
    let mut offenders = Vec::new();
    for path in sources.iter().filter(|p| p.is_file()) {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for needle in ["relocation-model", "-no-pie", "no-pie"] {
            if text.contains(needle) {
                offenders.push(format!(
                    "{}: {needle}",
                    path.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(offenders.is_empty(), "PIE turned off: {offenders:?}");
}

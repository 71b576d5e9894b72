//! Every folder under `tests/corpus/` is one old/new pair with its expected verdict:
//! `old.*`, `new.*`, optional `schema.json` (both code versions) or `old.schema.json` /
//! `new.schema.json`, optional `ignore.toml`/`ignore.yaml`, and `expect.toml`:
//! `verdict` (compatible | breaking | invalid), `rollback_safe`, `mixed_fleet_safe`, and
//! `rules` (every rule the report names, any level).

use std::path::{Path, PathBuf};

use compat::{Ignores, Schema, Schemas, Verdict};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(&format!("{stem}.")) && !name.contains("schema")
        })
}

/// The report of one case, judged on a fixed date.
pub fn run_case(dir: &Path) -> compat::Report {
    let load = |stem: &str| {
        let path = find(dir, stem).unwrap_or_else(|| panic!("{}: no {stem}.*", dir.display()));
        compat::source::load_file(&path).unwrap_or_else(|e| panic!("{e}"))
    };
    let old = load("old");
    let new = load("new");
    let schema = |name: &str| {
        let p = dir.join(name);
        p.exists()
            .then(|| Schema::load(&p).unwrap_or_else(|e| panic!("{e}")))
    };
    let schemas = match schema("schema.json") {
        Some(_) => Some(Schemas {
            old: schema("schema.json"),
            new: schema("schema.json"),
        }),
        None => {
            let (o, n) = (schema("old.schema.json"), schema("new.schema.json"));
            (o.is_some() || n.is_some()).then_some(Schemas { old: o, new: n })
        }
    };
    let ignores = ["ignore.toml", "ignore.yaml"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .map(|p| Ignores::load(&p).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_default()
        .on(compat::ignore::parse_date("2026-11-22").unwrap());
    compat::check(&old, &new, schemas.as_ref(), &ignores)
}

#[derive(serde::Deserialize)]
struct Expect {
    verdict: String,
    rollback_safe: bool,
    mixed_fleet_safe: bool,
    rules: Vec<String>,
}

#[test]
fn every_corpus_case_has_its_expected_verdict() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 40, "the corpus has {} cases", dirs.len());
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let expect: Expect =
            toml::from_str(&std::fs::read_to_string(dir.join("expect.toml")).unwrap()).unwrap();
        let report = run_case(dir);
        let verdict = match report.verdict() {
            Verdict::Compatible => "compatible",
            Verdict::Breaking => "breaking",
            Verdict::Invalid => "invalid",
        };
        let mut rules: Vec<String> = report
            .findings
            .iter()
            .map(|f| f.rule.id().to_string())
            .collect();
        rules.sort();
        rules.dedup();
        let got = (
            verdict,
            report.rollback_safe,
            report.mixed_fleet_safe,
            rules.clone(),
        );
        let want = (
            expect.verdict.as_str(),
            expect.rollback_safe,
            expect.mixed_fleet_safe,
            expect.rules.clone(),
        );
        if got != want {
            failures.push(format!(
                "{name}: got {got:?}, want {want:?}\n{}",
                report.to_text()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

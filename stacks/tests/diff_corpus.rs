//! The diff corpus: every case under `tests/diff_corpus/<case>/` has an old and a new template
//! and an `expect.json` with the verdict CloudFormation's documented update behaviour gives
//! (`why` cites it). Each case is asserted, and its text report is a reviewed snapshot; a few
//! JSON and markdown reports are too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use stacks::diff::{self, DiffOptions};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff_corpus");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

fn side(case: &Path, name: &str) -> PathBuf {
    for ext in ["json", "yaml", "yml"] {
        let p = case.join(format!("{name}.{ext}"));
        if p.exists() {
            return p;
        }
    }
    panic!("{} has no {name}.json|yaml", case.display());
}

/// The case's diff as `gatekeeper diff` makes it.
fn run(case: &Path) -> diff::TemplateDiff {
    diff::diff_files(
        &side(case, "old"),
        &side(case, "new"),
        &DiffOptions::default(),
    )
    .unwrap()
    .diff
}

#[test]
fn reading_only_changed_resources_gives_the_whole_diff() {
    for case in corpus() {
        let old = diff::load_template(&side(&case, "old")).unwrap();
        let new = diff::load_template(&side(&case, "new")).unwrap();
        let whole = diff::diff_templates(&old, &new, &DiffOptions::default());
        assert_eq!(run(&case), whole, "{}", case.display());
    }
}

#[test]
fn corpus_is_large_enough_and_has_yaml() {
    let cases = corpus();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    let yaml = cases
        .iter()
        .filter(|c| side(c, "new").extension().is_some_and(|e| e == "yaml"))
        .count();
    assert!(yaml >= 3, "{yaml} YAML cases");
}

#[test]
fn every_case_gets_its_expected_verdict() {
    let mut failures = Vec::new();
    for case in corpus() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let expect: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("expect.json")).unwrap())
                .unwrap();
        let d = run(&case);
        if d.has_changes != expect["has_changes"].as_bool().unwrap() {
            failures.push(format!("{name}: has_changes = {}", d.has_changes));
        }
        let got: BTreeMap<String, (String, String)> = d
            .resources
            .iter()
            .map(|r| {
                let v = serde_json::to_value(r).unwrap();
                (
                    r.logical_id.clone(),
                    (
                        v["action"].as_str().unwrap().to_string(),
                        v["replacement"].as_str().unwrap().to_string(),
                    ),
                )
            })
            .collect();
        let want: BTreeMap<String, (String, String)> = expect["resources"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    (
                        v["action"].as_str().unwrap().to_string(),
                        v["replacement"].as_str().unwrap().to_string(),
                    ),
                )
            })
            .collect();
        if got != want {
            failures.push(format!("{name}: resources {got:?}, expected {want:?}"));
        }
        let flags: BTreeSet<String> = d
            .all_flags()
            .map(|(_, f)| {
                serde_json::to_value(f.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let want_flags: BTreeSet<String> = expect["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        if flags != want_flags {
            failures.push(format!("{name}: flags {flags:?}, expected {want_flags:?}"));
        }
        // What widens access, by kind; none where the case says nothing.
        let mut broadening: Vec<String> = d
            .resources
            .iter()
            .flat_map(|r| &r.broadening)
            .map(|b| {
                serde_json::to_value(b.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        broadening.sort();
        let mut want_broadening: Vec<String> = expect["broadening"]
            .as_array()
            .map(|a| a.iter().map(|k| k.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        want_broadening.sort();
        if broadening != want_broadening {
            failures.push(format!(
                "{name}: broadening {broadening:?}, expected {want_broadening:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn text_reports() {
    for case in corpus() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let text = diff::render_text(&run(&case), None, false);
        insta::assert_snapshot!(format!("diff_text_{name}"), text);
    }
}

#[test]
fn json_and_markdown_reports() {
    for name in [
        "04-queue-rename",
        "16-dlq-rename-propagates-to-redrive",
        "21-named-resource-replacement",
        "25-export-removed",
        "27-parameters-mappings-conditions",
        "34-transform-added",
        "37-iam-policy-widened-to-wildcard",
        "38-ingress-opened-to-the-world",
        "39-public-access-block-loosened",
        "40-encryption-removed",
        "41-principal-gains-an-account",
    ] {
        let case = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/diff_corpus")
            .join(name);
        let d = run(&case);
        insta::assert_snapshot!(format!("diff_json_{name}"), diff::render_json(&d));
        insta::assert_snapshot!(
            format!("diff_markdown_{name}"),
            diff::render_markdown(&d, Some(name))
        );
    }
}

#[test]
fn ignore_paths_drop_changes() {
    let case =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff_corpus/03-queue-mutable-property");
    let old = diff::load_template(&side(&case, "old")).unwrap();
    let new = diff::load_template(&side(&case, "new")).unwrap();
    let options = DiffOptions {
        ignore_paths: vec!["Resources.Q.Properties.VisibilityTimeout".into()],
        ..DiffOptions::default()
    };
    assert!(!diff::diff_templates(&old, &new, &options).has_changes);
}

#[test]
fn cdk_metadata_counts_when_not_ignored() {
    let case =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff_corpus/28-cdk-metadata-noise");
    let old = diff::load_template(&side(&case, "old")).unwrap();
    let new = diff::load_template(&side(&case, "new")).unwrap();
    let options = DiffOptions {
        ignore_metadata_prefixes: vec![],
        ..DiffOptions::default()
    };
    assert!(diff::diff_templates(&old, &new, &options).has_changes);
}

use serde_norway::Value;

use super::*;
use crate::config::parse;

const STAGING: &str = "service = \"photos\"\nenvironment = \"staging\"\n";
const PROD: &str = "service = \"photos\"\nenvironment = \"prod\"\nregion = \"eu-west-1\"\n";

const PIPELINE: &str = r#"service = "photos"

[pipeline.ci]
role_arn = "arn:aws:iam::111122223333:role/photos-deploy"
region = "us-east-1"
install = "cargo install --locked --path gatekeeper"
image = "rust:1.94"

[[pipeline.stages]]
name = "staging"
config = "staging.toml"
kind = "stack"

[[pipeline.stages]]
name = "prod-canary"
config = "prod.toml"
kind = "canary"
needs = ["staging"]
approval = ["arn:aws:iam::111122223333:role/photos-release-*"]
role_arn = "arn:aws:iam::111122223333:role/photos-release-prod"
soak_seconds = 3600
alarms_clean = true

[[pipeline.stages]]
name = "promote"
config = "prod.toml"
kind = "promote"
needs = ["prod-canary"]
approval = ["arn:aws:iam::111122223333:user/alice"]
"#;

fn pipeline(text: &str) -> (tempfile::TempDir, Pipeline) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), STAGING).unwrap();
    std::fs::write(dir.path().join("prod.toml"), PROD).unwrap();
    let p = parse(&dir.path().join("pipeline.toml"), text).unwrap();
    (dir, p)
}

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn the_same_configuration_gives_the_same_bytes() {
    let (_dir, p) = pipeline(PIPELINE);
    for platform in [Platform::Github, Platform::Gitlab] {
        let a = emit(&p, platform, "svc/pipeline.toml").unwrap();
        let b = emit(&p, platform, "./svc/pipeline.toml").unwrap();
        assert_eq!(a, b, "{platform:?}");
        // And from another directory holding the same files.
        let (_other, q) = pipeline(PIPELINE);
        assert_eq!(emit(&q, platform, "svc/pipeline.toml").unwrap(), a);
    }
}

#[test]
fn the_config_path_is_relative_to_the_repository() {
    let (_dir, p) = pipeline(PIPELINE);
    for bad in ["/abs/pipeline.toml", "", "a/${{ github.head_ref }}.toml"] {
        assert!(emit(&p, Platform::Github, bad).is_err(), "{bad}");
    }
}

#[test]
fn github_has_one_job_per_stage_with_its_needs_and_gates() {
    let (_dir, p) = pipeline(PIPELINE);
    let w = yaml(&emit(&p, Platform::Github, "svc/pipeline.toml").unwrap());
    let jobs = w["jobs"].as_mapping().unwrap();
    let ids: Vec<_> = jobs.keys().filter_map(Value::as_str).collect();
    assert_eq!(
        ids,
        [
            "start",
            "stage-staging",
            "stage-prod-canary",
            "stage-promote"
        ]
    );
    assert_eq!(strings(&w["jobs"]["stage-staging"]["needs"]), ["start"]);
    assert_eq!(
        strings(&w["jobs"]["stage-promote"]["needs"]),
        ["start", "stage-prod-canary"]
    );
    for (id, job) in jobs {
        let id = id.as_str().unwrap();
        if id != "start" {
            assert_eq!(job["environment"].as_str(), id.strip_prefix("stage-"));
            let run = job["steps"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter_map(|s| s["run"].as_str())
                .find(|r| r.contains("gatekeeper pipeline stage"))
                .unwrap();
            assert!(
                run.starts_with(&format!(
                    "gatekeeper pipeline stage {} --config \"$GATEKEEPER_CONFIG\" --run \"$GATEKEEPER_RUN_ID\"",
                    &id["stage-".len()..]
                )),
                "{run}"
            );
        }
        assert_eq!(job["permissions"]["contents"].as_str(), Some("read"));
        assert_eq!(job["permissions"]["id-token"].as_str(), Some("write"));
    }
    assert_eq!(
        w["jobs"]["start"]["outputs"]["run_id"].as_str(),
        Some("${{ steps.run.outputs.run_id }}")
    );
    assert_eq!(
        w["jobs"]["stage-promote"]["env"]["GATEKEEPER_RUN_ID"].as_str(),
        Some("${{ needs.start.outputs.run_id }}")
    );
    // Serialised runs, never cancelled halfway; nothing granted at the top.
    assert_eq!(
        w["concurrency"]["group"].as_str(),
        Some("gatekeeper-photos")
    );
    assert_eq!(
        w["concurrency"]["cancel-in-progress"].as_bool(),
        Some(false)
    );
    assert_eq!(w["permissions"].as_mapping().map(|m| m.len()), Some(0));
    assert_eq!(
        strings(&w["on"]["push"]["branches"]),
        ["main"],
        "the default branch"
    );
}

#[test]
fn github_never_expands_an_expression_in_a_shell_and_pins_every_action() {
    let (_dir, p) = pipeline(PIPELINE);
    let w = yaml(&emit(&p, Platform::Github, "svc/pipeline.toml").unwrap());
    let mut uses = 0;
    for job in w["jobs"].as_mapping().unwrap().values() {
        for step in job["steps"].as_sequence().unwrap() {
            if let Some(run) = step["run"].as_str() {
                assert!(!run.contains("${{"), "{run}");
            }
            if let Some(u) = step["uses"].as_str() {
                let (_, sha) = u.split_once('@').unwrap();
                assert!(
                    sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{u}"
                );
                uses += 1;
            }
            if step["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/checkout@"))
            {
                assert_eq!(step["with"]["persist-credentials"].as_bool(), Some(false));
            }
        }
    }
    assert_eq!(uses, 8, "checkout and credentials in each of 4 jobs");
}

#[test]
fn github_records_an_approval_only_with_an_approving_role() {
    let (_dir, p) = pipeline(PIPELINE);
    let text = emit(&p, Platform::Github, "svc/pipeline.toml").unwrap();
    let w = yaml(&text);
    let approves = |job: &str| {
        w["jobs"][job]["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .any(|r| r.contains("gatekeeper pipeline approve"))
    };
    // prod-canary's job assumes photos-release-prod, which its approval allows.
    assert!(approves("stage-prod-canary"));
    assert_eq!(
        w["jobs"]["stage-prod-canary"]["steps"][1]["with"]["role-to-assume"].as_str(),
        Some("arn:aws:iam::111122223333:role/photos-release-prod")
    );
    // promote is approved by alice, out of CI; staging needs no approval.
    assert!(!approves("stage-promote"));
    assert!(!approves("stage-staging"));
    assert!(
        text.contains("# Stage \"promote\" needs an approval"),
        "{text}"
    );
    assert!(text.contains("record the approval with `gatekeeper pipeline approve`."));
}

#[test]
fn github_without_a_role_asks_for_no_token() {
    let plain = PIPELINE
        .replace(
            "role_arn = \"arn:aws:iam::111122223333:role/photos-deploy\"\n",
            "",
        )
        .replace(
            "role_arn = \"arn:aws:iam::111122223333:role/photos-release-prod\"\n",
            "",
        );
    let (_dir, p) = pipeline(&plain);
    let text = emit(&p, Platform::Github, "pipeline.toml").unwrap();
    assert!(!text.contains("id-token"), "{text}");
    assert!(!text.contains("configure-aws-credentials"), "{text}");
    assert!(
        !text.contains("gatekeeper pipeline approve --config"),
        "{text}"
    );
}

#[test]
fn gitlab_has_one_job_per_stage_with_needs_environments_and_manual_gates() {
    let (_dir, p) = pipeline(PIPELINE);
    let text = emit(&p, Platform::Gitlab, "svc/pipeline.toml").unwrap();
    let g = yaml(&text);
    assert_eq!(strings(&g["stages"]), ["staging", "prod-canary", "promote"]);
    assert_eq!(g["start"]["stage"].as_str(), Some(".pre"));
    assert_eq!(
        g["start"]["artifacts"]["reports"]["dotenv"].as_str(),
        Some("gatekeeper-run.env")
    );
    for id in [
        "start",
        "stage-staging",
        "stage-prod-canary",
        "stage-promote",
    ] {
        assert_eq!(
            g[id]["resource_group"].as_str(),
            Some("gatekeeper-photos"),
            "{id}"
        );
    }
    let needs = |id: &str| -> Vec<(String, bool)> {
        g[id]["needs"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["job"].as_str().unwrap().to_string(),
                    n["artifacts"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        needs("stage-promote"),
        [("start".into(), true), ("stage-prod-canary".into(), false)]
    );
    assert_eq!(g["stage-staging"]["when"], Value::Null);
    for id in ["stage-prod-canary", "stage-promote"] {
        assert_eq!(g[id]["when"].as_str(), Some("manual"), "{id}");
        assert_eq!(g[id]["allow_failure"].as_bool(), Some(false), "{id}");
    }
    assert_eq!(
        g["stage-staging"]["environment"]["deployment_tier"].as_str(),
        Some("staging")
    );
    assert_eq!(
        g["stage-promote"]["environment"]["deployment_tier"].as_str(),
        Some("production")
    );
    assert_eq!(
        g["stage-staging"]["variables"]["AWS_REGION"].as_str(),
        Some("us-east-1")
    );
    assert_eq!(
        g["stage-promote"]["variables"]["AWS_REGION"].as_str(),
        Some("eu-west-1")
    );
    let script = strings(&g["stage-prod-canary"]["script"]);
    assert!(
        script
            .iter()
            .any(|l| l.starts_with("gatekeeper pipeline approve")),
        "{script:?}"
    );
    assert!(
        script.last().unwrap().starts_with(
            "gatekeeper pipeline stage prod-canary --config \"$GATEKEEPER_CONFIG\" --run \"$GATEKEEPER_RUN_ID\""
        ),
        "{script:?}"
    );
    assert_eq!(g["default"]["image"].as_str(), Some("rust:1.94"));
    assert_eq!(
        g["workflow"]["rules"][0]["if"].as_str(),
        Some("$CI_COMMIT_BRANCH == \"main\"")
    );
}

#[test]
fn a_quoted_value_is_read_back_as_written() {
    for s in [
        "plain",
        "a: b # c",
        "quote \" and \\ back",
        "tab\tnew\nline",
        "é ${{ x }}",
    ] {
        let v: Value = serde_norway::from_str(&format!("k: {}\n", q(s))).unwrap();
        assert_eq!(v["k"].as_str(), Some(s));
    }
}

#[test]
fn the_install_command_reaches_the_shell_as_written() {
    let text = PIPELINE.replace(
        "cargo install --locked --path gatekeeper",
        "curl -fsSL \\\"https://example.com/install.sh\\\" | sh -s -- --to \\\"$HOME/bin\\\" # pinned",
    );
    let (_dir, p) = pipeline(&text);
    let w = yaml(&emit(&p, Platform::Github, "p.toml").unwrap());
    let step = &w["jobs"]["start"]["steps"][2];
    assert_eq!(step["name"].as_str(), Some("Install gatekeeper"));
    assert_eq!(
        step["run"].as_str(),
        Some(
            "curl -fsSL \"https://example.com/install.sh\" | sh -s -- --to \"$HOME/bin\" # pinned"
        )
    );
}

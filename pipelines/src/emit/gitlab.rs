//! A GitLab CI pipeline.

use std::fmt::Write as _;

use super::{header, job_approves, job_id, q, Platform, REPORT};
use crate::config::{Pipeline, Stage};

pub(super) fn pipeline(pipeline: &Pipeline, config_path: &str) -> String {
    let mut w = header(pipeline, Platform::Gitlab, config_path);
    w.push_str(
        "#\n\
         # Every job holds the resource group, so two runs never act at once; set its process\n\
         # mode to oldest_first (API: resource_groups) to take runs in the order they came.\n\n",
    );
    let _ = write!(
        w,
        "workflow:\n  rules:\n    - if: $CI_COMMIT_BRANCH == {}\n    - if: $CI_PIPELINE_SOURCE == \"web\"\n",
        q(&pipeline.ci.branch)
    );
    w.push_str("\nstages:\n");
    for stage in pipeline.ordered() {
        let _ = writeln!(w, "  - {}", q(&stage.name));
    }
    let _ = write!(w, "\nvariables:\n  GATEKEEPER_CONFIG: {}\n", q(config_path));
    if let Some(image) = &pipeline.ci.image {
        let _ = write!(w, "\ndefault:\n  image: {}\n", q(image));
    }

    let role = pipeline.ci.role_arn.as_deref();
    let region = pipeline
        .ci
        .region
        .as_deref()
        .or_else(|| pipeline.ordered().first().and_then(|s| s.region.as_deref()));
    w.push_str("\nstart:\n  stage: .pre\n");
    resource_group(&mut w, pipeline);
    aws(&mut w, role, region);
    w.push_str("  script:\n");
    setup(&mut w, pipeline, role.is_some());
    w.push_str(
        "    - run_id=\"$(gatekeeper pipeline run --config \"$GATEKEEPER_CONFIG\" --revision \"$CI_COMMIT_SHA\")\"\n    - echo \"GATEKEEPER_RUN_ID=${run_id}\" > gatekeeper-run.env\n",
    );
    w.push_str("  artifacts:\n    reports:\n      dotenv: gatekeeper-run.env\n");

    for stage in &pipeline.stages {
        w.push('\n');
        stage_job(&mut w, pipeline, stage);
    }
    w
}

fn stage_job(w: &mut String, pipeline: &Pipeline, stage: &Stage) {
    let _ = writeln!(w, "{}:", job_id(stage));
    let _ = writeln!(w, "  stage: {}", q(&stage.name));
    w.push_str("  needs:\n    - job: start\n      artifacts: true\n");
    for need in &stage.needs {
        let _ = writeln!(w, "    - job: stage-{need}\n      artifacts: false");
    }
    resource_group(w, pipeline);
    let _ = write!(
        w,
        "  environment:\n    name: {}\n    deployment_tier: {}\n",
        q(&stage.name),
        tier(&stage.environment)
    );
    if !stage.gates.approval.is_empty() {
        w.push_str("  when: manual\n  allow_failure: false\n");
    }
    let role = pipeline.role_for(stage);
    aws(w, role, stage.region.as_deref());
    w.push_str("  script:\n");
    setup(w, pipeline, role.is_some());
    if job_approves(pipeline, stage) {
        let _ = writeln!(
            w,
            "    - gatekeeper pipeline approve --config \"$GATEKEEPER_CONFIG\" --run \"$GATEKEEPER_RUN_ID\" --stage {name} --reason \"GitLab manual job ${{CI_JOB_URL}} started by ${{GITLAB_USER_LOGIN}}\"",
            name = stage.name
        );
    }
    let _ = writeln!(
        w,
        "    - gatekeeper pipeline stage {} --config \"$GATEKEEPER_CONFIG\" --run \"$GATEKEEPER_RUN_ID\" --report {REPORT}",
        stage.name
    );
    let _ = write!(
        w,
        "  artifacts:\n    when: always\n    expose_as: \"gatekeeper report\"\n    paths:\n      - {REPORT}\n"
    );
}

fn resource_group(w: &mut String, pipeline: &Pipeline) {
    let _ = writeln!(
        w,
        "  resource_group: {}",
        q(&format!("gatekeeper-{}", pipeline.name))
    );
}

/// An OIDC token for AWS, and the role and region the SDK's web-identity provider reads.
fn aws(w: &mut String, role: Option<&str>, region: Option<&str>) {
    if let Some(role) = role {
        let _ = write!(
            w,
            "  id_tokens:\n    GATEKEEPER_ID_TOKEN:\n      aud: \"sts.amazonaws.com\"\n  variables:\n    AWS_ROLE_ARN: {}\n    AWS_REGION: {}\n",
            q(role),
            q(region.expect("validated: a role has a region"))
        );
    }
}

/// gatekeeper on PATH, and the OIDC token where the AWS SDK looks for it.
fn setup(w: &mut String, pipeline: &Pipeline, aws: bool) {
    if let Some(install) = &pipeline.ci.install {
        let _ = writeln!(w, "    - {}", q(install));
    }
    if aws {
        w.push_str(
            "    - export AWS_WEB_IDENTITY_TOKEN_FILE=\"$(mktemp)\"\n    - printf '%s' \"$GATEKEEPER_ID_TOKEN\" > \"$AWS_WEB_IDENTITY_TOKEN_FILE\"\n",
        );
    }
}

/// GitLab's deployment tier for an environment name.
fn tier(environment: &str) -> &'static str {
    match environment {
        "prod" | "production" | "live" => "production",
        "staging" | "stage" | "preprod" | "pre-prod" => "staging",
        "test" | "testing" | "qa" => "testing",
        "dev" | "development" => "development",
        _ => "other",
    }
}

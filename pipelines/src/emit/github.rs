//! A GitHub Actions workflow.

use std::fmt::Write as _;

use super::{header, job_approves, job_id, q, Platform, AWS_CREDENTIALS, CHECKOUT, REPORT};
use crate::config::{Pipeline, Stage};

pub(super) fn workflow(pipeline: &Pipeline, config_path: &str) -> String {
    let mut w = header(pipeline, Platform::Github, config_path);
    w.push_str(
        "#\n\
         # Every job runs in the GitHub environment of its stage, so that the AWS role's trust\n\
         # policy can require the subject `repo:<owner>/<repo>:environment:<stage>`.\n\
         # GitHub keeps one run going and one pending per concurrency group: a third run\n\
         # replaces the pending one; a run in progress is never cancelled.\n\n",
    );
    let _ = writeln!(w, "name: {}", q(&format!("gatekeeper {}", pipeline.name)));
    let _ = write!(
        w,
        "\non:\n  push:\n    branches:\n      - {}\n  workflow_dispatch: {{}}\n",
        q(&pipeline.ci.branch)
    );
    let _ = write!(
        w,
        "\nconcurrency:\n  group: {}\n  cancel-in-progress: false\n",
        q(&format!("gatekeeper-{}", pipeline.name))
    );
    w.push_str("\npermissions: {}\n");
    let _ = write!(w, "\nenv:\n  GATEKEEPER_CONFIG: {}\n", q(config_path));
    w.push_str("\njobs:\n");

    // The run: pin the revision and the configuration, hand the id on.
    let role = pipeline.ci.role_arn.as_deref();
    let region = pipeline
        .ci
        .region
        .as_deref()
        .or_else(|| pipeline.ordered().first().and_then(|s| s.region.as_deref()));
    w.push_str("  start:\n    name: \"start the run\"\n");
    let _ = writeln!(w, "    runs-on: {}", q(&pipeline.ci.runs_on));
    permissions(&mut w, role.is_some());
    w.push_str("    outputs:\n      run_id: ${{ steps.run.outputs.run_id }}\n");
    w.push_str("    steps:\n");
    setup(&mut w, pipeline, role, region);
    w.push_str(
        "      - name: \"Start the run\"\n        id: run\n        env:\n          REVISION: ${{ github.sha }}\n        run: |\n          run_id=\"$(gatekeeper pipeline run --config \"$GATEKEEPER_CONFIG\" --revision \"$REVISION\")\"\n          echo \"run_id=${run_id}\" >> \"$GITHUB_OUTPUT\"\n",
    );

    for stage in &pipeline.stages {
        w.push('\n');
        stage_job(&mut w, pipeline, stage);
    }
    w
}

fn stage_job(w: &mut String, pipeline: &Pipeline, stage: &Stage) {
    let _ = writeln!(w, "  {}:", job_id(stage));
    let _ = writeln!(
        w,
        "    name: {}",
        q(&format!("{} ({})", stage.name, stage.kind.as_str()))
    );
    w.push_str("    needs:\n      - start\n");
    for need in &stage.needs {
        let _ = writeln!(w, "      - stage-{need}");
    }
    let _ = writeln!(w, "    runs-on: {}", q(&pipeline.ci.runs_on));
    let _ = writeln!(w, "    environment: {}", q(&stage.name));
    let role = pipeline.role_for(stage);
    permissions(w, role.is_some());
    w.push_str("    env:\n      GATEKEEPER_RUN_ID: ${{ needs.start.outputs.run_id }}\n");
    w.push_str("    steps:\n");
    setup(w, pipeline, role, stage.region.as_deref());
    if job_approves(pipeline, stage) {
        let _ = write!(
            w,
            "      - name: \"Record the approval\"\n        run: |\n          gatekeeper pipeline approve --config \"$GATEKEEPER_CONFIG\" --run \"$GATEKEEPER_RUN_ID\" --stage {name} \\\n            --reason \"GitHub environment {name}: ${{GITHUB_SERVER_URL}}/${{GITHUB_REPOSITORY}}/actions/runs/${{GITHUB_RUN_ID}}\"\n",
            name = stage.name
        );
    }
    let _ = write!(
        w,
        "      - name: {}\n        run: |\n          gatekeeper pipeline stage {name} --config \"$GATEKEEPER_CONFIG\" --run \"$GATEKEEPER_RUN_ID\" \\\n            --report \"$RUNNER_TEMP/{REPORT}\"\n",
        q(&format!("Stage {}", stage.name)),
        name = stage.name
    );
    let _ = write!(
        w,
        "      - name: \"Job summary\"\n        if: always()\n        run: |\n          if [ -f \"$RUNNER_TEMP/{REPORT}\" ]; then\n            cat \"$RUNNER_TEMP/{REPORT}\" >> \"$GITHUB_STEP_SUMMARY\"\n          fi\n"
    );
}

fn permissions(w: &mut String, aws: bool) {
    w.push_str("    permissions:\n      contents: read # check out the configuration\n");
    if aws {
        w.push_str("      id-token: write # OIDC token for the AWS role\n");
    }
}

/// Checkout, AWS credentials, gatekeeper on PATH.
fn setup(w: &mut String, pipeline: &Pipeline, role: Option<&str>, region: Option<&str>) {
    let _ = write!(
        w,
        "      - name: \"Check out\"\n        uses: {CHECKOUT}\n        with:\n          persist-credentials: false\n"
    );
    if let Some(role) = role {
        let _ = write!(
            w,
            "      - name: \"AWS credentials\"\n        uses: {AWS_CREDENTIALS}\n        with:\n          role-to-assume: {}\n          aws-region: {}\n",
            q(role),
            q(region.expect("validated: a role has a region"))
        );
    }
    if let Some(install) = &pipeline.ci.install {
        let _ = write!(
            w,
            "      - name: \"Install gatekeeper\"\n        run: {}\n",
            q(install)
        );
    }
}

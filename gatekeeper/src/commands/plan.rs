//! `gatekeeper plan`: each stack of the service against the live one (or an empty account),
//! with CloudFormation's own change-set view when asked; the reports are
//! [`crate::render::plan`]'s.

use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;
use stack_deploy::{PlannedChange, Request};

use crate::commands::common::{self, OutputOrMarkdown as Output};
use crate::render::plan::{self as render, StackPlan};
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service's `gatekeeper.toml`. Default: the embedded example service.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Compare against an empty account instead of the live stack: no AWS call at all.
    #[arg(long, conflicts_with = "change_set")]
    pub offline: bool,
    /// Also create a CloudFormation change set, report CloudFormation's own view, and delete
    /// the change set afterwards.
    #[arg(long)]
    pub change_set: bool,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub exit: common::ChangesExit,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let loaded = match &args.config {
        Some(path) => common::load_config(path)?,
        None => common::load_example()?,
    };
    let stacks = stacks::synth(&loaded.config)?;
    let mut changed = false;
    let mut summary = String::new();
    let rt = crate::aws::runtime()?;
    for stack in &stacks {
        let new: Value = serde_json::to_value(&stack.template)?;
        let (old, change_set) = match args.offline {
            true => (None, None),
            false => rt.block_on(fetch_live(&loaded, &stack.name, &stack.template, args))?,
        };
        let empty = Value::Object(Default::default());
        let options = stacks::diff::DiffOptions::default();
        let diff = stacks::diff::diff_templates(old.as_ref().unwrap_or(&empty), &new, &options);
        changed |= diff.has_changes();
        let plan = StackPlan {
            stack: &stack.name,
            deployed: old.is_some(),
            diff: &diff,
            change_set: change_set.as_deref(),
        };
        render::stack(out, args.output, &plan, args.change_set)?;
        summary.push_str(&plan.markdown());
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(summary.as_bytes())?;
    }
    Ok(args.exit.status(changed))
}

/// The live template (parsed, JSON or YAML) and, with `--change-set`, CloudFormation's view.
async fn fetch_live(
    loaded: &stacks::config::Loaded,
    stack: &str,
    template: &stacks::Template,
    args: &Args,
) -> anyhow::Result<(Option<Value>, Option<Vec<PlannedChange>>)> {
    let clients = crate::aws::clients(loaded.config.region.as_deref()).await;
    let cfn = &clients.cloudformation;
    // A stack not deployed yet gets no change set: it could only say "add everything", and
    // creating one would leave a `REVIEW_IN_PROGRESS` stack behind.
    let Some(body) = stack_deploy::live_template(cfn, stack).await? else {
        return Ok((None, None));
    };
    let old = stacks::diff::parse_template(&body, &format!("stack {stack} (GetTemplate)"))?;
    if !args.change_set {
        return Ok((Some(old), None));
    }
    let request = Request {
        stack_name: stack.to_string(),
        template_body: serde_json::to_string(template)?,
        tags: common::stack_tags(loaded),
    };
    let view = stack_deploy::preview_change_set(cfn, &request).await?;
    Ok((Some(old), Some(view)))
}

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use stack_deploy::{self, Request, Timing};

use crate::commands::common::{self, OutputOrMarkdown as Output};
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

/// CloudFormation's own view of one change, from a change set.
#[derive(Debug, Clone, serde::Serialize)]
struct CloudFormationChange {
    action: String,
    logical_id: String,
    resource_type: String,
    replacement: String,
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
        let (old, cfn_view) = if args.offline {
            (None, None)
        } else {
            rt.block_on(fetch_live(
                &loaded,
                &stack.name,
                &stack.template,
                args.change_set,
            ))?
        };
        let diff = stacks::diff::diff_templates(
            old.as_ref().unwrap_or(&Value::Object(Default::default())),
            &new,
            &stacks::diff::DiffOptions::default(),
        );
        changed |= diff.has_changes();
        let title = format!(
            "stack {}{}",
            stack.name,
            if old.is_none() {
                " (not deployed yet)"
            } else {
                ""
            }
        );
        match args.output {
            Output::Text => {
                let color = crate::ui::stdout_color();
                out.write_all(stacks::diff::render_text(&diff, Some(&title), color).as_bytes())?;
                if args.change_set && old.is_none() {
                    writeln!(
                        out,
                        "\nNo change set: the stack is not deployed yet, so it would only add everything."
                    )?;
                }
                if let Some(view) = &cfn_view {
                    writeln!(out, "\nCloudFormation's change set:")?;
                    for c in view {
                        writeln!(
                            out,
                            "  {} {} {} replacement={}",
                            c.action,
                            c.logical_id,
                            c.resource_type,
                            if c.replacement.is_empty() {
                                "n/a"
                            } else {
                                &c.replacement
                            }
                        )?;
                    }
                }
            }
            Output::Json => {
                let mut doc = serde_json::to_value(&diff)?;
                if let Value::Object(map) = &mut doc {
                    map.insert("stack".into(), Value::String(stack.name.clone()));
                    map.insert("deployed".into(), Value::Bool(old.is_some()));
                    if let Some(view) = &cfn_view {
                        map.insert("change_set".into(), serde_json::to_value(view)?);
                    }
                }
                writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            }
            Output::Markdown => {
                out.write_all(stacks::diff::render_markdown(&diff, Some(&title)).as_bytes())?;
            }
        }
        summary.push_str(&stacks::diff::render_markdown(&diff, Some(&title)));
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(summary.as_bytes())?;
    }
    Ok(args.exit.status(changed))
}

/// The live template (parsed, JSON or YAML) and, when asked, CloudFormation's change-set view.
async fn fetch_live(
    loaded: &stacks::config::Loaded,
    stack: &str,
    template: &stacks::Template,
    change_set: bool,
) -> anyhow::Result<(Option<Value>, Option<Vec<CloudFormationChange>>)> {
    let clients = crate::aws::clients(loaded.config.region.as_deref()).await;
    let cfn = &clients.cloudformation;
    // A stack not deployed yet gets no change set: it could only say "add everything", and
    // creating one would leave a `REVIEW_IN_PROGRESS` stack behind.
    let Some(body) = stack_deploy::live_template(cfn, stack).await? else {
        return Ok((None, None));
    };
    let old = stacks::diff::parse_template(&body, &format!("stack {stack} (GetTemplate)"))?;
    if !change_set {
        return Ok((Some(old), None));
    }
    let request = Request {
        stack_name: stack.to_string(),
        template_body: serde_json::to_string(template)?,
        tags: super::common::stack_tags(loaded),
    };
    let timing = Timing {
        poll_interval: Duration::from_secs(2),
        timeout: Duration::from_secs(300),
    };
    let view = match stack_deploy::create_change_set(cfn, &request, timing, &mut |_| {}).await? {
        None => Vec::new(),
        Some((name, changes)) => {
            // The change set is only for looking: it never outlives the plan, and a failed
            // delete is the plan's error (create_change_set deletes it on its own errors).
            stack_deploy::delete_change_set(cfn, stack, &name).await?;
            changes
                .into_iter()
                .map(|c| CloudFormationChange {
                    action: c.action,
                    logical_id: c.logical_id,
                    resource_type: c.resource_type,
                    replacement: c.replacement,
                })
                .collect()
        }
    };
    Ok((Some(old), Some(view)))
}

use std::io::Write;
use std::time::Duration;

use stack_deploy::{self, DeployError, Event, Outcome, Request, Timing};

use crate::commands::common;
use crate::ui::progress::Progress;
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: StackCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum StackCommand {
    /// Create or update the rails stack through a change set and wait for it.
    Deploy(DeployArgs),
}

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub service: crate::args::ServiceConfig,
    #[command(flatten)]
    pub dry: crate::args::DryRun,
    /// Give up waiting after this many seconds (the stack operation itself goes on).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub timeout: u64,
    /// Seconds between two looks at the stack.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub poll: u64,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    match &args.command {
        StackCommand::Deploy(a) => deploy(a, out),
    }
}

fn deploy(args: &DeployArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    // Everything that can be wrong locally is found before AWS is called.
    let loaded = common::load_config(&args.service.config)?;
    let stacks = stacks::synth(&loaded.config)?;
    let rt = crate::aws::runtime()?;
    rt.block_on(async {
        let clients = crate::aws::clients(loaded.config.region.as_deref()).await;
        for stack in &stacks {
            // Compact JSON: the request limit is on bytes.
            let body = serde_json::to_string(&stack.template)?;
            if body.len() > stacks::template::limits::BODY_BYTES {
                anyhow::bail!(
                    "stack {}: the template is {} bytes; CloudFormation takes at most {} inline",
                    stack.name,
                    body.len(),
                    stacks::template::limits::BODY_BYTES
                );
            }
            if args.dry.dry_run {
                let live = stack_deploy::describe(&clients.cloudformation, &stack.name).await?;
                let verb = match &live {
                    None => "create".to_string(),
                    Some(s) => format!(
                        "update (now {})",
                        s.stack_status().map(|x| x.as_str()).unwrap_or("?")
                    ),
                };
                writeln!(
                    out,
                    "dry run: would {verb} stack {} with {} resources through a change set; nothing was changed",
                    stack.name,
                    stack.template.resources.len()
                )?;
                continue;
            }
            let request = Request {
                stack_name: stack.name.clone(),
                template_body: body,
                tags: super::common::stack_tags(&loaded),
            };
            let timing = Timing {
                poll_interval: Duration::from_secs(args.poll),
                timeout: Duration::from_secs(args.timeout),
            };
            let progress = Progress::spinner(&format!("stack {}", stack.name));
            let mut on_event = |e: Event| match e {
                Event::ChangeSetCreating { name, create } => progress.line(&format!(
                    "creating change set {name} ({})",
                    if create { "new stack" } else { "update" }
                )),
                Event::ChangeSetReady { changes } => {
                    for c in changes {
                        let replace = match c.replacement.as_str() {
                            "True" => " (replaces)",
                            "Conditional" => " (may replace)",
                            _ => "",
                        };
                        progress.line(&format!(
                            "  {} {} {}{replace}",
                            c.action, c.logical_id, c.resource_type
                        ));
                    }
                }
                Event::Executing => progress.line("executing change set"),
                Event::Creating => progress.line("creating stack"),
                Event::Stack(l) => progress.line(&format!(
                    "  {} {} {}{}",
                    l.status,
                    l.logical_id,
                    l.resource_type,
                    l.reason.map(|r| format!(": {r}")).unwrap_or_default()
                )),
                Event::Waiting { status, elapsed } => {
                    progress.message(&format!("{status} ({}s)", elapsed.as_secs()))
                }
                Event::Retrying { error } => progress.line(&format!("{error}; looking again")),
            };
            let result =
                stack_deploy::deploy(&clients.cloudformation, &request, timing, &mut on_event)
                    .await;
            progress.finish();
            match result {
                Ok(Outcome::NoChanges) => {
                    writeln!(out, "stack {}: no changes", stack.name)?;
                }
                Ok(Outcome::Completed { status, changes }) => {
                    writeln!(
                        out,
                        "stack {}: {status} ({} changes)",
                        stack.name,
                        changes.len()
                    )?;
                }
                Err(e @ DeployError::RolledBack { .. }) => return Err(e.into()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(ExitStatus::Success)
    })
}

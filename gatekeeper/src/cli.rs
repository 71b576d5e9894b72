//! Every subcommand and flag is defined once, here or in its command module, with its docs.

use clap::{Parser, Subcommand};

use crate::commands;
use crate::ExitStatus;

/// Make production deploys on AWS boring.
#[derive(Debug, Parser)]
#[command(name = "gatekeeper", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Seconds one AWS request may take (connect, read, each attempt); a request with no
    /// answer by then fails as a timeout, retried while attempts remain (`AWS_MAX_ATTEMPTS`).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        env = "GATEKEEPER_AWS_TIMEOUT_SECONDS",
        default_value = crate::aws::DEFAULT_TIMEOUT_SECONDS,
        value_parser = crate::aws::parse_timeout
    )]
    pub aws_timeout: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Synthesize the safety-rails CloudFormation templates of a service.
    Synth(commands::synth::Args),
    /// Compare two CloudFormation templates (JSON or YAML) offline.
    Diff(commands::diff::Args),
    /// Refuse a configuration change that is not backward compatible both ways.
    CheckConfig(commands::check_config::Args),
    /// Replay exported canary metrics through the judge.
    Judge(commands::judge::Args),
    /// Preview what a configuration change does to the live stack.
    Plan(commands::plan::Args),
    /// Deploy the safety-rails stack.
    Stack(commands::stack::Args),
    /// Move one node through a canary deploy: run, status, resume, abort.
    Canary(commands::canary::Args),
    /// Promote a passed canary to the whole fleet.
    Promote(commands::promote::Args),
    /// Print the least-privilege IAM policy the gate needs for a configuration.
    IamPolicy(commands::iam_policy::Args),
    /// Turn maintenance mode on or off, or show it.
    Maintenance(commands::maintenance::Args),
    /// Move parked uploads (or dead letters) back where they belong.
    Redrive(commands::redrive::Args),
    /// CI pipelines of `[pipeline]` stages: emit the GitHub or GitLab configuration.
    Pipeline(commands::pipeline::Args),
}

pub fn run() -> ExitStatus {
    // clap's own exit code for a usage error is 2, which here means "changes present" or
    // "refused": a mistyped flag must be an error (1) that no CI stage can read as a verdict.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let asked = matches!(
                err.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            let _ = err.print();
            crate::aws::report_calls();
            return if asked {
                ExitStatus::Success
            } else {
                ExitStatus::Error
            };
        }
    };
    crate::aws::set_timeout(cli.aws_timeout);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match &cli.command {
        Command::Synth(args) => commands::synth::run(args, &mut out),
        Command::Diff(args) => commands::diff::run(args, &mut out),
        Command::CheckConfig(args) => commands::check_config::run(args, &mut out),
        Command::Judge(args) => commands::judge::run(args, &mut out),
        Command::Plan(args) => commands::plan::run(args, &mut out),
        Command::Stack(args) => commands::stack::run(args, &mut out),
        Command::Canary(args) => commands::canary::run(args, &mut out),
        Command::Promote(args) => commands::promote::run(args, &mut out),
        Command::IamPolicy(args) => commands::iam_policy::run(args, &mut out),
        Command::Maintenance(args) => commands::maintenance::run(args, &mut out),
        Command::Redrive(args) => commands::redrive::run(args, &mut out),
        Command::Pipeline(args) => commands::pipeline::run(args, &mut out),
    };
    crate::aws::report_calls();
    match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitStatus::Error
        }
    }
}

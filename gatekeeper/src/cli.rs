//! Every subcommand and flag is defined once, here or in its command module, with its docs.

use std::io::Write;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands;
use crate::ui::{self, ColorWhen};
use crate::ExitStatus;

/// The package version and, when the build could tell, the commit: `0.1.0 (3f2c1ab)`.
pub const VERSION: &str = env!("GATEKEEPER_VERSION");

/// Make production deploys on AWS boring.
#[derive(Debug, Parser)]
#[command(name = "gatekeeper", version = VERSION, about, long_about = None)]
#[command(after_help = crate::exit::HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log lines on standard error: -v info, -vv debug, -vvv trace. `RUST_LOG`, when set,
    /// chooses instead (`RUST_LOG=canary=debug`).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Fewer log lines: -q errors only, -qq none.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
    /// Colour the output: auto (a terminal, unless `NO_COLOR` is set and not empty;
    /// `CLICOLOR_FORCE` colours a pipe too), always, never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
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
    /// Print a shell completion script (`gatekeeper completions bash > /etc/bash_completion.d/gatekeeper`).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Print the manual page, in roff (`gatekeeper man | man -l -`).
    Man,
}

impl Command {
    /// The subcommand's name, as typed.
    fn name(&self) -> &'static str {
        match self {
            Command::Synth(_) => "synth",
            Command::Diff(_) => "diff",
            Command::CheckConfig(_) => "check-config",
            Command::Judge(_) => "judge",
            Command::Plan(_) => "plan",
            Command::Stack(_) => "stack",
            Command::Canary(_) => "canary",
            Command::Promote(_) => "promote",
            Command::IamPolicy(_) => "iam-policy",
            Command::Maintenance(_) => "maintenance",
            Command::Redrive(_) => "redrive",
            Command::Pipeline(_) => "pipeline",
            Command::Completions { .. } => "completions",
            Command::Man => "man",
        }
    }
}

/// The log level `-v`/`-q` ask for; `RUST_LOG` replaces it when set.
fn init_tracing(cli: &Cli) {
    let level = match i16::from(cli.verbose) - i16::from(cli.quiet) {
        ..=-2 => "off",
        -1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| tracing_subscriber::EnvFilter::try_new(&v).map_err(|e| (v, e)));
    let filter = match from_env {
        Some(Ok(filter)) => filter,
        Some(Err((value, e))) => {
            ui::eprintln!("warning: RUST_LOG={value:?} is not a filter ({e}); using {level}");
            tracing_subscriber::EnvFilter::new(level)
        }
        None => tracing_subscriber::EnvFilter::new(level),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ui::stderr_color())
        .try_init();
}

/// Whether the failure is a closed standard output (`gatekeeper ... | head`): not an error.
fn broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let mut cmd = Cli::command();
    // clap_complete writes with `write_all(..).expect(..)`: render into memory, then write.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "gatekeeper", &mut script);
    out.write_all(&script)?;
    out.flush()?;
    Ok(ExitStatus::Success)
}

fn man(out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    clap_mangen::Man::new(Cli::command()).render(out)?;
    out.flush()?;
    Ok(ExitStatus::Success)
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
    ui::init(cli.color);
    init_tracing(&cli);
    tracing::info!(
        version = VERSION,
        command = cli.command.name(),
        "gatekeeper"
    );
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
        Command::Completions { shell } => completions(*shell, &mut out),
        Command::Man => man(&mut out),
    };
    crate::aws::report_calls();
    // What is still buffered goes out now, so that a closed pipe is seen here too.
    let result = result.and_then(|status| {
        out.flush()?;
        Ok(status)
    });
    match result {
        Ok(status) => status,
        // The reader has gone (`| head`): it has what it wanted.
        Err(err) if broken_pipe(&err) => ExitStatus::Success,
        Err(err) => {
            ui::error(&err);
            ExitStatus::Error
        }
    }
}

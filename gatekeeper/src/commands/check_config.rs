//! `gatekeeper check-config`: refuse a configuration change that is not backward compatible
//! in both directions (old code on the new configuration, new code on the old one).

use std::io::Write;
use std::path::PathBuf;

use compat::{Ignores, Schema, Schemas, Source, Verdict};

use crate::commands::annotations::{self, Annotations};
use crate::commands::common::{ChangesExit, OutputOrMarkdown as Output};
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration the fleet runs now: a .yaml/.yml, .json, .toml or .env file,
    /// `git:<rev>:<path>` (a file as of a revision), or `ssm:/<path>` (a parameter tree).
    #[arg(long, value_name = "SOURCE")]
    pub old: String,
    /// The configuration to deploy, in the same forms as --old.
    #[arg(long, value_name = "SOURCE")]
    pub new: String,
    /// JSON Schema (draft 2020-12, JSON or YAML) both code versions accept: the same as
    /// giving it as --old-schema and --new-schema.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["old_schema", "new_schema"])]
    pub schema: Option<PathBuf>,
    /// JSON Schema of the old code's configuration. Its required keys, types and enums are
    /// checked against the new configuration (rollback: old code on the new configuration).
    #[arg(long, value_name = "FILE")]
    pub old_schema: Option<PathBuf>,
    /// JSON Schema of the new code's configuration. Its required keys, types and enums are
    /// checked against the old configuration (mixed fleet: new code on the old configuration,
    /// as a canary runs) and against the new one (invalid: exit 1).
    #[arg(long, value_name = "FILE")]
    pub new_schema: Option<PathBuf>,
    /// Accepted findings (TOML or YAML): [[ignore]] rule, path, reason, expires (YYYY-MM-DD).
    /// An expired entry fails the check (exit 1).
    #[arg(long, value_name = "FILE")]
    pub ignore: Option<PathBuf>,
    /// How to render the report.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Also print an annotation for each finding that has a file, line and column
    /// (`::error file=…,line=…,col=…::…` on GitHub), after the report.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub annotations: Option<Annotations>,
    #[command(flatten)]
    pub exit: ChangesExit,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let old_source = Source::parse(&args.old)?;
    let new_source = Source::parse(&args.new)?;
    let needs_ssm = [&old_source, &new_source]
        .iter()
        .any(|s| matches!(s, Source::Ssm(_)));
    let ssm = if needs_ssm {
        Some(ssm::Store::new()?)
    } else {
        None
    };
    let store = ssm.as_ref().map(|s| s as &dyn compat::ParameterSource);
    let (old, new) = compat::load_both(&old_source, &new_source, store)?;

    let schemas = match (&args.schema, &args.old_schema, &args.new_schema) {
        (Some(both), _, _) => Some(Schemas {
            old: Some(Schema::load(both)?),
            new: Some(Schema::load(both)?),
        }),
        (None, None, None) => None,
        (None, o, n) => Some(Schemas {
            old: o.as_deref().map(Schema::load).transpose()?,
            new: n.as_deref().map(Schema::load).transpose()?,
        }),
    };
    let ignores = match &args.ignore {
        Some(path) => Ignores::load(path)?,
        None => Ignores::default(),
    };

    let report = compat::check(&old, &new, schemas.as_ref(), &ignores);
    match args.output {
        Output::Text => write!(out, "{}", report.to_text())?,
        Output::Json => writeln!(out, "{}", report.to_json())?,
        Output::Markdown => write!(out, "{}", report.to_markdown())?,
    }
    // As `plan` does: in a GitHub job, the report also lands in the job's summary.
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(report.to_markdown().as_bytes())?;
    }
    if let Some(Annotations::Github) = args.annotations {
        write!(out, "{}", annotations::github(&report))?;
    }
    let status = match report.verdict() {
        Verdict::Compatible => ExitStatus::Success,
        Verdict::Breaking => args.exit.status(true),
        Verdict::Invalid => ExitStatus::Error,
    };
    // As `diff` does: the process ends right after, and freeing two 10 MiB configurations
    // value by value costs a tenth of a second the OS spends nothing on.
    std::mem::forget((old, new, report));
    Ok(status)
}

/// The SSM parameter store behind `ssm:/<path>` sources.
mod ssm {
    use compat::{Parameter, ParameterSource};

    pub struct Store {
        runtime: tokio::runtime::Runtime,
        client: aws_sdk_ssm::Client,
    }

    impl Store {
        pub fn new() -> anyhow::Result<Store> {
            let runtime = crate::aws::runtime()?;
            let client = runtime.block_on(crate::aws::clients(None)).ssm;
            Ok(Store { runtime, client })
        }
    }

    impl ParameterSource for Store {
        fn parameters_by_path(&self, path: &str) -> Result<Vec<Parameter>, String> {
            self.runtime
                .block_on(canary::aws::parameter_tree(&self.client, path))
        }
    }
}

//! `gatekeeper iam-policy`: the least-privilege IAM policy the gate needs for a configuration.

use std::io::Write;

use crate::ui;
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub service: crate::args::ServiceConfig,
    /// A bucket `s3://` revisions are read from (repeatable): the preflight checks the
    /// revision is there.
    #[arg(long = "artifact-bucket", value_name = "BUCKET")]
    pub artifact_buckets: Vec<String>,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let config = canary::config::load(&args.service.config)?;
    let options = canary::iam::Options {
        artifact_buckets: args.artifact_buckets.clone(),
    };
    let (policy, notes) = canary::iam::policy(&config, &options);
    writeln!(out, "{}", serde_json::to_string_pretty(&policy)?)?;
    for note in notes {
        let color = ui::stderr_color();
        ui::eprintln!("{} {note}", ui::paint(ui::WARN, "note:", color));
    }
    Ok(ExitStatus::Success)
}

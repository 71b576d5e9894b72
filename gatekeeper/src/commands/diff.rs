use std::io::Write;
use std::path::PathBuf;

use stacks::diff::{self, DiffOptions};

use crate::commands::common::{ChangesExit, OutputOrMarkdown as Output};
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The template as it is (JSON or YAML; short `!Ref`/`!Sub`/`!GetAtt` tags included).
    pub old: PathBuf,
    /// The template as it will be.
    pub new: PathBuf,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Ignore changes at or below a dotted path; `*` matches one segment
    /// (`Resources.*.Metadata.checkov`). Repeatable.
    #[arg(long = "ignore-path", value_name = "PATH")]
    pub ignore_paths: Vec<String>,
    /// Also compare the `aws:cdk:*` and `aws:asset:*` metadata keys ignored by default.
    #[arg(long)]
    pub include_cdk_metadata: bool,
    #[command(flatten)]
    pub exit: ChangesExit,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let mut options = DiffOptions {
        ignore_paths: args.ignore_paths.clone(),
        ..DiffOptions::default()
    };
    if args.include_cdk_metadata {
        options.ignore_metadata_prefixes.clear();
    }
    let compared = diff::diff_files(&args.old, &args.new, &options)?;
    let d = &compared.diff;
    let text = match args.output {
        Output::Text => diff::render_text(d, None, crate::ui::stdout_color()),
        Output::Json => diff::render_json(d),
        Output::Markdown => diff::render_markdown(d, None),
    };
    out.write_all(text.as_bytes())?;
    let status = args.exit.status(d.has_changes());
    // The process ends right after: freeing the parsed templates node by node costs more than
    // comparing them (bench/diff), and the OS takes the memory back at once.
    std::mem::forget((compared, text));
    Ok(status)
}

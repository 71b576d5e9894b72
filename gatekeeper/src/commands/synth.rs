use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use stacks::Format;

use crate::commands::common;
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `gatekeeper.toml` of a service and environment; repeat for several. Default: the
    /// embedded example service (`examples/photos/prod.toml`).
    #[arg(long = "config", value_name = "FILE")]
    pub configs: Vec<PathBuf>,
    /// Write one template per stack into this directory (`<stack>.json|yaml`). Without it the
    /// templates go to standard output.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Template format.
    #[arg(long, value_enum, default_value_t = TemplateFormat::Json)]
    pub format: TemplateFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TemplateFormat {
    Json,
    Yaml,
}

impl From<TemplateFormat> for Format {
    fn from(f: TemplateFormat) -> Self {
        match f {
            TemplateFormat::Json => Format::Json,
            TemplateFormat::Yaml => Format::Yaml,
        }
    }
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let format = Format::from(args.format);
    // Every configuration is loaded and every template built before anything is written.
    let mut stacks = Vec::new();
    for loaded in common::load_configs(&args.configs)? {
        let built = stacks::synth(&loaded.config)
            .with_context(|| format!("{}: the template is invalid", loaded.file.display()))?;
        stacks.extend(built);
    }
    let rendered: Vec<(String, String, usize)> = stacks
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.template.render(format),
                s.template.resources.len(),
            )
        })
        .collect();
    for (name, body, _) in &rendered {
        if body.len() > stacks::template::limits::BODY_BYTES {
            anyhow::bail!(
                "stack {name}: the template is {} bytes; CloudFormation takes at most {} inline",
                body.len(),
                stacks::template::limits::BODY_BYTES
            );
        }
    }
    match &args.out {
        None => {
            for (_, body, _) in &rendered {
                out.write_all(body.as_bytes())?;
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, body, resources) in &rendered {
                let path = dir.join(format!("{name}.{}", format.extension()));
                std::fs::write(&path, body)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                writeln!(
                    out,
                    "wrote {} ({resources} resources, {} bytes)",
                    path.display(),
                    body.len()
                )?;
            }
        }
    }
    Ok(ExitStatus::Success)
}

//! What several commands share: loading configurations, the redrive both run.

pub use crate::args::{ChangesExit, Output, OutputOrMarkdown};

use std::path::{Path, PathBuf};

use stacks::config::{self, Loaded};

/// The example service compiled into the binary: the default of commands run without
/// `--config`, so a fresh checkout can try them offline.
pub const EXAMPLE_PATH: &str = "examples/photos/prod.toml";
pub const EXAMPLE: &str = include_str!("../../../examples/photos/prod.toml");

/// Loads and validates each configuration (the embedded example when none is given).
pub fn load_configs(paths: &[PathBuf]) -> anyhow::Result<Vec<Loaded>> {
    if paths.is_empty() {
        return Ok(vec![load_example()?]);
    }
    paths.iter().map(|p| load_config(p)).collect()
}

pub fn load_config(path: &Path) -> anyhow::Result<Loaded> {
    let loaded = config::load(path)?;
    tracing::info!(file = %path.display(), "configuration loaded");
    Ok(loaded)
}

pub fn load_example() -> anyhow::Result<Loaded> {
    let file = PathBuf::from(EXAMPLE_PATH);
    let config = config::parse(&file, EXAMPLE)?;
    Ok(Loaded {
        file,
        text: EXAMPLE.to_string(),
        config,
    })
}

/// The stack tags of a configuration, as CloudFormation takes them.
pub fn stack_tags(loaded: &Loaded) -> Vec<(String, String)> {
    loaded
        .config
        .stack
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Runs an object redrive with its progress on standard error (`redrive`, `maintenance off`).
pub async fn redrive_objects(
    clients: &crate::aws::Clients,
    request: &maintenance::redrive::Request,
) -> anyhow::Result<maintenance::redrive::Report> {
    let (bar, sink) = crate::render::maintenance::redrive_progress(
        &request.parking_lot,
        crate::hooks::after_each_copy(),
    );
    let redrive_clients = maintenance::redrive::Clients {
        s3: clients.s3.clone(),
        sqs: clients.sqs.clone(),
    };
    let report = maintenance::redrive::run(&redrive_clients, request, sink).await;
    bar.finish();
    Ok(report?)
}

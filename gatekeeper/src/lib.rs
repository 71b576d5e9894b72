//! The `gatekeeper` command line: parses, wires the library crates, renders.
//! Nothing below this crate prints.

mod args;
mod aws;
mod cli;
mod commands;
mod exit;
mod hooks;
mod pipeline_host;
mod render;
mod session;
mod store;
mod ui;

pub use exit::ExitStatus;

/// Entry point of the binary.
pub fn main() -> std::process::ExitCode {
    cli::run().into()
}

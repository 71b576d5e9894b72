//! One module per subcommand: each has `Args` (clap) and `run`.

pub mod annotations;
pub mod canary;
pub mod check_config;
pub mod common;
pub mod diff;
pub mod iam_policy;
pub mod judge;
pub mod maintenance;
pub mod pipeline;
pub mod pipeline_run;
pub mod plan;
pub mod promote;
pub mod redrive;
pub mod stack;
pub mod synth;

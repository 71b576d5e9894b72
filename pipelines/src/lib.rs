//! CI pipelines: one revision through the stages of `[pipeline]` in `gatekeeper.toml`
//! (staging, the canary in production, the promotion...), offline.
//!
//! - [`config`]: the `[pipeline]` view, its stages and gates, validated and located;
//! - [`pin`]: the revision and configuration digests a run is fixed to;
//! - [`approval`]: who may approve a stage;
//! - [`emit`](mod@emit): the GitHub Actions and GitLab CI configuration of a pipeline;
//! - [`run`]: a run's journal records and whether a stage may go.
//!
//! Pure: no AWS. The run itself (lock and journal, in the `state` layer) is driven from the CLI.

pub mod approval;
pub mod config;
pub mod emit;
pub mod pin;
pub mod run;

pub use approval::approval_allowed;
pub use config::{load, ConfigError, Gates, Kind, Pipeline, Stage};
pub use emit::{emit, EmitError, Platform};
pub use pin::{Change, Changed, Pin};

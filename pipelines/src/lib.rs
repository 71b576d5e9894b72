//! CI pipelines: one revision through the stages of `[pipeline]` in `gatekeeper.toml`
//! (staging, the canary in production, the promotion...), offline.
//!
//! - [`config`]: the `[pipeline]` view, its stages and gates, validated and located;
//! - [`pin`]: the revision and configuration digests a run is fixed to;
//! - [`approval`]: who may approve a stage;
//! - [`emit`](mod@emit): the GitHub Actions and GitLab CI configuration of a pipeline;
//! - [`run`]: a run's journal records and the decisions over them: whether a stage may go,
//!   which one resumes, its command line and how it ended, who may approve;
//! - [`drive`]: a run driven through the state layer's lock and journal, the program's side
//!   (time, alarms, running a stage's command) behind [`drive::Host`].
//!
//! No AWS and no clock: [`drive`] asks its [`drive::Host`] for both.

pub mod approval;
pub mod config;
pub mod drive;
pub mod emit;
pub mod pin;
pub mod run;

pub use approval::approval_allowed;
pub use config::{load, ConfigError, Gates, Kind, Pipeline, Stage};
pub use emit::{emit, EmitError, Platform};
pub use pin::{Change, Changed, Pin};

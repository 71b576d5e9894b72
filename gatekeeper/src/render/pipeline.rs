//! CI pipeline reports: a run's stages, approvals and status.

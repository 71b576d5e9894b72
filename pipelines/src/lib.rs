//! Multi-step workflows over AWS: deploying the rails stack, maintenance mode, redrive.
//! Each takes AWS clients from the caller and reports progress through events; nothing here
//! prints or loads AWS configuration.

pub mod maintenance;
pub mod redrive;
pub mod stack_deploy;

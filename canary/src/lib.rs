//! The canary: a state machine that decides, a judge that weighs the evidence, and the
//! providers (load balancer, deployer, metrics, lock, journal) that act.
//!
//! Invariants: [`machine`] never performs I/O; [`executor`] journals every action before and
//! after performing it; nothing in this crate prints (progress goes through callbacks).

pub mod command;
pub mod config;
pub mod evidence;
pub mod executor;
pub mod fenced;
pub mod iam;
pub mod journal;
pub mod judge;
pub mod machine;
pub mod notify;
pub mod provider;
pub mod run;
pub mod status;
pub mod workers;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod session;

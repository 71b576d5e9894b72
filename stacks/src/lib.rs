//! CloudFormation for a service's safety rails: a typed template model, the builders that
//! fill it from `gatekeeper.toml`, and the structural diff. This crate never talks to AWS.

pub mod config;
pub mod diff;
mod expr;
pub mod iam;
pub mod rails;
mod refs;
pub mod template;
pub mod validate;

pub use expr::{pseudo, sub_variables, Expr};
pub use template::{Format, Output, Parameter, Policy, Resource, Template, TemplateError};

/// One synthesized stack: its name and template.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub template: Template,
}

/// Synthesizes every stack of a configuration.
pub fn synth(config: &config::Config) -> Result<Vec<Stack>, TemplateError> {
    let template = rails::build(config);
    template.validate()?;
    Ok(vec![Stack {
        name: config.stack_name(),
        template,
    }])
}

pub use validate::{bucket_name, parameter_name, queue_name};

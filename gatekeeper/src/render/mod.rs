//! One module per report type: each turns a library result into text, JSON or markdown.
//! Commands call these; nothing here decides or talks to AWS.

pub mod canary;
pub mod maintenance;
pub mod pipeline;
pub mod plan;

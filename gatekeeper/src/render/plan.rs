//! `gatekeeper plan` reports: one stack's diff against the live stack (or an empty account),
//! with CloudFormation's change-set view when asked, as text, JSON or markdown.

use std::io::Write;

use serde_json::Value;
use stack_deploy::PlannedChange;
use stacks::diff::TemplateDiff;

use crate::commands::common::OutputOrMarkdown as Output;

/// One stack's plan.
pub struct StackPlan<'a> {
    pub stack: &'a str,
    /// The stack exists (its live template was compared).
    pub deployed: bool,
    pub diff: &'a TemplateDiff,
    /// CloudFormation's change set, when asked for and the stack is deployed.
    pub change_set: Option<&'a [PlannedChange]>,
}

impl StackPlan<'_> {
    fn title(&self) -> String {
        let new = if self.deployed {
            ""
        } else {
            " (not deployed yet)"
        };
        format!("stack {}{new}", self.stack)
    }

    /// The markdown report (`--output markdown`, `GITHUB_STEP_SUMMARY`).
    pub fn markdown(&self) -> String {
        stacks::diff::render_markdown(self.diff, Some(&self.title()))
    }
}

/// Writes `plan` as `output`; `change_set_asked`: `--change-set` was given.
pub fn stack(
    out: &mut dyn Write,
    output: Output,
    plan: &StackPlan<'_>,
    change_set_asked: bool,
) -> anyhow::Result<()> {
    match output {
        Output::Text => {
            let color = crate::ui::stdout_color();
            let text = stacks::diff::render_text(plan.diff, Some(&plan.title()), color);
            out.write_all(text.as_bytes())?;
            if change_set_asked && !plan.deployed {
                writeln!(
                    out,
                    "\nNo change set: the stack is not deployed yet, so it would only add everything."
                )?;
            }
            if let Some(view) = plan.change_set {
                writeln!(out, "\nCloudFormation's change set:")?;
                for c in view {
                    let replacement = match c.replacement.as_str() {
                        "" => "n/a",
                        r => r,
                    };
                    let (action, id, kind) = (&c.action, &c.logical_id, &c.resource_type);
                    writeln!(out, "  {action} {id} {kind} replacement={replacement}")?;
                }
            }
        }
        Output::Json => {
            let mut doc = serde_json::to_value(plan.diff)?;
            if let Value::Object(map) = &mut doc {
                map.insert("stack".into(), Value::String(plan.stack.to_string()));
                map.insert("deployed".into(), Value::Bool(plan.deployed));
                if let Some(view) = plan.change_set {
                    map.insert("change_set".into(), serde_json::to_value(view)?);
                }
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        Output::Markdown => out.write_all(plan.markdown().as_bytes())?,
    }
    Ok(())
}

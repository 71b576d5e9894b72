//! The one walker of references in a template value: what `Ref`, `Fn::GetAtt` and the `${X}`
//! / `${X.Attr}` of `Fn::Sub` name. The builders' `Expr::references` (validation) and the diff's
//! replacement spread both ask here, over the JSON form of a value.

use std::collections::BTreeSet;

use serde_json::Value;

/// Logical ids (and parameters) `v` refers to, pseudo parameters (`AWS::...`) and `Fn::Sub`'s
/// own variables excluded.
pub fn referenced_ids(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("Ref") {
                if !r.starts_with("AWS::") {
                    out.insert(r.clone());
                }
            }
            if let Some(Value::Array(a)) = m.get("Fn::GetAtt") {
                if let Some(Value::String(r)) = a.first() {
                    out.insert(r.clone());
                }
            }
            if let Some(sub) = m.get("Fn::Sub") {
                let (template, vars) = match sub {
                    Value::String(s) => (s.as_str(), None),
                    Value::Array(a) => (a.first().and_then(Value::as_str).unwrap_or(""), a.get(1)),
                    _ => ("", None),
                };
                for name in crate::sub_variables(template) {
                    let root = name.split('.').next().unwrap_or(&name).to_string();
                    let local = vars.and_then(|v| v.get(&root)).is_some();
                    if !root.starts_with("AWS::") && !local {
                        out.insert(root);
                    }
                }
            }
            m.values().for_each(|x| referenced_ids(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| referenced_ids(x, out)),
        _ => {}
    }
}

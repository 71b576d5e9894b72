//! The record itself as pretty JSON: the stable field names of [`crate::record`].

use crate::record::BakeRecord;

pub fn render(record: &BakeRecord) -> String {
    let mut s = serde_json::to_string_pretty(record).expect("a bake record serialises");
    s.push('\n');
    s
}

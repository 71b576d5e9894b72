//! Which property changes replace a resource, per resource type: embedded from
//! `stacks/data/replacement.tsv` (see `stacks/data/NOTICE.md` for its source and version).

use std::collections::BTreeMap;
use std::sync::Mutex;

const DATA: &str = include_str!("../../data/replacement.tsv");

/// The properties of one resource type whose change replaces it.
#[derive(Debug, Default)]
pub struct TypeRules {
    pub always: Vec<&'static str>,
    pub maybe: Vec<&'static str>,
}

fn parse_line(line: &'static str) -> TypeRules {
    let mut cols = line.split('\t').skip(1);
    let mut list = || -> Vec<&'static str> {
        cols.next()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .collect()
    };
    let always = list();
    let maybe = list();
    TypeRules { always, maybe }
}

/// The data line of a type, found by a text search: a diff touches a handful of the
/// thousand-odd types, so only those are ever parsed.
fn find_line(resource_type: &str) -> Option<&'static str> {
    if resource_type.is_empty() || resource_type.contains(['\t', '\n']) {
        return None;
    }
    let needle = format!("\n{resource_type}\t");
    let start = DATA.find(&needle)? + 1;
    let end = DATA[start..].find('\n').map_or(DATA.len(), |e| start + e);
    Some(&DATA[start..end])
}

/// The rules of a type, or `None` for a type the data does not know (custom resources,
/// third-party types, newer types).
pub fn rules(resource_type: &str) -> Option<&'static TypeRules> {
    // Each type's rules are parsed once and kept for the life of the process.
    static CACHE: Mutex<BTreeMap<String, Option<&'static TypeRules>>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = cache.get(resource_type) {
        return *found;
    }
    let found = find_line(resource_type).map(|line| &*Box::leak(Box::new(parse_line(line))));
    cache.insert(resource_type.to_string(), found);
    found
}

/// The package and version the data came from.
pub fn source() -> &'static str {
    DATA.lines()
        .next()
        .and_then(|l| l.split('\t').nth(1))
        .unwrap_or("unknown")
}

/// How many resource types the data covers.
pub fn type_count() -> usize {
    DATA.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_the_rails_generate_is_known() {
        for t in [
            "AWS::SSM::Parameter",
            "AWS::S3::Bucket",
            "AWS::S3::BucketPolicy",
            "AWS::SQS::Queue",
            "AWS::SQS::QueuePolicy",
            "AWS::SNS::Topic",
            "AWS::SNS::Subscription",
            "AWS::SNS::TopicPolicy",
            "AWS::CloudWatch::Alarm",
            "AWS::KMS::Key",
        ] {
            assert!(rules(t).is_some(), "{t}");
        }
        assert!(rules("AWS::SQS::Queue")
            .unwrap()
            .always
            .contains(&"QueueName"));
        assert!(rules("AWS::S3::Bucket")
            .unwrap()
            .always
            .contains(&"BucketName"));
        assert!(rules("Custom::Thing").is_none());
        assert!(type_count() > 1000);
        assert!(source().starts_with("@aws-cdk/aws-service-spec@"));
    }
}

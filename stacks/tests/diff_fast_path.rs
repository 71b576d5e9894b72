//! `diff_texts` parses only the resources whose text differs, and those that refer to a
//! resource that may be replaced. It must give exactly what parsing both templates whole and
//! comparing them gives. Checked on generated template pairs with every kind of change the
//! diff knows, references in each spelling, and resources whose text differs with the same
//! meaning.

use serde_json::{json, Map, Value};
use stacks::diff::{self, DiffOptions, Replacement};

/// A small deterministic generator (no seed file to keep, the same pairs every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A reference to `id` in one of the spellings CloudFormation accepts.
fn reference(rng: &mut Rng, id: &str) -> Value {
    match rng.below(5) {
        0 => json!({"Ref": id}),
        1 => json!({"Fn::GetAtt": [id, "Arn"]}),
        2 => json!({"Fn::GetAtt": format!("{id}.Arn")}),
        3 => json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:x:${{{id}}}")}),
        _ => json!({"Fn::Sub": format!("${{{id}.Arn}}/*")}),
    }
}

/// A template of `n` resources, each of a type with create-only and mutable properties, many
/// referring to earlier ones (so that replacement can spread along chains).
fn template(rng: &mut Rng, n: usize) -> Map<String, Value> {
    let mut resources = Map::new();
    for i in 0..n {
        let id = format!("R{i}");
        let earlier = (i > 0).then(|| format!("R{}", rng.below(i as u64)));
        let link = |rng: &mut Rng| match &earlier {
            Some(e) if rng.chance(70) => reference(rng, e),
            _ => json!(format!("literal-{i}")),
        };
        let resource = match rng.below(4) {
            0 => json!({"Type": "AWS::SQS::Queue", "Properties": {
                "QueueName": format!("q{i}"), "VisibilityTimeout": 30,
                "RedrivePolicy": {"deadLetterTargetArn": link(rng), "maxReceiveCount": 5}}}),
            1 => json!({"Type": "AWS::SSM::Parameter", "Properties": {
                "Name": link(rng), "Type": "String", "Value": link(rng)}}),
            2 => json!({"Type": "AWS::S3::BucketPolicy", "Properties": {
                "Bucket": link(rng), "PolicyDocument": {"Statement": [{"Resource": link(rng)}]}}}),
            _ => json!({"Type": "AWS::SNS::Topic", "Properties": {
                "TopicName": format!("t{i}"), "DisplayName": link(rng)}}),
        };
        resources.insert(id, resource);
    }
    resources
}

/// The same template with some resources changed: literal create-only values, mutable
/// values, types, attributes; some added, some removed; some only respelled.
fn mutate(rng: &mut Rng, old: &Map<String, Value>) -> Map<String, Value> {
    let mut new = old.clone();
    let ids: Vec<String> = old.keys().cloned().collect();
    for id in &ids {
        if !rng.chance(12) {
            continue;
        }
        let r = new.get_mut(id).unwrap();
        let props = r["Properties"].as_object_mut().unwrap();
        match rng.below(9) {
            0 => {
                for key in ["QueueName", "TopicName"] {
                    if let Some(v) = props.get_mut(key) {
                        *v = json!(format!("{}-renamed", v.as_str().unwrap_or("x")));
                    }
                }
            }
            1 => {
                props.insert("VisibilityTimeout".into(), json!(60));
            }
            2 => {
                props.insert("DisplayName".into(), json!({"Ref": "AWS::StackName"}));
            }
            3 => r["Type"] = json!("AWS::SNS::Topic"),
            4 => r["DeletionPolicy"] = json!("Retain"),
            5 => r["DependsOn"] = json!(ids[0].clone()),
            6 => {
                new.remove(id);
            }
            // The same meaning in other text: keys in another order.
            7 => {
                let reordered: Map<String, Value> = props
                    .iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                *props = reordered;
            }
            _ => {
                if let Some(Value::String(n)) = props.get("Name") {
                    let n = n.clone();
                    props.insert("Name".into(), json!(format!("{n}2")));
                }
            }
        }
    }
    for k in 0..rng.below(3) {
        new.insert(
            format!("Added{k}"),
            json!({"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": ids[0].clone()}}}),
        );
    }
    new
}

fn whole(old: &str, new: &str) -> diff::TemplateDiff {
    let old = diff::parse_template(old, "old").unwrap();
    let new = diff::parse_template(new, "new").unwrap();
    diff::diff_templates(&old, &new, &DiffOptions::default())
}

fn fast(old: &str, new: &str) -> diff::TemplateDiff {
    diff::diff_texts((old, "old"), (new, "new"), &DiffOptions::default()).unwrap()
}

fn doc(resources: &Map<String, Value>) -> Value {
    json!({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources})
}

#[test]
fn generated_pairs_give_the_whole_diff() {
    let mut rng = Rng(7);
    let mut spread = 0;
    for round in 0..300 {
        let old = template(&mut rng, 5 + round % 40);
        let new = mutate(&mut rng, &old);
        // Compact and pretty text: the comparison does not depend on the layout.
        let old_text = serde_json::to_string(&doc(&old)).unwrap();
        let new_text = if round % 2 == 0 {
            serde_json::to_string_pretty(&doc(&new)).unwrap()
        } else {
            serde_json::to_string(&doc(&new)).unwrap()
        };
        let expected = whole(&old_text, &new_text);
        assert_eq!(fast(&old_text, &new_text), expected, "round {round}");
        // Replacement that reached a resource whose text is the same on both sides.
        spread += expected
            .resources
            .iter()
            .filter(|r| {
                let same = old.get(&r.logical_id) == new.get(&r.logical_id);
                same && r
                    .changes
                    .iter()
                    .any(|c| c.replacement != Replacement::Never)
            })
            .count();
    }
    assert!(
        spread > 20,
        "only {spread} replacements spread to unchanged text"
    );
}

#[test]
fn replacement_spreads_along_a_chain_of_unchanged_resources() {
    // Queue A is renamed (replaced). Parameter B names itself after A's name (create-only:
    // replaced in turn), C's value is B's name, D's refers to C.
    let old = json!({"Resources": {
        "A": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "a"}},
        "B": {"Type": "AWS::SSM::Parameter", "Properties":
            {"Name": {"Fn::GetAtt": ["A", "QueueName"]}, "Type": "String", "Value": "v"}},
        "C": {"Type": "AWS::SSM::Parameter", "Properties":
            {"Name": {"Fn::Sub": "${B}-c"}, "Type": "String", "Value": "v"}},
        "D": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Ref": "C"}}},
        "E": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "AB"}}
    }});
    let mut new = old.clone();
    new["Resources"]["A"]["Properties"]["QueueName"] = json!("a2");
    let (old_text, new_text) = (old.to_string(), new.to_string());
    let d = fast(&old_text, &new_text);
    assert_eq!(d, whole(&old_text, &new_text));
    let ids: Vec<&str> = d.resources.iter().map(|r| r.logical_id.as_str()).collect();
    assert_eq!(ids, ["A", "B", "C", "D"], "E only spells A in a literal");
    // B's text changes too, in a way that replaces nothing by itself: its replacement still
    // comes from A, and still reaches C and D.
    new["Resources"]["B"]["DeletionPolicy"] = json!("Retain");
    let (old_text, new_text) = (old.to_string(), new.to_string());
    let d = fast(&old_text, &new_text);
    assert_eq!(d, whole(&old_text, &new_text));
    let ids: Vec<&str> = d.resources.iter().map(|r| r.logical_id.as_str()).collect();
    assert_eq!(ids, ["A", "B", "C", "D"]);
}

#[test]
fn an_escaped_reference_is_still_found() {
    // `\u0041` is `A`: the text of B does not spell A, its value refers to it.
    let old = r#"{"Resources": {
        "A": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "a"}},
        "B": {"Type": "AWS::SSM::Parameter", "Properties":
            {"Name": {"Fn::GetAtt": ["\u0041", "QueueName"]}, "Type": "String", "Value": "v"}}}}"#;
    let new = old.replacen(r#""QueueName": "a""#, r#""QueueName": "a2""#, 1);
    let d = fast(old, &new);
    assert_eq!(d, whole(old, &new));
    assert_eq!(d.resources.len(), 2, "{:?}", d.resources);
}

#[test]
fn yaml_and_odd_json_are_read_whole() {
    let yaml = "Resources:\n  A:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: a\n";
    let json =
        r#"{"Resources": {"A": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "b"}}}}"#;
    assert_eq!(fast(yaml, json), whole(yaml, json));
    // A logical id twice: the last one counts, as in a whole read.
    let twice =
        r#"{"Resources": {"A": {"Type": "AWS::SQS::Queue"}, "A": {"Type": "AWS::SNS::Topic"}}}"#;
    assert_eq!(fast(json, twice), whole(json, twice));
    // Errors are the same too.
    let broken = "{\n\"Resources\": {\n}, }";
    let e = diff::diff_texts((broken, "a.json"), (json, "b"), &DiffOptions::default()).unwrap_err();
    assert_eq!(e, diff::parse_template(broken, "a.json").unwrap_err());
}

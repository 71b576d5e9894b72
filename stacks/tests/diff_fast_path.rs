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
        // The same pair in block YAML: most resources are the same lines on both sides, and
        // most of those plain enough to be cut on the old side too.
        let old_yaml = serde_norway::to_string(&doc(&old)).unwrap();
        let new_yaml = serde_norway::to_string(&doc(&new)).unwrap();
        assert_eq!(
            fast(&old_yaml, &new_yaml),
            whole(&old_yaml, &new_yaml),
            "round {round}, YAML"
        );
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
    // Errors are the same too.
    let broken = "{\n\"Resources\": {\n}, }";
    let e = diff::diff_texts((broken, "a.json"), (json, "b"), &DiffOptions::default()).unwrap_err();
    assert_eq!(e, diff::parse_template(broken, "a.json").unwrap_err());
}

/// Both ways of reading refuse `text`, compared with `other` either way, and the fast one's
/// message names it (or `other`, when that cannot be read either) and holds each of `words`.
fn refused(text: &str, other: &str, words: &[&str]) {
    let options = DiffOptions::default();
    assert!(
        diff::parse_template(text, "bad.json").is_err(),
        "read whole: {text:.200}"
    );
    let other_bad = diff::parse_template(other, "other.json").is_err();
    for (old, new) in [
        ((text, "bad.json"), (other, "other.json")),
        ((other, "other.json"), (text, "bad.json")),
    ] {
        let e = diff::diff_texts(old, new, &options).expect_err(&text[..text.len().min(200)]);
        let message = e.to_string();
        assert!(
            message.starts_with("bad.json") || other_bad && message.starts_with("other.json"),
            "{message}"
        );
        for w in words {
            assert!(message.contains(w), "{w:?} not in {message}");
        }
    }
}

/// A template of a role and a queue; the role's policy allows `action` on `resource`, and the
/// queue's `Metadata` holds `metadata`.
fn policy_template(action: &str, resource: &str, metadata: &str) -> String {
    format!(
        r#"{{"Resources": {{
  "Role": {{"Type": "AWS::IAM::Role", "Metadata": {{"note": {metadata}}}, "Properties": {{
    "AssumeRolePolicyDocument": {{"Statement": [{{"Effect": "Allow",
      "Principal": {{"Service": "lambda.amazonaws.com"}}, "Action": "sts:AssumeRole"}}]}},
    "Policies": [{{"PolicyName": "p", "PolicyDocument": {{"Statement": [
      {{"Effect": "Allow", "Action": "{action}", "Resource": "{resource}"}}]}}}}]}}}},
  "Queue": {{"Type": "AWS::SQS::Queue", "Metadata": {{"note": {metadata}}}}}
}}}}"#
    )
}

/// `n` nested lists.
fn nested(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

#[test]
fn a_value_too_deep_to_read_is_an_error_never_a_null() {
    // 130 levels in `Metadata`, past serde_json's limit of 128: it used to be read as null on
    // both sides, and the policy widened to `*` beside it was "No changes.".
    let deep = nested(130);
    let old = policy_template("sqs:SendMessage", "arn:aws:sqs:eu-west-1:1:q", &deep);
    let new = policy_template("*", "*", &deep);
    refused(
        &old,
        &new,
        &["resource Role", "nested deeper than 100 levels"],
    );
    // Deep on one side only: the other side's real values are not hidden either.
    let shallow = policy_template("*", "*", "1");
    refused(&old, &shallow, &["resource Role", "deeper"]);
    // Only the queue is deep, and it is the same text on both sides: still read, still refused.
    let queue_deep = |action: &str| {
        policy_template(action, "*", "1").replace(
            r#""Queue": {"Type": "AWS::SQS::Queue", "Metadata": {"note": 1}}"#,
            &format!(r#""Queue": {{"Type": "AWS::SQS::Queue", "Metadata": {{"note": {deep}}}}}"#),
        )
    };
    assert!(queue_deep("*").contains(&deep));
    refused(
        &queue_deep("*"),
        &queue_deep("s3:GetObject"),
        &["resource Queue"],
    );
    // Between the limit here and the parser's, and in another section.
    let just_over = policy_template("*", "*", &nested(99));
    refused(&just_over, &shallow, &["resource Role", "deeper"]);
    let in_outputs = format!(
        r#"{{"Resources": {{}}, "Outputs": {{"O": {{"Value": {}}}}}}}"#,
        nested(120)
    );
    refused(
        &in_outputs,
        r#"{"Resources": {}}"#,
        &["`Outputs`", "deeper"],
    );
    // At the limit it reads, and the widening shows.
    let at_limit = nested(MAX_VALUE_DEPTH);
    let old = policy_template("sqs:SendMessage", "arn:aws:sqs:eu-west-1:1:q", &at_limit);
    let new = policy_template("*", "*", &at_limit);
    let d = fast(&old, &new);
    assert_eq!(d, whole(&old, &new));
    let role = d.resources.iter().find(|r| r.logical_id == "Role").unwrap();
    assert!(
        role.changes.iter().any(|c| c.new == Some(json!("*"))),
        "{role:?}"
    );
}

/// The deepest list a resource's `Metadata.note` may hold: the template is level 1,
/// `Resources` 2, the resource 3, `Metadata` 4.
const MAX_VALUE_DEPTH: usize = diff::MAX_DEPTH - 4;

#[test]
fn yaml_too_deep_to_read_is_an_error() {
    let yaml = |action: &str, depth: usize| {
        format!(
            "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Metadata:\n      note: {}\n    Properties:\n      Policies:\n      - PolicyName: p\n        PolicyDocument:\n          Statement:\n          - {{Effect: Allow, Action: '{action}', Resource: '*'}}\n",
            nested(depth)
        )
    };
    for depth in [MAX_VALUE_DEPTH + 1, 130] {
        let e = diff::diff_texts(
            (&yaml("s3:GetObject", depth), "old.yaml"),
            (&yaml("*", depth), "new.yaml"),
            &DiffOptions::default(),
        )
        .unwrap_err();
        let message = e.to_string();
        assert!(message.starts_with("old.yaml"), "{message}");
        assert!(message.contains("resource Role"), "{message}");
    }
    assert!(
        fast(
            &yaml("s3:GetObject", MAX_VALUE_DEPTH),
            &yaml("*", MAX_VALUE_DEPTH)
        )
        .has_changes
    );
}

#[test]
fn sections_and_resources_that_are_not_mappings_are_errors() {
    let ok = r#"{"Resources": {"A": {"Type": "AWS::SQS::Queue"}}}"#;
    refused(r#"{"Resources": 5}"#, ok, &["`Resources`", "not a mapping"]);
    refused(
        r#"{"Resources": [1]}"#,
        ok,
        &["`Resources`", "not a mapping"],
    );
    refused(
        r#"{"Resources": {}, "Outputs": "x"}"#,
        ok,
        &["`Outputs`", "not a mapping"],
    );
    refused(
        r#"{"Resources": {"A": 5}}"#,
        ok,
        &["resource A", "not a mapping"],
    );
    refused(
        r#"{"Resources": {"A": {"Properties": {}}}}"#,
        ok,
        &["resource A", "`Type`"],
    );
    refused(
        r#"{"Resources": {"A": {"Type": "AWS::SQS::Queue", "Properties": []}}}"#,
        ok,
        &["resource A", "`Properties`"],
    );
    // The same in YAML.
    for yaml in [
        "Resources: 5\n",
        "Resources:\n  A: [1]\n",
        "Resources: {}\nParameters: 3\n",
    ] {
        let e = diff::diff_texts((yaml, "bad.yaml"), (ok, "ok"), &DiffOptions::default());
        assert!(
            e.as_ref()
                .is_err_and(|e| e.to_string().starts_with("bad.yaml")),
            "{yaml}: {e:?}"
        );
    }
}

#[test]
fn a_key_twice_is_an_error_at_any_depth() {
    let ok = r#"{"Resources": {"A": {"Type": "AWS::SQS::Queue"}}}"#;
    // A reader of the text may see the first, a parser keeps the last: neither is taken.
    refused(
        r#"{"Resources": {"A": {"Type": "AWS::SQS::Queue"}, "A": {"Type": "AWS::SNS::Topic"}}}"#,
        ok,
        &["duplicate key `A`"],
    );
    let policy = |statement: &str| {
        format!(
            r#"{{"Resources": {{"P": {{"Type": "AWS::IAM::Policy", "Properties": {{"PolicyDocument": {{"Statement": [{statement}]}}}}}}}}}}"#
        )
    };
    let twice = policy(r#"{"Effect": "Allow", "Action": "s3:GetObject", "Action": "*"}"#);
    refused(
        &twice,
        &policy("{}"),
        &["resource P", "duplicate key `Action`"],
    );
    // Spelled otherwise, the same key.
    let escaped = policy(r#"{"Action": "s3:GetObject", "\u0041ction": "*"}"#);
    refused(
        &escaped,
        &policy("{}"),
        &["resource P", "duplicate key `Action`"],
    );
    // In a resource whose text is the same on both sides.
    let same = r#"{"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "a", "QueueName": "b"}}, "T": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "{}"}}}}"#;
    refused(
        same,
        &same.replace(r#""TopicName": "{}""#, r#""TopicName": "t""#),
        &["resource Q"],
    );
    // There, in a mapping long enough to be looked up by hash, and spelled otherwise.
    let long: String = (0..30)
        .map(|i| format!(r#""K{i}": 1, "#))
        .chain([r#""K\u0032\u0030": 2"#.to_string()])
        .collect();
    // (The other resource's change replaces nothing, so nothing reaches `Q` to read it whole.)
    let same = same
        .replace(r#""QueueName": "a", "QueueName": "b""#, &long)
        .replace("TopicName", "DisplayName");
    refused(
        &same,
        &same.replace(r#""DisplayName": "{}""#, r#""DisplayName": "t""#),
        &["resource Q", "duplicate key `K20`"],
    );
}

#[test]
fn block_yaml_with_the_same_resource_text_gives_the_whole_parse_report() {
    // Dlq is renamed (replaced); Queue's text is the same but refers to it, so it is reached;
    // Other is the same and unreached; Alias's text is the same but an alias elsewhere changes
    // what it means, and Tail's text is the same but its value runs on in a flow mapping.
    let side = |dlq: &str, anchor: &str| {
        format!(
            "AWSTemplateFormatVersion: '2010-09-09'\nAnchors: &a {anchor}\nResources:\n  Dlq:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: {dlq}\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: q\n      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt Dlq.Arn\n  Other:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: t\n  Alias:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: *a\n"
        )
    };
    let (old, new) = (side("d", "x"), side("d2", "y"));
    let report = fast(&old, &new);
    assert_eq!(report, whole(&old, &new));
    let ids: Vec<&str> = report
        .resources
        .iter()
        .map(|r| r.logical_id.as_str())
        .collect();
    assert!(
        ids.contains(&"Dlq") && ids.contains(&"Queue") && ids.contains(&"Alias"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"Other"), "{ids:?}");
    // Without the alias, unchanged text is skipped and the report is still the whole one.
    let plain = |dlq: &str| side(dlq, "x").replace("*a", "z");
    assert_eq!(
        fast(&plain("d"), &plain("d2")),
        whole(&plain("d"), &plain("d2"))
    );
    // A block side against a flow side: the same line text, other values.
    let block = "Resources:\n  A:\n    Type: X\n    Properties: {P: 'a,'}\n  B:\n    Type: X\n";
    let flow = "Resources: {\n  A: {Type: X, Properties: {P: a}},\n  B: {Type: X}\n  }\n";
    assert_eq!(fast(block, flow), whole(block, flow));
    assert!(fast(block, flow).has_changes);
    // `B`'s lines are the same on both sides and plain, but on the old side they are inside a
    // flow mapping, where they mean something else: the old side is read whole too.
    let flow = "Resources:\n  {\n  A: {Type: X},\n  B:\n    Type: X\n  }\n";
    let block = "Resources:\n  A:\n    Type: Y\n  B:\n    Type: X\n";
    match (
        diff::diff_texts((flow, "old"), (block, "new"), &DiffOptions::default()),
        diff::parse_template(flow, "old"),
    ) {
        (Ok(report), Ok(_)) => assert_eq!(report, whole(flow, block)),
        (Err(_), Err(_)) => {}
        (fast, whole) => panic!("fast {fast:?}, whole {whole:?}"),
    }
}

/// The diff of `old` and `new` is an error naming each of `words`, the same error as the
/// whole reading of `old` gives.
fn the_whole_readings_error(old: &str, new: &str, words: &[&str]) {
    let e = diff::diff_texts((old, "old"), (new, "new"), &DiffOptions::default())
        .unwrap_err()
        .to_string();
    for w in words {
        assert!(e.contains(w), "{w:?} in {e}\n{old}");
    }
    let whole = diff::parse_template(old, "old").unwrap_err().to_string();
    assert_eq!(e, whole, "{old}");
}

#[test]
fn yaml_resources_left_out_for_the_same_text_that_are_not_resources_are_errors() {
    // `Same` has the same lines on both sides and is left out of what is built; the stub it
    // is cut to on the new side is `Same:` alone, a null. The same text on the old side must
    // still be refused for what it is, even where it looks just like a stub.
    let side = |name: &str, same: &str| {
        format!(
            "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: {name}\n{same}  Last:\n    Type: AWS::SNS::Topic\n"
        )
    };
    for (same, words) in [
        (
            "  Same:\n",
            &["old", "resource Same", "null, not a mapping"][..],
        ),
        (
            "  Same: ~\n",
            &["old", "resource Same", "null, not a mapping"][..],
        ),
        ("  Same: 5\n", &["old", "resource Same", "a number"][..]),
        ("  Same: []\n", &["old", "resource Same", "a list"][..]),
        (
            "  Same:\n    Properties: {}\n",
            &["old", "resource Same", "no `Type`"][..],
        ),
        (
            "  Same:\n    Type: AWS::SNS::Topic\n  Same:\n    Type: AWS::SNS::Topic\n",
            &["old", "duplicate key `Same`"][..],
        ),
    ] {
        the_whole_readings_error(&side("a", same), &side("b", same), words);
    }
}

#[test]
fn yaml_outputs_left_out_for_the_same_text_are_still_read_and_still_export() {
    // `Same` has the same lines on both sides: it is left out of what is built, but what it
    // holds must still be readable, and its export name still counts as exported.
    let side = |name: &str, outputs: &str| {
        format!(
            "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: {name}\nOutputs:\n{outputs}  Last:\n    Value: 1\n"
        )
    };
    for (same, words) in [
        (
            format!("  Same:\n    Value: {}\n", nested(130)),
            &["old", "nested deeper"][..],
        ),
        (
            "  Same:\n    Value: a\n    Value: b\n".to_string(),
            &["old", "`Outputs`", "duplicate key `Value`"][..],
        ),
        (
            "  Same:\n    Value: !Bogus a\n".to_string(),
            &["old", "!Bogus"][..],
        ),
        (
            "  Same:\n    Value: a\n  Same:\n    Value: a\n".to_string(),
            &["old", "duplicate key `Same`"][..],
        ),
    ] {
        the_whole_readings_error(&side("a", &same), &side("b", &same), words);
    }
    // An export name that a removed output had is still exported by one left out: no flag.
    // Removing the one left out instead is flagged.
    let export = |name: &str, key: &str| {
        format!("  {key}:\n    Value: !GetAtt Topic.TopicName\n    Export:\n      Name: !Sub '${{AWS::StackName}}-{name}'\n")
    };
    let kept = export("topic", "Kept");
    let old = side("a", &format!("{}{kept}", export("topic", "Gone")));
    let new = side("b", &kept);
    let report = fast(&old, &new);
    assert_eq!(report, whole(&old, &new));
    assert!(report.flags.is_empty(), "{:?}", report.flags);
    let old = side("a", &format!("{kept}{}", export("other", "Also")));
    let new = side("b", &export("other", "Also"));
    let report = fast(&old, &new);
    assert_eq!(report, whole(&old, &new));
    assert!(
        report.flags.iter().any(|f| f.message.contains("-topic")),
        "{:?}",
        report.flags
    );
}

#[test]
fn yaml_outputs_and_resources_left_out_in_any_order_and_sharing_names() {
    // An output named as a resource, Outputs before Resources, a section named twice, an
    // output that is a scalar or a list: the same report or error as the whole reading.
    let resources = |name: &str| {
        format!(
            "Resources:\n  X:\n    Type: AWS::SNS::Topic\n  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: {name}\n"
        )
    };
    let outputs = "Outputs:\n  X:\n    Value: !Ref X\n  Y: 5\n  Z:\n  - a\n  - b\n";
    for (old, new) in [
        (
            format!("{}{outputs}", resources("a")),
            format!("{}{outputs}", resources("b")),
        ),
        (
            format!("{outputs}{}", resources("a")),
            format!("{outputs}{}", resources("b")),
        ),
        (
            format!("{outputs}{}{outputs}", resources("a")),
            format!("{outputs}{}{outputs}", resources("b")),
        ),
        (
            format!("{}{}", resources("a"), resources("a")),
            format!("{}{}", resources("b"), resources("a")),
        ),
    ] {
        let fast = diff::diff_texts((&old, "old"), (&new, "new"), &DiffOptions::default());
        let whole = diff::parse_template(&old, "old").and_then(|o| {
            diff::parse_template(&new, "new")
                .map(|n| diff::diff_templates(&o, &n, &DiffOptions::default()))
        });
        match (fast, whole) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{old}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{old}"),
            (a, b) => panic!("fast {a:?}\nwhole {b:?}\n{old}"),
        }
    }
}

#[test]
fn yaml_resources_skipped_for_the_same_text_are_still_read() {
    // `Same` has the same lines on both sides, so the YAML reader does not build it; what it
    // holds must still be readable, and it is still reached through a `${...}`.
    let side = |name: &str, same: &str| {
        format!(
            "Resources:\n  Dlq:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: {name}\n  Same:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Type: String\n      Value: !Sub 'arn:${{Dlq.Arn}}'\n{same}  Last:\n    Type: AWS::SNS::Topic\n"
        )
    };
    let ok = |name: &str| side(name, "      Name: /svc/p\n");
    let (old, new) = (ok("d"), ok("d2"));
    let report = fast(&old, &new);
    assert_eq!(report, whole(&old, &new));
    assert!(
        report.resources.iter().any(|r| r.logical_id == "Same"),
        "reached through ${{Dlq.Arn}}: {report:?}"
    );
    for (same, words) in [
        (
            format!("      Note: {}\n", nested(130)),
            &["old", "resource Same", "nested deeper"][..],
        ),
        (
            "      Name: a\n      Name: b\n".to_string(),
            &["old", "resource Same", "duplicate key `Name`"][..],
        ),
        ("      Name: !Bogus a\n".to_string(), &["old", "!Bogus"][..]),
        (
            "      Name: 123456789012345678901234567890\n".to_string(),
            &["old", "out of range"][..],
        ),
    ] {
        let (old, new) = (side("d", &same), side("d2", &same));
        let e = diff::diff_texts((&old, "old"), (&new, "new"), &DiffOptions::default())
            .unwrap_err()
            .to_string();
        for w in words {
            assert!(e.contains(w), "{w:?} in {e}");
        }
    }
    // A key twice in a mapping long enough to be looked up by hash, in a skipped resource
    // that nothing reaches (the other change replaces nothing).
    let long: String = (0..30)
        .map(|i| format!("      K{i}: 1\n"))
        .chain(["      K20: 2\n".to_string()])
        .collect();
    let long_side = |name: &str| {
        format!("Resources:\n  Same:\n    Type: AWS::SSM::Parameter\n    Metadata:\n{long}  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: {name}\n")
    };
    let e = diff::diff_texts(
        (&long_side("a"), "old"),
        (&long_side("b"), "new"),
        &DiffOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("resource Same") && e.contains("duplicate key `K20`"),
        "{e}"
    );
    // An anchor in a skipped resource, its alias in a changed one: read whole.
    let anchored = |name: &str| {
        side(name, "      Name: &n /svc/p\n").replace(
            "  Last:\n    Type: AWS::SNS::Topic\n",
            &format!("  Last:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: *n\n      DisplayName: {name}\n"),
        )
    };
    let (old, new) = (anchored("d"), anchored("d2"));
    assert_eq!(fast(&old, &new), whole(&old, &new));
}

#[test]
fn yaml_lines_that_mean_something_else_on_the_new_side_are_read_whole() {
    // `X` has the same lines on both sides, but on the new side a quoted string opened in
    // `P` runs over them, or a literal block of `P` comes just before them: whatever the
    // parser makes of the new side, the report is that of reading both whole.
    let old = "Resources:\n  P:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: a\n  X:\n    Type: AWS::SNS::Topic\n  Z:\n    Type: AWS::SNS::Topic\n";
    let swallowed = "Resources:\n  P:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: \"a\n  X:\n    Type: AWS::SNS::Topic\n      \"\n  Z:\n    Type: AWS::SNS::Topic\n";
    let literal = "Resources:\n  P:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: |\n        a\n  X:\n    Type: AWS::SNS::Topic\n  Z:\n    Type: AWS::SNS::Topic\n";
    for new in [swallowed, literal] {
        let options = DiffOptions::default();
        let fast = diff::diff_texts((old, "old"), (new, "new"), &options);
        let whole = diff::parse_template(new, "new").map(|n| {
            diff::diff_templates(&diff::parse_template(old, "old").unwrap(), &n, &options)
        });
        match (fast, whole) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{new}"),
            (Err(a), Err(b)) => assert_eq!(a, b, "{new}"),
            (a, b) => panic!("{new}\nfast {a:?}\nwhole {b:?}"),
        }
    }
    // The parser refuses a quoted string whose lines are not indented past its mapping.
    let e = diff::diff_texts((old, "old"), (swallowed, "new"), &DiffOptions::default());
    assert!(
        e.as_ref().is_err_and(|e| e.message.contains("resource P")),
        "{e:?}"
    );
}

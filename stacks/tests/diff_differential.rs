//! The raw-text reading (`diff_texts`: resources whose text is the same on both sides are
//! only checked, not compared) against the whole-template parse (`parse_template` on both,
//! then `diff_templates`), on generated template pairs that include what an attacker or an
//! odd generator writes: values nested past the limits, keys twice, `\u` escapes, numbers too
//! large for a float, sections and resources that are not mappings, YAML tags (short forms and
//! unknown ones), references in every spelling and chains of them, and the same meaning in
//! other text. YAML is written in flow style and in block style, where resources whose lines
//! are the same on both sides are skipped by the YAML reader. Both must give the same report, or both an error.
//!
//! Cases: `DIFF_FUZZ_CASES` (512 by default), e.g.
//! `DIFF_FUZZ_CASES=100000 cargo test -p stacks --release --test diff_differential`.

#![expect(
    clippy::print_stderr,
    reason = "the tally of cases goes to the test log"
)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use stacks::diff::{self, DiffOptions};

/// A template value as text is written: keys may repeat, numbers are their spelling, and a
/// `Tag` is a YAML short form (`{"Fn::X": v}` in JSON).
#[derive(Clone, Debug)]
enum Node {
    Null,
    Bool(bool),
    Num(&'static str),
    Str(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
    /// `n` nested lists around a value.
    Deep(usize, Box<Node>),
    Tag(&'static str, Box<Node>),
}

const IDS: [&str; 5] = ["R0", "R1", "R2", "R3", "R4"];

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "R0", "R1", "R2.Arn", "R3.QueueName", "${R1}", "${R2.Arn}/*", "x-${R0}-${AWS::Region}",
            "*", "s3:*", "arn:aws:iam::123456789012:root", "0.0.0.0/0", "::/0", "10", "true",
            "a\"b\\c", "é", "\u{1F600}", "", "line\nbreak", "aws:cdk:path",
        ])
        .prop_map(str::to_string),
        1 => "[a-zA-Z0-9.${}*:/ -]{0,8}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "Action",
        "Resource",
        "Principal",
        "Effect",
        "Statement",
        "QueueName",
        "TopicName",
        "Name",
        "Value",
        "CidrIp",
        "Ref",
        "Fn::GetAtt",
        "Fn::Sub",
        "DependsOn",
        "a",
        "b",
        "aws:cdk:path",
    ])
    .prop_map(str::to_string)
}

fn number() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => prop::sample::select(vec!["0", "10", "-0", "1.0", "1e3", "0.1", "30", "60"]),
        // Past u64, past i64, past f64 (not finite), below the smallest f64.
        1 => prop::sample::select(vec![
            "18446744073709551615", "18446744073709551616", "-9223372036854775809",
            "123456789012345678901234567890", "1e400", "-1e400", "1E-400",
        ]),
    ]
}

/// A reference to a resource in one of the spellings CloudFormation accepts.
fn reference() -> impl Strategy<Value = Node> {
    (prop::sample::select(IDS.to_vec()), 0..6u8).prop_map(|(id, how)| {
        let s = |v: String| Box::new(Node::Str(v));
        match how {
            0 => Node::Map(vec![("Ref".into(), Node::Str(id.into()))]),
            1 => Node::Tag("Ref", s(id.into())),
            2 => Node::Map(vec![(
                "Fn::GetAtt".into(),
                Node::List(vec![Node::Str(id.into()), Node::Str("Arn".into())]),
            )]),
            3 => Node::Tag("GetAtt", s(format!("{id}.Arn"))),
            4 => Node::Map(vec![("Fn::GetAtt".into(), Node::Str(format!("{id}.Arn")))]),
            _ => Node::Tag("Sub", s(format!("arn:${{AWS::Partition}}:x:${{{id}}}"))),
        }
    })
}

fn value() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        1 => Just(Node::Null),
        1 => any::<bool>().prop_map(Node::Bool),
        2 => number().prop_map(Node::Num),
        5 => string().prop_map(Node::Str),
        3 => reference(),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            12 => prop::collection::vec(inner.clone(), 0..4).prop_map(Node::List),
            16 => prop::collection::btree_map(key(), inner.clone(), 0..4)
                .prop_map(|m| Node::Map(m.into_iter().collect())),
            // Keys that may repeat.
            1 => prop::collection::vec((key(), inner.clone()), 2..4).prop_map(Node::Map),
            1 => (prop::sample::select(vec![1usize, 50, 90, 93, 94, 95, 96, 97, 126, 130, 300]),
                  inner.clone())
                .prop_map(|(n, v)| Node::Deep(n, Box::new(v))),
            3 => (prop::sample::select(vec!["Join", "If", "Select", "Base64"]), inner.clone())
                .prop_map(|(t, v)| Node::Tag(t, Box::new(v))),
            1 => inner.prop_map(|v| Node::Tag("Bogus", Box::new(v))),
        ]
    })
}

fn resource() -> impl Strategy<Value = Node> {
    let types = prop::sample::select(vec![
        "AWS::SQS::Queue",
        "AWS::SNS::Topic",
        "AWS::SSM::Parameter",
        "AWS::IAM::Role",
        "AWS::EC2::SecurityGroup",
        "AWS::S3::Bucket",
        "Custom::Thing",
    ]);
    let props = prop::collection::btree_map(
        prop::sample::select(vec![
            "QueueName",
            "TopicName",
            "Name",
            "Value",
            "DisplayName",
            "PolicyDocument",
            "SecurityGroupIngress",
            "VisibilityTimeout",
            "BucketName",
        ])
        .prop_map(str::to_string),
        value(),
        0..4,
    )
    .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    prop_oneof![
        40 => (types, props, prop::option::of(value()), prop::option::of(reference()))
            .prop_map(|(t, p, metadata, depends)| {
                let mut m = vec![("Type".into(), Node::Str(t.into())), ("Properties".into(), Node::Map(p))];
                if let Some(v) = metadata {
                    m.push(("Metadata".into(), Node::Map(vec![("note".into(), v)])));
                }
                if let Some(Node::Map(r)) = depends {
                    if let Some((_, Node::Str(id))) = r.into_iter().next() {
                        m.push(("DependsOn".into(), Node::Str(id)));
                    }
                }
                Node::Map(m)
            }),
        // Not a resource CloudFormation reads.
        1 => value(),
    ]
}

/// Output names: one may repeat, and one is a name a template's mappings are normalized by.
const OUTPUTS: [&str; 4] = ["O1", "O2", "O3", "DependsOn"];

/// An output: a value and, mostly, an export whose name other outputs may share.
fn output() -> impl Strategy<Value = Node> {
    (
        value(),
        prop::option::weighted(0.8, prop::sample::select(vec!["e1", "e2", "e3"])),
    )
        .prop_map(|(v, export)| {
            let mut m = vec![("Value".to_string(), v)];
            if let Some(e) = export {
                m.push((
                    "Export".into(),
                    Node::Map(vec![("Name".into(), Node::Str(e.into()))]),
                ));
            }
            Node::Map(m)
        })
}

/// A template: resources `R0`.. (ids may repeat), sometimes outputs and other sections,
/// sometimes a `Resources` that is not a mapping.
fn template() -> impl Strategy<Value = Vec<(String, Node)>> {
    (
        prop::collection::btree_map(prop::sample::select(IDS.to_vec()), resource(), 0..6),
        prop::option::of(prop::collection::btree_map(
            prop::sample::select(OUTPUTS[..3].to_vec()),
            output(),
            0..4,
        )),
        0..60u8,
    )
        .prop_map(|(resources, outputs, odd)| {
            let mut resources: Vec<(String, Node)> = resources
                .into_iter()
                .map(|(id, r)| (id.to_string(), r))
                .collect();
            // A logical id twice.
            if odd == 3 && !resources.is_empty() {
                resources.push(resources[0].clone());
            }
            let mut t = vec![(
                "Resources".to_string(),
                match odd {
                    0 => Node::Num("5"),
                    1 => Node::List(vec![]),
                    _ => Node::Map(resources),
                },
            )];
            if let Some(o) = outputs {
                let mut o: Vec<(String, Node)> = o
                    .into_iter()
                    .map(|(name, o)| (name.to_string(), o))
                    .collect();
                match (odd, o.first().cloned()) {
                    // An output name twice.
                    (4, Some(first)) => o.push(first),
                    // A name a mapping is normalized by.
                    (5, Some((_, first))) => o[0] = (OUTPUTS[3].into(), first),
                    _ => {}
                }
                t.push(("Outputs".into(), Node::Map(o)));
            }
            if odd == 2 {
                t.push(("Resources".into(), Node::Map(vec![])));
            }
            t
        })
}

/// The new side: per resource, kept, respelled, changed, replaced or removed; some added.
/// A template's top-level entries, in order (a key may repeat).
type Template = Vec<(String, Node)>;

fn pair() -> impl Strategy<Value = (Template, Template, Style, Style)> {
    (
        template(),
        prop::collection::vec((0..10u8, key(), value(), resource()), 6),
        prop::collection::vec((prop::sample::select(IDS.to_vec()), resource()), 0..2),
        prop::collection::vec((0..6u8, output()), 4),
        style(),
        // Half the pairs are written alike, as a change to one file is.
        (style(), any::<bool>()),
    )
        .prop_map(
            |(old, edits, added, output_edits, old_style, (new_style, alike))| {
                let new_style = if alike { old_style } else { new_style };
                let mut new = old.clone();
                // Per output: kept (mostly), replaced, removed, or its export renamed.
                if let Some((_, Node::Map(outputs))) = new.iter_mut().find(|(k, _)| k == "Outputs")
                {
                    let mut i = 0;
                    outputs.retain_mut(|(_, o)| {
                        let (op, other) = output_edits[i % output_edits.len()].clone();
                        i += 1;
                        match (op, o) {
                            (0, _) => return false,
                            (1, o) => *o = other,
                            (2, Node::Map(m)) => m.retain(|(k, _)| k != "Export"),
                            _ => {}
                        }
                        true
                    });
                    if output_edits[0].0 == 5 {
                        outputs.push(("O4".into(), output_edits[0].1.clone()));
                    }
                }
                if let Some((_, Node::Map(resources))) = new.first_mut() {
                    let mut i = 0;
                    resources.retain_mut(|(_, r)| {
                        let (op, key, value, other) = edits[i % edits.len()].clone();
                        i += 1;
                        match (op, r) {
                            (0, _) => return false,
                            (1, r) => *r = other,
                            (2 | 3, Node::Map(m)) => {
                                match m.iter_mut().find(|(k, _)| k == "Properties") {
                                    Some((_, Node::Map(p))) => p.push((key, value)),
                                    _ => m.push((key, value)),
                                }
                            }
                            // The same meaning in other text: keys in another order.
                            (4, Node::Map(m)) => m.reverse(),
                            _ => {}
                        }
                        true
                    });
                    resources.extend(added.into_iter().map(|(id, r)| (format!("{id}x"), r)));
                }
                (old, new, old_style, new_style)
            },
        )
}

/// How a side is written: JSON or YAML (flow or block style), indented or not, which
/// letters are `\u` escapes.
#[derive(Clone, Copy, Debug)]
struct Style {
    yaml: bool,
    block: bool,
    indent: bool,
    /// Every `escape`-th letter of a string or key is written as a `\u` escape (0: none).
    escape: usize,
    /// Lines end in a carriage return and a line feed (block YAML).
    crlf: bool,
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop::bool::weighted(0.5),
        prop::bool::weighted(0.8),
        any::<bool>(),
        prop::sample::select(vec![0usize, 0, 0, 1, 3]),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(yaml, block, indent, escape, crlf)| Style {
            yaml,
            block: yaml && block,
            indent,
            escape,
            crlf: yaml && block && crlf,
        })
}

fn quoted(s: &str, style: Style, out: &mut String) {
    out.push('"');
    for (i, c) in s.chars().enumerate() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if style.escape > 0 && i % style.escape == 0 && c.is_ascii_alphabetic() => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// JSON text; in YAML style, the same as a YAML flow collection, with tags where a `Tag` is.
fn render(n: &Node, style: Style, depth: usize, out: &mut String) {
    let newline = |out: &mut String, depth: usize| {
        if style.indent {
            out.push('\n');
            out.push_str(&" ".repeat(depth.min(40)));
        }
    };
    match n {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Num(s) => out.push_str(s),
        Node::Str(s) => quoted(s, style, out),
        Node::List(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                render(v, style, depth + 1, out);
            }
            out.push(']');
        }
        Node::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                quoted(k, style, out);
                out.push_str(": ");
                render(v, style, depth + 1, out);
            }
            out.push('}');
        }
        Node::Deep(levels, v) => {
            out.push_str(&"[".repeat(*levels));
            render(v, style, depth + 1, out);
            out.push_str(&"]".repeat(*levels));
        }
        Node::Tag(tag, v) if style.yaml => {
            out.push_str(&format!("!{tag} "));
            render(v, style, depth, out);
        }
        Node::Tag(tag, v) => {
            let name = if *tag == "Ref" {
                "Ref".to_string()
            } else {
                format!("Fn::{tag}")
            };
            render(&Node::Map(vec![(name, (**v).clone())]), style, depth, out);
        }
    }
}

/// YAML in block style, the value after a key's `:` or an item's `-`: a mapping's entries and
/// a list's items on lines of their own, `indent` spaces in; anything else in flow style on
/// the same line. Keys of letters and digits (resource ids) are plain, others quoted.
fn render_block(n: &Node, style: Style, indent: usize, out: &mut String) {
    let line = |out: &mut String| {
        out.push('\n');
        out.push_str(&" ".repeat(indent));
    };
    match n {
        Node::Map(entries) if !entries.is_empty() => {
            for (k, v) in entries {
                line(out);
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()) {
                    out.push_str(k);
                } else {
                    quoted(k, style, out);
                }
                out.push(':');
                render_block(v, style, indent + 2, out);
            }
        }
        Node::List(items) if !items.is_empty() => {
            for v in items {
                line(out);
                out.push('-');
                render_block(v, style, indent + 2, out);
            }
        }
        other => {
            out.push(' ');
            let flow = Style {
                indent: false,
                ..style
            };
            render(other, flow, 0, out);
        }
    }
}

fn text(template: &[(String, Node)], style: Style) -> String {
    let mut out = String::new();
    if style.yaml {
        // A flow mapping after a comment: YAML, not JSON, to the reader.
        out.push_str("# template\n");
    }
    if style.block {
        render_block(&Node::Map(template.to_vec()), style, 0, &mut out);
        out.push('\n');
    } else {
        render(&Node::Map(template.to_vec()), style, 0, &mut out);
    }
    if style.crlf {
        out = out.replace('\n', "\r\n");
    }
    out
}

/// Two files for a test case: this process's own, written over for each case.
fn files() -> &'static (std::path::PathBuf, std::path::PathBuf) {
    static FILES: std::sync::OnceLock<(std::path::PathBuf, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    FILES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("diff-differential-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        (dir.join("old"), dir.join("new"))
    })
}

fn check(old: &str, new: &str) -> Result<(), TestCaseError> {
    let options = DiffOptions::default();
    let fast = diff::diff_texts((old, "old"), (new, "new"), &options);
    // From files, the new text is given away to the reading, which drops it once it has what
    // it needs, and puts it together again to read it whole: the same report, or error.
    let (old_file, new_file) = files();
    std::fs::write(old_file, old).unwrap();
    std::fs::write(new_file, new).unwrap();
    let from_files = diff::diff_files(old_file, new_file, &options).map(|c| c.diff);
    match (&fast, &from_files) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(a), Err(b)) => {
            let b = b.to_string();
            let b = b
                .replace(&old_file.display().to_string(), "old")
                .replace(&new_file.display().to_string(), "new");
            prop_assert_eq!(a.to_string(), b);
        }
        _ => prop_assert!(
            false,
            "text {:?}\nfiles {:?}",
            fast,
            from_files.map(|d| d.has_changes)
        ),
    }
    let whole = diff::parse_template(old, "old").and_then(|o| {
        diff::parse_template(new, "new").map(|n| diff::diff_templates(&o, &n, &options))
    });
    match (&fast, &whole) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => prop_assert!(
            false,
            "fast {:?}\nwhole {:?}",
            fast.map(|d| d.has_changes),
            whole.map(|d| d.has_changes)
        ),
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("DIFF_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

#[test]
fn fast_path_and_whole_parse_agree() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let outcomes = std::cell::Cell::new([0usize; 3]);
    let block = std::cell::Cell::new(0usize);
    let crlf = std::cell::Cell::new(0usize);
    runner
        .run(&pair(), |(old, new, old_style, new_style)| {
            let (old, new) = (text(&old, old_style), text(&new, new_style));
            check(&old, &new)?;
            if old_style.block && new_style.block {
                block.set(block.get() + 1);
            }
            if old_style.crlf && new_style.crlf {
                crlf.set(crlf.get() + 1);
            }
            // Tally what the cases reached: errors, changes, no changes.
            let mut o = outcomes.get();
            match diff::diff_texts((&old, "old"), (&new, "new"), &DiffOptions::default()) {
                Err(e) => {
                    o[0] += 1;
                    if std::env::var_os("DIFF_FUZZ_SHOW").is_some() {
                        eprintln!("{e}");
                    }
                }
                Ok(d) if d.has_changes => o[1] += 1,
                Ok(_) => o[2] += 1,
            }
            outcomes.set(o);
            Ok(())
        })
        .unwrap();
    let [errors, changes, same] = outcomes.get();
    eprintln!(
        "{} cases: {errors} both errors, {changes} the same changes, {same} both no changes; \
         {} with both sides in block YAML ({} of them with CRLF line ends)",
        cases(),
        block.get(),
        crlf.get()
    );
    assert!(
        errors > 0 && changes > 0,
        "{errors} errors, {changes} with changes"
    );
}

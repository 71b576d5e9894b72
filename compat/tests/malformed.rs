//! Malformed input gets a clear, located error, never a panic; the parsers survive arbitrary
//! and mutated bytes (run longer with PROPTEST_CASES=200000).

use compat::{parse, Format, LoadError};
use proptest::prelude::*;

fn err(bytes: &[u8], format: Format) -> String {
    parse(bytes, format, "cfg").unwrap_err().to_string()
}

#[test]
fn truncated_yaml_points_at_the_end() {
    let e = err(b"db:\n  host: \"db.internal\n", Format::Yaml);
    assert!(e.starts_with("cfg:"), "{e}");
    assert!(
        e.contains("quoted scalar") || e.contains("unexpected end"),
        "{e}"
    );
    let e = err(b"list: [1, 2\n", Format::Yaml);
    assert!(e.starts_with("cfg:2:"), "{e}");
}

#[test]
fn duplicate_keys_are_errors_in_every_format() {
    let cases: [(&[u8], Format, &str); 4] = [
        (
            b"a: 1\nb: 2\na: 3\n",
            Format::Yaml,
            "cfg:3:1: duplicate key `a` (first defined at cfg:1:1)",
        ),
        (
            b"{\"a\": 1,\n \"a\": 2}",
            Format::Json,
            "cfg:2:2: duplicate key `a` (first defined at cfg:1:2)",
        ),
        (
            b"A=1\nA=2\n",
            Format::Env,
            "cfg:2:1: duplicate key `A` (first defined at cfg:1:1)",
        ),
        (b"[t]\nx = 1\nx = 2\n", Format::Toml, "cfg:3:1"),
    ];
    for (input, format, want) in cases {
        let e = err(input, format);
        assert!(e.starts_with(want), "{format:?}: {e}");
    }
}

#[test]
fn non_utf8_names_the_position() {
    let e = err(b"a: 1\nb: \xff\xfe\n", Format::Yaml);
    assert_eq!(
        e,
        "cfg:2:4: not valid UTF-8 (configuration files must be UTF-8)"
    );
}

#[test]
fn a_50_mb_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    let line = "key_with_some_length: value value value value value\n";
    let text = line.repeat(50 * 1024 * 1024 / line.len() + 1);
    std::fs::write(&path, text).unwrap();
    match compat::source::load_file(&path) {
        Err(LoadError::TooLarge { size, limit, .. }) => {
            assert!(size >= 50 * 1024 * 1024);
            assert_eq!(limit, 10 * 1024 * 1024);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn deep_nesting_and_alias_bombs_are_refused() {
    let deep = "[".repeat(10_000);
    for format in [Format::Yaml, Format::Json, Format::Toml] {
        let input = if format == Format::Toml {
            format!("a = {deep}")
        } else {
            deep.clone()
        };
        assert!(
            parse(input.as_bytes(), format, "cfg").is_err(),
            "{format:?}"
        );
    }
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let prev = (b'a' + i - 1) as char;
        let name = (b'a' + i) as char;
        bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let e = err(bomb.as_bytes(), Format::Yaml);
    assert!(e.contains("alias expansion"), "{e}");
}

#[test]
fn the_top_level_must_be_a_map() {
    assert_eq!(
        err(b"- a\n- b\n", Format::Yaml),
        "cfg:1:1: the top level must be a map of keys, found list"
    );
    assert_eq!(
        err(b"[1]", Format::Json),
        "cfg:1:1: the top level must be a map of keys, found list"
    );
}

#[test]
fn locations_are_line_and_column() {
    let c = parse(b"db:\n  port: 5432\n", Format::Yaml, "f.yaml").unwrap();
    assert_eq!(
        c.root
            .at(&[
                compat::value::Segment::Key("db".into()),
                compat::value::Segment::Key("port".into())
            ])
            .unwrap()
            .location
            .to_string(),
        "f.yaml:2:9"
    );
    let c = parse(b"[db]\nport = 5432\n", Format::Toml, "f.toml").unwrap();
    assert_eq!(
        c.root
            .get("db")
            .unwrap()
            .get("port")
            .unwrap()
            .location
            .to_string(),
        "f.toml:2:8"
    );
    let c = parse(b"{\n  \"port\": 5432\n}", Format::Json, "f.json").unwrap();
    assert_eq!(
        c.root.get("port").unwrap().location.to_string(),
        "f.json:2:11"
    );
    let c = parse(b"export PORT=5432\n", Format::Env, "f.env").unwrap();
    assert_eq!(
        c.root.get("PORT").unwrap().location.to_string(),
        "f.env:1:13"
    );
}

const VALID: [(&str, Format); 4] = [
    (
        "db:\n  host: a\n  ports: [1, 2]\nx: &x {a: 1}\ny: *x\n",
        Format::Yaml,
    ),
    (
        "{\"db\": {\"host\": \"a\", \"ports\": [1, 2.5, null, true]}}",
        Format::Json,
    ),
    (
        "[db]\nhost = \"a\"\nports = [1, 2]\n[[r]]\nx = 1979-05-27\n",
        Format::Toml,
    ),
    ("export A=1\nB='x y'\nC=\"q\\\"\" # c\n", Format::Env),
];

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), f in 0usize..4) {
        let format = [Format::Yaml, Format::Json, Format::Toml, Format::Env][f];
        let _ = parse(&bytes, format, "fuzz");
    }

    #[test]
    fn mutated_documents_never_panic(
        case in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let (text, format) = VALID[case];
        let mut bytes = text.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let i = if bytes.is_empty() { 0 } else { at % bytes.len() };
            match op {
                0 if !bytes.is_empty() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if !bytes.is_empty() => { bytes.remove(i); }
                _ => {}
            }
        }
        if let Ok(config) = parse(&bytes, format, "fuzz") {
            // A parsed document also survives a comparison with the original.
            let original = parse(text.as_bytes(), format, "orig").unwrap();
            let _ = compat::check(&original, &config, None, &compat::Ignores::default()).to_json();
        }
    }
}

#[test]
fn toml_brackets_inside_strings_and_comments_do_not_count_as_nesting() {
    let brackets = "[".repeat(200);
    let text = format!(
        "pattern = \"{brackets}\"\nliteral = '{brackets}'\nmulti = \"\"\"\n{brackets}\\\"\"\"\n{brackets}\"\"\"\nraw = '''\n{brackets}'''\n# {brackets}\n[table] # {brackets}\nkey = \"]]]\"\n"
    );
    let c = parse(text.as_bytes(), Format::Toml, "cfg").unwrap_or_else(|e| panic!("{e}"));
    match &c.root.get("pattern").unwrap().value {
        compat::Value::String(s) => assert_eq!(s, &brackets),
        other => panic!("{other:?}"),
    }
    assert!(c.root.get("table").unwrap().get("key").is_some());
}

#[test]
fn nesting_130_deep_is_refused_in_every_form_with_a_location() {
    let open = "[".repeat(130);
    let close = "]".repeat(130);
    let dotted = (0..130)
        .map(|i| format!("k{i}"))
        .collect::<Vec<_>>()
        .join(".");
    let cases: Vec<(String, Format)> = vec![
        (format!("a: {open}{close}\n"), Format::Yaml),
        (format!("{{\"a\": {open}{close}}}"), Format::Json),
        (format!("a = {open}{close}\n"), Format::Toml),
        (format!("{dotted} = 1\n"), Format::Toml),
        (format!("[{dotted}]\nx = 1\n"), Format::Toml),
        (
            format!("a = {}1{}\n", "{ b = ".repeat(130), " }".repeat(130)),
            Format::Toml,
        ),
    ];
    for (input, format) in cases {
        let e = err(input.as_bytes(), format);
        assert!(e.starts_with("cfg:1:"), "{format:?}: {e}");
        assert!(
            e.contains("nesting deeper than 64 levels"),
            "{format:?}: {e}"
        );
    }
}

#[test]
fn columns_count_characters_on_long_lines() {
    // A TOML inline table on one line, with multi-byte characters before the value.
    let mut text = String::from("t = { ");
    for i in 0..2_000 {
        text.push_str(&format!("k{i} = \"é€𝄞\", "));
    }
    text.push_str("last = 1 }\n");
    let c = parse(text.as_bytes(), Format::Toml, "cfg").unwrap();
    let last = c.root.get("t").unwrap().get("last").unwrap();
    let byte = text.find("last = 1").unwrap() + "last = ".len();
    assert_eq!(last.location.line, 1);
    assert_eq!(last.location.column, text[..byte].chars().count() + 1);
}

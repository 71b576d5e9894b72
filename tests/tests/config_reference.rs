//! docs/CONFIG.md, the `gatekeeper.toml` reference, is generated from the code that reads the
//! file: every table's struct, each key's type, default and doc comment, read from the sources
//! with `syn` (the way compat/RULES.md is kept in step with the rule table). A key added, renamed
//! or re-documented without regenerating fails this test; `GATEKEEPER_WRITE_DOCS=1` rewrites it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gatekeeper_e2e::repo_root;
use quote::ToTokens;
use syn::{Attribute, Expr, Fields, GenericArgument, Item, PathArguments, Type};

/// The sources holding the configuration's structs.
const FILES: &[&str] = &[
    "stacks/src/config.rs",
    "canary/src/config.rs",
    "canary/src/judge/config.rs",
    "canary/src/notify.rs",
    "state/src/config.rs",
    "maintenance/src/config.rs",
    "pipelines/src/config.rs",
    "evidence/src/record.rs",
];

/// Modules a configuration file takes types from with `use`, and their files.
const MODULES: &[(&str, &str)] = &[("evidence::record", "evidence/src/record.rs")];

/// The module a `use` tree takes `name` from (`evidence::record` for
/// `pub use evidence::record::{Direction, Kind}` and `Kind`).
fn imported_from(tree: &syn::UseTree, prefix: &str, name: &str) -> Option<String> {
    use syn::UseTree;
    match tree {
        UseTree::Path(p) => {
            let prefix = if prefix.is_empty() {
                p.ident.to_string()
            } else {
                format!("{prefix}::{}", p.ident)
            };
            imported_from(&p.tree, &prefix, name)
        }
        UseTree::Name(n) if n.ident == name => Some(prefix.to_string()),
        UseTree::Group(g) => g.items.iter().find_map(|t| imported_from(t, prefix, name)),
        _ => None,
    }
}

/// The tables `stacks` keeps as raw TOML, and the struct of the crate that reads each.
const OWNED: &[(&str, &str, &str)] = &[
    ("canary", "canary/src/config.rs", "CanaryConfig"),
    (
        "maintenance",
        "maintenance/src/config.rs",
        "MaintenanceConfig",
    ),
    ("state", "state/src/config.rs", "StateConfig"),
    ("pipeline", "pipelines/src/config.rs", "RawPipeline"),
    ("notify", "canary/src/notify.rs", "NotifyConfig"),
];

const HEADER: &str = "# `gatekeeper.toml` reference\n\n\
Generated from the code that reads the file (`tests/tests/config_reference.rs` keeps it \
current: `GATEKEEPER_WRITE_DOCS=1 cargo test -p gatekeeper-e2e --test config_reference`). \
Every table rejects keys it does not know, with the file, line and key. A worked example: \
`examples/photos/prod.toml`.\n";

struct Sources {
    /// (file, item) for every struct, enum, fn and const of `FILES`.
    items: Vec<(&'static str, Item)>,
}

#[derive(Default)]
struct Serde {
    rename: Option<String>,
    rename_all: Option<String>,
    tag: Option<String>,
    /// `Some(None)`: `#[serde(default)]`; `Some(Some(f))`: `#[serde(default = "f")]`.
    default: Option<Option<String>>,
    skip: bool,
    flatten: bool,
}

fn serde_of(attrs: &[Attribute]) -> Serde {
    let mut s = Serde::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            let name = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let value = if meta.input.peek(syn::Token![=]) {
                let v: Expr = meta.value()?.parse()?;
                match v {
                    Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => Some(s.value()),
                    _ => None,
                }
            } else {
                None
            };
            match name.as_str() {
                "rename" => s.rename = value,
                "rename_all" => s.rename_all = value,
                "tag" => s.tag = value,
                "default" => s.default = Some(value),
                "skip" => s.skip = true,
                "flatten" => s.flatten = true,
                _ => {}
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("#[serde] attribute: {e}"));
    }
    s
}

fn docs(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    lines.join(" ").trim().replace('|', "\\|")
}

fn renamed(ident: &str, rule: Option<&str>) -> String {
    let words: Vec<String> = {
        let mut words = Vec::new();
        let mut cur = String::new();
        for c in ident.chars() {
            if c.is_uppercase() && !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            cur.push(c.to_ascii_lowercase());
        }
        words.push(cur);
        words
    };
    match rule {
        Some("kebab-case") => words.join("-"),
        Some("snake_case") => words.join("_"),
        Some("lowercase") => words.concat(),
        Some("camelCase") => {
            let mut s = words[0].clone();
            for w in &words[1..] {
                let mut c = w.chars();
                if let Some(f) = c.next() {
                    s.push(f.to_ascii_uppercase());
                    s.extend(c);
                }
            }
            s
        }
        _ => ident.to_string(),
    }
}

/// A type with its wrappers (`Option`, `Spanned`, `Box`) taken off, and whether it was optional.
fn unwrap(ty: &Type) -> (&Type, bool) {
    let mut ty = ty;
    let mut optional = false;
    loop {
        let Some((name, arg)) = single_arg(ty) else {
            return (ty, optional);
        };
        match name.as_str() {
            "Option" => optional = true,
            "Spanned" | "Box" => {}
            _ => return (ty, optional),
        }
        ty = arg;
    }
}

fn last_ident(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

fn single_arg(ty: &Type) -> Option<(String, &Type)> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    let tys: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    Some((seg.ident.to_string(), *tys.last()?))
}

enum Shape<'a> {
    Scalar(String),
    Table(&'static str, &'a syn::ItemStruct, bool),
    Tagged(&'static str, &'a syn::ItemEnum),
}

impl Sources {
    fn read() -> Sources {
        let root = repo_root();
        let mut items = Vec::new();
        for file in FILES {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            items.extend(parsed.items.into_iter().map(|i| (*file, i)));
        }
        Sources { items }
    }

    /// The item named `name`: in `file` first, else the one of that name anywhere.
    fn find(&self, file: &str, name: &str) -> Option<(&'static str, &Item)> {
        let named = |i: &Item| match i {
            Item::Struct(s) => s.ident == name,
            Item::Enum(e) => e.ident == name,
            Item::Fn(f) => f.sig.ident == name,
            Item::Const(c) => c.ident == name,
            _ => false,
        };
        let mut all = self.items.iter().filter(|(_, i)| named(i));
        let here = self.items.iter().find(|(f, i)| *f == file && named(i));
        // Else where the file's `use` takes it from.
        let used = || {
            let module = self.items.iter().find_map(|(f, i)| match i {
                Item::Use(u) if *f == file => imported_from(&u.tree, "", name),
                _ => None,
            })?;
            let (_, source) = MODULES.iter().find(|(m, _)| *m == module)?;
            self.items.iter().find(|(f, i)| f == source && named(i))
        };
        here.or_else(used)
            .or_else(|| all.next())
            .map(|(f, i)| (*f, i))
    }

    fn struct_(&self, file: &str, name: &str) -> (&'static str, &syn::ItemStruct) {
        match self.find(file, name) {
            Some((f, Item::Struct(s))) => (f, s),
            _ => panic!("{file}: no struct {name}"),
        }
    }

    fn shape<'a>(&'a self, file: &str, ty: &Type) -> Shape<'a> {
        let (ty, _) = unwrap(ty);
        let name = last_ident(ty).unwrap_or_default();
        match name.as_str() {
            "String" | "PathBuf" => return Shape::Scalar("string".into()),
            "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" => {
                return Shape::Scalar("integer".into())
            }
            "f32" | "f64" => return Shape::Scalar("number".into()),
            "bool" => return Shape::Scalar("boolean".into()),
            "Vec" => {
                let (_, inner) = single_arg(ty).unwrap();
                return match self.shape(file, inner) {
                    Shape::Table(f, s, _) => Shape::Table(f, s, true),
                    Shape::Scalar(s) => Shape::Scalar(format!("array of {s}s")),
                    Shape::Tagged(..) => Shape::Scalar("array of tables".into()),
                };
            }
            "BTreeMap" | "HashMap" => {
                let (_, value) = single_arg(ty).unwrap();
                return match self.shape(file, value) {
                    Shape::Scalar(s) => Shape::Scalar(format!("table of {s}s")),
                    _ => Shape::Scalar("table".into()),
                };
            }
            _ => {}
        }
        match self.find(file, &name) {
            Some((f, Item::Struct(s))) => Shape::Table(f, s, false),
            Some((f, Item::Enum(e))) if serde_of(&e.attrs).tag.is_some() => Shape::Tagged(f, e),
            Some((_, Item::Enum(e))) => {
                let rule = serde_of(&e.attrs).rename_all;
                let names: Vec<String> = e
                    .variants
                    .iter()
                    .filter(|v| !serde_of(&v.attrs).skip)
                    .map(|v| {
                        let s = serde_of(&v.attrs);
                        let n = s
                            .rename
                            .unwrap_or_else(|| renamed(&v.ident.to_string(), rule.as_deref()));
                        format!("`\"{n}\"`")
                    })
                    .collect();
                Shape::Scalar(format!("one of {}", names.join(", ")))
            }
            _ => Shape::Scalar(ty.to_token_stream().to_string()),
        }
    }

    /// `field`'s value in `impl Default for name`, when that impl builds the struct literally.
    fn impl_default(&self, file: &str, name: &str, field: &str) -> Option<String> {
        self.items.iter().find_map(|(f, i)| {
            let Item::Impl(imp) = i else { return None };
            let is_default = imp
                .trait_
                .as_ref()
                .is_some_and(|(_, p, _)| p.segments.last().is_some_and(|s| s.ident == "Default"));
            if *f != file || !is_default || last_ident(&imp.self_ty).as_deref() != Some(name) {
                return None;
            }
            imp.items.iter().find_map(|item| {
                let syn::ImplItem::Fn(func) = item else {
                    return None;
                };
                let Some(syn::Stmt::Expr(Expr::Struct(lit), None)) = func.block.stmts.last() else {
                    return None;
                };
                lit.fields.iter().find_map(|fv| match &fv.member {
                    syn::Member::Named(i) if i == field => Some(self.expr_text(f, &fv.expr)),
                    _ => None,
                })
            })
        })
    }

    /// The variant of an enum marked `#[default]`, as written in the file.
    fn enum_default(&self, file: &str, ty: &Type) -> Option<String> {
        let (ty, _) = unwrap(ty);
        let Some((_, Item::Enum(e))) = self.find(file, &last_ident(ty)?) else {
            return None;
        };
        let rule = serde_of(&e.attrs).rename_all;
        e.variants
            .iter()
            .find(|v| v.attrs.iter().any(|a| a.path().is_ident("default")))
            .map(|v| {
                let n = serde_of(&v.attrs)
                    .rename
                    .unwrap_or_else(|| renamed(&v.ident.to_string(), rule.as_deref()));
                format!("`\"{n}\"`")
            })
    }

    /// A default as the code writes it: a literal, a constant's value, or the expression.
    fn default_of(&self, file: &str, function: &str) -> String {
        let Some((f, Item::Fn(func))) = self.find(file, function) else {
            return format!("`{function}()`");
        };
        let Some(syn::Stmt::Expr(expr, None)) = func.block.stmts.last() else {
            return format!("`{function}()`");
        };
        self.expr_text(f, expr)
    }

    fn expr_text(&self, file: &str, expr: &Expr) -> String {
        match expr {
            Expr::Lit(l) => format!("`{}`", l.to_token_stream()),
            Expr::MethodCall(m) if m.args.is_empty() => self.expr_text(file, &m.receiver),
            Expr::Path(p) => {
                match p
                    .path
                    .get_ident()
                    .and_then(|i| match self.find(file, &i.to_string()) {
                        Some((f, Item::Const(c))) => Some(self.expr_text(f, &c.expr)),
                        _ => None,
                    }) {
                    Some(text) => text,
                    None => format!("`{}`", expr.to_token_stream()),
                }
            }
            // `Spanned::new(0..0, x)`: the value is `x`.
            Expr::Call(c) if c.args.len() == 2 && call_name(c) == "new" => {
                self.expr_text(file, &c.args[1])
            }
            Expr::Macro(_) => "a built-in list (see the code)".into(),
            Expr::Call(c) if c.args.is_empty() => match &*c.func {
                Expr::Path(p) => match p.path.get_ident() {
                    Some(f) => self.default_of(file, &f.to_string()),
                    None => format!("`{}`", expr.to_token_stream()),
                },
                _ => format!("`{}`", expr.to_token_stream()),
            },
            _ => format!(
                "`{}`",
                expr.to_token_stream().to_string().replace(" . ", ".")
            ),
        }
    }
}

fn call_name(c: &syn::ExprCall) -> String {
    match &*c.func {
        Expr::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Renders the table at `path` (its struct `s`) and, after it, each table under it.
fn table(
    src: &Sources,
    out: &mut String,
    path: &str,
    array: bool,
    file: &'static str,
    s: &syn::ItemStruct,
    doc: &str,
) {
    let header = if array {
        format!("[[{path}]]")
    } else {
        format!("[{path}]")
    };
    let _ = writeln!(out, "\n## `{header}`\n");
    let own = docs(&s.attrs);
    let own = if own.is_empty() || own.starts_with("The `[") || own.starts_with("`[") {
        doc.to_string()
    } else {
        own
    };
    if !own.is_empty() {
        let _ = writeln!(out, "{own}\n");
    }
    let all_default = serde_of(&s.attrs).default.is_some();
    let later = fields(
        src,
        out,
        path,
        file,
        &s.fields,
        all_default,
        &s.ident.to_string(),
    );
    for (sub, array, f, st, doc) in later {
        table(src, out, &sub, array, f, st, &doc);
    }
}

type Later<'a> = Vec<(String, bool, &'static str, &'a syn::ItemStruct, String)>;

/// The key table of `fields`; returns the sub-tables to render after it.
fn fields<'a>(
    src: &'a Sources,
    out: &mut String,
    path: &str,
    file: &'static str,
    list: &'a Fields,
    all_default: bool,
    owner: &str,
) -> Later<'a> {
    let mut rows = Vec::new();
    let mut later: Later<'a> = Vec::new();
    let mut tagged = Vec::new();
    for field in list {
        let serde = serde_of(&field.attrs);
        if serde.skip || serde.flatten {
            continue;
        }
        let ident = field.ident.as_ref().unwrap().to_string();
        let key = serde.rename.clone().unwrap_or_else(|| ident.clone());
        let mut doc = docs(&field.attrs);
        if doc.is_empty() {
            // `RawX` structs carry their docs on `X`.
            let name = s_name_of(src, file, list);
            if let Some(plain) = name.strip_prefix("Raw") {
                if let Some((_, Item::Struct(p))) = src.find(file, plain) {
                    if let Some(f) = p
                        .fields
                        .iter()
                        .find(|f| f.ident.as_ref().is_some_and(|i| *i == ident))
                    {
                        doc = docs(&f.attrs);
                    }
                }
            }
        }
        let sub = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if let Some((_, _, owner)) = OWNED.iter().find(|(k, _, _)| path.is_empty() && *k == key) {
            let (f, s) = src.struct_(OWNED.iter().find(|o| o.2 == *owner).unwrap().1, owner);
            later.push((sub, false, f, s, String::new()));
            continue;
        }
        let (_, optional) = unwrap(&field.ty);
        let shape = src.shape(file, &field.ty);
        let from_impl = || src.impl_default(file, owner, &ident);
        let default = match (&serde.default, &shape) {
            (Some(Some(f)), _) => src.default_of(file, f),
            _ if optional => "none".into(),
            _ if all_default && from_impl().is_some() => from_impl().unwrap(),
            (Some(None), Shape::Scalar(t)) if t.starts_with("one of") => src
                .enum_default(file, &field.ty)
                .unwrap_or_else(|| "its default (see the code)".into()),
            (Some(None), Shape::Scalar(t)) | (None, Shape::Scalar(t))
                if all_default || serde.default.is_some() =>
            {
                match t.as_str() {
                    "boolean" => "`false`".into(),
                    "integer" => "`0`".into(),
                    "string" => "`\"\"`".into(),
                    t if t.starts_with("array") => "`[]`".into(),
                    t if t.starts_with("table") => "`{}`".into(),
                    _ => "its default (see the code)".into(),
                }
            }
            (Some(None), _) => "its defaults".into(),
            _ if all_default => "see the table's defaults".into(),
            _ => "**required**".into(),
        };
        match shape {
            Shape::Scalar(t) => rows.push(format!("| `{key}` | {t} | {default} | {doc} |")),
            Shape::Table(f, s, array) => {
                let kind = if array { "array of tables" } else { "table" };
                let link = if array {
                    format!("[[{sub}]]")
                } else {
                    format!("[{sub}]")
                };
                rows.push(format!(
                    "| `{key}` | {kind}, see `{link}` | {default} | {doc} |"
                ));
                later.push((sub, array, f, s, doc));
            }
            Shape::Tagged(f, e) => {
                rows.push(format!(
                    "| `{key}` | table, see `[{sub}]` | {default} | {doc} |"
                ));
                tagged.push((sub, f, e, doc));
            }
        }
    }
    if !rows.is_empty() {
        let _ = writeln!(out, "| key | type | default | meaning |\n|---|---|---|---|");
        for r in rows {
            let _ = writeln!(out, "{r}");
        }
    }
    for (sub, f, e, doc) in tagged {
        let serde = serde_of(&e.attrs);
        let tag = serde.tag.unwrap();
        let _ = writeln!(out, "\n## `[{sub}]`\n");
        let own = docs(&e.attrs);
        let text = if own.is_empty() { doc } else { own };
        if !text.is_empty() {
            let _ = writeln!(out, "{text}\n");
        }
        for v in &e.variants {
            let name = serde_of(&v.attrs)
                .rename
                .unwrap_or_else(|| renamed(&v.ident.to_string(), serde.rename_all.as_deref()));
            let _ = writeln!(out, "### `{tag} = \"{name}\"`\n");
            let vdoc = docs(&v.attrs);
            if !vdoc.is_empty() {
                let _ = writeln!(out, "{vdoc}\n");
            }
            let more = fields(src, out, &sub, f, &v.fields, false, "");
            later.extend(more);
            let _ = writeln!(out);
        }
    }
    later
}

/// The name of the struct whose fields these are (for the `RawX` → `X` doc lookup).
fn s_name_of(src: &Sources, file: &str, fields: &Fields) -> String {
    src.items
        .iter()
        .find_map(|(f, i)| match i {
            Item::Struct(s) if *f == file && std::ptr::eq(&s.fields, fields) => {
                Some(s.ident.to_string())
            }
            _ => None,
        })
        .unwrap_or_default()
}

fn reference() -> String {
    let src = Sources::read();
    let (file, root) = src.struct_("stacks/src/config.rs", "Config");
    let mut out = String::from(HEADER);
    out.push_str("\n## Top level\n\n");
    let later = fields(&src, &mut out, "", file, &root.fields, false, "Config");
    for (path, array, f, s, doc) in later {
        table(&src, &mut out, &path, array, f, s, &doc);
    }
    let mut tidy = String::new();
    let mut blank = 0;
    for line in out.lines() {
        blank = if line.is_empty() { blank + 1 } else { 0 };
        if blank < 2 {
            tidy.push_str(line.trim_end());
            tidy.push('\n');
        }
    }
    tidy
}

#[test]
fn config_md_is_generated_from_the_code() {
    let expected = reference();
    let path = repo_root().join("docs/CONFIG.md");
    if std::env::var_os("GATEKEEPER_WRITE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/CONFIG.md is stale: rerun with GATEKEEPER_WRITE_DOCS=1 \
         cargo test -p gatekeeper-e2e --test config_reference"
    );
}

#[test]
fn every_table_of_the_example_is_in_the_reference() {
    let reference = reference();
    let example: toml::Table =
        std::fs::read_to_string(repo_root().join("examples/photos/prod.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let mut missing = BTreeMap::new();
    fn walk(prefix: &str, t: &toml::Table, reference: &str, missing: &mut BTreeMap<String, ()>) {
        for (k, v) in t {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let (table, array) = match v {
                toml::Value::Table(t) => (Some(t), false),
                toml::Value::Array(a) => match a.first() {
                    Some(toml::Value::Table(t)) => (Some(t), true),
                    _ => (None, false),
                },
                _ => (None, false),
            };
            let Some(table) = table else { continue };
            let header = if array {
                format!("## `[[{path}]]`")
            } else {
                format!("## `[{path}]`")
            };
            if !reference.contains(&header) && !reference.contains(&format!("`{k}` | table")) {
                missing.insert(header, ());
            }
            walk(&path, table, reference, missing);
        }
    }
    walk("", &example, &reference, &mut missing);
    assert!(
        missing.is_empty(),
        "not in docs/CONFIG.md: {:?}",
        missing.keys()
    );
}

//! The rules, their stable IDs, default levels and rationale. `RULES.md` is the same table.

use serde::{Serialize, Serializer};

/// How sure a finding is. `error` fails the gate (exit 2); `warn` is shown and does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Error,
    Warn,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
        }
    }
}

/// Which pairing of code and configuration a change can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Old code reading the new configuration (after a rollback of the code).
    Rollback,
    /// New code reading the old configuration (a canary or a half-rolled fleet).
    MixedFleet,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Rollback => "rollback",
            Direction::MixedFleet => "mixed_fleet",
        }
    }
}

macro_rules! rules {
    ($($variant:ident => $id:literal, $level:ident, $rationale:literal;)*) => {
        /// A compatibility rule. IDs are stable: ignore files and dashboards refer to them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule { $($variant),* }

        impl Rule {
            /// Every rule, in the order of `RULES.md`.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// The stable ID, e.g. `KEY_REMOVED`.
            pub fn id(self) -> &'static str {
                match self { $(Rule::$variant => $id),* }
            }

            /// The level a finding of this rule has unless a schema says more.
            pub fn default_level(self) -> Level {
                match self { $(Rule::$variant => Level::$level),* }
            }

            /// Why the rule exists.
            pub fn rationale(self) -> &'static str {
                match self { $(Rule::$variant => $rationale),* }
            }

            /// The rule with this ID.
            pub fn from_id(id: &str) -> Option<Rule> {
                match id { $($id => Some(Rule::$variant),)* _ => None }
            }
        }
    };
}

rules! {
    KeyRemoved => "KEY_REMOVED", Error,
        "Old code still reads the key; after a rollback it finds nothing. With an old schema, only a key the old code requires (without a default) is an error.";
    KeyAdded => "KEY_ADDED", Warn,
        "New code may need the key, and the old configuration a canary starts on lacks it. Without a schema the gate cannot tell whether the code has a default, so it warns; with a new schema (`--new-schema` or `--schema`) the schema decides: a key it requires is REQUIRED_ADDED_WITHOUT_DEFAULT, an error, and an optional one is no finding.";
    KeyRenamed => "KEY_RENAMED", Error,
        "A key removed and another added with the same value is a rename: old code cannot find the new name (rollback) and new code cannot find the old one (mixed fleet). Add the new key beside the old one for a release instead.";
    TypeChanged => "TYPE_CHANGED", Error,
        "A reader typed for the old value fails on the new one, in both directions. A schema type narrowed (new code accepts fewer types) breaks the mixed fleet. Integer to number and back is a warning: many readers accept both.";
    JsonStringTypeChanged => "JSON_STRING_TYPE_CHANGED", Error,
        "A list or map that became a string holding JSON (or the reverse) is the classic broken generated-config bug: it looks the same when printed, and no reader of one accepts the other.";
    EnumValueRemoved => "ENUM_VALUE_REMOVED", Error,
        "New code rejects a value old code accepted, so the old configuration breaks the mixed fleet. An error when the old configuration uses the value; a warning otherwise (another environment may).";
    RequiredAddedWithoutDefault => "REQUIRED_ADDED_WITHOUT_DEFAULT", Error,
        "New code requires a key without a default; on the old configuration (a canary) it fails to start. An error when the old configuration lacks the key (the new schema's `required` checked against the old configuration); a warning when only the schemas differ. Give it a default in the schema and the code.";
    DefaultChanged => "DEFAULT_CHANGED", Warn,
        "Where the configuration leaves the key out, old and new code behave differently. buf calls this breaking, Confluent compatible; nothing fails to parse, so the gate warns. Shown only when the new configuration omits the key.";
    RangeNarrowed => "RANGE_NARROWED", Error,
        "A raised minimum, lowered maximum or tighter length/size bound makes new code reject values old code accepted. An error when the old configuration is outside the new bounds; a warning otherwise.";
    PatternChanged => "PATTERN_CHANGED", Warn,
        "Whether a new pattern accepts every value the old one did cannot be decided in general, so it is a warning in both directions, and an error when a configuration fails the other code's pattern.";
    SecretStorageChanged => "SECRET_STORAGE_CHANGED", Error,
        "Code reads a secret differently from a plain value (decryption, a secrets API, a resolve reference); moving a value between plain and secret storage breaks the reader of the other kind in both directions. Secret values are compared by SHA-256 digest and never shown.";
    SchemaTypeMismatch => "SCHEMA_TYPE_MISMATCH", Error,
        "The other code version's schema expects another `type` where the configuration has this value: the new configuration against the old schema (rollback) or the old configuration against the new schema (mixed fleet). Named when no structural rule (TYPE_CHANGED, JSON_STRING_TYPE_CHANGED) explains it, for example a value whose type did not change but which the new schema types differently.";
    SchemaEnumMismatch => "SCHEMA_ENUM_MISMATCH", Error,
        "The configuration holds a value the other code version's schema does not list (`enum` or `const`): a value only the new code knows, which old code rejects after a rollback, or an old value the new code no longer accepts. Named when ENUM_VALUE_REMOVED (a schema-to-schema change) does not explain it.";
    DoubleEncodedValue => "DOUBLE_ENCODED_VALUE", Warn,
        "A string that now holds the JSON or YAML text of a list or map where it held a plain string, or the reverse: a generated configuration encoding items twice (`[\"recipe[a]\"]` becoming `[\"[\\\"recipe[a]\\\"]\"]`). Readers still get a string, so nothing fails to parse, but it means something else. A warning; an error when a schema of the reading code rejects the value there (its type, enum or pattern no longer matches).";
    SchemaViolation => "SCHEMA_VIOLATION", Error,
        "The other code version's schema rejects the configuration for a reason no narrower rule names (a bound, a pattern, a key the schema does not allow).";
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// The rule table as Markdown (the body of `RULES.md`; a test keeps the two in step).
pub fn markdown_table() -> String {
    let mut out = String::from("| ID | Default level | Rationale |\n| --- | --- | --- |\n");
    for rule in Rule::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            rule.id(),
            rule.default_level().name(),
            rule.rationale()
        ));
    }
    out
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

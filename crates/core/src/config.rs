//! TOML configs: parse, apply `--set a.b=value` overrides, validate, and explain errors.
//!
//! Every error names where it came from (the file and line, or the `--set` argument), the key, what is
//! wrong, and — for unknown keys and unknown choices — the closest valid name. Config structs use
//! `#[serde(deny_unknown_fields)]` and `#[serde(default)]`, so a config file only lists what it changes.

use serde::de::DeserializeOwned;
use std::fmt;

/// One `--set key.path=value` override. The value is read as a TOML value when it parses as one
/// (`3`, `1e-3`, `true`, `"x"`, `[1, 2]`) and as a bare string otherwise (`gaussian`).
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub key: String,
    pub raw: String,
}

impl Override {
    /// Parses `key.path=value`.
    pub fn parse(arg: &str) -> Result<Self, ConfigError> {
        let Some((key, raw)) = arg.split_once('=') else {
            return Err(ConfigError {
                origin: format!("--set {arg}"),
                line: None,
                key: None,
                message: "expected KEY=VALUE, e.g. `--set train.steps=500`".into(),
                suggestion: None,
            });
        };
        let key = key.trim();
        if key.is_empty() || key.split('.').any(|p| p.trim().is_empty()) {
            return Err(ConfigError {
                origin: format!("--set {arg}"),
                line: None,
                key: Some(key.to_string()),
                message: "the key must be a dotted path like `model.layers`".into(),
                suggestion: None,
            });
        }
        Ok(Self { key: key.to_string(), raw: raw.trim().to_string() })
    }

    fn value(&self) -> toml::Value {
        let doc = format!("v = {}", self.raw);
        match toml::from_str::<toml::Table>(&doc) {
            Ok(mut t) => t.remove("v").expect("parsed key v"),
            Err(_) => toml::Value::String(self.raw.clone()),
        }
    }

    fn origin(&self) -> String {
        format!("--set {}={}", self.key, self.raw)
    }
}

/// A value that is well-formed TOML but not acceptable (e.g. `task.d = 0`).
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    /// Dotted key path, e.g. `task.d`.
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

/// Semantic checks a config runs after it deserialised.
pub trait Validate {
    fn validate(&self) -> Result<(), Invalid>;
}

/// Why a config could not be loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    /// The file name, or the `--set` argument the problem came from.
    pub origin: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// Dotted key path, when known.
    pub key: Option<String>,
    pub message: String,
    /// The closest valid key or choice.
    pub suggestion: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Parses `text` (read from `origin`, a file name for messages), applies `overrides` in order, and
/// deserialises and validates the result.
pub fn load<T: DeserializeOwned + Validate>(
    origin: &str,
    text: &str,
    overrides: &[Override],
) -> Result<T, ConfigError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| from_toml_error(origin, text, &e))?;
    // Check the file on its own first so that errors in it point at its lines.
    toml::from_str::<T>(text).map_err(|e| from_toml_error(origin, text, &e))?;

    for ov in overrides {
        set_path(&mut table, &ov.key, ov.value()).map_err(|message| ConfigError {
            origin: ov.origin(),
            line: None,
            key: Some(ov.key.clone()),
            message,
            suggestion: None,
        })?;
        // Re-check after each override so the error names the override that broke it.
        T::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
            let (message, suggestion) = explain(e.message());
            ConfigError { origin: ov.origin(), line: None, key: Some(ov.key.clone()), message, suggestion }
        })?;
    }

    let config = T::deserialize(toml::Value::Table(table)).map_err(|e| {
        let (message, suggestion) = explain(e.message());
        ConfigError { origin: origin.to_string(), line: None, key: None, message, suggestion }
    })?;
    config.validate().map_err(|inv| {
        let overridden = overrides.iter().rev().find(|o| o.key == inv.key);
        match overridden {
            Some(ov) => ConfigError {
                origin: ov.origin(),
                line: None,
                key: Some(inv.key),
                message: inv.message,
                suggestion: None,
            },
            None => ConfigError {
                origin: origin.to_string(),
                line: locate_key(text, &inv.key),
                key: Some(inv.key),
                message: inv.message,
                suggestion: None,
            },
        }
    })?;
    Ok(config)
}

/// Sets `a.b.c = value` in `table`, creating intermediate tables.
fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    let (last, parents) = parts.split_last().expect("non-empty key");
    let mut cur = table;
    for (i, p) in parents.iter().enumerate() {
        let entry = cur.entry(p.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("`{}` is a value, not a table", parts[..=i].join("."))),
        };
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

fn from_toml_error(origin: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let (message, suggestion) = explain(e.message());
    let (line, key) = match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            (Some(line), key_at_line(text, line))
        }
        None => (None, None),
    };
    ConfigError { origin: origin.to_string(), line, key, message, suggestion }
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" into a message and the closest of
/// the expected names.
fn explain(message: &str) -> (String, Option<String>) {
    let message = message.trim().to_string();
    let unknown = ["unknown field `", "unknown variant `"].iter().find_map(|p| message.find(p).map(|i| i + p.len()));
    let Some(start) = unknown else { return (message, None) };
    let Some(len) = message[start..].find('`') else { return (message, None) };
    let got = &message[start..start + len];
    let expected: Vec<&str> = match message.find("expected") {
        Some(i) => message[i..].split('`').skip(1).step_by(2).collect(),
        None => Vec::new(),
    };
    let suggestion = crate::suggest::closest(got, &expected).map(str::to_string);
    (message, suggestion)
}

/// The dotted key defined on `line` (1-based), prefixed by the `[table]` header above it.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?.trim();
    let (key, _) = here.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let header = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix('[').and_then(|l| l.strip_suffix(']')).map(|h| h.trim().to_string())
    });
    Some(match header {
        Some(h) => format!("{h}.{key}"),
        None => key.to_string(),
    })
}

/// The 1-based line where dotted `key` is set in `text` (`[a]` then `b = …`, or `a.b = …`).
pub fn locate_key(text: &str, key: &str) -> Option<usize> {
    text.lines().enumerate().find(|(i, _)| key_at_line(text, i + 1).as_deref() == Some(key)).map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Train {
        steps: u32,
        learning_rate: f64,
    }
    impl Default for Train {
        fn default() -> Self {
            Self { steps: 10, learning_rate: 1e-3 }
        }
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Dist {
        Uniform,
        Gaussian,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        #[serde(default)]
        train: Train,
        #[serde(default = "uniform")]
        dist: Dist,
    }
    fn uniform() -> Dist {
        Dist::Uniform
    }
    impl Validate for Cfg {
        fn validate(&self) -> Result<(), Invalid> {
            if self.train.learning_rate <= 0.0 {
                return Err(Invalid::new("train.learning_rate", "must be > 0"));
            }
            Ok(())
        }
    }

    fn ov(s: &str) -> Override {
        Override::parse(s).unwrap()
    }

    #[test]
    fn defaults_file_values_and_overrides_apply_in_order() {
        let text = "[train]\nsteps = 5\n";
        let c: Cfg = load("a.toml", text, &[ov("train.learning_rate=0.5"), ov("dist=gaussian")]).unwrap();
        assert_eq!(c.train, Train { steps: 5, learning_rate: 0.5 });
        assert_eq!(c.dist, Dist::Gaussian);
    }

    #[test]
    fn unknown_key_in_file_names_line_key_and_closest() {
        let text = "# comment\n[train]\nsteps = 5\nlearning_rat = 0.1\n";
        let e = load::<Cfg>("a.toml", text, &[]).unwrap_err();
        assert_eq!(e.line, Some(4));
        assert_eq!(e.key.as_deref(), Some("train.learning_rat"));
        assert_eq!(e.suggestion.as_deref(), Some("learning_rate"));
        let shown = e.to_string();
        assert!(shown.starts_with("a.toml:4: key `train.learning_rat`"), "{shown}");
    }

    #[test]
    fn unknown_override_and_bad_choice_name_the_override() {
        let e = load::<Cfg>("a.toml", "", &[ov("train.stepz=3")]).unwrap_err();
        assert_eq!(e.origin, "--set train.stepz=3");
        assert_eq!(e.suggestion.as_deref(), Some("steps"));
        let e = load::<Cfg>("a.toml", "", &[ov("dist=gausian")]).unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("gaussian"));
    }

    #[test]
    fn wrong_type_and_invalid_value_are_located() {
        let e = load::<Cfg>("a.toml", "[train]\nsteps = \"many\"\n", &[]).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("train.steps")));
        let e = load::<Cfg>("a.toml", "[train]\nlearning_rate = -1.0\n", &[]).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("train.learning_rate")));
        let e = load::<Cfg>("a.toml", "", &[ov("train.learning_rate=-2")]).unwrap_err();
        assert_eq!(e.origin, "--set train.learning_rate=-2");
    }

    #[test]
    fn malformed_override_is_an_error() {
        assert!(Override::parse("novalue").is_err());
        assert!(Override::parse("a..b=1").is_err());
    }
}

//! Sweep files: parse, validate, expand into points.
//!
//! ```toml
//! name = "icl-lr"                       # default: the file's stem
//! experiment = "icl-gd"                 # a shipped experiment, or a config path (relative to this file)
//! quick = true
//! set = ["train.steps=100"]             # fixed `--set` overrides for every point
//! seeds = 3                             # 0, 1, 2 (from `seed`); or a list: [0, 5, 9]
//! metrics = ["final/loss"]              # what the report plots; the first ranks the best points
//! goal = "min"                          # min | max, for the first metric
//!
//! [grid]                                # cartesian product, keys in name order (the last varies fastest)
//! "train.learning_rate" = [1e-3, 3e-3]  # a list
//! "train.steps" = { range = [100, 400, 100] }      # start, stop (exclusive), step
//! "model.init_std" = { logspace = [1e-3, 1e-1, 3] } # a, b, count (also `linspace`)
//!
//! [random]                              # `samples` draws, crossed with the grid
//! samples = 4
//! seed = 0
//! "train.beta2" = { uniform = [0.9, 0.999] }
//! "train.learning_rate" = { log_uniform = [1e-4, 1e-2] }
//! "train.batch_size" = { int_uniform = [64, 256] }  # inclusive
//! "task.x_dist" = { choice = ["uniform", "gaussian"] }
//!
//! [slurm]                               # defaults for the slurm executor; flags override
//! time = "00:10:00"
//! mem = "2G"
//! ```
//!
//! Invariants: every error names the file and line, the key and (for unknown keys and unknown
//! value specs) the closest valid name; the points of a sweep file depend only on its text (random
//! draws come from `random.seed`), so planning twice gives the same points with the same keys.

use mesalab_core::config::{self, ConfigError, Invalid, Validate};
use mesalab_core::suggest;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::point::Point;

/// The typed part of a sweep file; `grid` and `random` hold `--set` keys and are read by hand.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Raw {
    name: Option<String>,
    experiment: String,
    quick: bool,
    set: Vec<String>,
    seed: u64,
    seeds: Option<Seeds>,
    metrics: Vec<String>,
    goal: Goal,
    grid: toml::Table,
    random: toml::Table,
    slurm: SlurmOptions,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

/// Whether lower or higher values of the ranking metric are better.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    #[default]
    Min,
    Max,
}

/// Resources of one Slurm task (one point), from `[slurm]` and the command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmOptions {
    /// `--time`, e.g. `00:10:00`.
    pub time: String,
    /// `--mem`, e.g. `2G`.
    pub mem: String,
    pub cpus_per_task: u32,
    pub partition: Option<String>,
    pub account: Option<String>,
    /// At most this many tasks at once (`--array=…%N`); 0: no limit.
    pub max_parallel: u32,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        Self {
            time: "01:00:00".into(),
            mem: "2G".into(),
            cpus_per_task: 1,
            partition: None,
            account: None,
            max_parallel: 0,
        }
    }
}

impl SlurmOptions {
    pub fn validate(&self) -> Result<(), Invalid> {
        let time_ok = !self.time.is_empty()
            && self.time.split(['-', ':']).all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !time_ok {
            return Err(Invalid::new(
                "slurm.time",
                format!("`{}` is not a Slurm time like 00:10:00 or 1-00:00:00", self.time),
            ));
        }
        let digits = self.mem.trim_end_matches(['K', 'M', 'G', 'T']);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || self.mem.len() - digits.len() > 1 {
            return Err(Invalid::new(
                "slurm.mem",
                format!("`{}` is not a Slurm memory size like 500M or 2G", self.mem),
            ));
        }
        if self.cpus_per_task == 0 {
            return Err(Invalid::new("slurm.cpus_per_task", "must be at least 1"));
        }
        for (key, v) in [("slurm.partition", &self.partition), ("slurm.account", &self.account)] {
            if v.as_deref().is_some_and(|s| s.is_empty() || s.contains(char::is_whitespace)) {
                return Err(Invalid::new(key, "must be a non-empty name without spaces"));
            }
        }
        Ok(())
    }
}

impl Validate for Raw {
    fn validate(&self) -> Result<(), Invalid> {
        if self.experiment.trim().is_empty() {
            return Err(Invalid::new("experiment", "name the base experiment, e.g. `experiment = \"icl-gd\"`"));
        }
        if let Some(name) = &self.name
            && (name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return Err(Invalid::new("name", "use letters, digits, `-`, `_` and `.` only"));
        }
        match &self.seeds {
            Some(Seeds::Count(0)) => return Err(Invalid::new("seeds", "must be at least 1")),
            Some(Seeds::List(l)) if l.is_empty() => return Err(Invalid::new("seeds", "the list is empty")),
            Some(Seeds::List(l)) => {
                let mut sorted = l.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() != l.len() {
                    return Err(Invalid::new("seeds", "a seed is listed twice"));
                }
            }
            Some(Seeds::Count(n)) if self.seed.checked_add(*n).is_none() => {
                return Err(Invalid::new("seeds", "seed + seeds overflows a 64-bit seed"));
            }
            _ => {}
        }
        if self.metrics.iter().any(|m| m.is_empty()) {
            return Err(Invalid::new("metrics", "a metric name is empty"));
        }
        self.slurm.validate()
    }
}

/// One swept value, as the `--set` text it becomes.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub raw: String,
    /// The number, for charts (`None` for strings and booleans).
    pub number: Option<f64>,
}

impl Value {
    fn from_toml(v: &toml::Value) -> Option<Value> {
        match v {
            toml::Value::Integer(i) => Some(Value { raw: i.to_string(), number: Some(*i as f64) }),
            toml::Value::Float(f) => Some(Value { raw: toml_float(*f), number: Some(*f) }),
            toml::Value::String(_) | toml::Value::Boolean(_) => Some(Value { raw: v.to_string(), number: None }),
            _ => None,
        }
    }
}

/// A float as TOML text that reads back to the same f64 (`1e-3` → `0.001`, `3.0` → `3.0`).
fn toml_float(f: f64) -> String {
    let s = format!("{f:?}");
    if s.contains(['.', 'e', 'E']) || !f.is_finite() { s } else { format!("{s}.0") }
}

/// How one key is swept.
#[derive(Clone, Debug, PartialEq)]
pub enum Axis {
    /// Grid values (lists, ranges, linspace, logspace).
    Grid(Vec<Value>),
    Uniform(f64, f64),
    LogUniform(f64, f64),
    IntUniform(i64, i64),
    Choice(Vec<Value>),
}

/// A swept key: the `--set` key, its axis, and where the sweep file defines it.
#[derive(Clone, Debug, PartialEq)]
pub struct SweptKey {
    pub key: String,
    pub axis: Axis,
    /// `grid.<key>` or `random.<key>`, for error messages.
    pub located_as: String,
    pub line: Option<usize>,
}

impl SweptKey {
    /// Whether the report should draw this key on a log axis.
    pub fn log_scale(&self) -> bool {
        match &self.axis {
            Axis::LogUniform(..) => true,
            Axis::Grid(values) => {
                let nums: Option<Vec<f64>> = values.iter().map(|v| v.number).collect();
                nums.is_some_and(|n| {
                    let (lo, hi) = n.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
                    n.len() >= 3 && lo > 0.0 && hi / lo >= 10.0
                })
            }
            _ => false,
        }
    }
}

/// A validated sweep file.
#[derive(Clone, Debug)]
pub struct SweepSpec {
    /// Where it was read from (for messages).
    pub origin: String,
    pub text: String,
    pub name: String,
    /// As written: a shipped name or a config path relative to the sweep file.
    pub experiment: String,
    pub quick: bool,
    pub fixed: Vec<config::Override>,
    pub seeds: Vec<u64>,
    pub grid: Vec<SweptKey>,
    pub random: Vec<SweptKey>,
    pub samples: u64,
    pub random_seed: u64,
    pub metrics: Vec<String>,
    pub goal: Goal,
    pub slurm: SlurmOptions,
}

const GRID_SPECS: &[&str] = &["range", "linspace", "logspace", "values"];
const RANDOM_SPECS: &[&str] = &["uniform", "log_uniform", "int_uniform", "choice"];
/// More points than this is almost certainly a typo in a range.
pub const MAX_POINTS: usize = 100_000;

impl SweepSpec {
    /// Parses and validates a sweep file read from `origin` (a path, for messages).
    pub fn parse(origin: &str, text: &str) -> Result<SweepSpec, ConfigError> {
        let raw: Raw = config::load(origin, text, &[])?;
        let err = |key: &str, message: String, suggestion: Option<String>| ConfigError {
            origin: origin.to_string(),
            line: config::locate_key(text, key).or_else(|| locate_table(text, key)),
            key: Some(key.to_string()),
            message,
            suggestion,
        };
        let fixed = raw
            .set
            .iter()
            .map(|s| config::Override::parse(s).map_err(|e| err("set", format!("`{s}`: {}", e.message), None)))
            .collect::<Result<Vec<_>, _>>()?;
        let seeds = match &raw.seeds {
            None => vec![raw.seed],
            Some(Seeds::Count(n)) => (0..*n).map(|i| raw.seed + i).collect(),
            Some(Seeds::List(l)) => l.clone(),
        };

        let mut grid = Vec::new();
        flatten_keys(text, origin, "grid", "", &raw.grid, GRID_SPECS, &mut grid)?;
        let mut random_table = raw.random.clone();
        let samples = take_uint(&mut random_table, "samples").map_err(|m| err("random.samples", m, None))?;
        let random_seed = take_uint(&mut random_table, "seed").map_err(|m| err("random.seed", m, None))?;
        let mut random = Vec::new();
        flatten_keys(text, origin, "random", "", &random_table, RANDOM_SPECS, &mut random)?;
        let samples = match (samples, random.is_empty()) {
            (Some(0), _) => return Err(err("random.samples", "must be at least 1".into(), None)),
            (Some(n), false) => n,
            (None, false) => return Err(err("random", "say how many draws: `samples = N`".into(), None)),
            (Some(_), true) => return Err(err("random.samples", "[random] sweeps no key".into(), None)),
            (None, true) => 1,
        };
        for key in grid.iter().chain(&random) {
            if let Some(fixed) = fixed.iter().find(|o| o.key == key.key) {
                return Err(ConfigError {
                    origin: origin.to_string(),
                    line: key.line,
                    key: Some(key.located_as.clone()),
                    message: format!("`{}` is also fixed by `set = [\"{}={}\"]`", key.key, fixed.key, fixed.raw),
                    suggestion: None,
                });
            }
        }
        if let Some(dup) = random.iter().find(|r| grid.iter().any(|g| g.key == r.key)) {
            return Err(ConfigError {
                origin: origin.to_string(),
                line: dup.line,
                key: Some(dup.located_as.clone()),
                message: format!("`{}` is swept in both [grid] and [random]", dup.key),
                suggestion: None,
            });
        }
        let name = match raw.name.clone() {
            Some(n) => n,
            None => std::path::Path::new(origin)
                .file_stem()
                .map(|s| {
                    s.to_string_lossy()
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' })
                        .collect()
                })
                .unwrap_or_else(|| "sweep".into()),
        };
        let spec = SweepSpec {
            origin: origin.to_string(),
            text: text.to_string(),
            name,
            experiment: raw.experiment.trim().to_string(),
            quick: raw.quick,
            fixed,
            seeds,
            grid,
            random,
            samples,
            random_seed: random_seed.unwrap_or(0),
            metrics: raw.metrics,
            goal: raw.goal,
            slurm: raw.slurm,
        };
        let count = spec.point_count();
        if count > MAX_POINTS as u128 {
            return Err(err(
                "grid",
                format!("the sweep has {count} points, more than {MAX_POINTS}; check the ranges"),
                None,
            ));
        }
        Ok(spec)
    }

    fn point_count(&self) -> u128 {
        let grid: u128 = self
            .grid
            .iter()
            .map(|k| match &k.axis {
                Axis::Grid(v) => v.len() as u128,
                _ => 1,
            })
            .product();
        grid * u128::from(self.samples) * self.seeds.len() as u128
    }

    /// Every point, in a fixed order: grid combinations (last key fastest), then random draws,
    /// then seeds. Indices are positions in this list; keys identify a point's content.
    pub fn points(&self) -> Vec<Point> {
        let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
        for key in &self.grid {
            let Axis::Grid(values) = &key.axis else { continue };
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((key.key.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        let mut rng = mesalab_core::Streams::new(mesalab_core::Seed(self.random_seed)).stream("sweep-random");
        let draws: Vec<Vec<(String, Value)>> = (0..self.samples)
            .map(|_| self.random.iter().map(|k| (k.key.clone(), draw(&k.axis, &mut rng))).collect())
            .collect();
        let mut points = Vec::new();
        for combo in &combos {
            for drawn in &draws {
                for &seed in &self.seeds {
                    let values: Vec<(String, Value)> = combo.iter().chain(drawn).cloned().collect();
                    points.push(Point::new(points.len(), self, values, seed));
                }
            }
        }
        points
    }

    /// Every swept key, grid first.
    pub fn swept(&self) -> impl Iterator<Item = &SweptKey> {
        self.grid.iter().chain(&self.random)
    }

    /// The sweep file's line and name for a `--set` key (a swept or a fixed one).
    pub fn locate(&self, key: &str) -> (Option<usize>, String) {
        match self.swept().find(|k| k.key == key) {
            Some(k) => (k.line, k.located_as.clone()),
            None => (config::locate_key(&self.text, "set"), "set".into()),
        }
    }
}

fn draw(axis: &Axis, rng: &mut impl Rng) -> Value {
    match axis {
        Axis::Uniform(a, b) => {
            let x = a + (b - a) * rng.random::<f64>();
            Value { raw: toml_float(x), number: Some(x) }
        }
        Axis::LogUniform(a, b) => {
            let x = (a.ln() + (b.ln() - a.ln()) * rng.random::<f64>()).exp();
            Value { raw: toml_float(x), number: Some(x) }
        }
        Axis::IntUniform(a, b) => {
            let x = rng.random_range(*a..=*b);
            Value { raw: x.to_string(), number: Some(x as f64) }
        }
        Axis::Choice(values) | Axis::Grid(values) => values[rng.random_range(0..values.len())].clone(),
    }
}

fn take_uint(table: &mut toml::Table, key: &str) -> Result<Option<u64>, String> {
    match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::Integer(i)) if i >= 0 => Ok(Some(i as u64)),
        Some(other) => Err(format!("expected a non-negative integer, got {other}")),
    }
}

/// The line of a `[table]` header.
fn locate_table(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')).is_some_and(|h| h.trim() == key))
        .map(|i| i + 1)
}

/// Reads `[grid]` / `[random]`: quoted dotted keys (`"train.steps" = …`) and nested tables
/// (`[grid.train]` `steps = …`) alike. A table whose keys are all value specs (`range`, …) is one
/// key's spec; one with a key close to a spec name is a typo and an error.
fn flatten_keys(
    text: &str,
    origin: &str,
    section: &str,
    prefix: &str,
    table: &toml::Table,
    specs: &[&str],
    out: &mut Vec<SweptKey>,
) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        let located_as = format!("{section}.{key}");
        let line = config::locate_key(text, &located_as).or_else(|| find_key_line(text, &key));
        let err = |message: String, suggestion: Option<String>| ConfigError {
            origin: origin.to_string(),
            line,
            key: Some(located_as.clone()),
            message,
            suggestion,
        };
        let axis = match v {
            toml::Value::Array(items) => Axis::Grid(values_of(items).map_err(|m| err(m, None))?),
            toml::Value::Table(t) => {
                let all_specs = t.keys().all(|name| specs.contains(&name.as_str()));
                if !all_specs {
                    let other = if specs == GRID_SPECS { RANDOM_SPECS } else { GRID_SPECS };
                    if let Some(name) = t.keys().find(|n| other.contains(&n.as_str())) {
                        return Err(err(
                            format!(
                                "`{name}` belongs in [{}], not [{section}]; valid here: {}",
                                if section == "grid" { "random" } else { "grid" },
                                specs.join(", ")
                            ),
                            None,
                        ));
                    }
                    let every: Vec<&str> = specs.iter().chain(other).copied().collect();
                    if let Some(name) = t.keys().find(|n| suggest::closest(n, &every).is_some()) {
                        return Err(err(
                            format!("unknown value spec `{name}`; valid in [{section}]: {}", specs.join(", ")),
                            suggest::closest(name, &every).map(str::to_string),
                        ));
                    }
                    flatten_keys(text, origin, section, &key, t, specs, out)?;
                    continue;
                }
                if t.len() != 1 {
                    return Err(err(
                        format!("give one value spec, found {}", t.keys().cloned().collect::<Vec<_>>().join(", ")),
                        None,
                    ));
                }
                let (name, arg) = t.iter().next().expect("one entry");
                spec_axis(name, arg).map_err(|m| err(m, None))?
            }
            single => match section {
                "grid" => Axis::Grid(values_of(std::slice::from_ref(single)).map_err(|m| err(m, None))?),
                _ => {
                    return Err(err(
                        format!("expected a value spec like {{ uniform = [0.0, 1.0] }} or a list, got {single}"),
                        None,
                    ));
                }
            },
        };
        let axis = match (section, axis) {
            ("random", Axis::Grid(values)) => Axis::Choice(values),
            (_, axis) => axis,
        };
        out.push(SweptKey { key, axis, located_as, line });
    }
    Ok(())
}

/// The line that defines `"a.b" = …` (a quoted dotted key) anywhere in the file.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let quoted = format!("\"{key}\"");
    text.lines().position(|l| l.trim_start().starts_with(&quoted)).map(|i| i + 1)
}

fn values_of(items: &[toml::Value]) -> Result<Vec<Value>, String> {
    if items.is_empty() {
        return Err("the list of values is empty".into());
    }
    let values: Vec<Value> = items
        .iter()
        .map(|v| Value::from_toml(v).ok_or_else(|| format!("`{v}` is not a number, string or boolean")))
        .collect::<Result<_, _>>()?;
    let mut raws: Vec<&str> = values.iter().map(|v| v.raw.as_str()).collect();
    raws.sort_unstable();
    if raws.windows(2).any(|w| w[0] == w[1]) {
        return Err("a value is listed twice".into());
    }
    Ok(values)
}

fn numbers(arg: &toml::Value, count: usize, what: &str) -> Result<Vec<f64>, String> {
    let items = arg.as_array().filter(|a| a.len() == count).ok_or_else(|| format!("expected [{what}]"))?;
    items
        .iter()
        .map(|v| match v {
            toml::Value::Integer(i) => Ok(*i as f64),
            toml::Value::Float(f) if f.is_finite() => Ok(*f),
            other => Err(format!("expected [{what}], `{other}` is not a finite number")),
        })
        .collect()
}

fn spec_axis(name: &str, arg: &toml::Value) -> Result<Axis, String> {
    let all_ints = arg.as_array().is_some_and(|a| a.iter().all(|v| v.is_integer()));
    match name {
        "values" | "choice" => {
            let items = arg.as_array().ok_or("expected a list of values")?;
            let values = values_of(items)?;
            Ok(if name == "values" { Axis::Grid(values) } else { Axis::Choice(values) })
        }
        "range" => {
            let [start, stop, step] = numbers(arg, 3, "start, stop (exclusive), step")?[..] else { unreachable!() };
            if step <= 0.0 || stop <= start {
                return Err("needs start < stop and step > 0".into());
            }
            let count = ((stop - start) / step - 1e-9).ceil().max(0.0) as usize;
            if count > MAX_POINTS {
                return Err(format!("{count} values; check the step"));
            }
            let values = (0..count)
                .map(|i| {
                    let x = start + step * i as f64;
                    if all_ints {
                        Value { raw: (x as i64).to_string(), number: Some(x) }
                    } else {
                        Value { raw: toml_float(x), number: Some(x) }
                    }
                })
                .collect();
            Ok(Axis::Grid(values))
        }
        "linspace" | "logspace" => {
            let [a, b, n] = numbers(arg, 3, "first, last, count")?[..] else { unreachable!() };
            if n < 1.0 || n.fract() != 0.0 || n > MAX_POINTS as f64 {
                return Err("the count must be a whole number ≥ 1".into());
            }
            if name == "logspace" && (a <= 0.0 || b <= 0.0) {
                return Err("logspace needs positive bounds".into());
            }
            let n = n as usize;
            let at = |i: usize| {
                let t = if n == 1 { 0.0 } else { i as f64 / (n - 1) as f64 };
                if name == "logspace" { (a.ln() + (b.ln() - a.ln()) * t).exp() } else { a + (b - a) * t }
            };
            Ok(Axis::Grid((0..n).map(|i| Value { raw: toml_float(at(i)), number: Some(at(i)) }).collect()))
        }
        "uniform" | "log_uniform" => {
            let [a, b] = numbers(arg, 2, "low, high")?[..] else { unreachable!() };
            if a >= b {
                return Err("needs low < high".into());
            }
            if name == "log_uniform" {
                if a <= 0.0 {
                    return Err("log_uniform needs a positive low bound".into());
                }
                Ok(Axis::LogUniform(a, b))
            } else {
                Ok(Axis::Uniform(a, b))
            }
        }
        "int_uniform" => {
            if !all_ints {
                return Err("int_uniform needs integer bounds [low, high]".into());
            }
            let [a, b] = numbers(arg, 2, "low, high (inclusive)")?[..] else { unreachable!() };
            if a > b {
                return Err("needs low ≤ high".into());
            }
            Ok(Axis::IntUniform(a as i64, b as i64))
        }
        other => Err(format!("unknown value spec `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "name = \"t\"\nexperiment = \"icl-gd\"\nquick = true\nset = [\"train.steps=10\"]\nseeds = 2\n\n[grid]\n\"train.learning_rate\" = [1e-3, 3e-3]\n\"model.heads\" = { range = [1, 3, 1] }\n\n[random]\nsamples = 2\nseed = 7\n\"train.beta2\" = { log_uniform = [0.9, 0.99] }\n";

    #[test]
    fn expands_grid_times_draws_times_seeds_deterministically() {
        let spec = SweepSpec::parse("s.toml", FILE).unwrap();
        let points = spec.points();
        assert_eq!(points.len(), 2 * 2 * 2 * 2);
        // Keys in name order: model.heads, then train.learning_rate (the last one varies fastest).
        assert_eq!(
            points[0].values[1],
            ("train.learning_rate".into(), Value { raw: "0.001".into(), number: Some(1e-3) })
        );
        assert_eq!(points[0].values[0].1.raw, "1");
        assert_eq!(points[4].values[1].1.raw, "0.003");
        assert_eq!(points[8].values[0].1.raw, "2");
        assert_ne!(points[0].values[2].1, points[2].values[2].1, "two random draws");
        assert_eq!((points[0].seed, points[1].seed), (0, 1));
        let again = SweepSpec::parse("s.toml", FILE).unwrap().points();
        assert_eq!(points.iter().map(|p| &p.key).collect::<Vec<_>>(), again.iter().map(|p| &p.key).collect::<Vec<_>>());
        let mut keys: Vec<_> = points.iter().map(|p| p.key.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), points.len(), "keys are unique");
        for p in &points {
            let b: f64 = p.values[2].1.raw.parse().unwrap();
            assert!((0.9..0.99).contains(&b), "{b}");
        }
    }

    #[test]
    fn errors_name_line_key_and_closest() {
        let e = SweepSpec::parse("s.toml", "experiment = \"icl-gd\"\nseeeds = 3\n").unwrap_err();
        assert_eq!((e.line, e.suggestion.as_deref()), (Some(2), Some("seeds")), "{e}");
        let e = SweepSpec::parse("s.toml", "experiment = \"icl-gd\"\n[grid]\n\"a.b\" = { log_unifrom = [1, 2] }\n")
            .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.suggestion.as_deref(), Some("log_uniform"));
        assert!(e.to_string().starts_with("s.toml:3: key `grid.a.b`"), "{e}");
        let e = SweepSpec::parse(
            "s.toml",
            "experiment = \"icl-gd\"\n[random]\nsamples = 2\n\"a.b\" = { log_uniform = [0, 2] }\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        let e = SweepSpec::parse("s.toml", "experiment = \"icl-gd\"\n[random]\n\"a.b\" = { uniform = [0, 2] }\n")
            .unwrap_err();
        assert!(e.to_string().contains("samples"), "{e}");
        let e = SweepSpec::parse("s.toml", "experiment = \"icl-gd\"\n[slurm]\ntime = \"ten minutes\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("slurm.time")), "{e}");
        let e = SweepSpec::parse("s.toml", "experiment = \"icl-gd\"\n[slurm]\nmemory = \"2G\"\n").unwrap_err();
        assert_eq!((e.line, e.suggestion.as_deref()), (Some(3), Some("mem")), "{e}");
        let e = SweepSpec::parse("s.toml", "experiment = \"icl-gd\"\nset = [\"a.b=1\"]\n[grid]\n\"a.b\" = [1, 2]\n")
            .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
    }

    #[test]
    fn nested_tables_and_ranges() {
        let spec = SweepSpec::parse("s.toml", "experiment = \"x\"\n[grid.train]\nsteps = { range = [100, 400, 100] }\nlr = { logspace = [1e-4, 1e-2, 3] }\n").unwrap();
        let keys: Vec<&str> = spec.grid.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["train.lr", "train.steps"]);
        let Axis::Grid(steps) = &spec.grid[1].axis else { panic!() };
        assert_eq!(steps.iter().map(|v| v.raw.as_str()).collect::<Vec<_>>(), ["100", "200", "300"]);
        assert_eq!(spec.grid[1].line, Some(3));
        let Axis::Grid(lr) = &spec.grid[0].axis else { panic!() };
        assert!((lr[1].number.unwrap() - 1e-3).abs() < 1e-15);
        assert!(spec.grid[0].log_scale());
        assert_eq!(spec.points().len(), 9);
    }
}

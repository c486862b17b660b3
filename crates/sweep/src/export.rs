//! `mesalab export`: a store's runs, metrics and result tables as flat files for pandas & co.
//!
//! Three files per export, `runs`, `metrics` and `tables`, each `.csv`, `.jsonl` or `.parquet`:
//!
//! | file | column | type | meaning |
//! |---|---|---|---|
//! | runs | `run_id` | int64 | id in the exported store (the key of the other two files) |
//! | | `uid` | string | the run's identity across stores (kept by `mesalab merge`) |
//! | | `experiment`, `status` | string | runner name; running / finished / failed / interrupted / crashed |
//! | | `quick` | bool | `--quick` sizes |
//! | | `seeds` | string | JSON array of the run's seeds |
//! | | `code_revision`, `error` | string, nullable | |
//! | | `run_dir` | string | absolute run directory |
//! | | `started_at`, `ended_at` | string (RFC 3339 UTC), `ended_at` nullable | |
//! | | `wall_s` | float64, nullable | `ended_at - started_at` in seconds |
//! | | `config_toml` | string | the resolved config |
//! | metrics | `run_id` | int64 | |
//! | | `seed` | uint64, nullable | null: a cross-seed aggregate |
//! | | `step` | int64 | |
//! | | `name` | string | |
//! | | `value` | float64, nullable | null where the store holds NaN |
//! | tables | `run_id` | int64 | |
//! | | `table`, `column` | string | result table name, column header |
//! | | `row` | int64 | 0-based row |
//! | | `value` | string | the cell as JSON text |
//! | | `number` | float64, nullable | the cell when it is a number |
//!
//! CSV: RFC 4180 (a header line, fields with `,` `"` or line breaks quoted), null as an empty
//! field, booleans `true`/`false`. JSON lines: one object per row, null as `null`. Parquet:
//! uncompressed, one row group, the types above (uint64 as INT64 annotated unsigned; strings as
//! UTF-8 BYTE_ARRAY). Rows follow run id, then the store's order.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use mesalab_store::{RunId, Store};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
}

impl Format {
    pub fn parse(s: &str) -> anyhow::Result<Format> {
        match s {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            other => bail!(
                "unknown export format `{other}`{}; valid: csv, jsonl, parquet",
                mesalab_core::suggest::did_you_mean(other, &["csv", "jsonl", "parquet"])
            ),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

/// One column's values.
enum Values {
    I64(Vec<Option<i64>>),
    U64(Vec<Option<u64>>),
    F64(Vec<Option<f64>>),
    Str(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
}

struct Column {
    name: &'static str,
    nullable: bool,
    values: Values,
}

impl Column {
    fn len(&self) -> usize {
        match &self.values {
            Values::I64(v) => v.len(),
            Values::U64(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::Str(v) => v.len(),
            Values::Bool(v) => v.len(),
        }
    }

    fn json(&self, i: usize) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.values {
            Values::I64(v) => v[i].map_or(J::Null, J::from),
            Values::U64(v) => v[i].map_or(J::Null, J::from),
            Values::F64(v) => v[i].and_then(serde_json::Number::from_f64).map_or(J::Null, J::Number),
            Values::Str(v) => v[i].clone().map_or(J::Null, J::String),
            Values::Bool(v) => v[i].map_or(J::Null, J::Bool),
        }
    }

    fn csv(&self, i: usize) -> String {
        let s = match &self.values {
            Values::I64(v) => v[i].map(|x| x.to_string()),
            Values::U64(v) => v[i].map(|x| x.to_string()),
            // `{:?}` keeps every bit of an f64 (shortest round-trip form).
            Values::F64(v) => v[i].filter(|x| x.is_finite()).map(|x| format!("{x:?}")).or(v[i].map(|x| {
                if x.is_nan() {
                    "NaN".into()
                } else if x > 0.0 {
                    "inf".into()
                } else {
                    "-inf".into()
                }
            })),
            Values::Str(v) => v[i].clone(),
            Values::Bool(v) => v[i].map(|b| b.to_string()),
        };
        match s {
            None => String::new(),
            Some(s) if s.contains([',', '"', '\n', '\r']) => format!("\"{}\"", s.replace('"', "\"\"")),
            Some(s) => s,
        }
    }

    fn parquet_type(&self) -> String {
        let rep = if self.nullable { "optional" } else { "required" };
        let ty = match self.values {
            Values::I64(_) => "int64",
            Values::U64(_) => "int64 (INTEGER(64,false))",
            Values::F64(_) => "double",
            Values::Str(_) => "binary (STRING)",
            Values::Bool(_) => "boolean",
        };
        // `int64 (…)` must read `int64 name (…)`.
        match ty.split_once(' ') {
            Some((t, ann)) => format!("{rep} {t} {} {ann};", self.name),
            None => format!("{rep} {ty} {};", self.name),
        }
    }
}

struct Frame {
    name: &'static str,
    columns: Vec<Column>,
}

fn col(name: &'static str, nullable: bool, values: Values) -> Column {
    Column { name, nullable, values }
}

/// Which runs to export: `None` for all of them.
pub fn export(
    store: &Store,
    runs: Option<&[i64]>,
    format: Format,
    out: &Path,
) -> anyhow::Result<Vec<(PathBuf, usize)>> {
    let mut records = store.runs()?;
    records.sort_by_key(|r| r.id);
    if let Some(ids) = runs {
        for id in ids {
            if !records.iter().any(|r| r.id.0 == *id) {
                bail!("run {id} is not in the store {}; `--runs` takes ids from this store", store.path().display());
            }
        }
        records.retain(|r| ids.contains(&r.id.0));
    }
    let mut r = RunsCols::default();
    let (mut m_run, mut m_seed, mut m_step, mut m_name, mut m_value) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut t_run, mut t_table, mut t_row, mut t_col, mut t_value, mut t_num) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for rec in &records {
        let dump = store.dump(RunId(rec.id.0))?;
        r.push(&dump.run);
        for m in &dump.metrics {
            m_run.push(Some(rec.id.0));
            m_seed.push(m.seed);
            m_step.push(Some(m.step));
            m_name.push(Some(m.name.clone()));
            m_value.push((!m.value.is_nan()).then_some(m.value));
        }
        for raw in &dump.tables {
            let columns: Vec<String> = serde_json::from_str(&raw.columns)
                .with_context(|| format!("result table `{}` of run {} is damaged", raw.name, rec.id))?;
            // Cells keep their stored text: re-printing a parsed JSON float can change its last digit.
            let rows = split_rows(&raw.rows)
                .with_context(|| format!("result table `{}` of run {} is damaged", raw.name, rec.id))?;
            for (ri, row) in rows.iter().enumerate() {
                for (ci, cell) in row.iter().enumerate() {
                    t_run.push(Some(rec.id.0));
                    t_table.push(Some(raw.name.clone()));
                    t_row.push(Some(ri as i64));
                    t_col.push(Some(columns.get(ci).cloned().unwrap_or_default()));
                    t_num.push(json_number(cell));
                    t_value.push(Some(cell.clone()));
                }
            }
        }
    }
    let frames = vec![
        r.frame(),
        Frame {
            name: "metrics",
            columns: vec![
                col("run_id", false, Values::I64(m_run)),
                col("seed", true, Values::U64(m_seed)),
                col("step", false, Values::I64(m_step)),
                col("name", false, Values::Str(m_name)),
                col("value", true, Values::F64(m_value)),
            ],
        },
        Frame {
            name: "tables",
            columns: vec![
                col("run_id", false, Values::I64(t_run)),
                col("table", false, Values::Str(t_table)),
                col("row", false, Values::I64(t_row)),
                col("column", false, Values::Str(t_col)),
                col("value", false, Values::Str(t_value)),
                col("number", true, Values::F64(t_num)),
            ],
        },
    ];
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = Vec::new();
    for f in &frames {
        let path = out.join(format!("{}.{}", f.name, format.extension()));
        let tmp = path.with_extension(format!("{}.tmp", format.extension()));
        let rows = f.columns.first().map_or(0, Column::len);
        match format {
            Format::Csv => write_csv(f, &tmp)?,
            Format::Jsonl => write_jsonl(f, &tmp)?,
            Format::Parquet => write_parquet(f, &tmp).with_context(|| format!("writing {}", path.display()))?,
        }
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot move {} into place", path.display()))?;
        written.push((path, rows));
    }
    Ok(written)
}

/// A JSON number token, parsed by Rust's correctly rounded float parser.
fn json_number(cell: &str) -> Option<f64> {
    let c = cell.as_bytes().first()?;
    if c.is_ascii_digit() || *c == b'-' { cell.parse().ok() } else { None }
}

/// Splits a JSON array of arrays into the raw text of each cell, without parsing the cells.
fn split_rows(text: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let b = text.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let expect = |i: &mut usize, c: u8| -> anyhow::Result<()> {
        skip(i);
        if *i < b.len() && b[*i] == c {
            *i += 1;
            Ok(())
        } else {
            bail!("expected `{}` at byte {}", c as char, *i)
        }
    };
    expect(&mut i, b'[')?;
    let mut rows = Vec::new();
    skip(&mut i);
    if i < b.len() && b[i] == b']' {
        return Ok(rows);
    }
    loop {
        expect(&mut i, b'[')?;
        let mut row = Vec::new();
        skip(&mut i);
        if i < b.len() && b[i] == b']' {
            i += 1;
        } else {
            loop {
                skip(&mut i);
                let start = i;
                let (mut depth, mut in_str, mut esc) = (0i32, false, false);
                while i < b.len() {
                    let c = b[i];
                    if in_str {
                        match (esc, c) {
                            (true, _) => esc = false,
                            (false, b'\\') => esc = true,
                            (false, b'"') => in_str = false,
                            _ => {}
                        }
                    } else {
                        match c {
                            b'"' => in_str = true,
                            b'[' | b'{' => depth += 1,
                            b']' | b'}' if depth > 0 => depth -= 1,
                            b',' | b']' if depth == 0 => break,
                            _ => {}
                        }
                    }
                    i += 1;
                }
                let cell = text[start..i].trim();
                if cell.is_empty() {
                    bail!("empty cell at byte {start}");
                }
                row.push(cell.to_string());
                skip(&mut i);
                match b.get(i) {
                    Some(b',') => i += 1,
                    Some(b']') => {
                        i += 1;
                        break;
                    }
                    _ => bail!("unterminated row at byte {i}"),
                }
            }
        }
        rows.push(row);
        skip(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b']') => return Ok(rows),
            _ => bail!("unterminated table at byte {i}"),
        }
    }
}

#[derive(Default)]
struct RunsCols {
    id: Vec<Option<i64>>,
    uid: Vec<Option<String>>,
    experiment: Vec<Option<String>>,
    status: Vec<Option<String>>,
    quick: Vec<Option<bool>>,
    seeds: Vec<Option<String>>,
    code_revision: Vec<Option<String>>,
    run_dir: Vec<Option<String>>,
    started_at: Vec<Option<String>>,
    ended_at: Vec<Option<String>>,
    wall_s: Vec<Option<f64>>,
    error: Vec<Option<String>>,
    config_toml: Vec<Option<String>>,
}

impl RunsCols {
    fn push(&mut self, r: &mesalab_store::RunRecord) {
        self.id.push(Some(r.id.0));
        self.uid.push(Some(r.uid.clone()));
        self.experiment.push(Some(r.experiment.clone()));
        self.status.push(Some(r.status.as_str().to_string()));
        self.quick.push(Some(r.quick));
        self.seeds.push(Some(serde_json::to_string(&r.seeds).unwrap_or_default()));
        self.code_revision.push(r.code_revision.clone());
        self.run_dir.push(Some(r.run_dir.display().to_string()));
        self.started_at.push(Some(mesalab_store::rfc3339(r.started_at_ms)));
        self.ended_at.push(r.ended_at_ms.map(mesalab_store::rfc3339));
        self.wall_s.push(r.ended_at_ms.map(|e| (e - r.started_at_ms) as f64 / 1000.0));
        self.error.push(r.error.clone());
        self.config_toml.push(Some(r.config_toml.clone()));
    }

    fn frame(self) -> Frame {
        Frame {
            name: "runs",
            columns: vec![
                col("run_id", false, Values::I64(self.id)),
                col("uid", false, Values::Str(self.uid)),
                col("experiment", false, Values::Str(self.experiment)),
                col("status", false, Values::Str(self.status)),
                col("quick", false, Values::Bool(self.quick)),
                col("seeds", false, Values::Str(self.seeds)),
                col("code_revision", true, Values::Str(self.code_revision)),
                col("run_dir", false, Values::Str(self.run_dir)),
                col("started_at", false, Values::Str(self.started_at)),
                col("ended_at", true, Values::Str(self.ended_at)),
                col("wall_s", true, Values::F64(self.wall_s)),
                col("error", true, Values::Str(self.error)),
                col("config_toml", false, Values::Str(self.config_toml)),
            ],
        }
    }
}

fn write_csv(f: &Frame, path: &Path) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    writeln!(w, "{}", f.columns.iter().map(|c| c.name).collect::<Vec<_>>().join(","))?;
    for i in 0..f.columns.first().map_or(0, Column::len) {
        writeln!(w, "{}", f.columns.iter().map(|c| c.csv(i)).collect::<Vec<_>>().join(","))?;
    }
    w.flush()?;
    Ok(())
}

fn write_jsonl(f: &Frame, path: &Path) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    for i in 0..f.columns.first().map_or(0, Column::len) {
        // Written by hand to keep the schema's column order (a JSON map would sort the keys).
        let fields: Vec<String> = f.columns.iter().map(|c| format!("\"{}\":{}", c.name, c.json(i))).collect();
        writeln!(w, "{{{}}}", fields.join(","))?;
    }
    w.flush()?;
    Ok(())
}

/// Definition levels and the non-null values of a column.
fn split<T: Clone>(v: &[Option<T>]) -> (Vec<i16>, Vec<T>) {
    (v.iter().map(|x| i16::from(x.is_some())).collect(), v.iter().filter_map(|x| x.clone()).collect())
}

fn write_parquet(f: &Frame, path: &Path) -> anyhow::Result<()> {
    let message = format!(
        "message {} {{ {} }}",
        f.name,
        f.columns.iter().map(Column::parquet_type).collect::<Vec<_>>().join(" ")
    );
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&message)?);
    let props = Arc::new(WriterProperties::builder().build());
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = SerializedFileWriter::new(file, schema, props)?;
    let mut group = writer.next_row_group()?;
    for c in &f.columns {
        let mut cw = group.next_column()?.context("the schema has fewer columns than the frame")?;
        match &c.values {
            Values::I64(v) => {
                let (d, vals) = split(v);
                cw.typed::<Int64Type>().write_batch(&vals, c.nullable.then_some(&d[..]), None)?;
            }
            Values::U64(v) => {
                let (d, vals) = split(v);
                // Unsigned 64-bit integers travel as INT64 bits (the annotation says how to read them).
                let bits: Vec<i64> = vals.iter().map(|&x| i64::from_ne_bytes(x.to_ne_bytes())).collect();
                cw.typed::<Int64Type>().write_batch(&bits, c.nullable.then_some(&d[..]), None)?;
            }
            Values::F64(v) => {
                let (d, vals) = split(v);
                cw.typed::<DoubleType>().write_batch(&vals, c.nullable.then_some(&d[..]), None)?;
            }
            Values::Str(v) => {
                let (d, vals) = split(v);
                let bytes: Vec<ByteArray> = vals.into_iter().map(|s| ByteArray::from(s.into_bytes())).collect();
                cw.typed::<ByteArrayType>().write_batch(&bytes, c.nullable.then_some(&d[..]), None)?;
            }
            Values::Bool(v) => {
                let (d, vals) = split(v);
                cw.typed::<BoolType>().write_batch(&vals, c.nullable.then_some(&d[..]), None)?;
            }
        }
        cw.close()?;
    }
    group.close()?;
    writer.close()?;
    Ok(())
}

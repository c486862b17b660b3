//! One point of a sweep: a seed and a value per swept key, identified by a content key.

use serde::{Deserialize, Serialize};

use crate::spec::{SweepSpec, Value};

/// One `mesalab run` of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Position in the sweep file's expansion (changes when the file changes).
    pub index: usize,
    /// A hash of everything the run depends on (experiment, quick, fixed and swept overrides,
    /// seed): the same point keeps its key, and so its directory and result, across re-plans.
    pub key: String,
    pub seed: u64,
    /// `(--set key, value)` per swept key, grid keys first.
    pub values: Vec<(String, Value)>,
}

impl Point {
    pub(crate) fn new(index: usize, spec: &SweepSpec, values: Vec<(String, Value)>, seed: u64) -> Point {
        let mut identity = format!("experiment={}\nquick={}\nseed={seed}\n", spec.experiment, spec.quick);
        for o in &spec.fixed {
            identity.push_str(&format!("set {}={}\n", o.key, o.raw));
        }
        let mut sorted: Vec<&(String, Value)> = values.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in sorted {
            identity.push_str(&format!("sweep {k}={}\n", v.raw));
        }
        Point { index, key: format!("{:016x}", fnv1a(identity.as_bytes())), seed, values }
    }

    /// `key=value, …` of the swept keys.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self.values.iter().map(|(k, v)| format!("{k}={}", v.raw)).collect();
        if parts.is_empty() { "(base config)".into() } else { parts.join(", ") }
    }

    /// The `--set` arguments of this point's swept keys.
    pub fn overrides(&self) -> Vec<String> {
        self.values.iter().map(|(k, v)| format!("{k}={}", v.raw)).collect()
    }

    /// The label without the seed: points that differ only in their seed share it.
    pub fn group(&self) -> String {
        self.label()
    }
}

/// A point as `plan.json` records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedPoint {
    pub index: usize,
    pub key: String,
    pub seed: u64,
    /// `[key, value]` per swept key.
    pub values: Vec<(String, String)>,
    /// Numbers of the values (null for strings), for the report.
    pub numbers: Vec<Option<f64>>,
}

impl From<&Point> for PlannedPoint {
    fn from(p: &Point) -> Self {
        PlannedPoint {
            index: p.index,
            key: p.key.clone(),
            seed: p.seed,
            values: p.values.iter().map(|(k, v)| (k.clone(), v.raw.clone())).collect(),
            numbers: p.values.iter().map(|(_, v)| v.number).collect(),
        }
    }
}

impl PlannedPoint {
    pub fn label(&self) -> String {
        let parts: Vec<String> = self.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if parts.is_empty() { "(base config)".into() } else { parts.join(", ") }
    }

    pub fn overrides(&self) -> Vec<String> {
        self.values.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// 64-bit FNV-1a: stable across platforms and releases (unlike `std`'s hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

//! Peak-memory estimates and the guard that refuses a run too large for the machine.
//!
//! Every experiment estimates, from its resolved config alone and before anything is allocated,
//! the peak resident memory of its run ([`crate::ExperimentConfig::estimate`]): a list of
//! [`Part`]s (one allocation or a group of them), each naming the config keys that drive it, plus
//! the planned work. The CLI compares the peak with a [`MemoryLimit`] (the machine's available
//! memory, or less with `--max-memory`) before the store is opened or the run directory exists, so
//! a refusal writes nothing and can never leave a run `running`.
//!
//! How a peak is formed: `BASE_BYTES` (the process itself: binary, allocator, burn and SQLite
//! state, measured) + every [`Phase::Resident`] part (alive for the whole run) + the largest
//! phase's parts (e.g. training, or the look-inside step, which never overlap).
//!
//! Invariant: every size is computed with checked arithmetic ([`Bytes`]); a product that overflows
//! 64 bits is an overflowing estimate, which is refused whatever the limit (such a run could only
//! abort in allocation).

use std::fmt;

/// Resident memory of the `mesalab` process before an experiment allocates anything (binary,
/// allocator arenas, burn's flex backend, SQLite's page cache): measured as VmHWM of
/// `mesalab run` with every size knob at its minimum (see `bench/memory_estimate.sh`).
pub const BASE_BYTES: u64 = 24 << 20;

/// A byte count, or `None` when computing it overflowed 64 bits. Every operation propagates an
/// overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub Option<u64>);

impl Bytes {
    pub const ZERO: Bytes = Bytes(Some(0));

    /// The product of `factors` (elements, widths, bytes per element, …).
    pub fn product(factors: &[u64]) -> Bytes {
        Bytes(factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f)))
    }

    pub fn sum(items: impl IntoIterator<Item = Bytes>) -> Bytes {
        items.into_iter().fold(Bytes::ZERO, |a, b| a + b)
    }

    pub fn times(self, n: u64) -> Bytes {
        Bytes(self.0.and_then(|b| b.checked_mul(n)))
    }

    pub fn get(self) -> Option<u64> {
        self.0
    }
}

impl std::ops::Add for Bytes {
    type Output = Bytes;
    fn add(self, rhs: Bytes) -> Bytes {
        Bytes(self.0.zip(rhs.0).and_then(|(a, b)| a.checked_add(b)))
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(b) => f.write_str(&human(b)),
            None => f.write_str("more than 16 EiB (overflows 64 bits)"),
        }
    }
}

/// `1.5 GiB`, `312 MiB`, `900 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 { format!("{v:.1} {}", UNITS[unit]) } else { format!("{v:.0} {}", UNITS[unit]) }
}

/// `usize` → `u64` (lossless on every supported target; saturates otherwise).
pub fn n(x: usize) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

/// The step of training one PPO seed: the harness runs `threads` of them at once, so
/// [`crate::Plan::estimate`] counts it once per job.
pub const SEED_TRAINING: &str = "training a seed";

/// When a part is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// For the whole run (held-out data, results accumulated over seeds).
    Resident,
    /// During one step of the run only; steps never overlap (except [`SEED_TRAINING`], see
    /// there), so the largest counts.
    Step(&'static str),
}

/// One allocation (or a group) of a run, with the config keys that drive its size.
#[derive(Clone, Debug)]
pub struct Part {
    pub phase: Phase,
    pub what: String,
    pub bytes: Bytes,
    /// `key = value` of each config key the size grows with.
    pub keys: Vec<String>,
}

impl Part {
    pub fn new(phase: Phase, what: impl Into<String>, bytes: Bytes, keys: &[(&str, String)]) -> Part {
        Part { phase, what: what.into(), bytes, keys: keys.iter().map(|(k, v)| format!("{k} = {v}")).collect() }
    }
}

/// `(key, value)` for [`Part::new`].
pub fn key(name: &str, value: impl fmt::Display) -> (&str, String) {
    (name, value.to_string())
}

/// What a run will do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Work {
    pub seeds: u64,
    pub variants: u64,
    /// Training per model, in `train_unit`s.
    pub train_steps: u64,
    pub train_unit: &'static str,
    /// Evaluation over the whole run (every model and baseline), in `eval_unit`s.
    pub evaluation: u64,
    pub eval_unit: &'static str,
}

impl Work {
    /// Models trained: seeds × variants.
    pub fn models(&self) -> Option<u64> {
        self.seeds.checked_mul(self.variants)
    }
}

/// A run's estimated peak memory and planned work.
#[derive(Clone, Debug)]
pub struct Estimate {
    pub parts: Vec<Part>,
    pub work: Work,
}

impl Estimate {
    /// `BASE_BYTES` + the resident parts + the largest step.
    pub fn peak(&self) -> Bytes {
        let resident = Bytes::sum(self.parts.iter().filter(|p| p.phase == Phase::Resident).map(|p| p.bytes));
        Bytes(Some(BASE_BYTES)) + resident + self.largest_step()
    }

    /// The largest step: the sum of the parts of each named step, maximised over steps.
    pub fn largest_step(&self) -> Bytes {
        let mut steps: Vec<(&str, Bytes)> = Vec::new();
        for p in &self.parts {
            if let Phase::Step(name) = p.phase {
                match steps.iter_mut().find(|(s, _)| *s == name) {
                    Some((_, b)) => *b = *b + p.bytes,
                    None => steps.push((name, p.bytes)),
                }
            }
        }
        // An overflowing step is the largest (`None` is the smallest `Option`, so compare by hand).
        steps.iter().map(|(_, b)| *b).fold(Bytes::ZERO, |a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => Bytes(Some(x.max(y))),
            _ => Bytes(None),
        })
    }

    /// The parts that make up the peak, largest first (overflowing ones first of all).
    fn drivers(&self) -> Vec<&Part> {
        let mut parts: Vec<&Part> = self.parts.iter().filter(|p| !p.keys.is_empty()).collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.bytes.0.unwrap_or(u64::MAX)));
        parts
    }

    /// Human-readable: the planned work, then every part and the peak.
    pub fn render(&self) -> String {
        let w = &self.work;
        let mut out = String::from("planned work:\n");
        let models = w.models().map_or("more than 2^64".to_string(), |m| m.to_string());
        out += &format!("  models      {} seed(s) × {} variant(s) = {models}\n", w.seeds, w.variants);
        out += &format!("  training    {} {} per model\n", w.train_steps, w.train_unit);
        out += &format!("  evaluation  {} {} in all\n", w.evaluation, w.eval_unit);
        out += "estimated memory:\n";
        out += &format!("  {:>10}  process base (binary, burn, SQLite)\n", human(BASE_BYTES));
        for p in &self.parts {
            let phase = match p.phase {
                Phase::Resident => "whole run".to_string(),
                Phase::Step(s) => s.to_string(),
            };
            out += &format!("  {:>10}  {} [{phase}; {}]\n", p.bytes.to_string(), p.what, p.keys.join(", "));
        }
        out += &format!("  {:>10}  peak (base + whole-run parts + the largest step)\n", self.peak().to_string());
        out
    }
}

/// The most memory a run may use, and where that figure came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: u64,
    pub source: String,
}

/// Assumed when the machine's available memory cannot be read (not Linux, no /proc).
pub const ASSUMED_AVAILABLE: u64 = 4 << 30;

impl MemoryLimit {
    /// The machine's available memory: `MemAvailable` of /proc/meminfo, lowered to the cgroup's
    /// remaining allowance (`memory.max − memory.current`) inside a container; when /proc/meminfo
    /// cannot be read, [`ASSUMED_AVAILABLE`]. `max` (from `--max-memory`) can only lower a
    /// measured figure (memory the machine does not have would end in an allocation abort); it
    /// replaces the assumed one.
    pub fn machine(max: Option<u64>) -> MemoryLimit {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| mem_available(&t));
        let cgroup = cgroup_remaining();
        let measured = match (meminfo, cgroup) {
            (Some(m), Some(c)) if c < m => {
                Some((c, "remaining in this container's cgroup (memory.max − memory.current)"))
            }
            (Some(m), _) => Some((m, "available on this machine (MemAvailable in /proc/meminfo)")),
            (None, Some(c)) => Some((c, "remaining in this container's cgroup")),
            (None, None) => None,
        };
        match (measured, max) {
            (Some((m, _)), Some(x)) if x <= m => MemoryLimit { bytes: x, source: "set by --max-memory".into() },
            (Some((m, source)), _) => MemoryLimit { bytes: m, source: source.into() },
            (None, Some(x)) => MemoryLimit { bytes: x, source: "set by --max-memory".into() },
            (None, None) => MemoryLimit {
                bytes: ASSUMED_AVAILABLE,
                source: "assumed: this machine's available memory cannot be read (set it with --max-memory)".into(),
            },
        }
    }
}

/// `MemAvailable` (else `MemFree`) of a /proc/meminfo text, in bytes.
pub fn mem_available(meminfo: &str) -> Option<u64> {
    let field = |name: &str| {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            kib.checked_mul(1024)
        })
    };
    field("MemAvailable").or_else(|| field("MemFree"))
}

/// cgroup v2 `memory.max − memory.current` of this process, when it is limited.
fn cgroup_remaining() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok().and_then(|s| s.trim().parse::<u64>().ok());
    let max = read("memory.max")?; // "max" (unlimited) does not parse
    Some(max.saturating_sub(read("memory.current").unwrap_or(0)))
}

/// Parses `--max-memory`: bytes, or a number with K/M/G/T (powers of 1024, optional `iB`/`B`),
/// e.g. `512M`, `1.5GiB`, `2000000000`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => return Err(format!("unknown unit `{other}` in `{text}`; use e.g. 512M, 8G or a byte count")),
    };
    let value: f64 =
        number.parse().map_err(|_| format!("`{text}` is not a size; use e.g. 512M, 8G or a byte count"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}` is not a usable size (at least 1 byte, below 16 EiB)"));
    }
    Ok(bytes as u64)
}

/// A run refused before anything was written.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TooLarge {
    pub message: String,
}

/// Refuses `estimate` when its peak exceeds `limit` or overflows. The error names the parts that
/// drive the size and their keys.
pub fn check(estimate: &Estimate, limit: &MemoryLimit) -> Result<(), TooLarge> {
    let peak = estimate.peak();
    if peak.0.is_some_and(|p| p <= limit.bytes) {
        return Ok(());
    }
    let drivers: Vec<String> =
        estimate.drivers().iter().take(3).map(|p| format!("{} ({}: {})", p.keys.join(", "), p.what, p.bytes)).collect();
    let head = match peak.0 {
        Some(p) => format!(
            "refusing to run: it would need about {} of memory at its peak, more than the {} {}",
            human(p),
            human(limit.bytes),
            limit.source
        ),
        None => "refusing to run: its memory sizes overflow 64-bit arithmetic".to_string(),
    };
    Err(TooLarge {
        message: format!(
            "{head}. The size is driven by {}. Lower these (or use --quick); `mesalab run … --dry-run` shows the whole estimate",
            drivers.join("; ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(parts: Vec<Part>) -> Estimate {
        Estimate { parts, work: Work::default() }
    }

    #[test]
    fn the_peak_is_base_plus_resident_plus_the_largest_step() {
        let e = estimate(vec![
            Part::new(Phase::Resident, "data", Bytes(Some(100)), &[key("a", 1)]),
            Part::new(Phase::Step("train"), "batch", Bytes(Some(30)), &[key("b", 2)]),
            Part::new(Phase::Step("train"), "adam", Bytes(Some(30)), &[]),
            Part::new(Phase::Step("inside"), "probes", Bytes(Some(50)), &[key("c", 3)]),
        ]);
        assert_eq!(e.peak(), Bytes(Some(BASE_BYTES + 100 + 60)));
    }

    #[test]
    fn overflow_propagates_and_is_always_refused() {
        assert_eq!(Bytes::product(&[u64::MAX, 2]), Bytes(None));
        assert_eq!(Bytes(Some(u64::MAX)) + Bytes(Some(1)), Bytes(None));
        let e = estimate(vec![Part::new(Phase::Step("x"), "huge", Bytes(None), &[key("task.d", u64::MAX)])]);
        assert_eq!(e.peak(), Bytes(None));
        let err = check(&e, &MemoryLimit { bytes: u64::MAX, source: "test".into() }).unwrap_err();
        assert!(err.message.contains("overflow") && err.message.contains("task.d"), "{}", err.message);
    }

    #[test]
    fn a_refusal_names_the_largest_parts_keys() {
        let e = estimate(vec![
            Part::new(Phase::Resident, "small", Bytes(Some(10)), &[key("small.key", 1)]),
            Part::new(Phase::Resident, "validation tasks", Bytes(Some(1 << 40)), &[key("eval.tasks", 9)]),
        ]);
        let limit = MemoryLimit { bytes: 1 << 30, source: "test".into() };
        let msg = check(&e, &limit).unwrap_err().message;
        assert!(msg.contains("eval.tasks = 9") && msg.contains("1.0 TiB"), "{msg}");
        assert!(msg.find("eval.tasks").unwrap() < msg.find("small.key").unwrap(), "largest first: {msg}");
        assert!(check(&e, &MemoryLimit { bytes: 2 << 40, source: "test".into() }).is_ok());
    }

    #[test]
    fn sizes_parse_with_binary_units_and_bad_ones_are_errors() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2000"), Ok(2000));
        assert_eq!(parse_size("8 g"), Ok(8 << 30));
        for bad in ["", "G", "-1G", "1Q", "0", "nan", "1e999", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn meminfo_is_read_in_kib() {
        let text = "MemTotal:       16000000 kB\nMemFree:          500000 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(mem_available(text), Some(8_000_000 * 1024));
        assert_eq!(mem_available("MemFree: 10 kB\n"), Some(10 * 1024));
        assert_eq!(mem_available("garbage"), None);
        let limit = MemoryLimit::machine(Some(1 << 20));
        assert_eq!(limit.bytes, 1 << 20, "--max-memory lowers the machine's figure");
        assert!(MemoryLimit::machine(Some(u64::MAX)).bytes < u64::MAX, "but never raises it");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(900), "900 B");
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human(312 << 20), "312 MiB");
    }
}

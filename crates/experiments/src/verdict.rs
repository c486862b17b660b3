//! Verdicts: every claim an experiment prints is a set of named checks that can come out "no".
//!
//! A [`Check`] is a value, a [`Bound`] it must satisfy, and how the value was aggregated
//! ([`Aggregation`]: the worst seed, pooled over seeds, one variant, a count). Invariants:
//! - a check fails closed: a NaN or infinite value never passes, and a worst-seed check over no
//!   seeds, or over any seed whose value is not finite, has the value NaN and fails;
//! - a [`Verdict`] holds only if it has at least one check and every check passes;
//! - a verdict names what it compared the model with (`compared_with`): a claim without a
//!   baseline is not a result.
//!
//! `summary.json` stores a verdict as `{claim, compared_with, holds, answer, checks: [{name, value,
//! threshold, bound, aggregation, worst_seed, pass}], context}`; a NaN value is written as `null`
//! and read back as NaN. [`section`] and [`badge`] are the one renderer (report and demo index).

use mesalab_report::html::{Cell, Highlight, Section};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a check's value must satisfy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// `value ≥ x`.
    AtLeast(f64),
    /// `value ≤ x`.
    AtMost(f64),
    /// `value > x`.
    Above(f64),
    /// `value < x`.
    Below(f64),
    /// `|value − center| ≤ tol`.
    Within { center: f64, tol: f64 },
}

impl Bound {
    /// Whether `value` satisfies the bound; false for NaN and ±∞ (and for a NaN bound).
    pub fn holds(self, value: f64) -> bool {
        value.is_finite()
            && match self {
                Bound::AtLeast(x) => value >= x,
                Bound::AtMost(x) => value <= x,
                Bound::Above(x) => value > x,
                Bound::Below(x) => value < x,
                Bound::Within { center, tol } => (value - center).abs() <= tol,
            }
    }

    /// How far `value` is on the failing side (larger = worse), used to pick the worst seed.
    fn badness(self, value: f64) -> f64 {
        match self {
            Bound::AtLeast(x) | Bound::Above(x) => x - value,
            Bound::AtMost(x) | Bound::Below(x) => value - x,
            Bound::Within { center, tol } => (value - center).abs() - tol,
        }
    }

    /// `≥ 0.8`, `< 0.05`, `within 1 ± 0.05`.
    pub fn text(self) -> String {
        let n = mesalab_report::fmt::number;
        match self {
            Bound::AtLeast(x) => format!("≥ {}", n(x)),
            Bound::AtMost(x) => format!("≤ {}", n(x)),
            Bound::Above(x) => format!("> {}", n(x)),
            Bound::Below(x) => format!("< {}", n(x)),
            Bound::Within { center, tol } => format!("within {} ± {}", n(center), n(tol)),
        }
    }
}

/// How a check's value was obtained from the seeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// The worst value over the seeds (the seed is in [`Check::worst_seed`]).
    WorstSeed,
    /// One value from the episodes (or tasks) of all seeds together.
    Pooled,
    /// A value of one named variant (e.g. `rp-0`), itself pooled over seeds.
    Variant(String),
    /// A count (of seeds, of episodes).
    Count,
}

impl Aggregation {
    /// How the report names it.
    pub fn label(&self) -> String {
        match self {
            Aggregation::WorstSeed => "worst seed".into(),
            Aggregation::Pooled => "pooled over seeds".into(),
            Aggregation::Variant(v) => format!("{v}, pooled"),
            Aggregation::Count => "count".into(),
        }
    }
}

/// One named check of a verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// The aggregated value (NaN when it could not be computed; stored as `null`).
    #[serde(serialize_with = "nan_as_null", deserialize_with = "null_as_nan")]
    pub value: f64,
    /// The bound as text, e.g. `≥ 0.8`.
    pub threshold: String,
    pub bound: Bound,
    pub aggregation: Aggregation,
    /// The seed the value came from, for [`Aggregation::WorstSeed`].
    pub worst_seed: Option<u64>,
    pub pass: bool,
}

impl Check {
    fn new(name: impl Into<String>, value: f64, bound: Bound, aggregation: Aggregation, seed: Option<u64>) -> Self {
        Self {
            name: name.into(),
            value,
            threshold: bound.text(),
            bound,
            aggregation,
            worst_seed: seed,
            pass: bound.holds(value),
        }
    }

    /// The worst of per-seed `(seed, value)` against `bound`. Fails (value NaN) when there are no
    /// seeds; a seed whose value is not finite is the worst seed and fails the check.
    pub fn worst_seed(name: impl Into<String>, bound: Bound, per_seed: impl IntoIterator<Item = (u64, f64)>) -> Self {
        let mut worst: Option<(u64, f64)> = None;
        for (seed, v) in per_seed {
            worst = match worst {
                _ if !v.is_finite() => Some((seed, f64::NAN)),
                Some((_, w)) if !w.is_finite() => worst,
                Some((_, w)) if bound.badness(v) <= bound.badness(w) => worst,
                _ => Some((seed, v)),
            };
        }
        match worst {
            Some((seed, v)) => Self::new(name, v, bound, Aggregation::WorstSeed, Some(seed)),
            None => Self::new(name, f64::NAN, bound, Aggregation::WorstSeed, None),
        }
    }

    /// A value pooled over all seeds.
    pub fn pooled(name: impl Into<String>, bound: Bound, value: f64) -> Self {
        Self::new(name, value, bound, Aggregation::Pooled, None)
    }

    /// A value of one variant, pooled over its seeds.
    pub fn variant(name: impl Into<String>, variant: &str, bound: Bound, value: f64) -> Self {
        Self::new(name, value, bound, Aggregation::Variant(variant.to_string()), None)
    }

    /// At least `min` of something (seeds, episodes) were counted.
    pub fn count(name: impl Into<String>, min: u64, n: u64) -> Self {
        Self::new(name, n as f64, Bound::AtLeast(min as f64), Aggregation::Count, None)
    }

    /// The standard "enough seeds" check.
    pub fn seeds(min: u64, n: usize) -> Self {
        Self::count("seeds", min, n as u64)
    }
}

/// The most common of `names` and how many times it occurs (ties: the one seen first; `none`, 0
/// for no names). Identification verdicts name the candidate most seeds find closest.
pub fn modal<'a>(names: impl IntoIterator<Item = &'a str>) -> (String, u64) {
    let mut votes: Vec<(&str, u64)> = Vec::new();
    for name in names {
        match votes.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => votes.push((name, 1)),
        }
    }
    let mut best: Option<(&str, u64)> = None;
    for (n, c) in votes {
        if best.is_none_or(|(_, b)| c > b) {
            best = Some((n, c));
        }
    }
    best.map_or(("none".into(), 0), |(n, c)| (n.to_string(), c))
}

/// The answer of a verdict whose models mostly did not train.
pub const DID_NOT_CONVERGE: &str = "did not converge";

/// A claim with its checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// What is claimed, as a sentence fragment ("implements one step of gradient descent").
    pub claim: String,
    /// The baselines the checks compare the model with, on the same data.
    pub compared_with: String,
    /// At least one check, and every check passes.
    pub holds: bool,
    /// `yes`, `no`, or `did not converge` (too few seeds trained to be evidence either way).
    pub answer: String,
    pub checks: Vec<Check>,
    /// Seeds whose training stayed on a plateau: reported, and left out of every check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub did_not_converge: Vec<u64>,
    /// Context that is not part of the claim (e.g. a trend across a knob).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub context: serde_json::Value,
}

impl Verdict {
    pub fn new(claim: impl Into<String>, compared_with: impl Into<String>, checks: Vec<Check>) -> Self {
        let holds = !checks.is_empty() && checks.iter().all(|c| c.pass);
        Self {
            claim: claim.into(),
            compared_with: compared_with.into(),
            holds,
            answer: if holds { "yes" } else { "no" }.into(),
            checks,
            did_not_converge: Vec::new(),
            context: serde_json::Value::Null,
        }
    }

    /// Records the seeds whose training did not converge (the caller left them out of the
    /// checks). With fewer than `min_seeds` converged seeds the answer is `did not converge`
    /// rather than `no`: the models say nothing about the claim either way.
    pub fn with_unconverged(mut self, unconverged: Vec<u64>, converged: usize, min_seeds: u64) -> Self {
        if (converged as u64) < min_seeds && !unconverged.is_empty() {
            self.holds = false;
            self.answer = DID_NOT_CONVERGE.into();
        }
        self.did_not_converge = unconverged;
        self
    }

    /// [`Verdict::with_unconverged`] for a verdict whose checks already count only converged
    /// seeds through its `seeds` check: when that check fails and some seeds did not converge,
    /// the answer is `did not converge`.
    pub fn with_unconverged_seeds(mut self, unconverged: Vec<u64>) -> Self {
        let too_few = self.check("seeds").is_some_and(|c| !c.pass);
        if too_few && !unconverged.is_empty() {
            self.holds = false;
            self.answer = DID_NOT_CONVERGE.into();
        }
        self.did_not_converge = unconverged;
        self
    }

    /// Whether too few seeds converged for the verdict to be evidence.
    pub fn inconclusive(&self) -> bool {
        self.answer == DID_NOT_CONVERGE
    }

    pub fn with_context(mut self, context: serde_json::Value) -> Self {
        self.context = context;
        self
    }

    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The verdict stored in a summary (`summary["verdict"]`), if it has one in this shape.
    pub fn from_summary(summary: &serde_json::Value) -> Option<Verdict> {
        serde_json::from_value(summary.get("verdict")?.clone()).ok()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a verdict serialises")
    }
}

pub(crate) fn nan_as_null<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
}

pub(crate) fn null_as_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The verdict callout and its checks table; `status` is said when the run has no verdict.
pub fn section(s: &mut Section, verdict: Option<&Verdict>, status: &str) {
    let Some(v) = verdict else {
        s.callout(format!("No verdict: the run is {status}."), Highlight::Neutral);
        return;
    };
    let seeds = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    if v.inconclusive() {
        s.callout(
            format!(
                "Did not converge: training stayed on a plateau on seeds {}, so these models say nothing about whether it {}.",
                seeds(&v.did_not_converge),
                v.claim
            ),
            Highlight::Neutral,
        );
    } else {
        let tone = if v.holds { Highlight::Good } else { Highlight::Bad };
        s.callout(format!("{} {}.", if v.holds { "Yes:" } else { "No — not shown:" }, v.claim), tone);
        if !v.did_not_converge.is_empty() {
            s.paragraph(format!(
                "Seeds {} did not converge; they are left out of every check below (not evidence either way).",
                seeds(&v.did_not_converge)
            ));
        }
    }
    s.paragraph(format!("Compared with: {}.", v.compared_with));
    let rows = v
        .checks
        .iter()
        .map(|c| {
            let aggregated = match c.worst_seed {
                Some(seed) => format!("{} ({seed})", c.aggregation.label()),
                None => c.aggregation.label(),
            };
            vec![
                Cell::text(c.name.clone()),
                Cell::text(aggregated),
                Cell::num(c.value),
                Cell::text(c.threshold.clone()),
                if c.pass { Cell::text("pass").good() } else { Cell::text("fail").bad() },
            ]
        })
        .collect();
    s.table_captioned(
        "Each check fails when its value is not a finite number.",
        vec!["check", "aggregated as", "value", "threshold", "result"],
        rows,
    );
}

/// The short badge of the demo index: (`verdict: yes`, true) / (`verdict: no`, false).
pub fn badge(verdict: Option<&Verdict>) -> (String, bool) {
    match verdict {
        Some(v) => (format!("verdict: {}", v.answer), v.holds),
        None => ("no verdict".into(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modal_counts_and_breaks_ties_by_first_seen() {
        assert_eq!(modal(["b", "a", "a"]), ("a".to_string(), 2));
        assert_eq!(modal(["b", "a"]), ("b".to_string(), 1));
        assert_eq!(modal(std::iter::empty::<&str>()), ("none".to_string(), 0));
    }

    #[test]
    fn bounds_fail_closed_on_nan_and_infinity() {
        for b in [
            Bound::AtLeast(0.5),
            Bound::AtMost(0.5),
            Bound::Above(0.5),
            Bound::Below(0.5),
            Bound::Within { center: 1.0, tol: 0.1 },
        ] {
            assert!(!b.holds(f64::NAN), "{b:?}");
            assert!(!b.holds(f64::INFINITY) && !b.holds(f64::NEG_INFINITY), "{b:?}");
        }
        assert!(!Bound::AtLeast(f64::NAN).holds(1.0));
        assert!(Bound::AtLeast(0.5).holds(0.5) && !Bound::Above(0.5).holds(0.5));
        assert!(
            Bound::Within { center: 1.0, tol: 0.1 }.holds(0.95) && !Bound::Within { center: 1.0, tol: 0.1 }.holds(1.2)
        );
    }

    #[test]
    fn worst_seed_picks_the_failing_side_and_nan_wins() {
        let c = Check::worst_seed("p", Bound::AtLeast(0.8), [(1, 0.9), (2, 0.85), (3, 0.95)]);
        assert_eq!((c.value, c.worst_seed, c.pass), (0.85, Some(2), true));
        let c = Check::worst_seed("p", Bound::AtMost(1.01), [(1, 1.002), (2, 1.02), (3, 1.0)]);
        assert_eq!((c.value, c.worst_seed, c.pass), (1.02, Some(2), false));
        let c = Check::worst_seed("p", Bound::Within { center: 1.0, tol: 0.05 }, [(1, 0.97), (2, 1.04)]);
        assert_eq!(c.worst_seed, Some(2));
        // A NaN on one seed makes the check NaN and failing, wherever it appears.
        for values in [vec![(1, f64::NAN), (2, 0.9)], vec![(1, 0.9), (2, f64::NAN), (3, 0.95)]] {
            let c = Check::worst_seed("p", Bound::AtLeast(0.8), values);
            assert!(c.value.is_nan() && !c.pass && c.worst_seed.is_some(), "{c:?}");
        }
        let c = Check::worst_seed("p", Bound::AtLeast(0.8), []);
        assert!(c.value.is_nan() && !c.pass && c.worst_seed.is_none());
    }

    #[test]
    fn a_verdict_needs_checks_and_all_of_them() {
        assert!(!Verdict::new("x", "y", vec![]).holds);
        let ok = Check::pooled("a", Bound::AtLeast(0.5), 0.7);
        let short = Check::pooled("b", Bound::AtLeast(0.5), 0.499);
        assert!(Verdict::new("x", "y", vec![ok.clone()]).holds);
        let v = Verdict::new("x", "y", vec![ok, short]);
        assert_eq!((v.holds, v.answer.as_str()), (false, "no"));
        assert!(!Verdict::new("x", "y", vec![Check::pooled("a", Bound::AtLeast(0.5), f64::NAN)]).holds);
        assert!(!Check::seeds(3, 2).pass && Check::seeds(3, 3).pass);
    }

    #[test]
    fn json_round_trip_keeps_nan_as_null() {
        let v = Verdict::new(
            "claim",
            "baseline",
            vec![
                Check::pooled("a", Bound::AtLeast(0.5), f64::NAN),
                Check::worst_seed("b", Bound::Below(0.1), [(4, 0.05)]),
            ],
        );
        let json = serde_json::json!({ "verdict": v.to_json() });
        assert!(json["verdict"]["checks"][0]["value"].is_null());
        assert_eq!(json["verdict"]["checks"][1]["aggregation"], "worst_seed");
        assert_eq!(json["verdict"]["checks"][1]["worst_seed"], 4);
        let back = Verdict::from_summary(&json).unwrap();
        assert!(back.checks[0].value.is_nan() && !back.checks[0].pass);
        assert_eq!(back.checks[1], v.checks[1]);
    }
}

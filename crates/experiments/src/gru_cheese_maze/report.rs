//! The `gru-cheese-maze` HTML report, drawn from the run's summary and metrics in the store.

use super::{Outcome, Results, thinking_margins};
use crate::planning::{PROBE_HEADER, TARGET_LATER, margins_over_controls, probe_row};
use crate::report_common::{metric_curves, report_page};
use mesalab_analysis::stats::Rate;
use mesalab_report::html::Cell;
use mesalab_report::svg::{LineChart, RefLine};
use mesalab_store::{RunId, Store};

fn rate_cell(r: &Rate) -> Cell {
    Cell::text(format!("{:.3} [{:.3}, {:.3}] ({}/{})", r.rate, r.ci_lo, r.ci_hi, r.k, r.n))
}

/// "mean [min, max]" over seeds.
fn spread(v: &[f64]) -> Cell {
    if v.is_empty() {
        return Cell::text("-");
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
    Cell::text(format!("{mean:.3} [{lo:.3}, {hi:.3}]"))
}

/// The recurrent arm's name (the one arm with thinking rows that is not the twin).
fn recurrent_arm(r: &Results) -> String {
    (r.outcomes.iter())
        .find(|o| o.thinking > 0 && o.arm != "untrained")
        .map_or_else(|| "gru".to_string(), |o| o.arm.clone())
}

/// Per thinking-step count: P(cheese) and pacing of the trained and the untrained recurrent arm
/// on both splits, mean over seeds with the min–max range.
fn thinking_rows(r: &Results, arm: &str) -> Vec<Vec<Cell>> {
    let mut ks: Vec<usize> = r.outcomes.iter().filter(|o| o.arm == arm).map(|o| o.thinking).collect();
    ks.sort_unstable();
    ks.dedup();
    let values = |a: &str, split: &str, k: usize, f: &dyn Fn(&Outcome) -> f64| -> Vec<f64> {
        (r.outcomes.iter()).filter(|o| o.arm == a && o.split == split && o.thinking == k).map(f).collect()
    };
    (ks.into_iter())
        .map(|k| {
            let mut row = vec![Cell::int(k as i64)];
            for split in ["train", "deploy"] {
                row.push(spread(&values(arm, split, k, &|o| o.cheese.rate)));
                row.push(spread(&values("untrained", split, k, &|o| o.cheese.rate)));
                row.push(spread(&values(arm, split, k, &|o| o.pacing.rate)));
            }
            row
        })
        .collect()
}

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let (mut page, record, r) =
        report_page::<Results>(store, run, "gru-cheese-maze: does a recurrent cheese-maze agent plan?")?;
    let Some(r) = r else { return Ok(page.render()) };
    let arm = recurrent_arm(&r);

    let s = page.section("Held-out mazes");
    s.paragraph(
        "Every arm plays the same held-out mazes, moves sampled or greedy as `eval.selection` says (Wilson 95 % \
         intervals): train = the training \
         distribution (cheese in the top-right corner), deploy = the cheese anywhere. Corner first: the top-right \
         corner entered before the cheese was eaten (never on a train maze, where the cheese lies on it). Pacing: a \
         return to a cell already stood on (a move into a wall included) within the first 10 moves.",
    );
    let row = |o: &Outcome| {
        vec![
            Cell::text(&o.arm),
            Cell::text(o.seed.map_or("-".into(), |s| s.to_string())),
            Cell::text(&o.split),
            Cell::int(o.thinking as i64),
            rate_cell(&o.cheese),
            rate_cell(&o.corner_first),
            rate_cell(&o.pacing),
        ]
    };
    let mut rows: Vec<&Outcome> = r.outcomes.iter().filter(|o| o.thinking == 0).collect();
    rows.sort_by(|a, b| (a.split.as_str(), a.seed, a.arm.as_str()).cmp(&(b.split.as_str(), b.seed, b.arm.as_str())));
    s.table(
        vec!["arm", "seed", "split", "thinking steps", "P(cheese)", "P(corner first)", "pacing"],
        rows.into_iter().map(row).collect(),
    );

    let s = page.section("Thinking steps");
    let margins: Vec<String> = (thinking_margins(&r, &arm, r.outcomes.iter().map(|o| o.thinking).max().unwrap_or(0)))
        .iter()
        .map(|(seed, m)| format!("seed {seed}: {m:+.3}"))
        .collect();
    s.paragraph(format!(
        "Before its first move the GRU gets k extra steps on the first observation: its state advances, nothing \
         moves. The untrained GRU gets the same. Mean over seeds with the min–max range. Train-maze gain at the \
         largest k minus the untrained GRU's gain: {}.",
        margins.join(", ")
    ));
    s.table(
        vec![
            "thinking steps",
            "train: P(cheese)",
            "train: untrained",
            "train: pacing",
            "deploy: P(cheese)",
            "deploy: untrained",
            "deploy: pacing",
        ],
        thinking_rows(&r, &arm),
    );

    let s = page.section("Learning curves");
    let mut chart = LineChart::new("training P(cheese) (episodes finished per update)")
        .x_label("env steps")
        .y_label("share eating the cheese")
        .hline(RefLine::new("uniform random (held-out train)", random_rate(&r)).dashed());
    for a in [arm.as_str(), "mlp"] {
        for series in metric_curves(store, run, &format!("{a}/train/cheese"), a)? {
            chart = chart.series(series);
        }
    }
    s.figure(chart.to_svg(), "Mean over seeds with a min–max band.");

    if !r.probes.is_empty() {
        probe_section(page.section("Plan probes"), &r);
    }
    page.section("Resolved config").details("config.toml", record.config_toml.clone());
    Ok(page.render())
}

/// Uniform random's held-out P(cheese) on train mazes (NaN when absent).
fn random_rate(r: &Results) -> f64 {
    (r.outcomes.iter()).find(|o| o.arm == "random" && o.split == "train").map_or(f64::NAN, |o| o.cheese.rate)
}

/// The probe table: per seed and target, each feature set's mean per-square AUROC and F1.
fn probe_section(s: &mut mesalab_report::html::Section, r: &Results) {
    let margins: Vec<String> = margins_over_controls(&r.probes, TARGET_LATER)
        .iter()
        .map(|(seed, m)| format!("seed {seed}: {m:+.3}"))
        .collect();
    s.paragraph(format!(
        "One logistic probe per square reads the features after move t and predicts whether the agent stands on \
         that square within its next h moves, or at any later move. Held out by maze (no wall layout on both \
         sides); each cell is the mean over the squares whose train and test rows hold both classes (the hook \
         column counts them). Features: the trained GRU's state, the untrained GRU's state on the same \
         observations, the observation itself; shuffled labels on the trained state. Trained minus the better \
         control (agent later): {}.",
        margins.join(", ")
    ));
    s.table(PROBE_HEADER.to_vec(), r.probes.iter().map(probe_row).collect());
}

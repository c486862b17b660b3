//! The `sokoban-drc` HTML report, drawn from the run's summary and metrics in the store.

use super::{Outcome, ProbeResult, Results, TARGET_LATER, probe_margins};
use crate::planning::{PROBE_HEADER, probe_row};
use crate::report_common::{metric_curves, report_page};
use mesalab_analysis::stats::Rate;
use mesalab_report::html::Cell;
use mesalab_report::svg::LineChart;
use mesalab_store::{RunId, Store};

fn rate_cell(r: &Rate) -> Cell {
    Cell::text(format!("{:.3} [{:.3}, {:.3}] ({}/{})", r.rate, r.ci_lo, r.ci_hi, r.k, r.n))
}

/// Mean, min and max over seeds of the DRC's solve rate at each thinking-step count.
fn thinking_rows(r: &Results, split: &str) -> Vec<Vec<Cell>> {
    let mut ks: Vec<usize> = r.outcomes.iter().filter(|o| o.arm == "drc").map(|o| o.thinking).collect();
    ks.sort_unstable();
    ks.dedup();
    (ks.into_iter())
        .map(|k| {
            let rows: Vec<&Outcome> =
                r.outcomes.iter().filter(|o| o.arm == "drc" && o.split == split && o.thinking == k).collect();
            let solved: Vec<f64> = rows.iter().map(|o| o.solved.rate).collect();
            let pacing: Vec<f64> = rows.iter().map(|o| o.pacing.rate).collect();
            let stat = |v: &[f64]| {
                let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
                let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
                Cell::text(format!("{mean:.3} [{lo:.3}, {hi:.3}]"))
            };
            vec![Cell::int(k as i64), stat(&solved), stat(&pacing), Cell::int(rows.len() as i64)]
        })
        .collect()
}

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let (mut page, record, r) = report_page::<Results>(store, run, "sokoban-drc: does a DRC agent plan?")?;
    let Some(r) = r else { return Ok(page.render()) };

    let s = page.section("Held-out levels");
    let optimal: Vec<String> = r.optimal_len.iter().map(|(split, l)| format!("{split} {l:.1}")).collect();
    s.paragraph(format!(
        "Every arm plays the same held-out levels greedily (Wilson 95 % intervals). The train split's levels have \
         optimal plans of the training length, the deploy split's are longer; mean optimal length (the exact solver's \
         moves): {}. Excess moves: mean moves of the solved levels minus their optimal length. Pacing: the agent \
         returned to an earlier board within its first 10 moves.",
        optimal.join(", ")
    ));
    let row = |o: &Outcome| {
        vec![
            Cell::text(&o.arm),
            Cell::text(o.seed.map_or("-".into(), |s| s.to_string())),
            Cell::text(&o.split),
            Cell::int(o.thinking as i64),
            rate_cell(&o.solved),
            Cell::fixed(o.excess_moves, 2),
            rate_cell(&o.pacing),
        ]
    };
    let mut rows: Vec<&Outcome> = r.outcomes.iter().collect();
    rows.sort_by(|a, b| {
        (a.split.as_str(), a.seed, a.arm.as_str(), a.thinking).cmp(&(
            b.split.as_str(),
            b.seed,
            b.arm.as_str(),
            b.thinking,
        ))
    });
    s.table(
        vec!["arm", "seed", "split", "thinking steps", "solved", "excess moves", "pacing"],
        rows.into_iter().map(row).collect(),
    );

    let s = page.section("Thinking steps");
    s.paragraph(
        "Before its first action the DRC gets k extra steps on the first observation: its state advances, nothing \
         moves. Mean over seeds with the min–max range.",
    );
    for split in ["train", "deploy"] {
        s.paragraph(format!("{split} split:"));
        s.table(vec!["thinking steps", "solved", "pacing", "seeds"], thinking_rows(&r, split));
    }

    let s = page.section("Learning curves");
    let mut chart = LineChart::new("training solve rate (episodes finished per update)")
        .x_label("env steps")
        .y_label("share solved");
    for arm in ["drc", "mlp"] {
        for series in metric_curves(store, run, &format!("{arm}/train/solved"), arm)? {
            chart = chart.series(series);
        }
    }
    s.figure(chart.to_svg(), "Mean over seeds with a min–max band.");

    if !r.probes.is_empty() {
        let s = page.section("Plan probes");
        let margins: Vec<String> =
            probe_margins(&r, TARGET_LATER).iter().map(|(seed, m)| format!("seed {seed}: {m:+.3}")).collect();
        s.paragraph(format!(
            "One logistic probe shared by every free square reads a layer's state at the square after a move and \
             predicts whether the agent stands there within its next h moves, at any later move, or whether a box is \
             pushed off it later. Scored on held-out levels (AUROC; F1 at the probe's threshold). Controls on the same \
             rows: the untrained twin fed the same observations, the observation's 5×5 window around the square, \
             shuffled labels. Best trained layer minus the better control (agent later): {}.",
            margins.join(", ")
        ));
        let mut rows: Vec<&ProbeResult> = r.probes.iter().collect();
        rows.sort_by(|a, b| (a.seed, a.target.as_str()).cmp(&(b.seed, b.target.as_str())));
        s.table(PROBE_HEADER.to_vec(), rows.into_iter().map(probe_row).collect());
    }
    page.section("Resolved config").details("config.toml", record.config_toml.clone());
    Ok(page.render())
}

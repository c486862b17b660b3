//! The `t-maze-memory` HTML report, drawn from the run's summary and metrics in the store.

use super::{Inside, Outcome, Results};
use crate::report_common::{metric_curves, report_page};
use mesalab_analysis::stats::Rate;
use mesalab_report::html::Cell;
use mesalab_report::svg::{LineChart, RefLine};
use mesalab_store::{RunId, Store};

fn rate_cell(r: &Rate) -> Cell {
    Cell::text(format!("{:.3} [{:.3}, {:.3}] ({}/{})", r.rate, r.ci_lo, r.ci_hi, r.k, r.n))
}

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let (mut page, record, r) =
        report_page::<Results>(store, run, "t-maze-memory: recurrent PPO against a memoryless policy")?;
    let Some(r) = r else { return Ok(page.render()) };

    let s = page.section("Held-out success");
    s.paragraph(
        "The cue is visible on the first step only; at the junction a memoryless policy sees the same observation \
         whichever the cue was, so its expected success is at most ½. Every arm and baseline plays the same held-out \
         episodes (Wilson 95 % intervals). Deployment corridors are longer than any training corridor.",
    );
    let row = |o: &Outcome| {
        vec![
            Cell::text(&o.arm),
            Cell::text(o.seed.map_or("-".into(), |s| s.to_string())),
            Cell::text(&o.split),
            rate_cell(&o.success),
            rate_cell(&o.truncated),
        ]
    };
    let mut rows: Vec<&Outcome> = r.outcomes.iter().collect();
    rows.sort_by(|a, b| (a.split.as_str(), a.seed, a.arm.as_str()).cmp(&(b.split.as_str(), b.seed, b.arm.as_str())));
    s.table(vec!["arm", "seed", "split", "success (cued arm)", "timed out"], rows.into_iter().map(row).collect());

    let s = page.section("Learning curves");
    let arms: Vec<String> = {
        let mut a: Vec<String> = r.outcomes.iter().filter(|o| o.seed.is_some()).map(|o| o.arm.clone()).collect();
        a.sort();
        a.dedup();
        a
    };
    let mut chart = LineChart::new("training success (episodes finished per update)")
        .x_label("env steps")
        .y_label("share entering the cued arm")
        .hline(RefLine::new("chance", 0.5).dashed());
    for arm in &arms {
        for series in metric_curves(store, run, &format!("{arm}/train/success"), arm)? {
            chart = chart.series(series);
        }
    }
    s.figure(chart.to_svg(), "Mean over seeds with a min–max band.");

    if !r.inside.is_empty() {
        let s = page.section("Looking inside: the cue in the recurrent state");
        s.paragraph(
            "Teacher-forced walks down every corridor length of both splits with either cue. Probe: logistic, on the \
             state after every step past the first (the cue is out of view), stratified held-out split; controls are \
             shuffled labels, the 95th percentile of random directions and the untrained twin. Patching: at the junction \
             the state carried in is replaced by the one the opposite cue left on the same corridor (only corridors the \
             unpatched policy solves for both cues); the null shifts the state by a random direction of the same norm.",
        );
        let row = |i: &Inside| {
            vec![
                Cell::text(&i.arm),
                Cell::int(i.seed as i64),
                Cell::text(&i.model),
                Cell::fixed(i.probe.auroc, 3),
                Cell::fixed(i.probe.shuffled, 3),
                Cell::fixed(i.probe.null_p95, 3),
                Cell::int(i.patched_decisions as i64),
                rate_cell(&i.follow),
                rate_cell(&i.null_flip),
            ]
        };
        s.table(
            vec![
                "arm",
                "seed",
                "model",
                "cue probe AUROC",
                "shuffled",
                "random p95",
                "decisions patched",
                "follow the donor's cue",
                "null: changed by a random shift",
            ],
            r.inside.iter().map(row).collect(),
        );
    }
    page.section("Resolved config").details("config.toml", record.config_toml.clone());
    Ok(page.render())
}

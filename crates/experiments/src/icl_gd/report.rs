//! The `icl-gd` HTML report, drawn from the store alone (so `mesalab report` can regenerate it).

use crate::report_common::{metric_curves, run_header};
use anyhow::Context as _;
use mesalab_report::html::{Cell, Page};
use mesalab_report::svg::{Heatmap, LineChart, RefLine, Scatter, ScatterSeries, Series};
use mesalab_store::{RunId, Store};
use serde_json::Value;

/// Metrics shown in the table, with how to read them.
const METRICS: &[(&str, &str)] = &[
    ("loss", "validation loss (0.5·MSE) of the trained model"),
    ("gd_loss", "validation loss of the reference algorithm (k-step GD, k = layers, η line-searched)"),
    ("loss_ratio_vs_gd", "model loss / reference loss"),
    ("sensitivity_cosine", "mean cos(∂ŷ/∂x_q, reference's implied weights)"),
    ("sensitivity_l2", "mean ‖∂ŷ/∂x_q − reference weights‖"),
    ("mean_abs_pred_diff", "mean |ŷ_model − ŷ_reference|"),
    ("rel_pred_diff", "mean |ŷ_model − ŷ_reference| / RMS(y) (scale-free; the verdict bound)"),
    ("spd_gd", "mean (ŷ_model − ŷ_reference)²"),
    ("spd_ols", "mean (ŷ_model − ŷ_OLS)²"),
    ("gdpp_loss", "k-step GD++ loss (multi-layer models)"),
    ("loss_ratio_vs_gdpp", "model loss / GD++ loss"),
    ("gdpp_per_step_loss", "k-step GD++ with one η per step (multi-layer models)"),
    ("loss_ratio_vs_gdpp_per_step", "model loss / per-step GD++ loss"),
    ("precond_loss", "k-step preconditioned GD (a matrix per step, fitted to the labels)"),
    ("loss_ratio_vs_precond", "model loss / preconditioned GD loss"),
    ("identified_loss_ratio", "model loss / the closest candidate's (see: which algorithm)"),
    ("identified_ilwd", "mean ‖∂ŷ/∂x_q − the closest candidate's weights‖ (ILWD)"),
    ("identified_cosine", "mean cos(∂ŷ/∂x_q, the closest candidate's weights)"),
    ("layer1_precond_cosine", "cosine of the layer-0 preconditioner read off the weights with the fitted P₁"),
    ("eta_learned", "η read from the weights: −(P W_V)[y,y] · mean diag W_KQ[x,x]"),
    ("eta_star_over_n", "line-searched one-step GD η*/N"),
    ("eta_rel_error", "|η_learned − η*/N| / (η*/N)"),
    ("wkq_offdiag_max", "largest |off-diagonal| of W_KQ[x,x]/β"),
    ("interpolation_loss", "loss of the average of rescaled trained weights and the GD construction"),
    (
        "progress",
        "share of the way from the zero predictor's loss to the reference's (< verdict.min_progress: did not converge)",
    ),
    ("restarts", "times the seed was retrained from a fresh init after ending below verdict.min_progress"),
];

pub fn report(store: &Store, run: RunId) -> anyhow::Result<String> {
    let record = store.run(run)?.context("no such run in the store")?;
    let summary: Value = store.get_json(run, "summary")?.unwrap_or(Value::Null);
    let mut page = Page::new("icl-gd: does the trained transformer implement gradient descent?");
    page.subtitle(format!("run {} · {}", run.0, record.run_dir.display()));

    // Verdict first: the answer, then the evidence.
    let s = page.section("Verdict");
    crate::verdict::section(s, crate::verdict::Verdict::from_summary(&summary).as_ref(), record.status.as_str());
    run_header(s, &record);
    crate::report_common::attempts_and_analyses(s, store, run)?;

    // Metrics with their spread across seeds.
    let per_seed: Vec<Value> = summary["per_seed"].as_array().cloned().unwrap_or_default();
    let seeds: Vec<String> = per_seed.iter().map(|m| format!("seed {}", m["seed"])).collect();
    let mut headers = vec!["metric".to_string(), "mean ± std".into(), "[min, max]".into()];
    headers.extend(seeds.iter().cloned());
    headers.push("meaning".into());
    let rows = METRICS
        .iter()
        .filter(|(k, _)| !summary["aggregate"][*k].is_null())
        .map(|(k, meaning)| {
            let a = &summary["aggregate"][*k];
            let f = |n: &str| a[n].as_f64().unwrap_or(f64::NAN);
            let mut row = vec![
                Cell::code(*k),
                Cell::mean_pm(f("mean"), f("std")),
                Cell::text(format!(
                    "[{}, {}]",
                    mesalab_report::fmt::number(f("min")),
                    mesalab_report::fmt::number(f("max"))
                )),
            ];
            row.extend(per_seed.iter().map(|m| Cell::num(m[*k].as_f64().unwrap_or(f64::NAN))));
            row.push(Cell::text(*meaning));
            row
        })
        .collect();
    page.section("Metrics across seeds")
        .paragraph(
            "All numbers are measured on the same held-out validation tasks as the baselines. \
         The reference algorithm is k-step gradient descent from w = 0 with k equal to the model's depth and the \
         step size line-searched on separate tasks.",
        )
        .table(headers, rows);

    // Loss curves against the baselines.
    let baselines = store.table(run, "baselines")?;
    let mut chart = LineChart::new("Validation loss during training")
        .x_label("training step")
        .y_label("loss (0.5·MSE)")
        .log_y(true);
    for series in metric_curves(store, run, "val_loss", "model (validation)")? {
        chart = chart.series(series);
    }
    let mut baseline_rows = Vec::new();
    if let Some(t) = &baselines {
        for row in &t.rows {
            let label = row[0].as_str().unwrap_or("?").to_string();
            let loss = row[5].as_f64().unwrap_or(f64::NAN);
            // OLS and ridge solve noiseless tasks almost exactly (loss ~1e-20); as lines they would
            // stretch the log axis over twenty decades, so they stay in the table.
            if label.contains("GD") {
                chart = chart.hline(RefLine::new(label.clone(), loss).dashed());
            }
            let opt = |v: &Value| match v {
                Value::Array(a) => Cell::text(
                    a.iter().filter_map(Value::as_f64).map(mesalab_report::fmt::number).collect::<Vec<_>>().join(", "),
                ),
                _ => v.as_f64().map(Cell::num).unwrap_or_else(|| Cell::text("–")),
            };
            baseline_rows.push(vec![
                Cell::text(label),
                opt(&row[1]),
                opt(&row[2]),
                opt(&row[3]),
                opt(&row[4]),
                Cell::num(loss),
            ]);
        }
    }
    page.section("Training against the algorithms it may implement")
        .figure(chart.to_svg(), "Validation loss of each seed's model (mean line, min–max band) with the validation losses of GD, k-step GD, GD++, ridge and OLS as dashed reference lines.")
        .table_captioned(
            "Baselines: step sizes fitted on separate tasks, losses on the validation tasks.",
            vec!["algorithm", "steps", "η/N", "γ", "λ", "validation loss"],
            baseline_rows,
        );

    identification_section(&mut page, store, run, &summary)?;
    weights_section(&mut page, store, run)?;
    alignment_section(&mut page, store, run)?;
    ood_section(&mut page, store, run)?;
    probes_section(&mut page, store, run)?;
    patching_section(&mut page, store, run)?;

    page.section("Configuration").details("resolved config (TOML)", record.config_toml.clone());
    Ok(page.render())
}

fn matrix(values: &[Value], d: usize, scale: f64) -> Vec<Vec<f64>> {
    (0..d)
        .map(|i| (0..d).map(|j| values.get(i * d + j).and_then(Value::as_f64).unwrap_or(f64::NAN) * scale).collect())
        .collect()
}

fn weights_section(page: &mut Page, store: &Store, run: RunId) -> anyhow::Result<()> {
    let Some(first) = store.json_names(run)?.into_iter().find(|n| n.starts_with("weights/")) else { return Ok(()) };
    let w: Value = store.get_json(run, &first)?.unwrap_or(Value::Null);
    let d = w["d_token"].as_u64().unwrap_or(0) as usize;
    if d == 0 {
        return Ok(());
    }
    let labels: Vec<String> = (0..d).map(|i| if i + 1 == d { "y".into() } else { format!("x{}", i + 1) }).collect();
    let heat = |title: &str, m: Vec<Vec<f64>>| {
        Heatmap::new(title, m).row_labels(labels.clone()).col_labels(labels.clone()).diverging().to_svg()
    };
    let s = page.section("Weights beside the GD construction");
    let layers = w["layers"].as_array().cloned().unwrap_or_default();
    for (l, heads) in layers.iter().enumerate() {
        for (h, head) in heads.as_array().into_iter().flatten().enumerate() {
            let wkq = head["w_kq"].as_array().cloned().unwrap_or_default();
            let pwv = head["p_w_v"].as_array().cloned().unwrap_or_default();
            // β = mean diagonal of the x-block: the scale the model is free to move between the two.
            let beta =
                (0..d - 1).filter_map(|i| wkq.get(i * d + i).and_then(Value::as_f64)).sum::<f64>() / (d - 1) as f64;
            let (beta, note) =
                if beta.abs() > 1e-12 { (beta, format!("β = {beta:.4}")) } else { (1.0, "unscaled".into()) };
            s.figure_row(vec![
                (
                    heat(&format!("layer {l} head {h}: W_KQ / β"), matrix(&wkq, d, 1.0 / beta)),
                    format!("Trained W_Kᵀ W_Q of {first}, divided by {note}."),
                ),
                (
                    heat(&format!("layer {l} head {h}: P·W_V · β"), matrix(&pwv, d, beta)),
                    "Trained P·W_V, multiplied by β (the same function).".into(),
                ),
            ]);
        }
    }
    let gd = &w["gd_construction"];
    s.figure_row(vec![
        (
            heat("GD construction: W_KQ", matrix(gd["w_kq"].as_array().map(Vec::as_slice).unwrap_or(&[]), d, 1.0)),
            "One step of GD: W_KQ = [[I, 0], [0, 0]].".into(),
        ),
        (
            heat("GD construction: P·W_V", matrix(gd["p_w_v"].as_array().map(Vec::as_slice).unwrap_or(&[]), d, 1.0)),
            "P·W_V = −η*/N in the y→y entry, 0 elsewhere.".into(),
        ),
    ]);
    Ok(())
}

fn scatter_from(store: &Store, run: RunId, table: &str) -> anyhow::Result<Vec<ScatterSeries>> {
    let Some(t) = store.table(run, table)? else { return Ok(Vec::new()) };
    let mut by_seed: std::collections::BTreeMap<u64, Vec<(f64, f64)>> = Default::default();
    for row in &t.rows {
        if let (Some(seed), Some(x), Some(y)) = (row[0].as_u64(), row[1].as_f64(), row[2].as_f64()) {
            by_seed.entry(seed).or_default().push((x, y));
        }
    }
    Ok(by_seed.into_iter().map(|(seed, pts)| ScatterSeries::new(format!("seed {seed}"), pts)).collect())
}

fn alignment_section(page: &mut Page, store: &Store, run: RunId) -> anyhow::Result<()> {
    let mut preds =
        Scatter::new("Predictions: model vs reference").x_label("ŷ reference (GD)").y_label("ŷ model").diagonal();
    for s in scatter_from(store, run, "prediction_sample")? {
        preds = preds.series(s);
    }
    let mut sens = Scatter::new("Sensitivity ∂ŷ/∂x_q: model vs reference")
        .x_label("reference implied weight")
        .y_label("model ∂ŷ/∂x_q")
        .diagonal();
    for s in scatter_from(store, run, "sensitivity_sample")? {
        sens = sens.series(s);
    }
    page.section("Sensitivity alignment").figure_row(vec![
        (preds.to_svg(), "300 validation tasks per seed. On the diagonal, the model predicts what the reference algorithm predicts.".into()),
        (sens.to_svg(), "Coordinates of the model's input gradient at the query against the reference's implied weights (40 tasks per seed).".into()),
    ]);
    Ok(())
}

fn ood_section(page: &mut Page, store: &Store, run: RunId) -> anyhow::Result<()> {
    let Some(t) = store.table(run, "ood")? else { return Ok(()) };
    let mut model: std::collections::BTreeMap<u64, Vec<f64>> = Default::default(); // alpha bits -> losses
    let mut reference = Vec::new();
    let mut reference_label = String::from("reference");
    for row in &t.rows {
        let (Some(alpha), Some(loss)) = (row[2].as_f64(), row[3].as_f64()) else { continue };
        if row[1].is_null() {
            reference_label = row[0].as_str().unwrap_or("reference").to_string();
            reference.push((alpha, loss));
        } else {
            model.entry(alpha.to_bits()).or_default().push(loss);
        }
    }
    let mut mean = Vec::new();
    let mut band = Vec::new();
    for (bits, losses) in &model {
        let a = f64::from_bits(*bits);
        let m = losses.iter().sum::<f64>() / losses.len() as f64;
        mean.push((a, m));
        band.push((
            a,
            losses.iter().copied().fold(f64::INFINITY, f64::min),
            losses.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ));
    }
    mean.sort_by(|a, b| a.0.total_cmp(&b.0));
    band.sort_by(|a, b| a.0.total_cmp(&b.0));
    reference.sort_by(|a, b| a.0.total_cmp(&b.0));
    let chart = LineChart::new("Out of distribution: x ~ U(−α, α), teacher scaled by α")
        .x_label("α")
        .y_label("loss (0.5·MSE)")
        .log_y(true)
        .series(Series::new("model (mean, min–max over seeds)", mean).band(band).markers())
        .series(Series::new(reference_label, reference).dashed().markers());
    page.section("Out-of-distribution behaviour").figure(
        chart.to_svg(),
        "Both are scored on the same shifted tasks; GD keeps the step size fitted in distribution. A model that implements GD degrades the way GD does.",
    );
    Ok(())
}

/// Mean over seeds of `value(row)` grouped by `key(row)`, keys in first-seen order.
fn grouped_means(rows: &[Vec<Value>], key: impl Fn(&[Value]) -> Option<String>, value: usize) -> Vec<(String, f64)> {
    let mut order: Vec<String> = Vec::new();
    let mut sums: std::collections::HashMap<String, (f64, usize)> = Default::default();
    for row in rows {
        let (Some(k), Some(v)) = (key(row), row.get(value).and_then(Value::as_f64)) else { continue };
        let e = sums.entry(k.clone()).or_insert_with(|| {
            order.push(k);
            (0.0, 0)
        });
        e.0 += v;
        e.1 += 1;
    }
    order.into_iter().map(|k| (k.clone(), sums[&k].0 / sums[&k].1 as f64)).collect()
}

fn probes_section(page: &mut Page, store: &Store, run: RunId) -> anyhow::Result<()> {
    let Some(t) = store.table(run, "probes")? else { return Ok(()) };
    let layers = t.rows.iter().filter_map(|r| r[2].as_u64()).max().unwrap_or(0) as usize + 1;
    let mut targets: Vec<String> = Vec::new();
    for r in &t.rows {
        let name = r[3].as_str().unwrap_or("").to_string();
        if !targets.contains(&name) {
            targets.push(name);
        }
    }
    let layer_labels: Vec<String> =
        (0..layers).map(|l| if l == 0 { "input".to_string() } else { format!("after block {}", l - 1) }).collect();
    let matrix_of = |model: &str, column: usize| {
        let means = grouped_means(
            &t.rows,
            |r| (r[1].as_str() == Some(model)).then(|| format!("{}|{}", r[3].as_str().unwrap_or(""), r[2])),
            column,
        );
        let lookup: std::collections::HashMap<String, f64> = means.into_iter().collect();
        targets
            .iter()
            .map(|name| (0..layers).map(|l| lookup.get(&format!("{name}|{l}")).copied().unwrap_or(f64::NAN)).collect())
            .collect::<Vec<Vec<f64>>>()
    };
    let heat = |title: &str, m: Vec<Vec<f64>>| {
        Heatmap::new(title, m)
            .row_labels(targets.clone())
            .col_labels(layer_labels.clone())
            .value_range(0.0, 1.0)
            .show_values()
            .x_label("residual stream at")
            .to_svg()
    };
    let trained = matrix_of("trained", 4);
    let untrained = matrix_of("untrained", 4);
    let shuffled = matrix_of("trained", 5);
    let worst_shuffled = shuffled.iter().flatten().copied().filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max);
    page.section("Looking inside: what is linearly decodable where")
        .paragraph(
            "Ridge probes read the residual stream (every position, flattened) at each layer boundary and are scored \
             by R² on held-out tasks (mean over seeds; the colour scale is clipped at 0, the printed values are not). Targets: Xᵀy = Σ yᵢxᵢ, the weights \
             the reference GD and OLS would fit, and the predictions of k-step GD and OLS at the query. Controls: the \
             same probes on the untrained model (each seed's initial weights) and on shuffled targets.",
        )
        .figure_row(vec![
            (heat("trained model: test R²", trained), "Mean over seeds.".into()),
            (heat("untrained control: test R²", untrained), "Same architecture, the seed's initial weights.".into()),
        ])
        .paragraph(format!(
            "Shuffled-target control: the largest mean test R² over all targets and layers is {}. Reading: a \
             target decodable after a block but not before it (and not in the untrained model) is computed by that \
             block. A linear probe cannot read Xᵀy or a weight vector from a residual stream of d + 1 numbers per \
             token unless the model writes it there; a model can implement GD without ever storing w.",
            mesalab_report::fmt::number(worst_shuffled)
        ));
    Ok(())
}

fn patching_section(page: &mut Page, store: &Store, run: RunId) -> anyhow::Result<()> {
    let Some(t) = store.table(run, "patching")? else { return Ok(()) };
    // Rows: hook kind (and head); columns: layer.
    let split = |hook: &str| -> Option<(usize, String)> {
        let rest = hook.strip_prefix("blocks.")?;
        let (layer, kind) = rest.split_once('.')?;
        Some((layer.parse().ok()?, kind.to_string()))
    };
    let means = grouped_means(
        &t.rows,
        |r| {
            let (layer, kind) = split(r[1].as_str()?)?;
            let kind = match r[2].as_u64() {
                Some(h) => format!("{kind} (head {h})"),
                None => kind,
            };
            Some(format!("{kind}|{layer}"))
        },
        3,
    );
    let mut kinds: Vec<String> = Vec::new();
    let mut layers = 0;
    for (key, _) in &means {
        let (kind, layer) = key.rsplit_once('|').unwrap_or((key, "0"));
        layers = layers.max(layer.parse::<usize>().unwrap_or(0) + 1);
        if !kinds.iter().any(|k| k == kind) {
            kinds.push(kind.to_string());
        }
    }
    let lookup: std::collections::HashMap<String, f64> = means.into_iter().collect();
    let matrix: Vec<Vec<f64>> = kinds
        .iter()
        .map(|k| (0..layers).map(|l| lookup.get(&format!("{k}|{l}")).copied().unwrap_or(f64::NAN)).collect())
        .collect();
    let heat = Heatmap::new("Patching: clean prediction restored", matrix)
        .row_labels(kinds)
        .col_labels((0..layers).map(|l| format!("block {l}")).collect())
        .value_range(0.0, 1.0)
        .show_values()
        .to_svg();
    page.section("Looking inside: activation patching").figure(
        heat,
        "Clean tasks vs corrupted tasks (same inputs, context labels from another teacher). Each activation (and each \
         head's slice) is patched from the clean run into the corrupted run; the value is the least-squares share of \
         the clean − corrupted prediction difference it restores (1 = all, 0 = none), mean over seeds. Keys, queries \
         and attention scores see only x, which the corruption leaves unchanged, so in a model that implements GD they \
         restore nothing; the values carry everything.",
    );
    Ok(())
}

/// Which algorithm: the identification verdict, every candidate's certificate across seeds, and
/// the first layer's preconditioner read against the fitted one.
fn identification_section(page: &mut Page, store: &Store, run: RunId, summary: &Value) -> anyhow::Result<()> {
    let Some(table) = store.table(run, "identification")? else {
        return Ok(());
    };
    let verdict: Option<crate::verdict::Verdict> = serde_json::from_value(summary["identification"].clone()).ok();
    let s = page.section("Which algorithm does it run?");
    s.paragraph(
        "Every candidate algorithm against the model on the same validation tasks: loss ratio (model / candidate), \
         squared prediction difference (SPD), implied-weight distance (ILWD: mean ‖∂ŷ/∂x_q − the candidate's \
         weights‖) and cosine. The closest candidate by SPD is named; it fits when its loss ratio is within the \
         tolerance and the cosine clears the bound on every seed. The last candidate is the preconditioned GD \
         fitted to the model's own predictions: the member of that family closest to the model.",
    );
    crate::verdict::section(s, verdict.as_ref(), "not finished");
    // Per candidate: mean [min, max] over seeds of each certificate column.
    let mut names: Vec<String> = Vec::new();
    for r in &table.rows {
        let name = r[1].as_str().unwrap_or("?").to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let spread = |values: &[f64]| {
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        Cell::text(format!(
            "{} [{}, {}]",
            mesalab_report::fmt::number(mean),
            mesalab_report::fmt::number(lo),
            mesalab_report::fmt::number(hi)
        ))
    };
    let rows = names
        .iter()
        .map(|name| {
            let of = |col: usize| -> Vec<f64> {
                table
                    .rows
                    .iter()
                    .filter(|r| r[1].as_str() == Some(name))
                    .map(|r| r[col].as_f64().unwrap_or(f64::NAN))
                    .collect()
            };
            vec![
                Cell::text(name.clone()),
                spread(&of(2)),
                spread(&of(3)),
                spread(&of(4)),
                spread(&of(5)),
                spread(&of(6)),
            ]
        })
        .collect();
    s.table_captioned(
        "Mean [min, max] over seeds, on the validation tasks.",
        vec!["candidate", "candidate loss", "loss ratio", "SPD", "ILWD", "cosine"],
        rows,
    );
    let per_seed: Vec<Value> = summary["per_seed"].as_array().cloned().unwrap_or_default();
    if per_seed.iter().any(|m| m["layer1_precond_cosine"].is_number()) {
        let rows = per_seed
            .iter()
            .map(|m| {
                let f = |k: &str| Cell::num(m[k].as_f64().unwrap_or(f64::NAN));
                vec![
                    Cell::text(format!("seed {}", m["seed"])),
                    f("layer1_precond_cosine"),
                    f("layer1_precond_rel_distance"),
                    f("layer1_precond_anisotropy"),
                    f("layer1_projection_cosine"),
                ]
            })
            .collect();
        s.table_captioned(
            "The first layer's step-1 preconditioner read off its weights (P = −N Σ_h (P W_V)_h[y,y] · W_KQ,h[x,x]ᵀ) \
             against step 1 of the preconditioned GD fitted to the labels; anisotropy = ‖P − tr(P)/d·I‖ / ‖P‖ \
             (0: a multiple of the identity, as in plain GD).",
            vec![
                "seed",
                "cosine with fitted P₁",
                "‖P − P₁‖ / ‖P₁‖",
                "anisotropy of P",
                "cosine with P₁ fitted to the model",
            ],
            rows,
        );
    }
    Ok(())
}

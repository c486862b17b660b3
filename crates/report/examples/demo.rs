//! Renders a demo report with every chart type to `/tmp/report-demo.html` (or the path given as
//! the first argument), plus an index page beside it.
//!
//! `cargo run --release -p mesalab-report --example demo`
//!
//! The numbers are synthetic (a fixed pseudo-random sequence), shaped like the in-context linear
//! regression experiment: a trained linear self-attention layer compared with one step of GD.

use mesalab_report::fmt;
use mesalab_report::html::{Cell, Highlight, IndexEntry, Page, Status, index_page};
use mesalab_report::svg::{BarChart, BarSeries, Heatmap, LineChart, RefLine, Scatter, ScatterSeries, Series};
use std::path::PathBuf;

/// SplitMix64: deterministic noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Approximately standard normal (sum of uniforms).
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.next()).sum::<f64>() - 6.0
    }
}

/// Mean curve `(step, loss)` and its min–max band `(step, lo, hi)`.
type Curve = (Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

fn loss_curve(noise: &mut Noise, floor: f64, rate: f64, seeds: usize) -> Curve {
    let steps: Vec<f64> = (0..=60).map(|i| i as f64 * 250.0).collect();
    let mut mean = Vec::new();
    let mut band = Vec::new();
    for &t in &steps {
        let vals: Vec<f64> = (0..seeds)
            .map(|_| {
                let clean = floor + (1.0 - floor) * (-rate * t).exp();
                clean * (1.0 + 0.06 * noise.normal()).max(0.5)
            })
            .collect();
        let m = vals.iter().sum::<f64>() / seeds as f64;
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        mean.push((t, m));
        band.push((t, lo, hi));
    }
    (mean, band)
}

fn main() -> std::io::Result<()> {
    let out = std::env::args().nth(1).map_or_else(|| PathBuf::from("/tmp/report-demo.html"), PathBuf::from);
    let mut noise = Noise(7);

    // Loss curves: two models, bands over 5 seeds, three baselines (two of them close together).
    let (lsa, lsa_band) = loss_curve(&mut noise, 0.262, 1.1e-3, 5);
    let (softmax, softmax_band) = loss_curve(&mut noise, 0.215, 5e-4, 5);
    let loss = LineChart::new("Test loss on held-out regression tasks (d = 10, N = 10)")
        .x_label("training step")
        .y_label("mean squared error")
        .log_y(true)
        .size(760.0, 420.0)
        .series(Series::new("linear self-attention", lsa).band(lsa_band))
        .series(Series::new("softmax transformer (2 layers)", softmax).band(softmax_band).dashed())
        .hline(RefLine::new("one-step GD (η*)", 0.26).dashed())
        .hline(RefLine::new("GD++", 0.243).dashed())
        .hline(RefLine::new("least squares", 0.031));

    // W_KQ: hand-constructed (η·I on the x-block) and trained (close to it, with noise).
    let d = 11;
    let eta = 0.9;
    let constructed: Vec<Vec<f64>> =
        (0..d).map(|i| (0..d).map(|j| if i == j && i < d - 1 { eta } else { 0.0 }).collect()).collect();
    let trained: Vec<Vec<f64>> =
        constructed.iter().map(|row| row.iter().map(|&v| v * 0.97 + 0.04 * noise.normal()).collect()).collect();
    let labels: Vec<String> = (0..d).map(|i| if i < d - 1 { format!("x{}", i + 1) } else { "y".into() }).collect();
    let heat = |title: &str, m: Vec<Vec<f64>>| {
        Heatmap::new(title, m)
            .row_labels(labels.clone())
            .col_labels(labels.clone())
            .diverging()
            .value_range(-1.0, 1.0)
            .to_svg()
    };

    // Outcomes on train vs deploy, with 95% intervals.
    let outcomes = BarChart::new(
        "Episode outcomes, CoinRun-style corridor (PPO, 8 seeds)",
        vec!["train (coin at end)".into(), "deploy: coin anywhere".into(), "deploy: new textures".into()],
    )
    .y_label("fraction of episodes")
    .y_range(0.0, 1.0)
    .value_labels()
    .series(BarSeries::new("robust (gets coin)", vec![0.97, 0.18, 0.91]).errors(vec![
        (0.95, 0.985),
        (0.12, 0.25),
        (0.87, 0.94),
    ]))
    .series(BarSeries::new("objective failure (goes to end)", vec![0.02, 0.74, 0.03]).errors(vec![
        (0.01, 0.035),
        (0.67, 0.80),
        (0.015, 0.05),
    ]))
    .series(BarSeries::new("capability failure", vec![0.01, 0.08, 0.06]).errors(vec![
        (0.0, 0.02),
        (0.05, 0.12),
        (0.04, 0.09),
    ]));

    // Model vs GD predictions on 300 held-out queries.
    let pts: Vec<(f64, f64)> = (0..300)
        .map(|_| {
            let gd = 1.6 * noise.normal();
            (gd, 0.98 * gd + 0.08 * noise.normal())
        })
        .collect();
    let scatter = Scatter::new("Trained model vs one step of GD, same queries")
        .x_label("GD prediction ŷ_GD")
        .y_label("model prediction ŷ")
        .diagonal()
        .series(ScatterSeries::new("held-out queries", pts));

    let mut page = Page::new("In-context linear regression: is the trained layer one step of GD?");
    page.subtitle("Experiment icl-gd · config configs/experiments/icl_gd.toml · 5 seeds · synthetic demo data");
    page.section("Summary")
        .raw_html(
            "A single linear self-attention layer trained on in-context regression reaches the loss of \
             <strong>one step of gradient descent</strong> with the learned step size, and its \
             <code>W_KQ</code> matches the hand-constructed weights up to scale. Numbers below compare \
             the model and its baselines <em>on the same held-out tasks</em>.",
        )
        .callout(
            "Verdict: the trained layer implements one step of GD (cosine 0.998, loss ratio 1.0005).",
            Highlight::Good,
        )
        .key_values([
            ("experiment", "icl-gd"),
            ("seed", "0 (streams: env, init, minibatch, eval)"),
            ("code revision", "9c2e10b (clean)"),
            ("wall time", "3 min 12 s on 1 CPU thread"),
        ]);
    page.section("Training").figure(
        loss.to_svg(),
        "Test loss (log scale) over training; lines are means over 5 seeds, shaded bands span min–max. \
             Dashed lines are the loss of one step of GD with the best step size η* and of GD++; \
             the solid line is the least-squares solution.",
    );
    page.section("Weights")
        .paragraph("Both matrices share one colour scale, from −1 (blue) through 0 (white) to +1 (red).")
        .figure_row(vec![
            (heat("W_KQ, trained (seed 0)", trained), "Trained key–query matrix.".into()),
            (heat("W_KQ, constructed (η = 0.9)", constructed), "Hand-constructed one-step-GD matrix.".into()),
        ]);
    page.section("Predictions")
        .figure(scatter.to_svg(), "Each point is one held-out query: the model's prediction against GD's. Points on the dashed diagonal agree exactly.");
    page.section("Goal misgeneralisation check")
        .figure(outcomes.to_svg(), "Outcome shares with 95% Wilson intervals. Capability is kept on deploy (few capability failures) while the objective is lost.");
    // Robustness gallery: degenerate inputs must render sensibly, never panic.
    let attention: Vec<Vec<f64>> = (0..5)
        .map(|q| {
            let raw: Vec<f64> =
                (0..5).map(|k| if k <= q { (-(q as f64 - k as f64)).exp() } else { f64::NAN }).collect();
            let z: f64 = raw.iter().filter(|v| v.is_finite()).sum();
            raw.iter().map(|v| v / z).collect()
        })
        .collect();
    page.section("Edge cases")
        .paragraph("Degenerate inputs: an empty series, a single point, a flat line on a log axis with non-positive values, a causal attention pattern with masked (NaN) cells, and stacked bars.")
        .figure_row(vec![
            (LineChart::new("Empty series").series(Series::new("nothing", vec![])).size(340.0, 240.0).to_svg(), "No data placeholder.".into()),
            (LineChart::new("A single point").series(Series::new("one", vec![(3.0, 0.5)])).size(340.0, 240.0).to_svg(), "One point.".into()),
            (
                LineChart::new("Flat, log y, with 0 and NaN")
                    .log_y(true)
                    .series(Series::new("flat", vec![(0.0, 0.3), (1.0, 0.0), (2.0, 0.3), (3.0, f64::NAN), (4.0, 0.3)]).markers())
                    .size(340.0, 240.0)
                    .to_svg(),
                "Skipped points break the line.".into(),
            ),
        ])
        .figure_row(vec![
            (
                Heatmap::new("Causal attention, head 0", attention)
                    .x_label("key position")
                    .y_label("query position")
                    .show_values()
                    .value_range(0.0, 1.0)
                    .to_svg(),
                "Sequential colour map; masked cells in grey.".into(),
            ),
            (
                BarChart::new("Stacked outcomes", vec!["train".into(), "deploy".into()])
                    .stacked()
                    .value_labels()
                    .y_range(0.0, 1.0)
                    .size(360.0, 300.0)
                    .series(BarSeries::new("robust", vec![0.97, 0.18]))
                    .series(BarSeries::new("objective failure", vec![0.02, 0.74]))
                    .series(BarSeries::new("capability failure", vec![0.01, 0.08]))
                    .to_svg(),
                "Stacked bars with values inside tall segments.".into(),
            ),
        ]);
    page.section("Metrics")
        .table_captioned(
            "Held-out metrics, mean ± sample standard deviation over 5 seeds.",
            vec!["model", "test MSE", "vs one-step GD", "cosine(W_KQ)", "params", "verdict"],
            vec![
                vec![
                    Cell::text("linear self-attention"),
                    Cell::mean_pm(0.20663, 0.00312),
                    Cell::num(1.00049),
                    Cell::mean_range(0.998, 0.9962, 0.9991),
                    Cell::int(242),
                    Cell::text("matches GD").good(),
                ],
                vec![
                    Cell::text("softmax transformer"),
                    Cell::mean_pm(0.1781, 0.0094),
                    Cell::num(0.862),
                    Cell::numeric("–"),
                    Cell::int(52_874),
                    Cell::text("beats GD").neutral(),
                ],
                vec![
                    Cell::text("zero predictor"),
                    Cell::num(1.0013),
                    Cell::num(4.846),
                    Cell::numeric("–"),
                    Cell::int(0),
                    Cell::text("baseline"),
                ],
                vec![
                    Cell::code("lsa-lr3e-2"),
                    Cell::num(f64::NAN),
                    Cell::num(3.2e-5),
                    Cell::numeric("–"),
                    Cell::int(242),
                    Cell::text("diverged").bad(),
                ],
            ],
        )
        .paragraph(format!(
            "Formatting examples: {} · {} · {} · {}.",
            fmt::number(0.206612),
            fmt::number(3.2e-5),
            fmt::mean_pm(0.20663, 0.00312),
            fmt::percent(0.1234, 1)
        ))
        .details(
            "Resolved config (TOML)",
            "[task]\nd = 10\nn_context = 10\nnoise_std = 0.0\n\n[model]\nkind = \"lsa\"  # <linear self-attention>\n\n[train]\nsteps = 15000\nlr = 1e-3\nbatch = 2048\nseed = 0\n",
        );
    let html = page.render();
    std::fs::write(&out, &html)?;

    let index = index_page(
        "mesalab demo reports",
        &[
            IndexEntry {
                name: "In-context linear regression".into(),
                description: "Is a trained linear self-attention layer one step of gradient descent?".into(),
                href: out.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
                headline: vec![("loss / GD loss".into(), "1.0005".into()), ("cos(W_KQ)".into(), "0.998".into())],
                status: Status::good("replicated"),
            },
            IndexEntry {
                name: "Coin corridor".into(),
                description: "Goal misgeneralisation: does the agent pursue the coin or the end of the level?".into(),
                href: "coin.html".into(),
                headline: vec![("deploy: goes to end".into(), "74% [67%, 80%]".into())],
                status: Status::bad("misaligned on deploy"),
            },
        ],
    );
    let index_path = out.with_file_name("report-demo-index.html");
    std::fs::write(&index_path, index)?;
    println!("wrote {} ({} bytes) and {}", out.display(), html.len(), index_path.display());
    Ok(())
}

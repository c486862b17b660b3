//! Snapshot tests of small charts. The SVG is deterministic (fixed layout, one-decimal
//! coordinates), so any change to the drawing code shows up here as a reviewable diff.
//! Update with `INSTA_UPDATE=always cargo test -p mesalab-report --test snapshots`, then review.

use mesalab_report::svg::{BarChart, BarSeries, Heatmap, LineChart, RefLine, Series};

#[test]
fn small_line_chart() {
    let chart = LineChart::new("Test loss <in-context>")
        .x_label("training step")
        .y_label("MSE")
        .size(480.0, 300.0)
        .series(
            Series::new("trained LSA", vec![(0.0, 1.0), (100.0, 0.5), (200.0, 0.3), (300.0, f64::NAN), (400.0, 0.21)])
                .band(vec![(0.0, 0.9, 1.1), (100.0, 0.45, 0.55), (200.0, 0.27, 0.33), (400.0, 0.2, 0.22)]),
        )
        .series(Series::new("GD++ & friends", vec![(0.0, 0.8), (400.0, 0.25)]).dashed().markers())
        .hline(RefLine::new("one-step GD", 0.26).dashed());
    insta::assert_snapshot!("small_line_chart", chart.to_svg());
}

#[test]
fn small_heatmap() {
    let h =
        Heatmap::new("W_KQ (trained)", vec![vec![0.5, -0.25, 0.0], vec![-1.0, 1.0, f64::NAN], vec![0.125, 0.0, -0.5]])
            .row_labels(vec!["x₀".into(), "x₁".into(), "y".into()])
            .col_labels(vec!["x₀".into(), "x₁".into(), "y".into()])
            .diverging()
            .show_values();
    insta::assert_snapshot!("small_heatmap", h.to_svg());
}

#[test]
fn small_bar_chart() {
    let chart = BarChart::new("Outcomes", vec!["train".into(), "deploy".into()])
        .y_label("fraction")
        .y_range(0.0, 1.0)
        .size(360.0, 260.0)
        .series(BarSeries::new("robust", vec![0.9, 0.2]).errors(vec![(0.85, 0.94), (0.15, 0.26)]))
        .series(BarSeries::new("objective failure", vec![0.1, 0.8]));
    insta::assert_snapshot!("small_bar_chart", chart.to_svg());
}

//! Bar charts: grouped (side by side) or stacked, with optional confidence-interval whiskers.

use super::{
    Axis, Doc, GRID, LegendItem, MUTED, Rect, Swatch, TEXT, TICK_FONT, color, draw_legend, draw_y_title, finite_range,
    left_margin, legend_height, n, text_width, tick_target, wrap,
};
use crate::escape;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A bar chart with one cluster per group and one bar (or stack segment) per series.
///
/// ```
/// use mesalab_report::svg::{BarChart, BarSeries};
/// let svg = BarChart::new("Outcomes", vec!["train".into(), "deploy".into()])
///     .y_label("fraction of episodes")
///     .series(BarSeries::new("robust", vec![0.9, 0.2]).errors(vec![(0.85, 0.94), (0.15, 0.26)]))
///     .series(BarSeries::new("objective failure", vec![0.05, 0.7]))
///     .to_svg();
/// assert!(svg.contains("deploy"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    /// Category names along the x axis (wrapped onto up to three lines).
    pub groups: Vec<String>,
    pub series: Vec<BarSeries>,
    /// Stack the series within each group instead of placing them side by side.
    pub stacked: bool,
    /// Fixed y range, e.g. `(0, 1)` for fractions; fitted to the data (and 0) when `None`.
    pub y_range: Option<(f64, f64)>,
    /// Print each value on its bar.
    pub value_labels: bool,
    pub width: f64,
    pub height: f64,
}

impl Default for BarChart {
    fn default() -> Self {
        BarChart {
            title: String::new(),
            y_label: String::new(),
            groups: Vec::new(),
            series: Vec::new(),
            stacked: false,
            y_range: None,
            value_labels: false,
            width: 640.0,
            height: 380.0,
        }
    }
}

/// One series of a [`BarChart`]: a value per group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BarSeries {
    pub name: String,
    /// One value per group; missing or non-finite values draw no bar.
    pub values: Vec<f64>,
    /// Absolute interval bounds `(lo, hi)` per group (e.g. a 95% CI), drawn as whiskers.
    pub errors: Option<Vec<(f64, f64)>>,
    /// Any CSS colour; palette colour by position when `None`.
    pub color: Option<String>,
}

impl BarSeries {
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        BarSeries { name: name.into(), values, ..Default::default() }
    }
    pub fn errors(mut self, errors: Vec<(f64, f64)>) -> Self {
        self.errors = Some(errors);
        self
    }
    pub fn color(mut self, c: impl Into<String>) -> Self {
        self.color = Some(c.into());
        self
    }
    fn value(&self, g: usize) -> Option<f64> {
        self.values.get(g).copied().filter(|v| v.is_finite())
    }
    fn error(&self, g: usize) -> Option<(f64, f64)> {
        self.errors.as_ref()?.get(g).copied().filter(|(a, b)| a.is_finite() && b.is_finite())
    }
}

/// One drawn bar: group, series, value, and its extent on the value axis.
struct Bar {
    g: usize,
    s: usize,
    value: f64,
    base: f64,
    top: f64,
    /// Whisker extent on the value axis, already shifted onto the stack.
    err: Option<(f64, f64)>,
}

impl BarChart {
    pub fn new(title: impl Into<String>, groups: Vec<String>) -> Self {
        BarChart { title: title.into(), groups, ..Default::default() }
    }
    pub fn y_label(mut self, s: impl Into<String>) -> Self {
        self.y_label = s.into();
        self
    }
    pub fn series(mut self, s: BarSeries) -> Self {
        self.series.push(s);
        self
    }
    pub fn stacked(mut self) -> Self {
        self.stacked = true;
        self
    }
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    pub fn value_labels(mut self) -> Self {
        self.value_labels = true;
        self
    }
    pub fn size(mut self, width: f64, height: f64) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    fn bars(&self) -> Vec<Bar> {
        let mut bars = Vec::new();
        for g in 0..self.groups.len() {
            let (mut pos, mut neg) = (0.0, 0.0);
            for (s, ser) in self.series.iter().enumerate() {
                let Some(v) = ser.value(g) else { continue };
                let base = if !self.stacked {
                    0.0
                } else if v >= 0.0 {
                    pos
                } else {
                    neg
                };
                let top = base + v;
                if self.stacked {
                    if v >= 0.0 { pos = top } else { neg = top }
                }
                let err = ser.error(g).map(|(lo, hi)| (base + lo.min(hi), base + lo.max(hi)));
                bars.push(Bar { g, s, value: v, base, top, err });
            }
        }
        bars
    }

    /// Renders the chart as a standalone `<svg>` element.
    pub fn to_svg(&self) -> String {
        let width = if self.width >= 120.0 { self.width } else { 640.0 };
        let height = if self.height >= 120.0 { self.height } else { 380.0 };
        let mut doc = Doc::new(width, height, &self.title);
        let title_bottom = doc.title(&self.title, width);
        let colors: Vec<String> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| s.color.clone().unwrap_or_else(|| color::palette(i).to_string()))
            .collect();
        let legend: Vec<LegendItem> = self
            .series
            .iter()
            .zip(&colors)
            .filter(|(s, _)| !s.name.is_empty())
            .map(|(s, c)| LegendItem { label: s.name.clone(), swatch: Swatch::Box { color: c.clone() } })
            .collect();
        let legend_y = title_bottom + 4.0;
        let legend_h = legend_height(&legend, width - 24.0);
        draw_legend(&mut doc, &legend, 12.0, legend_y, width - 24.0);
        // Value labels may sit above the tallest bar: leave them room below the legend.
        let top = legend_y + legend_h + if self.value_labels { 24.0 } else { 12.0 };

        let bars = self.bars();
        let data = bars.iter().flat_map(|b| {
            let (elo, ehi) = b.err.unwrap_or((b.top, b.top));
            [b.base, b.top, elo, ehi]
        });
        let range = match self.y_range.filter(|(a, b)| a.is_finite() && b.is_finite() && a != b) {
            Some(r) if !bars.is_empty() => Some(r),
            _ => finite_range(data.chain([0.0])).filter(|_| !bars.is_empty()),
        };
        let Some((lo, hi)) = range else {
            doc.placeholder(Rect { x0: 12.0, y0: top, x1: width - 12.0, y1: height - 12.0 }, "No data");
            return doc.finish();
        };

        // Group labels decide the bottom margin.
        let ng = self.groups.len();
        let y_axis_guess = Axis::new(lo, hi, false, tick_target(height - top - 60.0, 55.0));
        let left = left_margin(y_axis_guess.max_label_width(), !self.y_label.is_empty());
        let right = 16.0;
        let band = (width - left - right) / ng as f64;
        let group_lines: Vec<Vec<String>> = self.groups.iter().map(|g| wrap(g, TICK_FONT, band - 8.0, 3)).collect();
        let max_lines = group_lines.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let bottom = 14.0 + max_lines as f64 * 13.0 + 8.0;
        let y_axis = Axis::new(lo, hi, false, tick_target(height - top - bottom, 55.0));
        let plot = Rect { x0: left, y0: top, x1: width - right, y1: height - bottom };
        if plot.y1 - plot.y0 < 40.0 || band < 4.0 {
            doc.placeholder(Rect { x0: 12.0, y0: top, x1: width - 12.0, y1: height - 12.0 }, "Chart too small");
            return doc.finish();
        }
        let sy = y_axis.scale(plot.y1, plot.y0);

        // Horizontal grid and y ticks.
        for (&v, l) in y_axis.ticks.major.iter().zip(&y_axis.labels) {
            let y = sy.map(v);
            doc.line(plot.x0, y, plot.x1, y, GRID, 1.0, "");
            doc.line(plot.x0 - 4.0, y, plot.x0, y, super::AXIS, 1.0, "");
            doc.text(plot.x0 - 7.0, y + 4.0, l, TICK_FONT, "end", TEXT, "");
        }
        doc.line(plot.x0, plot.y0, plot.x0, plot.y1, super::AXIS, 1.0, "");
        if !self.y_label.is_empty() {
            draw_y_title(&mut doc, &self.y_label, plot);
        }

        // Bars.
        let ns = self.series.len().max(1);
        let per_group = if self.stacked { 1 } else { ns };
        let bar_w = (band * 0.72 / per_group as f64).min(56.0);
        let cluster_w = bar_w * per_group as f64;
        let bar_x = |b: &Bar| {
            let gx = plot.x0 + (b.g as f64 + 0.5) * band - cluster_w / 2.0;
            if self.stacked { gx } else { gx + b.s as f64 * bar_w }
        };
        for b in &bars {
            let x = bar_x(b);
            let (y0, y1) = (sy.map(b.base.max(b.top)), sy.map(b.base.min(b.top)));
            let gap = if !self.stacked && per_group > 1 { bar_w.min(12.0) * 0.12 } else { 0.0 };
            let tip = format!(
                "{} — {}: {}{}",
                self.groups[b.g],
                self.series[b.s].name,
                crate::fmt::number(b.value),
                match self.series[b.s].error(b.g) {
                    Some((l, h)) => format!(" [{}, {}]", crate::fmt::number(l), crate::fmt::number(h)),
                    None => String::new(),
                }
            );
            let sep = if self.stacked { r##" stroke="#ffffff" stroke-width="1""## } else { "" };
            let _ = writeln!(
                doc.out,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"{sep}><title>{}</title></rect>"#,
                n(x + gap / 2.0),
                n(y0),
                n(bar_w - gap),
                n((y1 - y0).max(0.0)),
                escape::attr(&colors[b.s]),
                escape::text(&tip)
            );
        }
        // Baseline at 0, then whiskers and value labels above the bars.
        if lo <= 0.0 && hi >= 0.0 {
            let y = sy.map(0.0);
            doc.line(plot.x0, y, plot.x1, y, "#6b7280", 1.2, "");
        }
        for b in &bars {
            let cx = bar_x(b) + bar_w / 2.0;
            if let Some((elo, ehi)) = b.err {
                let cap = (bar_w * 0.4).min(10.0) / 2.0;
                let (ya, yb) = (sy.map(elo), sy.map(ehi));
                doc.line(cx, ya, cx, yb, "#1f2328", 1.3, "");
                doc.line(cx - cap, ya, cx + cap, ya, "#1f2328", 1.3, "");
                doc.line(cx - cap, yb, cx + cap, yb, "#1f2328", 1.3, "");
            }
            if self.value_labels {
                let label = crate::fmt::minus(&crate::fmt::sig(b.value, 3));
                let tw = text_width(&label, 10.0);
                if self.stacked {
                    let h = (sy.map(b.base) - sy.map(b.top)).abs();
                    if h >= 14.0 && tw + 4.0 <= bar_w {
                        let ink = color::Rgb::parse_hex(&colors[b.s]).map_or("#ffffff", |c| c.text_on());
                        let cy = (sy.map(b.base) + sy.map(b.top)) / 2.0 + 3.5;
                        doc.text(cx, cy, &label, 10.0, "middle", ink, "");
                    }
                } else {
                    let above = b.err.map_or(b.top, |(l, h)| if b.value >= 0.0 { h.max(b.top) } else { l.min(b.top) });
                    let y = if b.value >= 0.0 { sy.map(above) - 4.0 } else { sy.map(above) + 12.0 };
                    doc.text(cx, y, &label, 10.0, "middle", MUTED, "");
                }
            }
        }

        // Group labels.
        for (g, lines) in group_lines.iter().enumerate() {
            let cx = plot.x0 + (g as f64 + 0.5) * band;
            for (k, l) in lines.iter().enumerate() {
                doc.text(cx, plot.y1 + 17.0 + k as f64 * 13.0, l, TICK_FONT, "middle", TEXT, "");
            }
        }
        doc.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_inputs_show_placeholder() {
        assert!(BarChart::new("e", vec![]).to_svg().contains("No data"));
        assert!(BarChart::new("e", vec!["a".into()]).to_svg().contains("No data"));
        let c = BarChart::new("e", vec!["a".into()]).series(BarSeries::new("s", vec![f64::NAN]));
        assert!(c.to_svg().contains("No data"));
    }

    #[test]
    fn missing_values_draw_no_bar() {
        let svg = BarChart::new("t", vec!["a".into(), "b".into(), "c".into()])
            .series(BarSeries::new("s", vec![1.0, f64::NAN]))
            .to_svg();
        assert_eq!(svg.matches("<title>").count(), 1, "{svg}");
    }

    #[test]
    fn stacking_accumulates() {
        let c = BarChart::new("t", vec!["g".into()])
            .series(BarSeries::new("a", vec![0.25]))
            .series(BarSeries::new("b", vec![0.5]))
            .series(BarSeries::new("neg", vec![-0.1]))
            .stacked();
        let bars = c.bars();
        assert_eq!((bars[1].base, bars[1].top), (0.25, 0.75));
        assert_eq!((bars[2].base, bars[2].top), (0.0, -0.1));
        let svg = c.to_svg();
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn whiskers_and_labels_escape() {
        let svg = BarChart::new("a<b", vec!["x&y".into()])
            .series(BarSeries::new("<s>", vec![0.5]).errors(vec![(0.4, 0.6)]))
            .value_labels()
            .to_svg();
        assert!(svg.contains("a&lt;b") && svg.contains("x&amp;y") && svg.contains("&lt;s&gt;"));
        assert!(svg.contains("[0.4, 0.6]"));
    }
}

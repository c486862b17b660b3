//! Line charts: one line per series, optional shaded band (spread across seeds), horizontal
//! reference lines labelled at the right edge, linear or log axes.

use super::{
    Axis, Doc, LegendItem, Rect, Swatch, TICK_FONT, bottom_margin, color, draw_legend, draw_xy_axes, ellipsize,
    finite_range, left_margin, legend_height, n, spread_labels, text_width, tick_target,
};
use crate::escape;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A line chart. Build with [`LineChart::new`] and the builder methods, or fill the fields.
///
/// ```
/// use mesalab_report::svg::{LineChart, RefLine, Series};
/// let svg = LineChart::new("Loss")
///     .x_label("step")
///     .y_label("MSE")
///     .log_y(true)
///     .series(Series::new("trained", vec![(0.0, 1.0), (100.0, 0.2)]))
///     .hline(RefLine::new("one-step GD", 0.25).dashed())
///     .to_svg();
/// assert!(svg.starts_with("<svg"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Horizontal reference lines (baselines such as "one-step GD"), labelled at the right edge.
    pub hlines: Vec<RefLine>,
    pub log_x: bool,
    pub log_y: bool,
    /// Size in pixels (the page scales charts down to fit).
    pub width: f64,
    pub height: f64,
}

impl Default for LineChart {
    fn default() -> Self {
        LineChart {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            hlines: Vec::new(),
            log_x: false,
            log_y: false,
            width: 640.0,
            height: 400.0,
        }
    }
}

/// One line of a [`LineChart`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Series {
    pub name: String,
    /// `(x, y)` points in drawing order. Non-finite points (and non-positive ones on a log axis)
    /// are skipped and break the line.
    pub points: Vec<(f64, f64)>,
    /// Shaded spread, e.g. min/max or a confidence interval across seeds: `(x, lo, hi)`.
    pub band: Option<Vec<(f64, f64, f64)>>,
    pub dashed: bool,
    /// Any CSS colour; palette colour by position when `None`.
    pub color: Option<String>,
    /// Draw a dot at every point.
    pub markers: bool,
}

/// A horizontal reference line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefLine {
    pub label: String,
    pub y: f64,
    pub dashed: bool,
    /// Any CSS colour; dark grey when `None`.
    pub color: Option<String>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series { name: name.into(), points, ..Default::default() }
    }
    /// Sets the shaded band `(x, lo, hi)`.
    pub fn band(mut self, band: Vec<(f64, f64, f64)>) -> Self {
        self.band = Some(band);
        self
    }
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
    pub fn color(mut self, color: impl Into<String>) -> Self {
        self.color = Some(color.into());
        self
    }
    pub fn markers(mut self) -> Self {
        self.markers = true;
        self
    }
}

impl RefLine {
    pub fn new(label: impl Into<String>, y: f64) -> Self {
        RefLine { label: label.into(), y, ..Default::default() }
    }
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
    pub fn color(mut self, color: impl Into<String>) -> Self {
        self.color = Some(color.into());
        self
    }
}

const REF_COLOR: &str = "#4b5563";
const REF_LABEL_MAX_W: f64 = 150.0;

impl LineChart {
    pub fn new(title: impl Into<String>) -> Self {
        LineChart { title: title.into(), ..Default::default() }
    }
    pub fn x_label(mut self, s: impl Into<String>) -> Self {
        self.x_label = s.into();
        self
    }
    pub fn y_label(mut self, s: impl Into<String>) -> Self {
        self.y_label = s.into();
        self
    }
    /// Adds a series.
    pub fn series(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }
    /// Adds a reference line.
    pub fn hline(mut self, r: RefLine) -> Self {
        self.hlines.push(r);
        self
    }
    pub fn log_x(mut self, on: bool) -> Self {
        self.log_x = on;
        self
    }
    pub fn log_y(mut self, on: bool) -> Self {
        self.log_y = on;
        self
    }
    pub fn size(mut self, width: f64, height: f64) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    fn ok_x(&self, x: f64) -> bool {
        x.is_finite() && (!self.log_x || x > 0.0)
    }
    fn ok_y(&self, y: f64) -> bool {
        y.is_finite() && (!self.log_y || y > 0.0)
    }

    /// Renders the chart as a standalone `<svg>` element.
    pub fn to_svg(&self) -> String {
        let width = if self.width >= 120.0 { self.width } else { 640.0 };
        let height = if self.height >= 120.0 { self.height } else { 400.0 };
        let mut doc = Doc::new(width, height, &self.title);
        let title_bottom = doc.title(&self.title, width);

        // Valid geometry: lines split into runs at skipped points, bands likewise.
        let colors: Vec<String> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| s.color.clone().unwrap_or_else(|| color::palette(i).to_string()))
            .collect();
        let runs: Vec<Vec<Vec<(f64, f64)>>> =
            self.series.iter().map(|s| split_runs(&s.points, |&(x, y)| self.ok_x(x) && self.ok_y(y))).collect();
        let bands: Vec<Vec<Vec<(f64, f64, f64)>>> = self
            .series
            .iter()
            .map(|s| {
                split_runs(s.band.as_deref().unwrap_or(&[]), |&(x, lo, hi)| {
                    self.ok_x(x) && self.ok_y(lo) && self.ok_y(hi)
                })
            })
            .collect();
        let hlines: Vec<&RefLine> = self.hlines.iter().filter(|h| self.ok_y(h.y)).collect();

        let xs = runs.iter().flatten().flatten().map(|p| p.0);
        let xs = xs.chain(bands.iter().flatten().flatten().map(|b| b.0));
        let ys = runs.iter().flatten().flatten().map(|p| p.1);
        let ys = ys.chain(bands.iter().flatten().flatten().flat_map(|b| [b.1, b.2]));
        let ys = ys.chain(hlines.iter().map(|h| h.y));

        let legend: Vec<LegendItem> = self
            .series
            .iter()
            .zip(&colors)
            .enumerate()
            .filter(|(_, (s, _))| !s.name.is_empty())
            .map(|(i, (s, c))| LegendItem {
                label: s.name.clone(),
                swatch: Swatch::Line {
                    color: c.clone(),
                    dashed: s.dashed,
                    markers: s.markers,
                    band: !bands[i].is_empty(),
                },
            })
            .collect();
        let legend_h = legend_height(&legend, width - 24.0);
        let legend_y = title_bottom + 4.0;
        draw_legend(&mut doc, &legend, 12.0, legend_y, width - 24.0);
        let top = legend_y + legend_h + 12.0;

        let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (finite_range(xs), finite_range(ys)) else {
            doc.placeholder(Rect { x0: 12.0, y0: top, x1: width - 12.0, y1: height - 12.0 }, "No data");
            return doc.finish();
        };

        let bottom = bottom_margin(!self.x_label.is_empty());
        let y_axis = Axis::new(y_lo, y_hi, self.log_y, tick_target(height - top - bottom, 55.0));
        let left = left_margin(y_axis.max_label_width(), !self.y_label.is_empty());
        let ref_label_w = hlines
            .iter()
            .map(|h| text_width(&ellipsize(&h.label, TICK_FONT, REF_LABEL_MAX_W), TICK_FONT))
            .fold(0.0, f64::max);
        let x_axis = Axis::new(x_lo, x_hi, self.log_x, tick_target(width - left - 40.0, 90.0));
        let last_x_label = x_axis.labels.last().map_or(0.0, |l| text_width(l, TICK_FONT));
        let right = if hlines.is_empty() { 16.0 } else { ref_label_w + 14.0 }.max(last_x_label / 2.0 + 6.0);
        let plot = Rect { x0: left, y0: top, x1: width - right, y1: height - bottom };
        if plot.x1 - plot.x0 < 40.0 || plot.y1 - plot.y0 < 40.0 {
            doc.placeholder(Rect { x0: 12.0, y0: top, x1: width - 12.0, y1: height - 12.0 }, "Chart too small");
            return doc.finish();
        }
        draw_xy_axes(&mut doc, plot, &x_axis, &y_axis, &self.x_label, &self.y_label);
        let sx = x_axis.scale(plot.x0, plot.x1);
        let sy = y_axis.scale(plot.y1, plot.y0);

        // Bands below everything else.
        for (bs, c) in bands.iter().zip(&colors) {
            for run in bs {
                if run.len() == 1 {
                    let (x, lo, hi) = run[0];
                    doc.line(sx.map(x), sy.map(lo), sx.map(x), sy.map(hi), c, 3.0, r#"stroke-opacity="0.3""#);
                    continue;
                }
                let mut d = String::new();
                for (k, &(x, _, hi)) in run.iter().enumerate() {
                    let _ = write!(d, "{}{} {} ", if k == 0 { "M" } else { "L" }, n(sx.map(x)), n(sy.map(hi)));
                }
                for &(x, lo, _) in run.iter().rev() {
                    let _ = write!(d, "L{} {} ", n(sx.map(x)), n(sy.map(lo)));
                }
                d.push('Z');
                let _ = writeln!(
                    doc.out,
                    r#"<path d="{d}" fill="{}" fill-opacity="0.18" stroke="none"/>"#,
                    escape::attr(c)
                );
            }
        }

        // Reference lines, with labels nudged apart at the right edge.
        let desired: Vec<f64> = hlines.iter().map(|h| sy.map(h.y)).collect();
        let placed = spread_labels(&desired, 13.0, plot.y0 - 4.0, plot.y1);
        for ((h, &y), &ly) in hlines.iter().zip(&desired).zip(&placed) {
            let c = h.color.as_deref().unwrap_or(REF_COLOR);
            let dash = if h.dashed { r#"stroke-dasharray="6 4""# } else { "" };
            doc.line(plot.x0, y, plot.x1, y, c, 1.4, dash);
            if (ly - y).abs() > 1.0 {
                doc.line(plot.x1, y, plot.x1 + 5.0, ly, c, 0.8, "");
            }
            let label = ellipsize(&h.label, TICK_FONT, REF_LABEL_MAX_W);
            doc.text(plot.x1 + 7.0, ly + 4.0, &label, TICK_FONT, "start", c, "");
        }

        // Lines, then markers on top.
        for ((s, rs), c) in self.series.iter().zip(&runs).zip(&colors) {
            let dash = if s.dashed { r#" stroke-dasharray="7 4""# } else { "" };
            for run in rs.iter().filter(|r| r.len() >= 2) {
                let mut d = String::new();
                for (k, &(x, y)) in run.iter().enumerate() {
                    let _ = write!(d, "{}{} {}", if k == 0 { "M" } else { " L" }, n(sx.map(x)), n(sy.map(y)));
                }
                let _ = writeln!(
                    doc.out,
                    r#"<path d="{d}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"{dash}/>"#,
                    escape::attr(c)
                );
            }
        }
        for ((s, rs), c) in self.series.iter().zip(&runs).zip(&colors) {
            for run in rs {
                if !s.markers && run.len() > 1 {
                    continue;
                }
                for &(x, y) in run {
                    let _ = writeln!(
                        doc.out,
                        r##"<circle cx="{}" cy="{}" r="3" fill="{}" stroke="#ffffff" stroke-width="1"/>"##,
                        n(sx.map(x)),
                        n(sy.map(y)),
                        escape::attr(c)
                    );
                }
            }
        }
        doc.finish()
    }
}

/// Splits `items` into maximal runs of consecutive valid items.
fn split_runs<T: Copy>(items: &[T], valid: impl Fn(&T) -> bool) -> Vec<Vec<T>> {
    let mut runs = Vec::new();
    let mut cur = Vec::new();
    for it in items {
        if valid(it) {
            cur.push(*it);
        } else if !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(h: &str, needle: &str) -> usize {
        h.matches(needle).count()
    }

    #[test]
    fn empty_chart_shows_placeholder() {
        for chart in [
            LineChart::new("empty"),
            LineChart::new("empty series").series(Series::new("a", vec![])),
            LineChart::new("only nan").series(Series::new("a", vec![(f64::NAN, 1.0), (1.0, f64::INFINITY)])),
            LineChart::new("log of negatives").log_y(true).series(Series::new("a", vec![(0.0, -1.0), (1.0, 0.0)])),
        ] {
            let svg = chart.to_svg();
            assert!(svg.contains("No data"), "{svg}");
            assert!(svg.ends_with("</svg>"));
        }
    }

    #[test]
    fn nan_points_break_the_line() {
        let svg = LineChart::new("t")
            .series(Series::new("a", vec![(0.0, 1.0), (1.0, 2.0), (2.0, f64::NAN), (3.0, 1.5), (4.0, 1.0)]))
            .to_svg();
        assert_eq!(count(&svg, "<path d=\"M"), 2, "{svg}");
        assert!(!svg.contains("NaN"));
        assert!(!svg.contains("inf"));
    }

    #[test]
    fn single_point_and_all_equal_values_render() {
        let svg = LineChart::new("one").series(Series::new("a", vec![(3.0, 0.5)])).to_svg();
        assert!(svg.contains("<circle"), "a lone point is drawn as a dot");
        assert!(!svg.contains("No data"));
        let svg = LineChart::new("flat").series(Series::new("a", vec![(0.0, 2.0), (1.0, 2.0), (2.0, 2.0)])).to_svg();
        assert!(svg.contains("<path d=\"M"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn log_axes_skip_non_positive_values() {
        let svg = LineChart::new("log")
            .log_x(true)
            .log_y(true)
            .series(Series::new("a", vec![(0.0, 1.0), (1.0, 0.1), (10.0, 0.0), (100.0, 0.001)]))
            .to_svg();
        assert!(!svg.contains("NaN"));
        assert!(svg.contains(">0.001<") || svg.contains(">1e-3<"), "{svg}");
    }

    #[test]
    fn text_is_escaped() {
        let svg = LineChart::new("a < b & c")
            .x_label("<x>")
            .series(Series::new("\"s\" & t", vec![(0.0, 1.0), (1.0, 2.0)]).color("red\"/><script>"))
            .hline(RefLine::new("GD <1 step>", 1.5))
            .to_svg();
        assert!(svg.contains("a &lt; b &amp; c"));
        assert!(svg.contains("&lt;x&gt;"));
        assert!(svg.contains("&quot;s&quot; &amp; t"));
        assert!(svg.contains("GD &lt;1 step&gt;"));
        assert!(!svg.contains("<script>"));
    }

    #[test]
    fn ref_labels_do_not_overlap() {
        let chart = LineChart::new("refs")
            .series(Series::new("a", vec![(0.0, 0.0), (1.0, 10.0)]))
            .hline(RefLine::new("first", 5.0))
            .hline(RefLine::new("second", 5.01))
            .hline(RefLine::new("third", 4.99));
        let svg = chart.to_svg();
        let ys: Vec<f64> = ["first", "second", "third"]
            .iter()
            .map(|l| {
                let end = svg.find(&format!(">{l}</text>")).unwrap();
                let start = svg[..end].rfind("<text").unwrap();
                let tag = &svg[start..end];
                let y = tag.split("y=\"").nth(1).unwrap().split('"').next().unwrap();
                y.parse().unwrap()
            })
            .collect();
        let mut s = ys.clone();
        s.sort_by(f64::total_cmp);
        assert!(s[1] - s[0] >= 12.9 && s[2] - s[1] >= 12.9, "{ys:?}");
    }

    #[test]
    fn tiny_size_falls_back_to_default() {
        let mut c = LineChart::new("t").series(Series::new("a", vec![(0.0, 1.0), (1.0, 2.0)]));
        c.width = 0.0;
        c.height = f64::NAN;
        assert!(c.to_svg().contains(r#"width="640""#));
    }
}

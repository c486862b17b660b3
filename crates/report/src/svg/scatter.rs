//! Scatter plots, e.g. a trained model's predictions against gradient descent's on the same tasks.

use super::{
    Axis, Doc, LegendItem, MUTED, Rect, Swatch, TICK_FONT, bottom_margin, color, draw_legend, draw_xy_axes,
    finite_range, left_margin, legend_height, n, text_width, tick_target,
};
use crate::escape;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A scatter plot. With `diagonal`, both axes share one range and a dashed `y = x` line is drawn,
/// so agreement shows as points on the diagonal.
///
/// ```
/// use mesalab_report::svg::{Scatter, ScatterSeries};
/// let svg = Scatter::new("Model vs GD")
///     .x_label("GD prediction")
///     .y_label("model prediction")
///     .diagonal()
///     .series(ScatterSeries::new("tasks", vec![(0.1, 0.12), (-0.5, -0.45)]))
///     .to_svg();
/// assert!(svg.contains("y = x"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scatter {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<ScatterSeries>,
    /// Draw `y = x` and give both axes the same range.
    pub diagonal: bool,
    pub log_x: bool,
    pub log_y: bool,
    pub width: f64,
    pub height: f64,
}

impl Default for Scatter {
    fn default() -> Self {
        Scatter {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            diagonal: false,
            log_x: false,
            log_y: false,
            width: 460.0,
            height: 440.0,
        }
    }
}

/// One set of points of a [`Scatter`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScatterSeries {
    pub name: String,
    /// Non-finite points (and non-positive ones on a log axis) are skipped.
    pub points: Vec<(f64, f64)>,
    /// Any CSS colour; palette colour by position when `None`.
    pub color: Option<String>,
}

impl ScatterSeries {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        ScatterSeries { name: name.into(), points, color: None }
    }
    pub fn color(mut self, c: impl Into<String>) -> Self {
        self.color = Some(c.into());
        self
    }
}

impl Scatter {
    pub fn new(title: impl Into<String>) -> Self {
        Scatter { title: title.into(), ..Default::default() }
    }
    pub fn x_label(mut self, s: impl Into<String>) -> Self {
        self.x_label = s.into();
        self
    }
    pub fn y_label(mut self, s: impl Into<String>) -> Self {
        self.y_label = s.into();
        self
    }
    pub fn series(mut self, s: ScatterSeries) -> Self {
        self.series.push(s);
        self
    }
    pub fn diagonal(mut self) -> Self {
        self.diagonal = true;
        self
    }
    pub fn size(mut self, width: f64, height: f64) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    /// Renders the plot as a standalone `<svg>` element.
    pub fn to_svg(&self) -> String {
        let width = if self.width >= 120.0 { self.width } else { 460.0 };
        let height = if self.height >= 120.0 { self.height } else { 440.0 };
        // A shared range needs a shared scale type.
        let (log_x, log_y) = if self.diagonal {
            let l = self.log_x && self.log_y;
            (l, l)
        } else {
            (self.log_x, self.log_y)
        };
        let mut doc = Doc::new(width, height, &self.title);
        let title_bottom = doc.title(&self.title, width);
        let colors: Vec<String> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| s.color.clone().unwrap_or_else(|| color::palette(i).to_string()))
            .collect();
        let mut legend: Vec<LegendItem> = self
            .series
            .iter()
            .zip(&colors)
            .filter(|(s, _)| !s.name.is_empty())
            .map(|(s, c)| LegendItem { label: s.name.clone(), swatch: Swatch::Dot { color: c.clone() } })
            .collect();
        if self.diagonal {
            legend.push(LegendItem { label: "y = x".into(), swatch: Swatch::Dashed { color: MUTED.into() } });
        }
        let legend_y = title_bottom + 4.0;
        let legend_h = legend_height(&legend, width - 24.0);
        draw_legend(&mut doc, &legend, 12.0, legend_y, width - 24.0);
        let top = legend_y + legend_h + 12.0;

        let ok = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
        let pts: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| s.points.iter().copied().filter(|&(x, y)| ok(x, log_x) && ok(y, log_y)).collect())
            .collect();
        let xr = finite_range(pts.iter().flatten().map(|p| p.0));
        let yr = finite_range(pts.iter().flatten().map(|p| p.1));
        let (Some(mut xr), Some(mut yr)) = (xr, yr) else {
            doc.placeholder(Rect { x0: 12.0, y0: top, x1: width - 12.0, y1: height - 12.0 }, "No data");
            return doc.finish();
        };
        if self.diagonal {
            let r = (xr.0.min(yr.0), xr.1.max(yr.1));
            (xr, yr) = (r, r);
        }

        let bottom = bottom_margin(!self.x_label.is_empty());
        let y_axis = Axis::new(yr.0, yr.1, log_y, tick_target(height - top - bottom, 55.0));
        let left = left_margin(y_axis.max_label_width(), !self.y_label.is_empty());
        let x_axis = if self.diagonal {
            Axis::new(xr.0, xr.1, log_x, tick_target(height - top - bottom, 55.0))
        } else {
            Axis::new(xr.0, xr.1, log_x, tick_target(width - left - 40.0, 80.0))
        };
        let last = x_axis.labels.last().map_or(0.0, |l| text_width(l, TICK_FONT));
        let mut plot = Rect { x0: left, y0: top, x1: width - (last / 2.0 + 6.0).max(16.0), y1: height - bottom };
        if self.diagonal {
            // Square plot area so that y = x is at 45°.
            let side = (plot.x1 - plot.x0).min(plot.y1 - plot.y0);
            plot.x1 = plot.x0 + side;
            plot.y0 = plot.y1 - side;
        }
        if plot.x1 - plot.x0 < 40.0 || plot.y1 - plot.y0 < 40.0 {
            doc.placeholder(Rect { x0: 12.0, y0: top, x1: width - 12.0, y1: height - 12.0 }, "Chart too small");
            return doc.finish();
        }
        draw_xy_axes(&mut doc, plot, &x_axis, &y_axis, &self.x_label, &self.y_label);
        let sx = x_axis.scale(plot.x0, plot.x1);
        let sy = y_axis.scale(plot.y1, plot.y0);

        if self.diagonal {
            let (a, b) = y_axis.ticks.domain;
            doc.line(sx.map(a), sy.map(a), sx.map(b), sy.map(b), MUTED, 1.2, r#"stroke-dasharray="6 4""#);
        }
        let total: usize = pts.iter().map(Vec::len).sum();
        let r = if total > 2000 {
            1.8
        } else if total > 300 {
            2.4
        } else {
            3.2
        };
        for (ps, c) in pts.iter().zip(&colors) {
            let _ = writeln!(doc.out, r#"<g fill="{}" fill-opacity="0.6">"#, escape::attr(c));
            for &(x, y) in ps {
                let _ = writeln!(doc.out, r#"<circle cx="{}" cy="{}" r="{r}"/>"#, n(sx.map(x)), n(sy.map(y)));
            }
            doc.out.push_str("</g>\n");
        }
        doc.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_nan_show_placeholder() {
        assert!(Scatter::new("e").to_svg().contains("No data"));
        let s = Scatter::new("e").series(ScatterSeries::new("a", vec![(f64::NAN, 0.0)]));
        assert!(s.to_svg().contains("No data"));
    }

    #[test]
    fn diagonal_shares_the_range() {
        let svg = Scatter::new("d")
            .diagonal()
            .series(ScatterSeries::new("a", vec![(0.0, 10.0), (1.0, 0.5), (f64::INFINITY, 1.0)]))
            .to_svg();
        assert!(svg.contains("y = x"));
        assert_eq!(svg.matches(r#"r="3.2"/>"#).count(), 2);
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn single_point() {
        let svg = Scatter::new("one").series(ScatterSeries::new("a", vec![(2.0, 2.0)])).to_svg();
        assert_eq!(svg.matches(r#"r="3.2"/>"#).count(), 1);
    }
}

//! Inline SVG charts, written by hand: no plotting dependency, no scripts, no external fonts.
//!
//! Every chart is a plain struct with public fields (and builder methods) whose `to_svg()` returns
//! a standalone `<svg>` element. All user text is escaped. Non-finite values (and non-positive
//! values on log axes) are skipped; a chart with nothing to draw shows a "No data" placeholder
//! instead of panicking.
//!
//! - [`LineChart`]: training curves with shaded seed bands and labelled reference lines.
//! - [`Heatmap`]: matrices (attention patterns) with a colour bar, sequential or diverging.
//! - [`BarChart`]: grouped or stacked bars with optional confidence-interval whiskers.
//! - [`Scatter`]: point clouds with an optional `y = x` diagonal.
//! - [`overlay_path`]: an agent's path over a grid picture laid out as a [`CellGeometry`].

mod bar;
pub mod color;
mod heatmap;
mod line;
mod path;
pub mod scale;
mod scatter;

pub use bar::{BarChart, BarSeries};
pub use heatmap::Heatmap;
pub use line::{LineChart, RefLine, Series};
pub use path::{CellGeometry, overlay_path};
pub use scatter::{Scatter, ScatterSeries};

use crate::escape;
use scale::{Scale, Ticks};
use std::fmt::Write as _;

/// System font stack used inside every chart (and by the HTML page).
pub const FONT_STACK: &str =
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', sans-serif";

pub(crate) const INK: &str = "#1f2328";
pub(crate) const TEXT: &str = "#374151";
pub(crate) const MUTED: &str = "#6b7280";
pub(crate) const GRID: &str = "#e5e7eb";
pub(crate) const GRID_MINOR: &str = "#f2f3f5";
pub(crate) const AXIS: &str = "#9ca3af";

pub(crate) const TICK_FONT: f64 = 11.0;
pub(crate) const LABEL_FONT: f64 = 12.0;
pub(crate) const TITLE_FONT: f64 = 14.0;
pub(crate) const LEGEND_FONT: f64 = 12.0;

/// Formats a pixel coordinate with at most one decimal.
pub(crate) fn n(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if !r.is_finite() {
        return "0".into();
    }
    if r == r.trunc() { format!("{}", r as i64) } else { format!("{r:.1}") }
}

/// Estimated rendered width of `s` at `size` px in a proportional sans-serif font. Generous, so
/// that layout leaves enough room whichever system font is picked.
pub(crate) fn text_width(s: &str, size: f64) -> f64 {
    let em: f64 = s
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | '(' | ')' | '[' | ']' => 0.30,
            'f' | 't' | 'r' | ' ' | 'I' | '1' | '-' => 0.38,
            'm' | 'w' | 'M' | 'W' | '%' | '@' => 0.88,
            'A'..='Z' | '±' | '≈' | '≤' | '≥' | '∞' | '×' => 0.68,
            '0'..='9' => 0.58,
            c if c.is_ascii() => 0.56,
            _ => 0.70,
        })
        .sum();
    em * size
}

/// Shortens `s` with an ellipsis so that it fits in `max_w`.
pub(crate) fn ellipsize(s: &str, size: f64, max_w: f64) -> String {
    if text_width(s, size) <= max_w {
        return s.to_string();
    }
    let mut out: String = String::new();
    for c in s.chars() {
        let mut next = out.clone();
        next.push(c);
        next.push('…');
        if text_width(&next, size) > max_w {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// Greedy word wrap into at most `max_lines` lines of width `max_w`; the last line is ellipsized.
pub(crate) fn wrap(s: &str, size: f64, max_w: f64, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split_whitespace() {
        let cand = if cur.is_empty() { word.to_string() } else { format!("{cur} {word}") };
        if text_width(&cand, size) <= max_w || cur.is_empty() {
            cur = cand;
        } else {
            lines.push(std::mem::take(&mut cur));
            cur = word.to_string();
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    if lines.len() > max_lines.max(1) {
        let rest = lines.split_off(max_lines.max(1) - 1).join(" ");
        lines.push(rest);
    }
    if let Some(last) = lines.last_mut() {
        *last = ellipsize(last, size, max_w);
    }
    lines
}

/// A rectangle in pixels: `x0 < x1`, `y0 < y1` (y grows downwards).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

/// An SVG document being written.
pub(crate) struct Doc {
    pub out: String,
}

impl Doc {
    pub fn new(width: f64, height: f64, label: &str) -> Doc {
        let mut out = String::with_capacity(8192);
        let _ = write!(
            out,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}" font-family="{font}" font-size="11"><rect width="{w}" height="{h}" fill="#ffffff"/>"##,
            w = n(width),
            h = n(height),
            label = escape::attr(label),
            font = FONT_STACK,
        );
        out.push('\n');
        Doc { out }
    }

    /// A text element; `attrs` is extra trusted attribute markup (e.g. `font-weight="600"`).
    #[allow(clippy::too_many_arguments)]
    pub fn text(&mut self, x: f64, y: f64, s: &str, size: f64, anchor: &str, fill: &str, attrs: &str) {
        let _ = writeln!(
            self.out,
            r#"<text x="{}" y="{}" font-size="{}" text-anchor="{}" fill="{}"{}{}>{}</text>"#,
            n(x),
            n(y),
            n(size),
            anchor,
            escape::attr(fill),
            if attrs.is_empty() { "" } else { " " },
            attrs,
            escape::text(s)
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, width: f64, attrs: &str) {
        let _ = writeln!(
            self.out,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}"{}{}/>"#,
            n(x1),
            n(y1),
            n(x2),
            n(y2),
            escape::attr(stroke),
            n(width),
            if attrs.is_empty() { "" } else { " " },
            attrs
        );
    }

    /// Draws the (wrapped) chart title at the top left; returns the y below it.
    pub fn title(&mut self, title: &str, width: f64) -> f64 {
        if title.trim().is_empty() {
            return 10.0;
        }
        let lines = wrap(title, TITLE_FONT, width - 24.0, 2);
        let mut y = 21.0;
        for l in &lines {
            self.text(12.0, y, l, TITLE_FONT, "start", INK, r#"font-weight="600""#);
            y += 18.0;
        }
        y - 4.0
    }

    /// A dashed box with a centred message, for charts with nothing to draw.
    pub fn placeholder(&mut self, r: Rect, msg: &str) {
        let _ = writeln!(
            self.out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" rx="6" fill="#f9fafb" stroke="#d1d5db" stroke-dasharray="4 4"/>"##,
            n(r.x0),
            n(r.y0),
            n(r.x1 - r.x0),
            n(r.y1 - r.y0)
        );
        self.text((r.x0 + r.x1) / 2.0, (r.y0 + r.y1) / 2.0 + 5.0, msg, 14.0, "middle", MUTED, "");
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// What a legend entry shows next to its label.
pub(crate) enum Swatch {
    Line { color: String, dashed: bool, markers: bool, band: bool },
    Box { color: String },
    Dot { color: String },
    Dashed { color: String },
}

pub(crate) struct LegendItem {
    pub label: String,
    pub swatch: Swatch,
}

const LEGEND_ROW: f64 = 18.0;
const SWATCH_W: f64 = 22.0;

fn legend_item_width(item: &LegendItem, max_w: f64) -> f64 {
    let label = ellipsize(&item.label, LEGEND_FONT, max_w - SWATCH_W - 8.0);
    SWATCH_W + 6.0 + text_width(&label, LEGEND_FONT) + 18.0
}

/// Lays legend items out in rows that fit `max_w`: returns (item index, x offset, row).
fn legend_layout(items: &[LegendItem], max_w: f64) -> Vec<(usize, f64, usize)> {
    let mut out = Vec::new();
    let (mut x, mut row) = (0.0, 0);
    for (i, item) in items.iter().enumerate() {
        let w = legend_item_width(item, max_w);
        if x > 0.0 && x + w - 18.0 > max_w {
            x = 0.0;
            row += 1;
        }
        out.push((i, x, row));
        x += w;
    }
    out
}

/// Height the legend needs (0 when there are no items).
pub(crate) fn legend_height(items: &[LegendItem], max_w: f64) -> f64 {
    match legend_layout(items, max_w).last() {
        Some(&(_, _, row)) => (row + 1) as f64 * LEGEND_ROW,
        None => 0.0,
    }
}

/// Draws the legend with its top-left corner at (`x0`, `y0`).
pub(crate) fn draw_legend(doc: &mut Doc, items: &[LegendItem], x0: f64, y0: f64, max_w: f64) {
    for (i, dx, row) in legend_layout(items, max_w) {
        let item = &items[i];
        let x = x0 + dx;
        let cy = y0 + row as f64 * LEGEND_ROW + LEGEND_ROW / 2.0;
        match &item.swatch {
            Swatch::Line { color, dashed, markers, band } => {
                if *band {
                    let _ = writeln!(
                        doc.out,
                        r#"<rect x="{}" y="{}" width="{}" height="10" fill="{}" fill-opacity="0.2"/>"#,
                        n(x),
                        n(cy - 5.0),
                        n(SWATCH_W),
                        escape::attr(color)
                    );
                }
                let dash = if *dashed { r#"stroke-dasharray="5 3""# } else { "" };
                doc.line(x, cy, x + SWATCH_W, cy, color, 2.0, dash);
                if *markers {
                    let _ = writeln!(
                        doc.out,
                        r##"<circle cx="{}" cy="{}" r="3" fill="{}" stroke="#ffffff" stroke-width="1"/>"##,
                        n(x + SWATCH_W / 2.0),
                        n(cy),
                        escape::attr(color)
                    );
                }
            }
            Swatch::Dashed { color } => {
                doc.line(x, cy, x + SWATCH_W, cy, color, 1.5, r#"stroke-dasharray="4 3""#);
            }
            Swatch::Box { color } => {
                let _ = writeln!(
                    doc.out,
                    r#"<rect x="{}" y="{}" width="12" height="12" rx="2" fill="{}"/>"#,
                    n(x + 5.0),
                    n(cy - 6.0),
                    escape::attr(color)
                );
            }
            Swatch::Dot { color } => {
                let _ = writeln!(
                    doc.out,
                    r#"<circle cx="{}" cy="{}" r="4" fill="{}" fill-opacity="0.75"/>"#,
                    n(x + SWATCH_W / 2.0),
                    n(cy),
                    escape::attr(color)
                );
            }
        }
        let label = ellipsize(&item.label, LEGEND_FONT, max_w - SWATCH_W - 8.0);
        doc.text(x + SWATCH_W + 6.0, cy + 4.0, &label, LEGEND_FONT, "start", TEXT, "");
    }
}

/// A numeric axis: ticks, their labels and the data→pixel map (set once the layout is known).
pub(crate) struct Axis {
    pub ticks: Ticks,
    pub labels: Vec<String>,
    pub log: bool,
}

impl Axis {
    /// Ticks for data in `[lo, hi]`. For log axes the bounds must contain a positive value.
    pub fn new(lo: f64, hi: f64, log: bool, target: usize) -> Axis {
        let ticks =
            if log { scale::log_ticks(lo, hi) } else { None }.unwrap_or_else(|| scale::linear_ticks(lo, hi, target));
        let log = log && ticks.domain.0 > 0.0;
        let labels = if log {
            ticks.major.iter().map(|&v| crate::fmt::log_tick_label(v)).collect()
        } else {
            crate::fmt::linear_tick_labels(&ticks.major)
        };
        Axis { ticks, labels, log }
    }

    pub fn scale(&self, r0: f64, r1: f64) -> Scale {
        Scale { d0: self.ticks.domain.0, d1: self.ticks.domain.1, r0, r1, log: self.log }
    }

    pub fn max_label_width(&self) -> f64 {
        self.labels.iter().map(|l| text_width(l, TICK_FONT)).fold(0.0, f64::max)
    }
}

/// Indices of labels to draw so that neighbours (at pixel centres `pos`, extents `ext`) keep a
/// gap: every k-th label for the smallest k that works.
fn thin(pos: &[f64], ext: &[f64], gap: f64) -> Vec<usize> {
    let nlab = pos.len();
    for k in 1..=nlab.max(1) {
        let idx: Vec<usize> = (0..nlab).step_by(k).collect();
        let ok = idx.windows(2).all(|w| (pos[w[1]] - pos[w[0]]).abs() >= (ext[w[0]] + ext[w[1]]) / 2.0 + gap);
        if ok {
            return idx;
        }
    }
    vec![0]
}

/// Gridlines, axis lines, tick labels and axis titles of an x/y plot.
pub(crate) fn draw_xy_axes(doc: &mut Doc, plot: Rect, x: &Axis, y: &Axis, x_label: &str, y_label: &str) {
    let xs = x.scale(plot.x0, plot.x1);
    let ys = y.scale(plot.y1, plot.y0);
    for &v in &x.ticks.minor {
        let px = xs.map(v);
        doc.line(px, plot.y0, px, plot.y1, GRID_MINOR, 1.0, "");
    }
    for &v in &y.ticks.minor {
        let py = ys.map(v);
        doc.line(plot.x0, py, plot.x1, py, GRID_MINOR, 1.0, "");
    }
    // Major gridlines, except where the axis line itself is drawn.
    for &v in x.ticks.major.iter().filter(|&&v| v != x.ticks.domain.0) {
        let px = xs.map(v);
        doc.line(px, plot.y0, px, plot.y1, GRID, 1.0, "");
    }
    for &v in y.ticks.major.iter().filter(|&&v| v != y.ticks.domain.0) {
        let py = ys.map(v);
        doc.line(plot.x0, py, plot.x1, py, GRID, 1.0, "");
    }
    doc.line(plot.x0, plot.y1, plot.x1, plot.y1, AXIS, 1.0, "");
    doc.line(plot.x0, plot.y0, plot.x0, plot.y1, AXIS, 1.0, "");

    // x tick labels, thinned so they never overlap.
    let pos: Vec<f64> = x.ticks.major.iter().map(|&v| xs.map(v)).collect();
    let ext: Vec<f64> = x.labels.iter().map(|l| text_width(l, TICK_FONT)).collect();
    for i in thin(&pos, &ext, 8.0) {
        doc.line(pos[i], plot.y1, pos[i], plot.y1 + 4.0, AXIS, 1.0, "");
        doc.text(pos[i], plot.y1 + 17.0, &x.labels[i], TICK_FONT, "middle", TEXT, "");
    }
    let pos: Vec<f64> = y.ticks.major.iter().map(|&v| ys.map(v)).collect();
    let ext = vec![TICK_FONT; pos.len()];
    for i in thin(&pos, &ext, 3.0) {
        doc.line(plot.x0 - 4.0, pos[i], plot.x0, pos[i], AXIS, 1.0, "");
        doc.text(plot.x0 - 7.0, pos[i] + 4.0, &y.labels[i], TICK_FONT, "end", TEXT, "");
    }
    if !x_label.is_empty() {
        let l = ellipsize(x_label, LABEL_FONT, plot.x1 - plot.x0);
        doc.text((plot.x0 + plot.x1) / 2.0, plot.y1 + 37.0, &l, LABEL_FONT, "middle", INK, "");
    }
    if !y_label.is_empty() {
        draw_y_title(doc, y_label, plot);
    }
}

/// The rotated y-axis title, centred on the plot's height at the left edge of the chart.
pub(crate) fn draw_y_title(doc: &mut Doc, y_label: &str, plot: Rect) {
    let l = ellipsize(y_label, LABEL_FONT, plot.y1 - plot.y0);
    let cy = (plot.y0 + plot.y1) / 2.0;
    let attrs = format!(r#"transform="rotate(-90 16 {})""#, n(cy));
    doc.text(16.0, cy + 4.0, &l, LABEL_FONT, "middle", INK, &attrs);
}

/// Left margin needed for y tick labels of width `tick_w` (and the rotated title, if any).
pub(crate) fn left_margin(tick_w: f64, has_title: bool) -> f64 {
    (if has_title { 30.0 } else { 8.0 }) + tick_w + 10.0
}

/// Bottom margin for x tick labels (and the x title, if any).
pub(crate) fn bottom_margin(has_title: bool) -> f64 {
    if has_title { 48.0 } else { 28.0 }
}

/// Target number of tick intervals for an axis `len` pixels long.
pub(crate) fn tick_target(len: f64, spacing: f64) -> usize {
    ((len / spacing).round() as usize).clamp(2, 10)
}

/// Pushes label centres apart so that neighbours are at least `gap` apart, within
/// `[lo, hi]` where possible. Input order is preserved in the output.
pub(crate) fn spread_labels(desired: &[f64], gap: f64, lo: f64, hi: f64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..desired.len()).collect();
    order.sort_by(|&a, &b| desired[a].total_cmp(&desired[b]));
    let mut p: Vec<f64> = order.iter().map(|&i| desired[i].clamp(lo, hi)).collect();
    for i in 1..p.len() {
        p[i] = p[i].max(p[i - 1] + gap);
    }
    if let Some(last) = p.last_mut()
        && *last > hi
    {
        *last = hi;
        for i in (0..p.len() - 1).rev() {
            p[i] = p[i].min(p[i + 1] - gap);
        }
    }
    if let Some(first) = p.first_mut()
        && *first < lo
    {
        *first = lo;
        for i in 1..p.len() {
            p[i] = p[i].max(p[i - 1] + gap);
        }
    }
    let mut out = vec![0.0; desired.len()];
    for (k, &i) in order.iter().enumerate() {
        out[i] = p[k];
    }
    out
}

/// Finite min and max of an iterator, if any value is finite.
pub(crate) fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_formatting() {
        assert_eq!(n(1.0), "1");
        assert_eq!(n(1.26), "1.3");
        assert_eq!(n(-0.01), "0");
        assert_eq!(n(f64::NAN), "0");
    }

    #[test]
    fn wrapping_and_ellipsis() {
        let lines = wrap("a fairly long title that needs wrapping", 14.0, 120.0, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with('…'));
        assert_eq!(wrap("short", 14.0, 120.0, 2), vec!["short"]);
        assert_eq!(ellipsize("abcdefghijklmnop", 10.0, 30.0).chars().last(), Some('…'));
    }

    #[test]
    fn labels_are_spread_apart() {
        let p = spread_labels(&[100.0, 101.0, 99.0], 12.0, 0.0, 300.0);
        let mut s = p.clone();
        s.sort_by(f64::total_cmp);
        assert!(s[1] - s[0] >= 12.0 - 1e-9 && s[2] - s[1] >= 12.0 - 1e-9, "{p:?}");
        // Order of the inputs is kept: the lowest desired stays lowest.
        assert!(p[2] < p[0] && p[0] < p[1]);
        // Pressed against the bottom bound, labels move up instead.
        let p = spread_labels(&[298.0, 299.0], 12.0, 0.0, 300.0);
        assert!(p.iter().all(|&v| v <= 300.0));
        assert!((p[1] - p[0]).abs() >= 12.0 - 1e-9);
    }

    #[test]
    fn thinning_drops_overlapping_labels() {
        let pos = [0.0, 10.0, 20.0, 30.0, 40.0];
        let idx = thin(&pos, &[15.0; 5], 2.0);
        assert_eq!(idx, vec![0, 2, 4]);
    }
}

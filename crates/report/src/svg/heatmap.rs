//! Heatmaps of matrices (attention patterns, weight matrices) with a colour bar.

use super::{
    Doc, INK, LABEL_FONT, MUTED, Rect, TEXT, TICK_FONT, color, draw_y_title, ellipsize, finite_range, n, scale,
    text_width,
};
use crate::escape;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A heatmap. Rows are drawn top to bottom, columns left to right (matrix layout).
///
/// Colours: sequential (light → dark navy) by default; with `diverging`, blue–white–red with white
/// at 0 and a range symmetric around 0 (`±max|v|`). Give several heatmaps the same `value_range`
/// to put them on one colour scale when they are shown side by side; values outside it are clamped.
///
/// ```
/// use mesalab_report::svg::Heatmap;
/// let svg = Heatmap::new("W_KQ", vec![vec![1.0, -0.5], vec![0.0, 2.0]]).diverging().to_svg();
/// assert!(svg.contains("W_KQ"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Heatmap {
    pub title: String,
    /// `matrix[row][col]`; ragged rows are padded with missing cells; NaN cells are drawn grey.
    pub matrix: Vec<Vec<f64>>,
    /// Row labels (row index when empty).
    pub row_labels: Vec<String>,
    /// Column labels (column index when empty); rotated when wider than a cell.
    pub col_labels: Vec<String>,
    /// Title above the column labels, e.g. "key position".
    pub x_label: String,
    /// Title left of the row labels, e.g. "query position".
    pub y_label: String,
    pub diverging: bool,
    /// Print each value in its cell (when the cell is large enough).
    pub show_values: bool,
    /// Fixed colour range `(lo, hi)`; the data's range when `None`.
    pub value_range: Option<(f64, f64)>,
    /// Cell size in pixels; 0 picks one (10–36 px) from the matrix size.
    pub cell_size: f64,
}

impl Heatmap {
    pub fn new(title: impl Into<String>, matrix: Vec<Vec<f64>>) -> Self {
        Heatmap { title: title.into(), matrix, ..Default::default() }
    }
    pub fn row_labels(mut self, labels: Vec<String>) -> Self {
        self.row_labels = labels;
        self
    }
    pub fn col_labels(mut self, labels: Vec<String>) -> Self {
        self.col_labels = labels;
        self
    }
    pub fn x_label(mut self, s: impl Into<String>) -> Self {
        self.x_label = s.into();
        self
    }
    pub fn y_label(mut self, s: impl Into<String>) -> Self {
        self.y_label = s.into();
        self
    }
    pub fn diverging(mut self) -> Self {
        self.diverging = true;
        self
    }
    pub fn show_values(mut self) -> Self {
        self.show_values = true;
        self
    }
    pub fn value_range(mut self, lo: f64, hi: f64) -> Self {
        self.value_range = Some((lo, hi));
        self
    }
    pub fn cell_size(mut self, px: f64) -> Self {
        self.cell_size = px;
        self
    }

    /// The colour range actually used: `value_range` or the data's, made non-empty, and symmetric
    /// around 0 when diverging.
    pub fn effective_range(&self) -> (f64, f64) {
        let given = self.value_range.filter(|(a, b)| a.is_finite() && b.is_finite());
        let (mut lo, mut hi) = given
            .map(|(a, b)| (a.min(b), a.max(b)))
            .or_else(|| finite_range(self.matrix.iter().flatten().copied()))
            .unwrap_or((0.0, 1.0));
        if self.diverging {
            let m = lo.abs().max(hi.abs());
            let m = if m > 0.0 { m } else { 1.0 };
            return (-m, m);
        }
        if hi <= lo {
            (lo, hi) = if lo == 0.0 { (0.0, 1.0) } else { (lo.min(0.0), lo.max(0.0)) };
        }
        (lo, hi)
    }

    fn color_at(&self, v: f64, (lo, hi): (f64, f64)) -> color::Rgb {
        let t = (v - lo) / (hi - lo);
        if self.diverging { color::diverging(t) } else { color::sequential(t) }
    }

    /// Renders the heatmap as a standalone `<svg>` element.
    pub fn to_svg(&self) -> String {
        let rows = self.matrix.len();
        let cols = self.matrix.iter().map(Vec::len).max().unwrap_or(0);
        if rows == 0 || cols == 0 {
            let (w, h) = (360.0, 220.0);
            let mut doc = Doc::new(w, h, &self.title);
            let top = doc.title(&self.title, w) + 10.0;
            doc.placeholder(Rect { x0: 12.0, y0: top, x1: w - 12.0, y1: h - 12.0 }, "No data");
            return doc.finish();
        }
        let cell = if self.cell_size.is_finite() && self.cell_size >= 2.0 {
            self.cell_size
        } else {
            (360.0 / cols.max(rows) as f64).floor().clamp(10.0, 36.0)
        };
        let label_font = TICK_FONT.min(cell * 0.85).max(7.0);
        let label = |labels: &[String], i: usize| -> String {
            if labels.is_empty() { i.to_string() } else { labels.get(i).cloned().unwrap_or_default() }
        };
        let row_labels: Vec<String> =
            (0..rows).map(|i| ellipsize(&label(&self.row_labels, i), label_font, 140.0)).collect();
        let col_labels: Vec<String> =
            (0..cols).map(|i| ellipsize(&label(&self.col_labels, i), label_font, 110.0)).collect();
        let row_w = row_labels.iter().map(|l| text_width(l, label_font)).fold(0.0, f64::max);
        let col_w = col_labels.iter().map(|l| text_width(l, label_font)).fold(0.0, f64::max);
        let rotate = col_w > cell - 3.0;
        let col_h =
            if rotate { (col_w + label_font) * std::f64::consts::FRAC_1_SQRT_2 + 8.0 } else { label_font + 8.0 };

        let range = self.effective_range();
        let cb_ticks = {
            let t = scale::linear_ticks(range.0, range.1, 4);
            let eps = (range.1 - range.0) * 1e-9;
            let inside: Vec<f64> = t.major.into_iter().filter(|&v| v >= range.0 - eps && v <= range.1 + eps).collect();
            if inside.len() >= 2 { inside } else { vec![range.0, range.1] }
        };
        let cb_labels = crate::fmt::linear_tick_labels(&cb_ticks);
        let cb_label_w = cb_labels.iter().map(|l| text_width(l, TICK_FONT)).fold(0.0, f64::max);

        let grid_w = cols as f64 * cell;
        let grid_h = rows as f64 * cell;
        let left = 12.0 + if self.y_label.is_empty() { 0.0 } else { 22.0 } + row_w + 6.0;
        let cb_x = left + grid_w + 18.0;
        let cb_w = 12.0;
        let cb_h = grid_h.max(100.0);
        let content_w = (cb_x + cb_w + 6.0 + cb_label_w + 12.0)
            .max(left + grid_w + col_w * std::f64::consts::FRAC_1_SQRT_2 * f64::from(u8::from(rotate)) + 12.0);
        let title_w = text_width(&self.title, super::TITLE_FONT) + 24.0;
        let width = content_w.max(title_w.min(480.0)).max(200.0);

        // Height depends on the title's line count, which depends on the width: measure first.
        let mut doc = Doc::new(0.0, 0.0, "");
        let title_bottom = doc.title(&self.title, width);
        let x_title_h = if self.x_label.is_empty() { 0.0 } else { 18.0 };
        let top = title_bottom + 10.0 + x_title_h + col_h;
        let height = top + cb_h + 14.0;

        let mut doc = Doc::new(width, height, &self.title);
        doc.title(&self.title, width);
        if !self.x_label.is_empty() {
            let l = ellipsize(&self.x_label, LABEL_FONT, width - left - 12.0);
            let cx = (left + (left + grid_w).min(width - 12.0)) / 2.0;
            doc.text(cx, title_bottom + 8.0 + 13.0, &l, LABEL_FONT, "middle", INK, "");
        }
        if !self.y_label.is_empty() {
            draw_y_title(&mut doc, &self.y_label, Rect { x0: left, y0: top, x1: left + grid_w, y1: top + grid_h });
        }

        // Cells.
        let (lo, hi) = range;
        let max_abs = lo.abs().max(hi.abs());
        let decimals = if max_abs < 10.0 {
            2
        } else if max_abs < 100.0 {
            1
        } else {
            0
        };
        let value_text = |v: f64| {
            if v.is_finite() { crate::fmt::minus(&crate::fmt::fixed(v, decimals)) } else { "–".into() }
        };
        let widest = self.matrix.iter().flatten().map(|&v| value_text(v).chars().count()).max().unwrap_or(1) as f64;
        let value_font = (cell * 0.42).min((cell - 4.0) / (widest * 0.6)).min(11.0);
        let show_values = self.show_values && value_font >= 6.5;
        let stroke = if cell >= 14.0 { r##" stroke="#ffffff" stroke-width="1""## } else { "" };
        for r in 0..rows {
            for c in 0..cols {
                let v = self.matrix[r].get(c).copied().unwrap_or(f64::NAN);
                let (x, y) = (left + c as f64 * cell, top + r as f64 * cell);
                let fill =
                    if v.is_finite() { self.color_at(v.clamp(lo, hi), range) } else { color::Rgb(0xf3, 0xf4, 0xf6) };
                let tip = format!(
                    "{}, {}: {}",
                    label(&self.row_labels, r),
                    label(&self.col_labels, c),
                    crate::fmt::number(v)
                );
                let _ = writeln!(
                    doc.out,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}"{stroke}><title>{}</title></rect>"#,
                    n(x),
                    n(y),
                    n(cell),
                    n(cell),
                    fill.hex(),
                    escape::text(&tip)
                );
                if show_values {
                    let ink = if v.is_finite() { fill.text_on() } else { MUTED };
                    doc.text(
                        x + cell / 2.0,
                        y + cell / 2.0 + value_font * 0.36,
                        &value_text(v),
                        value_font,
                        "middle",
                        ink,
                        "",
                    );
                }
            }
        }
        let _ = writeln!(
            doc.out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#d1d5db" stroke-width="1"/>"##,
            n(left),
            n(top),
            n(grid_w),
            n(grid_h)
        );

        // Row and column labels.
        for (r, l) in row_labels.iter().enumerate() {
            let y = top + (r as f64 + 0.5) * cell + label_font * 0.36;
            doc.text(left - 6.0, y, l, label_font, "end", TEXT, "");
        }
        for (c, l) in col_labels.iter().enumerate() {
            let x = left + (c as f64 + 0.5) * cell;
            if rotate {
                let y = top - 6.0;
                let attrs = format!(r#"transform="rotate(-45 {} {})""#, n(x), n(y));
                doc.text(x, y, l, label_font, "start", TEXT, &attrs);
            } else {
                doc.text(x, top - 6.0, l, label_font, "middle", TEXT, "");
            }
        }

        // Colour bar: thin slices (no gradient ids, so many heatmaps can share one page).
        let slices = ((cb_h / 3.0).ceil() as usize).clamp(32, 160);
        let sh = cb_h / slices as f64;
        for i in 0..slices {
            let v = hi - (i as f64 + 0.5) / slices as f64 * (hi - lo);
            let _ = writeln!(
                doc.out,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}" shape-rendering="crispEdges"/>"#,
                n(cb_x),
                n(top + i as f64 * sh),
                n(cb_w),
                n(sh + 0.6),
                self.color_at(v, range).hex()
            );
        }
        let _ = writeln!(
            doc.out,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#9ca3af" stroke-width="0.8"/>"##,
            n(cb_x),
            n(top),
            n(cb_w),
            n(cb_h)
        );
        for (&v, l) in cb_ticks.iter().zip(&cb_labels) {
            let y = top + (hi - v) / (hi - lo) * cb_h;
            doc.line(cb_x + cb_w, y, cb_x + cb_w + 4.0, y, "#9ca3af", 1.0, "");
            doc.text(cb_x + cb_w + 6.0, y + 4.0, l, TICK_FONT, "start", TEXT, "");
        }
        doc.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_matrices_show_placeholder() {
        for m in [vec![], vec![vec![]], vec![vec![], vec![]]] {
            let svg = Heatmap::new("e", m).to_svg();
            assert!(svg.contains("No data"));
        }
    }

    #[test]
    fn nan_and_ragged_cells_are_grey() {
        let svg = Heatmap::new("h", vec![vec![1.0, f64::NAN], vec![2.0]]).show_values().to_svg();
        assert_eq!(svg.matches("#f3f4f6").count(), 2, "{svg}");
        assert!(!svg.contains(">NaN<"));
    }

    #[test]
    fn ranges() {
        let h = Heatmap::new("h", vec![vec![-0.5, 2.0]]).diverging();
        assert_eq!(h.effective_range(), (-2.0, 2.0));
        let h = Heatmap::new("h", vec![vec![0.3, 0.3]]);
        assert_eq!(h.effective_range(), (0.0, 0.3));
        let h = Heatmap::new("h", vec![vec![f64::NAN]]);
        assert_eq!(h.effective_range(), (0.0, 1.0));
        let h = Heatmap::new("h", vec![vec![5.0]]).value_range(0.0, 1.0);
        assert_eq!(h.effective_range(), (0.0, 1.0));
        // Clamped to the shared range: drawn with the top colour.
        assert!(h.to_svg().contains(&color::sequential(1.0).hex()));
    }

    #[test]
    fn labels_are_escaped() {
        let svg =
            Heatmap::new("<t>", vec![vec![1.0]]).row_labels(vec!["a&b".into()]).col_labels(vec!["<c>".into()]).to_svg();
        assert!(svg.contains("&lt;t&gt;") && svg.contains("a&amp;b") && svg.contains("&lt;c&gt;"));
        assert!(!svg.contains("<c>"));
    }
}

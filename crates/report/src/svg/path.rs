//! An agent's path drawn over a picture of a grid (an environment's own render).
//!
//! The picture is nested unchanged inside a new `<svg>`, so the overlay never has to parse or edit
//! it; where cells lie comes from a [`CellGeometry`] the picture's author states. The view is
//! cropped to the grid: a standalone render's own caption line would be clipped at the grid's
//! width anyway, and the report's figure caption says more.

use super::n;
use crate::escape;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Where a grid picture draws its cells: cell `(row, col)` is the square of side `cell` pixels with
/// top-left corner `(x0 + col·cell, y0 + row·cell)`, for `rows × cols` cells.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CellGeometry {
    pub x0: f64,
    pub y0: f64,
    pub cell: f64,
    pub rows: usize,
    pub cols: usize,
}

impl CellGeometry {
    /// Pixel centre of cell `(row, col)`.
    pub fn centre(&self, row: usize, col: usize) -> (f64, f64) {
        (self.x0 + (col as f64 + 0.5) * self.cell, self.y0 + (row as f64 + 0.5) * self.cell)
    }

    fn is_valid(&self) -> bool {
        [self.x0, self.y0, self.cell].iter().all(|v| v.is_finite()) && self.cell > 0.0 && self.rows > 0 && self.cols > 0
    }
}

/// `picture` (a standalone `<svg>` laid out as `geometry`) with `path`, a list of `(row, col)`
/// cells, drawn on top: a line through the cell centres in `color`, a hollow circle on the first
/// cell and a filled square on the last. The result is a standalone `<svg>` showing the grid
/// `scale` times its size. An empty path leaves the grid bare; an unusable geometry (no cells, a
/// non-finite or non-positive cell size) returns the picture unchanged.
pub fn overlay_path(
    picture: &str,
    geometry: &CellGeometry,
    path: &[(usize, usize)],
    color: &str,
    scale: f64,
) -> String {
    let g = geometry;
    if !g.is_valid() {
        return picture.to_string();
    }
    let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
    let color = escape::attr(color);
    let mut s = String::with_capacity(picture.len() + 256 + 12 * path.len());
    let (w, h) = (g.cols as f64 * g.cell, g.rows as f64 * g.cell);
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="{} {} {} {}" role="img" aria-label="agent path">"#,
        n(w * scale),
        n(h * scale),
        n(g.x0),
        n(g.y0),
        n(w),
        n(h)
    );
    // Nested pictures inherit the namespace; dropping it keeps reports free of URLs.
    s.push_str(&picture.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1));
    if let (Some(&first), Some(&last)) = (path.first(), path.last()) {
        let mut points: Vec<(f64, f64)> = path.iter().map(|&(r, c)| g.centre(r, c)).collect();
        points.dedup();
        if points.len() > 1 {
            let pts: Vec<String> = points.iter().map(|(x, y)| format!("{},{}", n(*x), n(*y))).collect();
            let pts = pts.join(" ");
            // A white halo under the coloured line keeps it visible on any cell colour.
            let _ = write!(
                s,
                r##"<g fill="none" stroke-linecap="round" stroke-linejoin="round"><polyline points="{pts}" stroke="#ffffff" stroke-opacity="0.8" stroke-width="{}"/><polyline points="{pts}" stroke="{color}" stroke-opacity="0.9" stroke-width="{}"/></g>"##,
                n(g.cell * 0.3),
                n(g.cell * 0.16),
            );
        }
        let (sx, sy) = g.centre(first.0, first.1);
        let _ = write!(
            s,
            r##"<circle cx="{}" cy="{}" r="{}" fill="#ffffff" stroke="{color}" stroke-width="{}"/>"##,
            n(sx),
            n(sy),
            n(g.cell * 0.28),
            n(g.cell * 0.12)
        );
        let (ex, ey) = g.centre(last.0, last.1);
        let side = g.cell * 0.44;
        let _ = write!(
            s,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="{color}" stroke="#ffffff" stroke-width="{}"/>"##,
            n(ex - side / 2.0),
            n(ey - side / 2.0),
            n(side),
            n(side),
            n(g.cell * 0.06)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const PICTURE: &str =
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="60" height="58"><rect width="60" height="58"/></svg>"#;

    fn geometry() -> CellGeometry {
        CellGeometry { x0: 0.0, y0: 0.0, cell: 20.0, rows: 2, cols: 3 }
    }

    #[test]
    fn points_land_on_cell_centres() {
        let g = CellGeometry { x0: 5.0, y0: 7.0, ..geometry() };
        assert_eq!(g.centre(0, 0), (15.0, 17.0));
        assert_eq!(g.centre(1, 2), (55.0, 37.0));
        // Consecutive repeats (the agent bumped a wall) collapse into one vertex.
        let svg = overlay_path(PICTURE, &g, &[(0, 0), (0, 0), (0, 1), (1, 1), (1, 2)], "#d62728", 2.0);
        assert!(svg.contains(r#"points="15,17 35,17 35,37 55,37""#), "{svg}");
        assert!(svg.contains(r#"<circle cx="15" cy="17""#), "start marker: {svg}");
        assert!(svg.contains(r#"<rect x="50.6" y="32.6" width="8.8""#), "end marker: {svg}");
        assert!(svg.contains(r##"stroke="#d62728""##));
        // The view is the 3 × 2 grid, enlarged twice.
        assert!(
            svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80" viewBox="5 7 60 40""#)
        );
        // The picture is nested whole, without a second namespace URL.
        assert!(svg.contains(r#"<svg width="60" height="58"><rect width="60" height="58"/></svg>"#));
        assert_eq!(svg.matches("http://").count(), 1);
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn empty_path_single_cell_and_bad_input_never_panic() {
        let bare = overlay_path(PICTURE, &geometry(), &[], "red", 1.0);
        assert!(!bare.contains("<polyline") && !bare.contains("<circle") && bare.contains("<rect width=\"60\""));
        let one = overlay_path(PICTURE, &geometry(), &[(1, 2), (1, 2)], "red", 1.0);
        assert!(!one.contains("<polyline") && one.contains(r#"<circle cx="50" cy="30""#));
        for bad in [CellGeometry { cell: f64::NAN, ..geometry() }, CellGeometry { rows: 0, ..geometry() }] {
            let svg = overlay_path(PICTURE, &bad, &[(0, 0), (0, 1)], "\"><script>", f64::INFINITY);
            assert_eq!(svg, PICTURE);
        }
    }
}

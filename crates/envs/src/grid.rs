//! Shared grid machinery: positions, wall maps, BFS distances, one-hot observation writing (full or
//! egocentric view), and ASCII/SVG rendering helpers.
//!
//! Coordinates: `x` grows to the right, `y` grows downwards (row 0 is the top), like the renders.
//! Observations are channel-major `[C, H, W]`: value at `(c, y, x)` is `out[(c * H + y) * W + x]`.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt::Write;

/// The four moves shared by the gridworlds, in action order.
pub const MOVES: &[&str] = &["up", "right", "down", "left"];
/// `(dx, dy)` of [`MOVES`].
pub const DIRS: [(i32, i32); 4] = [(0, -1), (1, 0), (0, 1), (-1, 0)];

/// A cell position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    pub x: i32,
    pub y: i32,
}

impl Pos {
    pub const fn new(x: i32, y: i32) -> Self {
        Self { x, y }
    }
    pub fn offset(self, (dx, dy): (i32, i32)) -> Self {
        Self { x: self.x + dx, y: self.y + dy }
    }
    pub fn manhattan(self, o: Pos) -> i32 {
        (self.x - o.x).abs() + (self.y - o.y).abs()
    }
    pub fn euclid(self, o: Pos) -> f64 {
        f64::from((self.x - o.x).pow(2) + (self.y - o.y).pow(2)).sqrt()
    }
}

/// A rectangular map of wall cells. Outside the map counts as wall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walls {
    pub w: usize,
    pub h: usize,
    cells: Vec<bool>,
}

impl Walls {
    pub fn new(w: usize, h: usize, wall: bool) -> Self {
        Self { w, h, cells: vec![wall; w * h] }
    }
    pub fn in_bounds(&self, p: Pos) -> bool {
        p.x >= 0 && p.y >= 0 && (p.x as usize) < self.w && (p.y as usize) < self.h
    }
    pub fn idx(&self, p: Pos) -> usize {
        p.y as usize * self.w + p.x as usize
    }
    /// Wall or outside.
    pub fn is_wall(&self, p: Pos) -> bool {
        !self.in_bounds(p) || self.cells[self.idx(p)]
    }
    pub fn set(&mut self, p: Pos, wall: bool) {
        let i = self.idx(p);
        self.cells[i] = wall;
    }
    /// All cells that are not walls, row-major.
    pub fn free_cells(&self) -> Vec<Pos> {
        (0..self.h as i32)
            .flat_map(|y| (0..self.w as i32).map(move |x| Pos::new(x, y)))
            .filter(|&p| !self.is_wall(p))
            .collect()
    }
    /// 4-connected BFS distances from `from` (`u32::MAX` where unreachable or wall).
    pub fn bfs(&self, from: Pos) -> Vec<u32> {
        let mut dist = vec![u32::MAX; self.w * self.h];
        if self.is_wall(from) {
            return dist;
        }
        let mut q = VecDeque::new();
        dist[self.idx(from)] = 0;
        q.push_back(from);
        while let Some(p) = q.pop_front() {
            let d = dist[self.idx(p)];
            for dir in DIRS {
                let n = p.offset(dir);
                if !self.is_wall(n) && dist[self.idx(n)] == u32::MAX {
                    dist[self.idx(n)] = d + 1;
                    q.push_back(n);
                }
            }
        }
        dist
    }
    /// A shortest path `from ..= to` (inclusive), or `None` when unreachable. Ties are broken by
    /// [`DIRS`] order, so the path is deterministic.
    pub fn shortest_path(&self, from: Pos, to: Pos) -> Option<Vec<Pos>> {
        if self.is_wall(to) {
            return None;
        }
        // BFS from the target, then walk downhill from `from`.
        let dist = self.bfs(to);
        let mut d = dist[self.idx(from)];
        if self.is_wall(from) || d == u32::MAX {
            return None;
        }
        let mut path = vec![from];
        let mut p = from;
        while d > 0 {
            p = DIRS
                .iter()
                .map(|&dir| p.offset(dir))
                .find(|&n| !self.is_wall(n) && dist[self.idx(n)] == d - 1)
                .expect("BFS distances decrease along a shortest path");
            d -= 1;
            path.push(p);
        }
        Some(path)
    }
    /// Whether every free cell is reachable from every other.
    pub fn connected(&self) -> bool {
        let free = self.free_cells();
        let Some(&first) = free.first() else {
            return true;
        };
        let dist = self.bfs(first);
        free.iter().all(|&p| dist[self.idx(p)] != u32::MAX)
    }
}

/// What the agent sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// The whole grid, `[C, H, W]`.
    #[default]
    Full,
    /// A `(2r+1) × (2r+1)` window centred on the agent (`r = view_radius`); cells outside the grid
    /// read as wall.
    Egocentric,
}

/// Observation geometry for a grid of `w × h` cells with `c` channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObsLayout {
    pub view: View,
    pub c: usize,
    pub w: usize,
    pub h: usize,
    pub radius: usize,
    /// Channel set to 1 for window cells outside the grid (egocentric view).
    pub wall_channel: usize,
}

impl ObsLayout {
    /// `[C, H, W]` of the written observation.
    pub fn shape(&self) -> [usize; 3] {
        match self.view {
            View::Full => [self.c, self.h, self.w],
            View::Egocentric => [self.c, 2 * self.radius + 1, 2 * self.radius + 1],
        }
    }
    /// Starts an observation: fills `out` from `template` (the static channels over the full grid,
    /// `[C, h, w]`), translated to the view around `center`.
    pub fn begin<'a>(&self, template: &[f32], center: Pos, out: &'a mut [f32]) -> ObsWriter<'a> {
        let [c, oh, ow] = self.shape();
        debug_assert_eq!(out.len(), c * oh * ow);
        debug_assert_eq!(template.len(), self.c * self.h * self.w);
        let origin = match self.view {
            View::Full => {
                out.copy_from_slice(template);
                Pos::new(0, 0)
            }
            View::Egocentric => {
                let r = self.radius as i32;
                let origin = Pos::new(center.x - r, center.y - r);
                for ch in 0..c {
                    for wy in 0..oh {
                        let gy = origin.y + wy as i32;
                        let row = &mut out[(ch * oh + wy) * ow..(ch * oh + wy + 1) * ow];
                        for (wx, o) in row.iter_mut().enumerate() {
                            let gx = origin.x + wx as i32;
                            *o = if gx < 0 || gy < 0 || gx as usize >= self.w || gy as usize >= self.h {
                                if ch == self.wall_channel { 1.0 } else { 0.0 }
                            } else {
                                template[(ch * self.h + gy as usize) * self.w + gx as usize]
                            };
                        }
                    }
                }
                origin
            }
        };
        ObsWriter { out, origin, c, h: oh, w: ow }
    }
}

/// Sets dynamic cells of an observation started by [`ObsLayout::begin`].
pub struct ObsWriter<'a> {
    out: &'a mut [f32],
    origin: Pos,
    c: usize,
    h: usize,
    w: usize,
}

impl ObsWriter<'_> {
    /// Sets channel `ch` at grid cell `p` to `v` (ignored when `p` is outside the view).
    #[inline]
    pub fn set(&mut self, ch: usize, p: Pos, v: f32) {
        let (x, y) = (p.x - self.origin.x, p.y - self.origin.y);
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h && ch < self.c {
            self.out[(ch * self.h + y as usize) * self.w + x as usize] = v;
        }
    }
    /// Sets channel `ch` to 1 on the first `count` cells of the *view* (row-major from its top-left):
    /// how counters such as the keys held are shown without breaking one-hot-ness.
    pub fn counter(&mut self, ch: usize, count: usize) {
        let plane = self.h * self.w;
        if ch < self.c {
            for v in &mut self.out[ch * plane..ch * plane + count.min(plane)] {
                *v = 1.0;
            }
        }
    }
}

/// Builds a static-channel template `[c, h, w]` from per-cell channel lists.
pub fn template(c: usize, w: usize, h: usize, mut cell: impl FnMut(Pos) -> Option<usize>) -> Vec<f32> {
    let mut t = vec![0.0; c * h * w];
    for y in 0..h {
        for x in 0..w {
            if let Some(ch) = cell(Pos::new(x as i32, y as i32)) {
                t[(ch * h + y) * w + x] = 1.0;
            }
        }
    }
    t
}

/// ASCII picture: one char per cell, rows joined by newlines (with a trailing newline).
pub fn ascii(w: usize, h: usize, mut cell: impl FnMut(Pos) -> char) -> String {
    let mut s = String::with_capacity((w + 1) * h);
    for y in 0..h {
        for x in 0..w {
            s.push(cell(Pos::new(x as i32, y as i32)));
        }
        s.push('\n');
    }
    s
}

/// One cell of an SVG picture: fill colour and an optional glyph drawn on top.
pub struct SvgCell {
    pub fill: &'static str,
    /// `(text, colour)`.
    pub glyph: Option<(&'static str, &'static str)>,
}

/// A standalone `<svg>` of `w × h` cells of `px` pixels, with a caption line below.
pub fn svg(w: usize, h: usize, px: usize, caption: &str, mut cell: impl FnMut(Pos) -> SvgCell) -> String {
    let (width, height) = (w * px, h * px + 18);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">"#
    );
    let _ = write!(s, r##"<rect width="{width}" height="{height}" fill="#ffffff"/>"##);
    for y in 0..h {
        for x in 0..w {
            let c = cell(Pos::new(x as i32, y as i32));
            let (px0, py0) = (x * px, y * px);
            let _ = write!(
                s,
                r##"<rect x="{px0}" y="{py0}" width="{px}" height="{px}" fill="{}" stroke="#d0d0d0" stroke-width="0.5"/>"##,
                c.fill
            );
            if let Some((t, col)) = c.glyph {
                let (cx, cy) = (px0 + px / 2, py0 + px / 2);
                let fs = px * 7 / 10;
                let _ = write!(
                    s,
                    r#"<text x="{cx}" y="{cy}" font-size="{fs}" text-anchor="middle" dominant-baseline="central" fill="{col}">{t}</text>"#
                );
            }
        }
    }
    let _ = write!(
        s,
        r##"<text x="4" y="{}" font-size="12" fill="#333333">{}</text></svg>"##,
        h * px + 13,
        escape(caption)
    );
    s
}

/// The layout [`svg`] uses for `w × h` cells of `px` pixels: cells from the top-left corner.
pub fn svg_geometry(w: usize, h: usize, px: usize) -> crate::api::SvgGeometry {
    crate::api::SvgGeometry { x0: 0.0, y0: 0.0, cell: px as f64, rows: h, cols: w }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Bounded rejection sampling: draws up to `tries` candidates and returns the first accepted one.
/// Every retry loop in level generation goes through a bound like this, so bad parameters give an
/// error or a fallback instead of a hang.
pub fn sample_bounded<T>(tries: usize, mut draw: impl FnMut() -> Option<T>) -> Option<T> {
    (0..tries).find_map(|_| draw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfs_and_paths_respect_walls() {
        let mut w = Walls::new(3, 3, false);
        w.set(Pos::new(1, 0), true);
        w.set(Pos::new(1, 1), true);
        let d = w.bfs(Pos::new(0, 0));
        assert_eq!(d[w.idx(Pos::new(2, 0))], 6);
        let p = w.shortest_path(Pos::new(0, 0), Pos::new(2, 0)).unwrap();
        assert_eq!(p.len(), 7);
        assert!(p.iter().all(|&q| !w.is_wall(q)));
        w.set(Pos::new(1, 2), true);
        assert!(!w.connected());
        assert!(w.shortest_path(Pos::new(0, 0), Pos::new(2, 0)).is_none());
    }

    #[test]
    fn egocentric_view_translates_and_pads_with_wall() {
        let layout = ObsLayout { view: View::Egocentric, c: 2, w: 3, h: 2, radius: 1, wall_channel: 0 };
        let t = template(2, 3, 2, |p| (p == Pos::new(2, 1)).then_some(1));
        let mut out = vec![9.0; 2 * 9];
        let mut o = layout.begin(&t, Pos::new(2, 1), &mut out);
        o.set(1, Pos::new(1, 0), 1.0);
        // Window origin (1,0): cells x=3 and y=2 are outside → wall channel.
        assert_eq!(&out[..9], &[0., 0., 1., 0., 0., 1., 1., 1., 1.]);
        assert_eq!(&out[9..], &[1., 0., 0., 0., 1., 0., 0., 0., 0.]);
    }
}

//! A rasterizer for the SVG subset mesalab's env renders use, so Gymnasium's `rgb_array` render
//! mode shows the same picture as `mesalab render -o x.svg`, without an SVG library.
//!
//! Drawn: the root `<svg width height>` and, in document order, `<rect>` (x, y, width, height,
//! fill, fill-opacity / opacity), `<circle>` (cx, cy, r, fill) and `<line>` (x1, y1, x2, y2,
//! stroke, stroke-width, round caps). Colours are `#rgb`, `#rrggbb` or a few names. Not drawn:
//! `<text>` (glyph labels; the cell colours carry the same information), strokes of rects, and
//! any other element, which is skipped. Pixel `(row, col)` is coloured by what covers its centre.

/// An RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
}

impl Image {
    fn blend(&mut self, row: usize, col: usize, rgb: [u8; 3], alpha: f64) {
        let p = &mut self.pixels[(row * self.width + col) * 3..][..3];
        for (dst, src) in p.iter_mut().zip(rgb) {
            *dst = (f64::from(*dst) * (1.0 - alpha) + f64::from(src) * alpha).round() as u8;
        }
    }
}

/// Largest picture drawn (per side), so a malformed size cannot allocate without bound.
const MAX_SIDE: usize = 4096;

/// Rasterizes `svg` at `scale` pixels per SVG unit. Errors when the root has no usable size.
pub fn rasterize(svg: &str, scale: f64) -> Result<Image, String> {
    let mut tags = Tags { rest: svg };
    let root = tags.next().filter(|t| t.name == "svg").ok_or("the render does not start with an <svg> element")?;
    let size = |key: &str| {
        root.num(key)
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| (v * scale).round() as usize)
            .filter(|&v| (1..=MAX_SIDE).contains(&v))
            .ok_or_else(|| format!("the <svg> element has no usable `{key}` (1..={MAX_SIDE} pixels at scale {scale})"))
    };
    let (width, height) = (size("width")?, size("height")?);
    let mut img = Image { height, width, pixels: vec![255; width * height * 3] };
    for tag in tags {
        match tag.name {
            "rect" => {
                let Some(rgb) = tag.colour("fill") else { continue };
                let (x, y) = (tag.num("x").unwrap_or(0.0) * scale, tag.num("y").unwrap_or(0.0) * scale);
                let (w, h) = (tag.num("width").unwrap_or(0.0) * scale, tag.num("height").unwrap_or(0.0) * scale);
                let alpha = tag.alpha();
                for (row, col) in covered(&img, x, y, x + w, y + h) {
                    img.blend(row, col, rgb, alpha);
                }
            }
            "circle" => {
                let Some(rgb) = tag.colour("fill") else { continue };
                let (cx, cy) = (tag.num("cx").unwrap_or(0.0) * scale, tag.num("cy").unwrap_or(0.0) * scale);
                let r = tag.num("r").unwrap_or(0.0) * scale;
                let alpha = tag.alpha();
                for (row, col) in covered(&img, cx - r, cy - r, cx + r, cy + r) {
                    let (px, py) = (col as f64 + 0.5 - cx, row as f64 + 0.5 - cy);
                    if px * px + py * py <= r * r {
                        img.blend(row, col, rgb, alpha);
                    }
                }
            }
            "line" => {
                let Some(rgb) = tag.colour("stroke") else { continue };
                let p = |k: &str| tag.num(k).unwrap_or(0.0) * scale;
                let (x1, y1, x2, y2) = (p("x1"), p("y1"), p("x2"), p("y2"));
                let half = (tag.num("stroke-width").unwrap_or(1.0) * scale / 2.0).max(0.5);
                let alpha = tag.alpha();
                let bbox = (x1.min(x2) - half, y1.min(y2) - half, x1.max(x2) + half, y1.max(y2) + half);
                for (row, col) in covered(&img, bbox.0, bbox.1, bbox.2, bbox.3) {
                    if distance_to_segment(col as f64 + 0.5, row as f64 + 0.5, x1, y1, x2, y2) <= half {
                        img.blend(row, col, rgb, alpha);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(img)
}

/// Pixels whose centres lie in `[x0, x1) × [y0, y1)`, clipped to the image.
fn covered(img: &Image, x0: f64, y0: f64, x1: f64, y1: f64) -> impl Iterator<Item = (usize, usize)> + use<> {
    let clip = |v: f64, max: usize| (v - 0.5).ceil().clamp(0.0, max as f64) as usize;
    let (c0, c1) = (clip(x0, img.width), clip(x1, img.width));
    let (r0, r1) = (clip(y0, img.height), clip(y1, img.height));
    (r0..r1).flat_map(move |r| (c0..c1).map(move |c| (r, c)))
}

fn distance_to_segment(px: f64, py: f64, x1: f64, y1: f64, x2: f64, y2: f64) -> f64 {
    let (dx, dy) = (x2 - x1, y2 - y1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 { 0.0 } else { (((px - x1) * dx + (py - y1) * dy) / len2).clamp(0.0, 1.0) };
    ((px - x1 - t * dx).powi(2) + (py - y1 - t * dy).powi(2)).sqrt()
}

/// One start tag: its name and raw attribute text.
struct Tag<'a> {
    name: &'a str,
    attrs: &'a str,
}

impl<'a> Tag<'a> {
    fn attr(&self, key: &str) -> Option<&'a str> {
        let mut rest = self.attrs;
        while let Some(eq) = rest.find("=\"") {
            let name = rest[..eq].rsplit(|c: char| c.is_whitespace()).next().unwrap_or("");
            let value_start = eq + 2;
            let value_len = rest[value_start..].find('"')?;
            if name == key {
                return Some(&rest[value_start..value_start + value_len]);
            }
            rest = &rest[value_start + value_len + 1..];
        }
        None
    }
    fn num(&self, key: &str) -> Option<f64> {
        self.attr(key)?.trim().trim_end_matches("px").parse().ok()
    }
    fn colour(&self, key: &str) -> Option<[u8; 3]> {
        parse_colour(self.attr(key)?)
    }
    fn alpha(&self) -> f64 {
        let o = |k: &str| self.num(k).unwrap_or(1.0).clamp(0.0, 1.0);
        o("opacity") * o("fill-opacity")
    }
}

/// Start tags in document order (closing tags, comments and text are skipped).
struct Tags<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;
    fn next(&mut self) -> Option<Tag<'a>> {
        loop {
            let open = self.rest.find('<')?;
            let close = open + self.rest[open..].find('>')?;
            let inner = &self.rest[open + 1..close];
            self.rest = &self.rest[close + 1..];
            if inner.starts_with(['/', '!', '?']) {
                continue;
            }
            let inner = inner.trim_end_matches('/');
            let name_end = inner.find(|c: char| c.is_whitespace()).unwrap_or(inner.len());
            return Some(Tag { name: &inner[..name_end], attrs: &inner[name_end..] });
        }
    }
}

fn parse_colour(s: &str) -> Option<[u8; 3]> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        let digit = |i: usize, len: usize| u8::from_str_radix(hex.get(i..i + len)?, 16).ok();
        return match hex.len() {
            6 => Some([digit(0, 2)?, digit(2, 2)?, digit(4, 2)?]),
            3 => Some([digit(0, 1)? * 17, digit(1, 1)? * 17, digit(2, 1)? * 17]),
            _ => None,
        };
    }
    match s {
        "black" => Some([0, 0, 0]),
        "white" => Some([255, 255, 255]),
        "red" => Some([255, 0, 0]),
        "green" => Some([0, 128, 0]),
        "blue" => Some([0, 0, 255]),
        "yellow" => Some([255, 255, 0]),
        "gray" | "grey" => Some([128, 128, 128]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(img: &Image, row: usize, col: usize) -> [u8; 3] {
        img.pixels[(row * img.width + col) * 3..][..3].try_into().unwrap()
    }

    #[test]
    fn draws_rects_circles_lines_in_order_and_skips_text() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#ffffff"/><rect x="0" y="0" width="20" height="20" fill="#2d3436" stroke="#d0d0d0"/><text x="5" y="5" fill="#ff0000">@</text><rect x="20" y="0" width="20" height="20" fill="black" fill-opacity="0.5"/><circle cx="10" cy="10" r="4" fill="#0f0"/><line x1="20" y1="19" x2="40" y2="19" stroke="#0000ff" stroke-width="2"/></svg>"##;
        let img = rasterize(svg, 1.0).unwrap();
        assert_eq!((img.height, img.width), (20, 40));
        assert_eq!(px(&img, 0, 0), [0x2d, 0x34, 0x36]);
        assert_eq!(px(&img, 10, 10), [0, 255, 0], "circle over the rect");
        assert_eq!(px(&img, 2, 25), [128, 128, 128], "half-transparent black over white");
        assert_eq!(px(&img, 19, 30), [0, 0, 255], "line");
        assert_eq!(px(&img, 5, 5), [0x2d, 0x34, 0x36], "text is not drawn");
        let big = rasterize(svg, 2.0).unwrap();
        assert_eq!((big.height, big.width), (40, 80));
        assert_eq!(px(&big, 20, 20), [0, 255, 0]);
    }

    #[test]
    fn refuses_a_render_without_a_size() {
        assert!(rasterize("<g/>", 1.0).unwrap_err().contains("<svg>"));
        assert!(rasterize(r#"<svg width="0" height="3">"#, 1.0).unwrap_err().contains("width"));
        assert!(rasterize(r#"<svg width="1e9" height="3">"#, 1.0).unwrap_err().contains("width"));
    }

    #[test]
    fn every_env_render_rasterizes_to_its_svg_size_with_its_colours() {
        for entry in mesalab_envs::registry::ENTRIES {
            let env = crate::batch::make_env(entry.name, "train", &[]).unwrap();
            let mut b = crate::batch::Batch::new(env, &[0], crate::batch::Autoreset::Disabled);
            let mut obs = vec![0.0; b.obs_len()];
            b.reset(Some(&[Some(5)]), None, &mut obs).unwrap();
            let svg = b.render_svg(0).unwrap();
            let img = rasterize(&svg, 1.0).unwrap();
            let root = Tags { rest: &svg }.next().unwrap();
            assert_eq!(img.width as f64, root.num("width").unwrap().round(), "{}", entry.name);
            // More than the background colour: the picture shows the level.
            let mut colours: Vec<&[u8]> = img.pixels.chunks(3).collect();
            colours.sort_unstable();
            colours.dedup();
            assert!(colours.len() >= 3, "{}: only {} colours", entry.name, colours.len());
        }
    }
}

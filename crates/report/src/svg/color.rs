//! Colours: the series palette and the heatmap colour maps.

/// Series colours (Okabe–Ito, colour-blind safe; yellow replaced by a dark grey for contrast on
/// white). Series without an explicit colour take them in order.
pub const PALETTE: [&str; 8] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7F3C8D", "#4D4D4D"];

/// The `i`-th palette colour, cycling.
pub fn palette(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Sequential map for non-negative quantities such as attention weights: near-white yellow (low)
/// through green and blue to deep navy (high), similar to ColorBrewer YlGnBu.
const SEQUENTIAL: [u32; 9] = [0xffffd9, 0xedf8b1, 0xc7e9b4, 0x7fcdbb, 0x41b6c4, 0x1d91c0, 0x225ea8, 0x253494, 0x081d58];

/// Diverging map, blue (negative) – white (0) – red (positive), similar to ColorBrewer RdBu.
const DIVERGING: [u32; 11] =
    [0x053061, 0x2166ac, 0x4393c3, 0x92c5de, 0xd1e5f0, 0xf7f7f7, 0xfddbc7, 0xf4a582, 0xd6604d, 0xb2182b, 0x67001f];

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    fn from_hex(h: u32) -> Self {
        Rgb((h >> 16) as u8, (h >> 8) as u8, h as u8)
    }

    /// Parses `#rrggbb` or `#rgb`; `None` for anything else (named colours, `rgb()`, …).
    pub fn parse_hex(s: &str) -> Option<Rgb> {
        let h = s.trim().strip_prefix('#')?;
        if !h.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        match h.len() {
            6 => u32::from_str_radix(h, 16).ok().map(Rgb::from_hex),
            3 => {
                let v = u32::from_str_radix(h, 16).ok()?;
                let (r, g, b) = ((v >> 8) & 0xf, (v >> 4) & 0xf, v & 0xf);
                Some(Rgb((r * 17) as u8, (g * 17) as u8, (b * 17) as u8))
            }
            _ => None,
        }
    }

    /// `#rrggbb`.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// WCAG relative luminance in [0, 1].
    pub fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = c as f64 / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }

    /// Text colour (near-black or white) with the better contrast on this background.
    pub fn text_on(self) -> &'static str {
        if self.luminance() > 0.30 { "#111827" } else { "#ffffff" }
    }
}

/// Colour at `t` in [0, 1] (clamped) on the sequential map.
pub fn sequential(t: f64) -> Rgb {
    interpolate(&SEQUENTIAL, t)
}

/// Colour at `t` in [0, 1] (clamped; 0.5 is white) on the diverging map.
pub fn diverging(t: f64) -> Rgb {
    interpolate(&DIVERGING, t)
}

fn interpolate(stops: &[u32], t: f64) -> Rgb {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let (a, b) = (Rgb::from_hex(stops[i]), Rgb::from_hex(stops[i + 1]));
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_hit_their_ends_and_centre() {
        assert_eq!(diverging(0.5).hex(), "#f7f7f7");
        assert_eq!(diverging(0.0).hex(), "#053061");
        assert_eq!(diverging(1.0).hex(), "#67001f");
        assert_eq!(sequential(0.0).hex(), "#ffffd9");
        assert_eq!(sequential(2.0).hex(), "#081d58");
        assert_eq!(sequential(f64::NAN).hex(), "#ffffd9");
    }

    #[test]
    fn text_contrast() {
        assert_eq!(sequential(0.0).text_on(), "#111827");
        assert_eq!(sequential(1.0).text_on(), "#ffffff");
        assert_eq!(Rgb::parse_hex("#0072B2"), Some(Rgb(0, 0x72, 0xb2)));
        assert_eq!(Rgb::parse_hex("#fff"), Some(Rgb(255, 255, 255)));
        assert_eq!(Rgb::parse_hex("red"), None);
    }
}

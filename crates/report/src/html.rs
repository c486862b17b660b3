//! HTML pages: a [`Page`] of [`Section`]s with paragraphs, figures, tables, key–value lists and
//! collapsible blocks, rendered as one self-contained HTML5 document with inline CSS; and
//! [`index_page`], a landing page that links several reports.
//!
//! Text given to any method is escaped. The only ways to put markup in are [`Section::raw_html`]
//! (sanitized to a small allow-list of inline tags) and the SVG passed to figures, which must come
//! from trusted code such as this crate's charts.

use crate::{escape, fmt};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt::Write as _;

/// Colouring of a table cell or status: green, red, amber, or plain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Highlight {
    #[default]
    None,
    Good,
    Bad,
    Neutral,
}

impl Highlight {
    fn class(self) -> Option<&'static str> {
        match self {
            Highlight::None => None,
            Highlight::Good => Some("good"),
            Highlight::Bad => Some("bad"),
            Highlight::Neutral => Some("neutral"),
        }
    }
}

/// A table cell: text or a formatted number, optionally highlighted (for verdicts).
///
/// ```
/// use mesalab_report::html::Cell;
/// let c = Cell::num(0.206612);
/// assert_eq!(c.text, "0.2066");
/// assert!(c.numeric);
/// let verdict = Cell::text("objective failure").bad();
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cell {
    /// The text shown (escaped when rendered).
    pub text: String,
    /// Right-aligned in a monospace, tabular-figure font.
    pub numeric: bool,
    /// Monospace without right alignment (identifiers, hashes, config keys).
    pub code: bool,
    pub highlight: Highlight,
    /// Tooltip, e.g. the unrounded value.
    pub title: Option<String>,
    /// A relative link the text points to (e.g. another run's `report.html`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
}

impl Cell {
    /// Plain text.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell { text: s.into(), ..Default::default() }
    }
    /// Monospace text (identifiers, hashes).
    pub fn code(s: impl Into<String>) -> Cell {
        Cell { text: s.into(), code: true, ..Default::default() }
    }
    /// An already formatted number (right-aligned).
    pub fn numeric(s: impl Into<String>) -> Cell {
        Cell { text: s.into(), numeric: true, ..Default::default() }
    }
    /// A number formatted with [`fmt::number`]; the full value is the tooltip.
    pub fn num(x: f64) -> Cell {
        let mut c = Cell::numeric(fmt::number(x));
        if x.is_finite() && c.text != format!("{x}") {
            c.title = Some(format!("{x}"));
        }
        c
    }
    /// A number with a fixed count of decimals.
    pub fn fixed(x: f64, decimals: usize) -> Cell {
        Cell::numeric(fmt::fixed(x, decimals))
    }
    /// An integer with thousands separators (`52,874`).
    pub fn int(i: i64) -> Cell {
        Cell::numeric(fmt::integer(i))
    }
    /// A fraction shown as a percentage.
    pub fn percent(fraction: f64, decimals: usize) -> Cell {
        Cell::numeric(fmt::percent(fraction, decimals))
    }
    /// `mean ± spread` via [`fmt::mean_pm`].
    pub fn mean_pm(mean: f64, spread: f64) -> Cell {
        Cell::numeric(fmt::mean_pm(mean, spread))
    }
    /// `mean [lo, hi]` via [`fmt::mean_range`].
    pub fn mean_range(mean: f64, lo: f64, hi: f64) -> Cell {
        Cell::numeric(fmt::mean_range(mean, lo, hi))
    }
    pub fn highlight(mut self, h: Highlight) -> Cell {
        self.highlight = h;
        self
    }
    pub fn good(self) -> Cell {
        self.highlight(Highlight::Good)
    }
    pub fn bad(self) -> Cell {
        self.highlight(Highlight::Bad)
    }
    pub fn neutral(self) -> Cell {
        self.highlight(Highlight::Neutral)
    }
    /// Makes the text a link to `href` (a relative path; shown escaped, so never markup).
    pub fn link(mut self, href: impl Into<String>) -> Cell {
        self.href = Some(href.into());
        self
    }
    pub fn tooltip(mut self, t: impl Into<String>) -> Cell {
        self.title = Some(t.into());
        self
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::text(s)
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::text(s)
    }
}
impl From<f64> for Cell {
    fn from(x: f64) -> Cell {
        Cell::num(x)
    }
}
impl From<i64> for Cell {
    fn from(i: i64) -> Cell {
        Cell::int(i)
    }
}
impl From<usize> for Cell {
    fn from(i: usize) -> Cell {
        i64::try_from(i).map_or_else(|_| Cell::numeric(i.to_string()), Cell::int)
    }
}

/// One block of section content (already rendered where it holds markup).
#[derive(Debug, Clone, PartialEq)]
enum Block {
    /// Sanitized inline HTML for a `<p>`.
    Paragraph(String),
    Heading(String),
    Callout(String, Highlight),
    /// `(svg, caption)`; more than one renders side by side.
    Figures(Vec<(String, String)>),
    Table {
        caption: Option<String>,
        headers: Vec<String>,
        rows: Vec<Vec<Cell>>,
    },
    KeyValues(Vec<(String, String)>),
    Details {
        summary: String,
        text: String,
        open: bool,
    },
}

/// A titled part of a [`Page`]. Methods return `&mut Self` so calls chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    blocks: Vec<Block>,
}

impl Section {
    /// A paragraph of plain text (escaped).
    pub fn paragraph(&mut self, text: impl AsRef<str>) -> &mut Self {
        self.blocks.push(Block::Paragraph(escape::text(text.as_ref())));
        self
    }
    /// A paragraph of inline HTML, sanitized to [`escape::ALLOWED_INLINE_TAGS`] (`<code>`, `<em>`,
    /// `<strong>`, `<sub>`, …, without attributes); anything else is shown escaped.
    pub fn raw_html(&mut self, html: impl AsRef<str>) -> &mut Self {
        self.blocks.push(Block::Paragraph(escape::inline_html(html.as_ref())));
        self
    }
    /// A sub-heading (`<h3>`).
    pub fn heading(&mut self, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Heading(text.into()));
        self
    }
    /// A highlighted box for a verdict or a warning (plain text).
    pub fn callout(&mut self, text: impl Into<String>, tone: Highlight) -> &mut Self {
        self.blocks.push(Block::Callout(text.into(), tone));
        self
    }
    /// A numbered figure: trusted SVG markup (e.g. a chart's `to_svg()`) and a plain-text caption.
    pub fn figure(&mut self, svg: impl Into<String>, caption: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Figures(vec![(svg.into(), caption.into())]));
        self
    }
    /// Figures side by side (wrapping on narrow screens), each numbered with its own caption.
    pub fn figure_row(&mut self, figures: Vec<(String, String)>) -> &mut Self {
        if !figures.is_empty() {
            self.blocks.push(Block::Figures(figures));
        }
        self
    }
    /// A table. Columns whose cells are all numeric are right-aligned, header included.
    pub fn table<H: Into<String>>(&mut self, headers: Vec<H>, rows: Vec<Vec<Cell>>) -> &mut Self {
        let headers = headers.into_iter().map(Into::into).collect();
        self.blocks.push(Block::Table { caption: None, headers, rows });
        self
    }
    /// A table with a numbered caption above it.
    pub fn table_captioned<H: Into<String>>(
        &mut self,
        caption: impl Into<String>,
        headers: Vec<H>,
        rows: Vec<Vec<Cell>>,
    ) -> &mut Self {
        let headers = headers.into_iter().map(Into::into).collect();
        self.blocks.push(Block::Table { caption: Some(caption.into()), headers, rows });
        self
    }
    /// A key–value list, e.g. run metadata (seed, code revision, wall time).
    pub fn key_values<K: Into<String>, V: Into<String>>(
        &mut self,
        items: impl IntoIterator<Item = (K, V)>,
    ) -> &mut Self {
        let items = items.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self.blocks.push(Block::KeyValues(items));
        self
    }
    /// A collapsed `<details>` block showing `text` preformatted (e.g. the resolved config TOML).
    pub fn details(&mut self, summary: impl Into<String>, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Details { summary: summary.into(), text: text.into(), open: false });
        self
    }
    /// Like [`Section::details`], but expanded initially.
    pub fn details_open(&mut self, summary: impl Into<String>, text: impl Into<String>) -> &mut Self {
        self.blocks.push(Block::Details { summary: summary.into(), text: text.into(), open: true });
        self
    }
    /// A collapsed block with pretty-printed JSON (raw data behind a figure, say).
    pub fn details_json(&mut self, summary: impl Into<String>, value: &serde_json::Value) -> &mut Self {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("<unprintable: {e}>"));
        self.details(summary, text)
    }
}

/// A report page. Build it, then [`Page::render`] it to a complete HTML5 document.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub title: String,
    pub subtitle: Option<String>,
    pub sections: Vec<Section>,
    /// Small print at the bottom; "Generated by mesalab." when `None`.
    pub footer: Option<String>,
}

impl Page {
    pub fn new(title: impl Into<String>) -> Page {
        Page { title: title.into(), subtitle: None, sections: Vec::new(), footer: None }
    }
    /// A line under the title (what, which config, which seed).
    pub fn subtitle(&mut self, s: impl Into<String>) -> &mut Self {
        self.subtitle = Some(s.into());
        self
    }
    pub fn footer(&mut self, s: impl Into<String>) -> &mut Self {
        self.footer = Some(s.into());
        self
    }
    /// Appends a section and returns it for filling.
    pub fn section(&mut self, title: impl Into<String>) -> &mut Section {
        self.sections.push(Section { title: title.into(), blocks: Vec::new() });
        self.sections.last_mut().expect("just pushed")
    }

    /// Renders the page: one self-contained HTML5 document with inline CSS and SVG, no scripts
    /// and no external resources. A table of contents appears when there are three or more sections.
    pub fn render(&self) -> String {
        let mut body = String::with_capacity(64 * 1024);
        body.push_str("<header class=\"page-head\">\n");
        let _ = writeln!(body, "<h1>{}</h1>", escape::text(&self.title));
        if let Some(s) = &self.subtitle {
            let _ = writeln!(body, "<p class=\"subtitle\">{}</p>", escape::text(s));
        }
        body.push_str("</header>\n");

        let mut used = HashSet::new();
        let ids: Vec<String> = self.sections.iter().map(|s| unique_id(&s.title, &mut used)).collect();
        if self.sections.len() >= 3 {
            body.push_str("<nav class=\"toc\" aria-label=\"Contents\"><span>Contents</span><ol>\n");
            for (s, id) in self.sections.iter().zip(&ids) {
                let _ = writeln!(body, "<li><a href=\"#{}\">{}</a></li>", id, escape::text(&s.title));
            }
            body.push_str("</ol></nav>\n");
        }

        let (mut fig_no, mut table_no) = (0usize, 0usize);
        for (s, id) in self.sections.iter().zip(&ids) {
            let _ = writeln!(body, "<section id=\"{id}\">");
            if !s.title.is_empty() {
                let _ = writeln!(body, "<h2>{}</h2>", escape::text(&s.title));
            }
            for b in &s.blocks {
                render_block(&mut body, b, &mut fig_no, &mut table_no);
            }
            body.push_str("</section>\n");
        }
        let footer = self.footer.as_deref().unwrap_or("Generated by mesalab.");
        let _ = writeln!(body, "<footer>{}</footer>", escape::text(footer));
        document(&self.title, &body)
    }
}

fn render_block(out: &mut String, b: &Block, fig_no: &mut usize, table_no: &mut usize) {
    match b {
        Block::Paragraph(html) => {
            let _ = writeln!(out, "<p>{html}</p>");
        }
        Block::Heading(t) => {
            let _ = writeln!(out, "<h3>{}</h3>", escape::text(t));
        }
        Block::Callout(t, tone) => {
            let class = tone.class().unwrap_or("info");
            let _ = writeln!(out, "<div class=\"callout {class}\">{}</div>", escape::text(t));
        }
        Block::Figures(figs) => {
            let row = figs.len() > 1;
            if row {
                out.push_str("<div class=\"figure-row\">\n");
            }
            for (svg, caption) in figs {
                out.push_str("<figure>\n<div class=\"chart\">");
                out.push_str(&inline_svg(svg));
                out.push_str("</div>\n");
                if !caption.trim().is_empty() {
                    *fig_no += 1;
                    let _ = writeln!(
                        out,
                        "<figcaption><span class=\"label\">Figure {}.</span> {}</figcaption>",
                        fig_no,
                        escape::text(caption)
                    );
                }
                out.push_str("</figure>\n");
            }
            if row {
                out.push_str("</div>\n");
            }
        }
        Block::Table { caption, headers, rows } => render_table(out, caption.as_deref(), headers, rows, table_no),
        Block::KeyValues(items) => {
            out.push_str("<dl class=\"kv\">\n");
            for (k, v) in items {
                let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape::text(k), escape::text(v));
            }
            out.push_str("</dl>\n");
        }
        Block::Details { summary, text, open } => {
            let _ = writeln!(
                out,
                "<details{}><summary>{}</summary>\n<pre>{}</pre>\n</details>",
                if *open { " open" } else { "" },
                escape::text(summary),
                escape::text(text)
            );
        }
    }
}

fn render_table(out: &mut String, caption: Option<&str>, headers: &[String], rows: &[Vec<Cell>], table_no: &mut usize) {
    let ncols = headers.len().max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let numeric_col: Vec<bool> = (0..ncols)
        .map(|c| {
            let cells: Vec<&Cell> = rows.iter().filter_map(|r| r.get(c)).filter(|x| !x.text.is_empty()).collect();
            !cells.is_empty() && cells.iter().all(|x| x.numeric)
        })
        .collect();
    out.push_str("<div class=\"table-wrap\"><table>\n");
    if let Some(c) = caption {
        *table_no += 1;
        let _ =
            writeln!(out, "<caption><span class=\"label\">Table {}.</span> {}</caption>", table_no, escape::text(c));
    }
    if !headers.is_empty() {
        out.push_str("<thead><tr>");
        for (c, &numeric) in numeric_col.iter().enumerate() {
            let h = headers.get(c).map_or("", String::as_str);
            let class = if numeric { " class=\"num\"" } else { "" };
            let _ = write!(out, "<th scope=\"col\"{class}>{}</th>", escape::text(h));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    let empty = Cell::default();
    for r in rows {
        out.push_str("<tr>");
        for (c, &numeric) in numeric_col.iter().enumerate() {
            let cell = r.get(c).unwrap_or(&empty);
            let mut classes = Vec::new();
            if cell.numeric || numeric {
                classes.push("num");
            }
            if cell.code {
                classes.push("mono");
            }
            let class = if classes.is_empty() { String::new() } else { format!(" class=\"{}\"", classes.join(" ")) };
            let title = cell.title.as_ref().map_or(String::new(), |t| format!(" title=\"{}\"", escape::attr(t)));
            let text = match &cell.href {
                Some(href) => format!("<a href=\"{}\">{}</a>", escape::attr(href), escape::text(&cell.text)),
                None => escape::text(&cell.text),
            };
            match cell.highlight.class() {
                Some(h) => {
                    let _ = write!(out, "<td{class}{title}><span class=\"tag {h}\">{text}</span></td>");
                }
                None => {
                    let _ = write!(out, "<td{class}{title}>{text}</td>");
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

/// SVG for inline use in HTML: the namespace declaration is implied there, so it is dropped.
fn inline_svg(svg: &str) -> String {
    svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1)
}

/// A lower-case slug of `title`, unique within `used`.
fn unique_id(title: &str, used: &mut HashSet<String>) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let base = if slug.is_empty() { "section".to_string() } else { format!("s-{slug}") };
    let mut id = base.clone();
    let mut k = 2;
    while !used.insert(id.clone()) {
        id = format!("{base}-{k}");
        k += 1;
    }
    id
}

/// A status badge for an [`IndexEntry`]; no badge when `label` is empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    pub label: String,
    pub highlight: Highlight,
}

impl Status {
    pub fn good(label: impl Into<String>) -> Status {
        Status { label: label.into(), highlight: Highlight::Good }
    }
    pub fn bad(label: impl Into<String>) -> Status {
        Status { label: label.into(), highlight: Highlight::Bad }
    }
    pub fn neutral(label: impl Into<String>) -> Status {
        Status { label: label.into(), highlight: Highlight::Neutral }
    }
}

/// One report linked from [`index_page`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexEntry {
    pub name: String,
    pub description: String,
    /// Relative link to the report (`javascript:`/`data:` links are refused).
    pub href: String,
    /// A few headline numbers, `(label, value)`.
    pub headline: Vec<(String, String)>,
    pub status: Status,
}

/// A landing page that links several reports, one card per entry.
pub fn index_page(title: &str, entries: &[IndexEntry]) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "<header class=\"page-head\"><h1>{}</h1></header>", escape::text(title));
    if entries.is_empty() {
        body.push_str("<p class=\"subtitle\">No reports yet.</p>\n");
    }
    body.push_str("<div class=\"cards\">\n");
    for e in entries {
        body.push_str("<article class=\"card\">\n<div class=\"card-head\">");
        let _ =
            write!(body, "<h2><a href=\"{}\">{}</a></h2>", escape::attr(&safe_href(&e.href)), escape::text(&e.name));
        if !e.status.label.is_empty() {
            let class = e.status.highlight.class().unwrap_or("plain");
            let _ = write!(body, "<span class=\"tag {class}\">{}</span>", escape::text(&e.status.label));
        }
        body.push_str("</div>\n");
        if !e.description.is_empty() {
            let _ = writeln!(body, "<p>{}</p>", escape::text(&e.description));
        }
        if !e.headline.is_empty() {
            body.push_str("<dl class=\"kv\">\n");
            for (k, v) in &e.headline {
                let _ = writeln!(body, "<dt>{}</dt><dd class=\"num\">{}</dd>", escape::text(k), escape::text(v));
            }
            body.push_str("</dl>\n");
        }
        body.push_str("</article>\n");
    }
    body.push_str("</div>\n<footer>Generated by mesalab.</footer>\n");
    document(title, &body)
}

/// `href` unless it has a scheme other than http(s), mailto or file; then `#`.
fn safe_href(href: &str) -> String {
    let h = href.trim();
    if let Some(colon) = h.find(':') {
        let scheme = &h[..colon];
        let looks_like_scheme = !scheme.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            && !h[..colon].contains('/');
        if looks_like_scheme && !["http", "https", "mailto", "file"].contains(&scheme.to_ascii_lowercase().as_str()) {
            return "#".into();
        }
    }
    h.to_string()
}

/// Wraps `body` in a complete HTML5 document with the stylesheet.
fn document(title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + CSS.len() + 512);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(
        "<meta name=\"color-scheme\" content=\"light\">\n<meta name=\"generator\" content=\"mesalab-report\">\n",
    );
    let _ = writeln!(out, "<title>{}</title>", escape::text(title));
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>\n<main>");
    out.push_str(body);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

const CSS: &str = r#"
:root {
  --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #eef1f4; --bg: #f6f8fa; --accent: #0b5cad;
  --good-bg: #dcf5e3; --good-fg: #0f5c2e; --bad-bg: #fde4e4; --bad-fg: #9a1c1c;
  --neutral-bg: #fdf1d0; --neutral-fg: #6b4a00; --info-bg: #e6f0fb; --info-fg: #0b3d77;
  --mono: ui-monospace, SFMono-Regular, 'SF Mono', Menlo, Consolas, 'Liberation Mono', monospace;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.6 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 40px 48px 56px; background: #fff;
  min-height: 100vh; box-shadow: 0 0 0 1px var(--soft); }
h1 { font-size: 2rem; line-height: 1.2; margin: 0 0 .3rem; letter-spacing: -0.01em; }
h2 { font-size: 1.4rem; line-height: 1.3; margin: 2.6rem 0 .8rem; padding-bottom: .35rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.8rem 0 .5rem; }
p { margin: .7rem 0; max-width: 78ch; }
a { color: var(--accent); text-underline-offset: 2px; }
.subtitle { color: var(--muted); font-size: 1.1rem; margin: 0; max-width: 78ch; }
.page-head { margin-bottom: 1.5rem; }
code, pre, kbd, samp, .mono { font-family: var(--mono); font-size: .88em; }
code { background: var(--soft); padding: .1em .35em; border-radius: 4px; }
pre { background: var(--bg); border: 1px solid var(--soft); padding: 12px 14px; overflow-x: auto;
  line-height: 1.45; border-radius: 6px; margin: .6rem 0 0; }
nav.toc { background: var(--bg); border: 1px solid var(--soft); border-radius: 8px; padding: .8rem 1.2rem; margin: 0 0 1rem; max-width: 78ch; }
nav.toc span { font-weight: 600; font-size: .9rem; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
nav.toc ol { margin: .3rem 0 0; padding-left: 1.4rem; columns: 2; column-gap: 2rem; }
nav.toc li { break-inside: avoid; }
figure { margin: 1.6rem 0; }
figure .chart svg { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: .92rem; line-height: 1.5; margin-top: .5rem; max-width: 78ch; }
.label { font-weight: 600; color: var(--fg); }
.figure-row { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; margin: 1.6rem 0; }
.figure-row figure { margin: 0; flex: 1 1 300px; min-width: 0; }
.table-wrap { overflow-x: auto; margin: 1.2rem 0; }
table { border-collapse: collapse; font-size: .92rem; line-height: 1.4; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: .5rem; }
th, td { padding: 7px 14px; text-align: left; vertical-align: top; border-bottom: 1px solid var(--soft); }
thead th { font-weight: 600; border-bottom: 2px solid var(--line); white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num, th.num { text-align: right; }
td.num { font-family: var(--mono); font-size: .86rem; font-variant-numeric: tabular-nums; white-space: nowrap; }
.tag { display: inline-block; padding: .05em .55em; border-radius: 999px; font-size: .85em; font-weight: 600; line-height: 1.5; white-space: nowrap; }
.tag.good { background: var(--good-bg); color: var(--good-fg); }
.tag.bad { background: var(--bad-bg); color: var(--bad-fg); }
.tag.neutral { background: var(--neutral-bg); color: var(--neutral-fg); }
.tag.plain { background: var(--soft); color: var(--muted); }
.callout { border-left: 4px solid; border-radius: 4px; padding: .7rem 1rem; margin: 1rem 0; max-width: 78ch; }
.callout.good { background: var(--good-bg); color: var(--good-fg); }
.callout.bad { background: var(--bad-bg); color: var(--bad-fg); }
.callout.neutral { background: var(--neutral-bg); color: var(--neutral-fg); }
.callout.info { background: var(--info-bg); color: var(--info-fg); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1.5rem; margin: 1rem 0; font-size: .95rem; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; overflow-wrap: anywhere; }
dd.num { font-family: var(--mono); font-size: .9rem; font-variant-numeric: tabular-nums; }
details { border: 1px solid var(--line); border-radius: 6px; padding: .55rem .9rem; margin: 1rem 0; }
details[open] { padding-bottom: .9rem; }
summary { cursor: pointer; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 20px; margin-top: 1.5rem; }
.card { border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.2rem; }
.card-head { display: flex; flex-direction: column; align-items: flex-start; gap: .35rem; }
.card h2 { font-size: 1.15rem; margin: 0; padding: 0; border: 0; }
.card h2 a { text-decoration: none; } .card h2 a:hover { text-decoration: underline; }
.card dl.kv { grid-template-columns: 1fr auto; } .card dd { text-align: right; white-space: nowrap; }
.card p { color: var(--muted); font-size: .95rem; }
footer { margin-top: 3.5rem; padding-top: 1rem; border-top: 1px solid var(--soft); color: var(--muted); font-size: .85rem; }
@media (max-width: 700px) { main { padding: 24px 18px; } nav.toc ol { columns: 1; } }
@media print {
  body { background: #fff; } main { max-width: none; padding: 0; box-shadow: none; }
  figure, .figure-row, table { break-inside: avoid; } a { color: inherit; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        let mut p = Page::new("<T>");
        p.subtitle("a & b");
        p.section("S<1>")
            .paragraph("<script>alert(1)</script>")
            .raw_html("<code>x<y</code> <img src=x>")
            .callout("<b>", Highlight::Bad)
            .key_values([("<k>", "<v>")])
            .details("<s>", "a < b")
            .table(vec!["<h>"], vec![vec![Cell::text("<c>").good()]])
            .figure("<svg></svg>", "<cap>");
        let html = p.render();
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<T>") && !html.contains("<k>") && !html.contains("<cap>"));
        assert!(html.contains("<code>x&lt;y</code>"));
        assert!(html.contains("&lt;c&gt;"));
    }

    #[test]
    fn numeric_columns_are_right_aligned() {
        let mut p = Page::new("t");
        p.section("s").table(
            vec!["name", "loss"],
            vec![vec![Cell::text("a"), Cell::num(0.5)], vec![Cell::text("b"), Cell::num(f64::NAN)]],
        );
        let html = p.render();
        assert!(html.contains("<th scope=\"col\" class=\"num\">loss</th>"));
        assert!(html.contains("<td class=\"num\">NaN</td>"));
    }

    #[test]
    fn section_ids_are_unique() {
        let mut used = HashSet::new();
        assert_eq!(unique_id("Loss curves", &mut used), "s-loss-curves");
        assert_eq!(unique_id("Loss curves!", &mut used), "s-loss-curves-2");
        assert_eq!(unique_id("", &mut used), "section");
        assert_eq!(unique_id("???", &mut used), "section-2");
    }

    #[test]
    fn figures_are_numbered_and_svg_namespace_dropped() {
        let mut p = Page::new("t");
        let svg = crate::svg::LineChart::new("x").to_svg();
        p.section("a").figure(svg.clone(), "one").figure_row(vec![(svg.clone(), "two".into()), (svg, "three".into())]);
        let html = p.render();
        assert!(html.contains("Figure 1.</span> one") && html.contains("Figure 3.</span> three"));
        assert!(!html.contains("xmlns"));
    }

    #[test]
    fn hrefs_are_checked() {
        assert_eq!(safe_href("runs/a.html"), "runs/a.html");
        assert_eq!(safe_href("javascript:alert(1)"), "#");
        assert_eq!(safe_href(" JavaScript:x"), "#");
        assert_eq!(safe_href("data:text/html,x"), "#");
        assert_eq!(safe_href("a/b:c.html"), "a/b:c.html");
    }

    #[test]
    fn index_page_renders_entries() {
        let html = index_page(
            "Demos",
            &[IndexEntry {
                name: "ICL <GD>".into(),
                description: "d".into(),
                href: "icl.html".into(),
                headline: vec![("loss".into(), "0.2066".into())],
                status: Status::good("replicated"),
            }],
        );
        assert!(html.contains("href=\"icl.html\"") && html.contains("ICL &lt;GD&gt;"));
        assert!(html.contains("tag good"));
        assert!(index_page("empty", &[]).contains("No reports yet"));
    }
}

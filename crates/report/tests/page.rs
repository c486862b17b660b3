//! Whole-page checks: a report with every kind of block is well-formed (balanced tags), makes no
//! network references, and escapes what it is given.

use mesalab_report::html::{Cell, Highlight, IndexEntry, Page, Status, index_page};
use mesalab_report::svg::{BarChart, BarSeries, Heatmap, LineChart, RefLine, Scatter, ScatterSeries, Series};

/// Elements that never have a closing tag in HTML.
const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link", "col", "wbr", "source"];

/// Checks that start and end tags nest properly; returns the first problem found.
fn check_balanced(doc: &str) -> Result<usize, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut count = 0;
    let mut rest = doc;
    // <style> content is CSS: skip it wholesale.
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        if rest.starts_with("<!") {
            rest = &rest[rest.find('>').ok_or("unterminated <!")? + 1..];
            continue;
        }
        let end = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim().to_ascii_lowercase();
            match stack.pop() {
                Some(open) if open == name => count += 1,
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let name: String =
            tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        if name.is_empty() {
            return Err(format!("bad tag <{tag}>"));
        }
        if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            count += 1;
            continue;
        }
        if name == "style" {
            let close = rest.find("</style>").ok_or("unclosed style")?;
            rest = &rest[close + "</style>".len()..];
            count += 1;
            continue;
        }
        stack.push(name);
    }
    if stack.is_empty() { Ok(count) } else { Err(format!("unclosed: {stack:?}")) }
}

fn full_page() -> String {
    let line = LineChart::new("Loss <&> curves")
        .log_y(true)
        .x_label("step")
        .y_label("loss")
        .series(
            Series::new("a", vec![(0.0, 1.0), (1.0, 0.1), (2.0, f64::NAN), (3.0, 0.01)])
                .band(vec![(0.0, 0.8, 1.2), (3.0, 0.008, 0.012)]),
        )
        .hline(RefLine::new("GD", 0.05).dashed());
    let heat = Heatmap::new("attn", vec![vec![0.1, 0.9], vec![0.5, 0.5]]).value_range(0.0, 1.0).show_values();
    let bars = BarChart::new("bars", vec!["train".into(), "deploy".into()])
        .series(BarSeries::new("robust", vec![0.9, 0.1]).errors(vec![(0.8, 0.95), (0.05, 0.2)]));
    let scatter = Scatter::new("pred").diagonal().series(ScatterSeries::new("tasks", vec![(0.0, 0.1), (1.0, 0.9)]));
    let mut page = Page::new("Report <1> & co");
    page.subtitle("sub \"quoted\"");
    page.section("Overview")
        .paragraph("Plain <b>not bold</b>.")
        .raw_html("Inline <code>W_KQ</code> and <em>em</em>, <script>x</script>.")
        .callout("Objective misalignment on deploy.", Highlight::Bad)
        .key_values([("seed", "0"), ("revision", "abc123")]);
    page.section("Figures")
        .figure(line.to_svg(), "Loss with a band.")
        .figure_row(vec![(heat.to_svg(), "Trained.".into()), (heat.to_svg(), "Constructed.".into())])
        .figure(bars.to_svg(), "Bars.")
        .figure(scatter.to_svg(), "Scatter.")
        .figure(LineChart::new("empty").to_svg(), "Empty chart.");
    page.section("Tables")
        .heading("Numbers")
        .table(
            vec!["run", "loss", "verdict"],
            vec![
                vec![Cell::text("a"), Cell::num(0.2066), Cell::text("robust").good()],
                vec![Cell::code("b<2>"), Cell::mean_pm(1.0005, 0.0002), Cell::text("failed").bad()],
                vec![Cell::text("short row")],
            ],
        )
        .table_captioned("Captioned.", vec!["x"], vec![vec![Cell::num(3.2e-5)]])
        .details("Resolved config", "[model]\nd = 10 # <ok>\n")
        .details_json("Raw data", &serde_json::json!({"loss": [1.0, 0.5]}));
    page.render()
}

#[test]
fn full_page_is_balanced_and_offline() {
    let html = full_page();
    assert!(html.starts_with("<!DOCTYPE html>"));
    let n = check_balanced(&html).unwrap_or_else(|e| panic!("{e}"));
    assert!(n > 100, "only {n} elements");
    assert!(!html.contains("http"), "page references a URL");
    assert!(!html.contains("<script"), "page contains a script");
    assert!(!html.contains("url("), "page loads an external resource from CSS");
    assert!(!html.contains("NaN\""), "NaN leaked into an attribute");
    for needle in [
        "Report &lt;1&gt; &amp; co",
        "<code>W_KQ</code>",
        "&lt;script&gt;",
        "Figure 6.",
        "Table 1.",
        "nav class=\"toc\"",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
}

#[test]
fn balance_checker_catches_problems() {
    assert!(check_balanced("<p><b>x</p></b>").is_err());
    assert!(check_balanced("<div><p>x</p>").is_err());
    assert_eq!(check_balanced("<p>a<br>b<circle/></p>"), Ok(3));
}

#[test]
fn index_is_balanced_and_offline() {
    let entries = vec![
        IndexEntry {
            name: "In-context linear regression".into(),
            description: "Does a trained linear self-attention layer implement one step of GD?".into(),
            href: "icl-gd/report.html".into(),
            headline: vec![("loss vs GD".into(), "1.0005".into())],
            status: Status::good("replicated"),
        },
        IndexEntry { name: "bad link".into(), href: "javascript:alert(1)".into(), ..Default::default() },
    ];
    let html = index_page("mesalab demos", &entries);
    check_balanced(&html).unwrap_or_else(|e| panic!("{e}"));
    assert!(!html.contains("http") && !html.contains("javascript"));
}

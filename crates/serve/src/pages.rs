//! HTML for every page and for the fragments the pages' script swaps in while runs are live.
//!
//! All user and store text goes through `mesalab_report::escape`; charts are the report crate's
//! `LineChart` SVG. Pages carry no inline script (the CSP forbids it): the script reads
//! `data-` attributes.

use std::fmt::Write as _;

use mesalab_report::escape::{attr, text};
use mesalab_report::fmt::number;
use mesalab_report::svg::{LineChart, Series, color::palette};
use mesalab_store::{RunStatus, rfc3339};

use crate::view::{CheckCell, CompareView, Curve, Entry, RunRow, RunView, RunsQuery, RunsView, SideBySide};

/// A whole page: the shared shell around `body`.
pub fn page(title: &str, active: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{} · mesalab</title>", text(title));
    // No favicon request (the binary serves none).
    out.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    out.push_str("<link rel=\"stylesheet\" href=\"/static/style.css\">\n</head>\n<body>\n<nav class=\"top\">");
    out.push_str("<a class=\"brand\" href=\"/\">mesalab</a>");
    for (href, label) in [("/", "Runs"), ("/compare", "Compare"), ("/leaderboard", "MesaBench")] {
        let class = if label == active { " class=\"active\"" } else { "" };
        let _ = write!(out, "<a href=\"{href}\"{class}>{label}</a>");
    }
    out.push_str("<span class=\"ro\">read-only</span></nav>\n<main>\n");
    out.push_str(body);
    out.push_str("</main>\n<script src=\"/static/app.js\"></script>\n</body>\n</html>\n");
    out
}

fn status_badge(status: RunStatus) -> String {
    format!("<span class=\"badge status-{s}\" data-status=\"{s}\">{s}</span>", s = status.as_str())
}

fn answer_badge(answer: Option<&str>) -> String {
    match answer {
        Some(a) => {
            let tone = match a {
                "yes" => "good",
                "no" => "bad",
                _ => "neutral",
            };
            format!("<span class=\"badge {tone}\">{}</span>", text(a))
        }
        None => "<span class=\"muted\">—</span>".into(),
    }
}

/// `1.2 s`, `3 min 4 s`, `2 h 5 min`.
pub fn duration(ms: i64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    }
}

/// `2026-01-02 13:04:05` (UTC).
fn when(ms: i64) -> String {
    rfc3339(ms).chars().take(19).map(|c| if c == 'T' { ' ' } else { c }).collect()
}

fn value(x: Option<f64>) -> String {
    x.map_or_else(|| "NaN".into(), number)
}

fn checks_inline(checks: &[CheckCell]) -> String {
    let mut out = String::new();
    for c in checks.iter().take(3) {
        let _ = write!(
            out,
            "<span class=\"check {}\" title=\"{} {}\">{} {}</span>",
            if c.pass { "pass" } else { "fail" },
            attr(&c.name),
            attr(&c.threshold),
            text(&c.name),
            text(&value(c.value))
        );
    }
    if checks.len() > 3 {
        let _ = write!(out, "<span class=\"muted\">+{} more</span>", checks.len() - 3);
    }
    out
}

/// The runs page's query string with one parameter changed (for sort links).
fn runs_href(q: &RunsQuery, sort: &str, descending: bool) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if let Some(e) = &q.experiment {
        s.append_pair("experiment", e);
    }
    if let Some(st) = q.status {
        s.append_pair("status", st.as_str());
    }
    if let Some(v) = q.verdict {
        s.append_pair("verdict", v);
    }
    if let Some(t) = &q.text {
        s.append_pair("q", t);
    }
    s.append_pair("sort", sort);
    s.append_pair("order", if descending { "desc" } else { "asc" });
    if !q.grouped {
        s.append_pair("group", "0");
    }
    format!("/?{}", s.finish())
}

fn run_row(out: &mut String, r: &RunRow, in_group: bool) {
    let progress = match (&r.progress, r.status) {
        (Some(p), RunStatus::Running) => {
            format!(" <span class=\"muted\">step {}</span>", p.last_step.map_or("–".into(), |s| s.to_string()))
        }
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "<tr class=\"run{}\" data-run=\"{id}\" data-status=\"{status}\">\
         <td><input type=\"checkbox\" class=\"pick\" value=\"{id}\" aria-label=\"select run {id}\"></td>\
         <td class=\"num\"><a href=\"/runs/{id}\">{id}</a></td>\
         <td><a href=\"/runs/{id}\">{exp}</a>{quick}</td><td>{badge}{progress}</td><td>{answer}</td>\
         <td class=\"num\">{seeds}</td><td class=\"mono\">{started}</td><td class=\"num\">{dur}</td>\
         <td class=\"checks\">{checks}</td></tr>",
        if in_group { " in-group" } else { "" },
        id = r.id,
        status = r.status.as_str(),
        exp = text(&r.experiment),
        quick = if r.quick { " <span class=\"tag\">quick</span>" } else { "" },
        badge = status_badge(r.status),
        answer = answer_badge(r.answer.as_deref()),
        seeds = r.seeds.len(),
        started = when(r.started_at_ms),
        dur = duration(r.duration_ms),
        checks = checks_inline(&r.checks),
    );
}

/// The runs table element alone (the page's script swaps it in while runs are live).
pub fn runs_table(v: &RunsView, q: &RunsQuery) -> String {
    let mut out = String::with_capacity(512 * v.listed + 2048);
    let _ = writeln!(
        out,
        "<div id=\"runs\" data-running=\"{}\"><p class=\"muted\" id=\"runs-count\">{} of {} runs{}{}</p>",
        v.running,
        v.listed,
        v.total,
        if v.matched != v.total { format!(" match the filter ({} in all)", v.matched) } else { String::new() },
        if v.listed < v.matched { " (raise `limit` to list more)" } else { "" },
    );
    out.push_str("<div class=\"table-wrap\"><table id=\"runs-table\"><thead><tr><th></th>");
    for (key, label) in [
        ("id", "id"),
        ("experiment", "experiment"),
        ("status", "status"),
        ("verdict", "verdict"),
        ("", "seeds"),
        ("started", "started (UTC)"),
        ("duration", "duration"),
        ("", "key metrics (verdict checks)"),
    ] {
        if key.is_empty() {
            let _ = write!(out, "<th>{label}</th>");
        } else {
            let active = q.sort == key;
            let next_desc = if active { !q.descending } else { !matches!(key, "experiment" | "status" | "verdict") };
            let arrow = if active { if q.descending { " ▼" } else { " ▲" } } else { "" };
            let _ = write!(
                out,
                "<th><a class=\"sort\" data-sort=\"{key}\" href=\"{}\">{label}{arrow}</a></th>",
                attr(&runs_href(q, key, next_desc))
            );
        }
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for e in &v.entries {
        match e {
            Entry::Run(r) => run_row(&mut out, r, false),
            Entry::Group { dir, runs } => {
                let running = runs.iter().filter(|r| r.status == RunStatus::Running).count();
                let yes = runs.iter().filter(|r| r.answer.as_deref() == Some("yes")).count();
                let _ = writeln!(
                    out,
                    "<tr class=\"group\"><td colspan=\"9\">sweep <code>{}</code> · {} runs · {} running · {} verdict yes</td></tr>",
                    text(dir),
                    runs.len(),
                    running,
                    yes
                );
                for r in runs {
                    run_row(&mut out, r, true);
                }
            }
        }
    }
    if v.entries.is_empty() {
        out.push_str("<tr><td colspan=\"9\" class=\"muted\">No runs match.</td></tr>\n");
    }
    out.push_str("</tbody></table></div></div>\n");
    out
}

pub fn runs_page(v: &RunsView, q: &RunsQuery, store: &str, fragment_href: &str) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "<h1>Runs</h1><p class=\"muted\">store <code>{}</code></p>", text(store));
    body.push_str("<form class=\"filters\" method=\"get\" action=\"/\">");
    body.push_str("<label>experiment <select name=\"experiment\"><option value=\"\">any</option>");
    for e in &v.experiments {
        let sel = if q.experiment.as_deref() == Some(e) { " selected" } else { "" };
        let _ = write!(body, "<option{sel}>{}</option>", text(e));
    }
    body.push_str("</select></label><label>status <select name=\"status\"><option value=\"\">any</option>");
    for s in RunStatus::ALL {
        let sel = if q.status == Some(s) { " selected" } else { "" };
        let _ = write!(body, "<option{sel}>{}</option>", s.as_str());
    }
    body.push_str("</select></label><label>verdict <select name=\"verdict\"><option value=\"\">any</option>");
    for vv in crate::view::VERDICT_FILTERS {
        let sel = if q.verdict == Some(vv) { " selected" } else { "" };
        let _ = write!(body, "<option{sel}>{vv}</option>");
    }
    let _ = writeln!(
        body,
        "</select></label><label>search <input name=\"q\" value=\"{}\" placeholder=\"id, experiment, directory\"></label>\
         <input type=\"hidden\" name=\"sort\" value=\"{}\"><input type=\"hidden\" name=\"order\" value=\"{}\">\
         <button type=\"submit\">Filter</button></form>",
        attr(q.text.as_deref().unwrap_or("")),
        q.sort,
        if q.descending { "desc" } else { "asc" }
    );
    body.push_str(
        "<p class=\"actions\"><button type=\"button\" id=\"compare-selected\" disabled>Compare selected runs</button> \
         <span class=\"muted\">tick two or more runs</span></p>\n",
    );
    let _ = write!(body, "<div class=\"live\" data-fragment=\"{}\">", attr(fragment_href));
    body.push_str(&runs_table(v, q));
    body.push_str("</div>\n");
    page("Runs", "Runs", &body)
}

/// Draws a curve with the report crate's line chart. `by_run`: colour lines by run (comparison)
/// rather than by position (seeds of one run).
fn chart(c: &Curve, by_run: bool) -> String {
    let values: Vec<f64> =
        c.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).filter(|v| v.is_finite()).collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_y = lo > 0.0 && hi / lo > 50.0;
    let mut chart = LineChart::new(c.metric.clone()).x_label("step").log_y(log_y).size(460.0, 290.0);
    for (i, l) in c.lines.iter().enumerate() {
        let mut s = Series::new(l.label.clone(), l.points.clone()).color(palette(if by_run { l.run_index } else { i }));
        if !l.band.is_empty() {
            s = s.band(l.band.clone());
        }
        chart = chart.series(s);
    }
    format!(
        "<figure class=\"curve\" data-metric=\"{}\" data-samples=\"{}\">{}</figure>\n",
        attr(&c.metric),
        c.samples,
        chart.to_svg().replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1)
    )
}

fn curves(out: &mut String, curves: &[Curve], by_run: bool) {
    if curves.is_empty() {
        out.push_str(
            "<p class=\"muted\" id=\"no-curves\">No curves yet: nothing has been logged at two or more steps.</p>\n",
        );
        return;
    }
    out.push_str("<div class=\"curves\">\n");
    for c in curves {
        out.push_str(&chart(c, by_run));
    }
    out.push_str("</div>\n");
}

fn table(out: &mut String, id: &str, headers: &[&str], rows: &[Vec<String>]) {
    let _ = write!(out, "<div class=\"table-wrap\"><table id=\"{id}\"><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", text(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for cell in r {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

/// The live part of a run page (everything that changes while the run logs).
pub fn run_fragment(v: &RunView) -> String {
    let r = &v.run;
    let mut out = String::new();
    let end = r.ended_at_ms.unwrap_or_else(crate::view::now_ms);
    let _ = writeln!(
        out,
        "<div id=\"run-live\" data-status=\"{}\" data-samples=\"{}\"><dl class=\"kv\">\
         <dt>status</dt><dd>{}</dd><dt>verdict</dt><dd>{}</dd>\
         <dt>samples logged</dt><dd id=\"samples\">{}</dd><dt>last step</dt><dd id=\"last-step\">{}</dd>\
         <dt>started (UTC)</dt><dd>{}</dd><dt>duration</dt><dd>{}</dd>\
         <dt>seeds</dt><dd>{}</dd><dt>code revision</dt><dd><code>{}</code></dd><dt>run directory</dt><dd><code>{}</code></dd></dl>",
        r.status.as_str(),
        v.progress.samples,
        status_badge(r.status),
        answer_badge(v.answer.as_deref()),
        v.progress.samples,
        v.progress.last_step.map_or("–".into(), |s| s.to_string()),
        when(r.started_at_ms),
        duration(end.saturating_sub(r.started_at_ms).max(0)),
        text(&r.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
        text(r.code_revision.as_deref().unwrap_or("unknown")),
        text(&r.run_dir.display().to_string()),
    );
    if let Some(e) = &r.error {
        let _ = writeln!(out, "<div class=\"callout bad\">{}</div>", text(e));
    }
    if let Some(claim) = &v.claim {
        let _ = writeln!(out, "<p><strong>Claim:</strong> {}</p>", text(claim));
    }
    if !v.checks.is_empty() {
        let rows: Vec<Vec<String>> = v
            .checks
            .iter()
            .map(|c| {
                vec![
                    text(&c.name),
                    text(&value(c.value)),
                    text(&c.threshold),
                    if c.pass {
                        "<span class=\"badge good\">pass</span>".into()
                    } else {
                        "<span class=\"badge bad\">fail</span>".into()
                    },
                ]
            })
            .collect();
        out.push_str("<h2>Verdict checks</h2>\n");
        table(&mut out, "checks", &["check", "value", "threshold", ""], &rows);
    }
    out.push_str("<h2>Curves</h2>\n");
    curves(&mut out, &v.curves, false);
    if !v.aggregate.is_empty() {
        out.push_str("<h2>Metrics (mean over seeds)</h2>\n");
        let rows: Vec<Vec<String>> = v
            .aggregate
            .iter()
            .map(|(k, mean, min, max, n)| {
                vec![
                    text(k),
                    value(*mean),
                    min.map_or(String::new(), number),
                    max.map_or(String::new(), number),
                    n.map_or(String::new(), number),
                ]
            })
            .collect();
        table(&mut out, "aggregate", &["metric", "mean", "min", "max", "n"], &rows);
    }
    if !v.finals.is_empty() {
        let _ = writeln!(out, "<details><summary>Single-step metrics ({})</summary>", v.finals.len());
        let rows: Vec<Vec<String>> = v
            .finals
            .iter()
            .map(|(k, seed, step, x)| {
                vec![text(k), seed.map_or("all".into(), |s| s.to_string()), step.to_string(), value(Some(*x))]
            })
            .collect();
        table(&mut out, "finals", &["metric", "seed", "step", "value"], &rows);
        out.push_str("</details>\n");
    }
    out.push_str("<h2>Report</h2>\n");
    if v.has_report {
        let _ = writeln!(
            out,
            "<p><a href=\"/runs/{id}/report\" target=\"_blank\">open the report alone</a></p>\
             <iframe class=\"report\" title=\"report of run {id}\" src=\"/runs/{id}/report\"></iframe>",
            id = r.id
        );
    } else if r.status == RunStatus::Running {
        out.push_str(
            "<p class=\"muted\">The report is drawn when the run finishes; the curves above update as it logs.</p>\n",
        );
    } else {
        out.push_str("<p class=\"muted\">This run has no recorded report.</p>\n");
    }
    if !v.artifacts.is_empty() {
        out.push_str("<h2>Artifacts</h2>\n<ul class=\"artifacts\">");
        for a in &v.artifacts {
            let name = &a.name;
            let href = format!(
                "/runs/{}/artifacts/{}",
                r.id,
                form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
            );
            let _ = write!(
                out,
                "<li><a href=\"{}\">{}</a> <span class=\"muted\">{} · {}</span></li>",
                attr(&href),
                text(name),
                text(&a.kind),
                a.size_bytes.map_or("size unknown".into(), |b| format!("{b} bytes"))
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</div>\n");
    out
}

pub fn run_page(v: &RunView) -> String {
    let id = v.run.id;
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>Run {id} · {}</h1><p class=\"muted\"><a href=\"/?q={id}\">in the runs table</a> · \
         <a href=\"/api/runs/{id}\">JSON</a></p>",
        text(&v.run.experiment)
    );
    let _ = writeln!(
        body,
        "<div class=\"live\" data-events=\"/api/runs/{id}/events\" data-fragment=\"/fragments/runs/{id}\">{}</div>",
        run_fragment(v)
    );
    body.push_str("<details><summary>Resolved config</summary><pre>");
    body.push_str(&text(&v.run.config_toml));
    body.push_str("</pre></details>\n");
    page(&format!("run {id}"), "Runs", &body)
}

fn side_table(out: &mut String, id: &str, runs: &[mesalab_store::RunRecord], rows: &[SideBySide]) {
    let differing = rows.iter().filter(|r| r.differs).count();
    let _ = writeln!(out, "<p class=\"muted\">{differing} of {} rows differ (highlighted).</p>", rows.len());
    let _ = write!(out, "<div class=\"table-wrap\"><table class=\"side\" id=\"{id}\"><thead><tr><th></th>");
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(out, "<th><span class=\"swatch\" style=\"background:{}\"></span>run {}</th>", palette(i), r.id);
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        let _ = write!(
            out,
            "<tr{}><th scope=\"row\">{}</th>",
            if row.differs { " class=\"differs\"" } else { "" },
            text(&row.name)
        );
        for c in &row.cells {
            match c {
                Some(c) => {
                    let _ = write!(out, "<td>{}</td>", text(c));
                }
                None => out.push_str("<td class=\"muted\">—</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

pub fn compare_fragment(v: &CompareView) -> String {
    let running = v.runs.iter().filter(|r| r.status == RunStatus::Running).count();
    let mut out = format!("<div id=\"compare\" data-running=\"{running}\">\n<ul class=\"legend\">");
    for (i, r) in v.runs.iter().enumerate() {
        let _ = write!(
            out,
            "<li><span class=\"swatch\" style=\"background:{}\"></span><a href=\"/runs/{id}\">run {id}</a> {} {}</li>",
            palette(i),
            text(&r.experiment),
            status_badge(r.status),
            id = r.id
        );
    }
    out.push_str("</ul>\n<h2>Curves, overlaid</h2>\n<p class=\"muted\">Each line is a run's mean over its seeds; the band spans its seeds' min to max.</p>\n");
    curves(&mut out, &v.curves, true);
    out.push_str("<p><label><input type=\"checkbox\" id=\"only-diff\"> show only rows that differ</label></p>\n");
    out.push_str("<h2>Runs</h2>\n");
    side_table(&mut out, "cmp-overview", &v.runs, &v.overview);
    out.push_str("<h2>Metrics</h2>\n");
    side_table(&mut out, "cmp-metrics", &v.runs, &v.metrics);
    out.push_str("<h2>Configs</h2>\n");
    side_table(&mut out, "cmp-config", &v.runs, &v.config);
    out.push_str("</div>\n");
    out
}

pub fn compare_page(v: &CompareView, fragment_href: &str) -> String {
    let ids: Vec<String> = v.runs.iter().map(|r| r.id.to_string()).collect();
    let mut body = format!("<h1>Compare runs {}</h1>\n", text(&ids.join(", ")));
    let _ =
        writeln!(body, "<div class=\"live\" data-fragment=\"{}\">{}</div>", attr(fragment_href), compare_fragment(v));
    page("compare", "Compare", &body)
}

/// `/compare` without runs: how to pick them.
pub fn compare_help() -> String {
    page(
        "compare",
        "Compare",
        "<h1>Compare runs</h1><p>Tick two or more runs on the <a href=\"/\">runs page</a> and press \
         <em>Compare selected runs</em>, or open <code>/compare?runs=3,7</code>.</p>\n",
    )
}

pub fn leaderboard_page(board: Option<&(i64, mesalab_store::ResultTable)>) -> String {
    let Some((run, table)) = board else {
        return page(
            "MesaBench",
            "MesaBench",
            "<h1>MesaBench leaderboard</h1>\n<div class=\"callout neutral\" id=\"leaderboard-slot\">No MesaBench \
             score is in this store yet. <code>mesalab bench build</code> trains the zoo and <code>mesalab bench \
             score</code> scores every detector on it; the newest score appears here.</div>\n",
        );
    };
    let col = |name: &str| table.columns.iter().position(|c| c == name);
    let mut body = format!(
        "<h1>MesaBench leaderboard</h1>\n<p id=\"leaderboard-slot\">Held-out models of the newest score, \
         <a href=\"/runs/{run}\">run {run}</a>. AUROC equals Vargha–Delaney A12; the interval is a 95% \
         bootstrap over models; accuracy uses the threshold chosen on dev models.</p>\n<table>\n<thead><tr>\
         <th>question</th><th>detector</th><th>AUROC [95%]</th><th>accuracy</th><th>Mann–Whitney p</th>\
         <th>positives / negatives</th></tr></thead>\n<tbody>\n"
    );
    let cell = |row: &[serde_json::Value], name: &str| col(name).and_then(|i| row.get(i)).cloned().unwrap_or_default();
    let num = |v: serde_json::Value| v.as_f64().map_or("NaN".to_string(), |x| format!("{x:.3}"));
    for row in table.rows.iter().filter(|r| cell(r, "split") == "held-out") {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{} [{}, {}]</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{} / {}</td></tr>",
            text(cell(row, "question").as_str().unwrap_or("")),
            text(cell(row, "detector").as_str().unwrap_or("")),
            num(cell(row, "auroc")),
            num(cell(row, "ci_lo")),
            num(cell(row, "ci_hi")),
            num(cell(row, "accuracy")),
            cell(row, "mann_whitney_p").as_f64().map_or("NaN".to_string(), |p| format!("{p:.2e}")),
            cell(row, "positives"),
            cell(row, "negatives"),
        );
    }
    body.push_str("</tbody></table>\n");
    page("MesaBench", "MesaBench", &body)
}

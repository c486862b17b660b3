//! The MesaBench report: the held-out leaderboard per question (output evaluation beside the
//! internal detectors, the random control beside both), ROC curves, the dev split, the per-factor
//! breakdown, and a drill-down of every model linking to the report of the run that trained it.

use crate::detectors::Question;
use crate::score::{Leaderboard, Line, ModelScores, truth};
use crate::zoo::Split;
use mesalab_report::html::{Cell, Highlight, Page};
use mesalab_report::svg::{LineChart, Series};
use std::path::Path;

fn ci(l: &Line) -> Cell {
    Cell::numeric(format!(
        "{} [{}, {}]",
        mesalab_report::fmt::fixed(l.auroc, 3),
        mesalab_report::fmt::fixed(l.ci_lo, 3),
        mesalab_report::fmt::fixed(l.ci_hi, 3)
    ))
}

fn table_rows(lines: &[&Line]) -> Vec<Vec<Cell>> {
    lines
        .iter()
        .map(|l| {
            let tone = if l.ci_lo > 0.5 {
                Highlight::Good
            } else if l.ci_hi < 0.5 {
                Highlight::Bad
            } else {
                Highlight::Neutral
            };
            vec![
                Cell::code(&l.detector),
                Cell::text(if l.internal { "internal" } else { "behavioural" }),
                ci(l).highlight(tone),
                Cell::fixed(l.accuracy, 3),
                Cell::num(l.mann_whitney_p),
                Cell::text(format!("{} / {}", l.positives, l.negatives)),
                Cell::int(l.unscored as i64),
            ]
        })
        .collect()
}

const HEADERS: [&str; 7] = [
    "detector",
    "kind",
    "AUROC = A12 [95% bootstrap]",
    "accuracy (dev threshold)",
    "Mann–Whitney p",
    "positives / negatives",
    "unscored (NaN)",
];

/// The report page, to be written as `out_dir/report.html`: each model links to its run's
/// `report.html` by a path relative to `out_dir`.
pub fn render(
    zoo_name: &str,
    board: &Leaderboard,
    results: &[ModelScores],
    out_dir: &Path,
    build_note: &str,
) -> String {
    let mut page = Page::new(format!("MesaBench: {zoo_name}"));
    let (dev, held) =
        [Split::Dev, Split::Heldout].map(|s| results.iter().filter(|m| m.model.split == s).count()).into();
    page.subtitle(format!("{} models ({held} held-out, {dev} dev); {build_note}", results.len()));
    let s = page.section("What is measured");
    s.paragraph(
        "Every model's answers are known by construction (its training config), never from a detector. Detectors \
         see only the model (forward passes, one hidden layer) and the task or env interface. Scores: higher means \
         \"yes\" (mesa-optimizer; proxy objective; deceptive). AUROC equals Vargha–Delaney A12; intervals are \
         stratified bootstrap percentiles over models; accuracy uses the threshold that is best on dev models. A \
         model a detector cannot score counts against it (NaN fails closed). Held-out models are the headline.",
    );
    for q in Question::ALL {
        let lines: Vec<&Line> = board.lines.iter().filter(|l| l.question == q && l.split == Split::Heldout).collect();
        let s = page.section(format!("Held-out: {}", q.text()));
        if lines.is_empty() {
            s.callout("no held-out model has a known answer to this question", Highlight::Neutral);
            continue;
        }
        // The seed's claim, measured: evaluating outputs beside the best detector that looks inside.
        let output = lines.iter().find(|l| l.detector == "output-eval");
        let inside = lines.iter().filter(|l| l.internal).max_by(|a, b| a.auroc.total_cmp(&b.auroc));
        if let (Some(o), Some(i)) = (output, inside) {
            s.callout(
                format!(
                    "output evaluation: AUROC {:.3} [{:.3}, {:.3}]; best internal detector ({}): {:.3} [{:.3}, {:.3}]",
                    o.auroc, o.ci_lo, o.ci_hi, i.detector, i.auroc, i.ci_lo, i.ci_hi
                ),
                Highlight::Neutral,
            );
        }
        s.table(HEADERS.to_vec(), table_rows(&lines));
        let chart = LineChart {
            title: format!("ROC, held-out: {}", q.text()),
            x_label: "false-positive rate".into(),
            y_label: "true-positive rate".into(),
            series: lines.iter().map(|l| Series::new(l.detector.clone(), l.roc.clone()).markers()).collect(),
            ..Default::default()
        };
        s.figure(chart.to_svg(), format!("ROC curves of every detector on the held-out models ({})", q.text()));
    }
    let s = page.section("Dev split");
    let lines: Vec<&Line> = board.lines.iter().filter(|l| l.split == Split::Dev).collect();
    let mut rows = table_rows(&lines);
    for (r, l) in rows.iter_mut().zip(&lines) {
        r.insert(1, Cell::text(l.question.text()));
    }
    let mut headers = HEADERS.to_vec();
    headers.insert(1, "question");
    s.table(headers, rows);

    let s = page.section("Per factor (held-out)");
    s.paragraph(
        "AUROC of the positives that share one factor value against every negative of the question (for the \
         experiment factor: against that experiment's own negatives, its matched twins): which construction \
         (experiment, behaviour, implant, concealment) defeats which detector.",
    );
    let rows = board
        .factors
        .iter()
        .map(|f| {
            vec![
                Cell::code(&f.detector),
                Cell::text(f.question.text()),
                Cell::text(&f.factor),
                Cell::text(&f.value),
                Cell::fixed(f.auroc, 3),
                Cell::text(format!("{} / {}", f.positives, f.negatives)),
            ]
        })
        .collect();
    s.table(vec!["detector", "question", "factor", "value", "AUROC", "positives / negatives"], rows);

    let s = page.section("Every model");
    let detectors: Vec<String> = results.first().map(|m| m.scores.keys().cloned().collect()).unwrap_or_default();
    let mut headers: Vec<String> =
        ["model", "split", "mesa-opt.", "objective", "deceptive", "why known"].map(String::from).to_vec();
    for d in &detectors {
        headers.push(format!("{d} (mesa / proxy / deceptive)"));
    }
    let rows = results
        .iter()
        .map(|m| {
            let link = relative_report(out_dir, &m.model.run_dir);
            let answer = |q| match truth(&m.model.labels, q) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "—",
            };
            let mut row = vec![
                Cell::code(&m.model.id).link(link),
                Cell::text(m.model.split.word()),
                Cell::text(answer(Question::MesaOptimizer)),
                Cell::text(answer(Question::Objective)),
                Cell::text(answer(Question::Deceptive)),
                Cell::text(&m.model.labels.why),
            ];
            for d in &detectors {
                let v = |q| {
                    m.scores
                        .get(d)
                        .and_then(|s| s.get(&q))
                        .map_or("·".to_string(), |v| mesalab_report::fmt::fixed(*v, 3))
                };
                let mut c = Cell::numeric(Question::ALL.map(v).join(" / "));
                if let Some(e) = m.errors.get(d) {
                    c = c.bad().tooltip(e.clone());
                }
                row.push(c);
            }
            row
        })
        .collect();
    s.table(headers, rows);
    page.render()
}

/// `../…/report.html` of a run directory, relative to `from` when both are under one root.
fn relative_report(from: &Path, run_dir: &Path) -> String {
    let target = run_dir.join("report.html");
    let (from, target) = (
        std::fs::canonicalize(from).unwrap_or_else(|_| from.to_path_buf()),
        std::fs::canonicalize(&target).unwrap_or(target),
    );
    let common = from.components().zip(target.components()).take_while(|(a, b)| a == b).count();
    let ups = from.components().count() - common;
    let mut rel = std::path::PathBuf::new();
    for _ in 0..ups {
        rel.push("..");
    }
    for c in target.components().skip(common) {
        rel.push(c);
    }
    rel.display().to_string()
}

//! Report pieces shared by the cheese-maze, keys-chests and monster-shield reports: the verdict
//! table and the per-seed aggregate table, both read from a run's `summary` JSON.

use crate::goal_misgen::Rate;
use crate::report_common::run_header;
use mesalab_report::html::{Cell, Highlight, Page};
use mesalab_store::RunRecord;
use serde_json::Value;

/// The verdict callout and checks, then the run header.
pub fn verdict_section(page: &mut Page, summary: &Value, record: &RunRecord) {
    let verdict = &summary["verdict"];
    let s = page.section("Verdict");
    if verdict.is_null() {
        s.callout(format!("No verdict: the run is {}.", record.status.as_str()), Highlight::Neutral);
    } else {
        let holds = verdict["holds"].as_bool().unwrap_or(false);
        let claim = verdict["claim"].as_str().unwrap_or("?");
        let tone = if holds { Highlight::Good } else { Highlight::Bad };
        s.callout(format!("{} {claim}.", if holds { "Yes:" } else { "No — not shown that" }), tone);
        let rows = verdict["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let pass = c["pass"].as_bool().unwrap_or(false);
                vec![
                    Cell::text(c["name"].as_str().unwrap_or("")),
                    Cell::text(c["threshold"].as_str().unwrap_or("")),
                    Cell::num(c["worst"].as_f64().unwrap_or(f64::NAN)),
                    if pass { Cell::text("pass").good() } else { Cell::text("fail").bad() },
                ]
            })
            .collect();
        s.table_captioned(
            "Rates are pooled over seeds (Wilson 95% intervals elsewhere in the report).",
            vec!["check", "threshold", "value", "result"],
            rows,
        );
    }
    run_header(s, record);
}

/// Every `aggregate` entry of the summary as a table (mean ± std, [min, max], n).
pub fn aggregate_section(page: &mut Page, summary: &Value) {
    let Some(agg) = summary["aggregate"].as_object() else { return };
    let rows = agg
        .iter()
        .filter(|(_, a)| a.is_object())
        .map(|(k, a)| {
            let f = |n: &str| a[n].as_f64().unwrap_or(f64::NAN);
            vec![
                Cell::code(k.clone()),
                Cell::mean_pm(f("mean"), f("std")),
                Cell::text(format!(
                    "[{}, {}]",
                    mesalab_report::fmt::number(f("min")),
                    mesalab_report::fmt::number(f("max"))
                )),
                Cell::int(a["n"].as_i64().unwrap_or(0)),
            ]
        })
        .collect();
    page.section("Per-seed metrics across seeds").table(vec!["metric", "mean ± std", "[min, max]", "seeds"], rows);
}

/// A [`Rate`] stored in the summary JSON (NaN rate when absent).
pub fn rate(v: &Value) -> Rate {
    serde_json::from_value(v.clone()).unwrap_or(Rate { rate: f64::NAN, ..Rate::default() })
}

/// `12.3% [8.1, 17.0]` for a rate with its Wilson interval, as a table cell.
pub fn rate_cell(r: &Rate) -> Cell {
    if r.n == 0 {
        return Cell::text("–");
    }
    Cell::text(format!(
        "{} [{}, {}] (n={})",
        mesalab_report::fmt::percent(r.rate, 1),
        mesalab_report::fmt::percent(r.ci_lo, 1),
        mesalab_report::fmt::percent(r.ci_hi, 1),
        r.n
    ))
}

//! Self-contained HTML reports with inline SVG plots.
//!
//! Reports are single HTML5 files: inline CSS, inline SVG, no scripts, no network requests, no
//! external fonts. They open anywhere, print well, and can be attached to an e-mail.
//!
//! - [`svg`]: charts drawn by hand ([`svg::LineChart`], [`svg::Heatmap`], [`svg::BarChart`],
//!   [`svg::Scatter`]), each with `to_svg() -> String`.
//! - [`html`]: [`html::Page`] with sections of paragraphs, figures, tables, key–value lists and
//!   collapsible blocks; [`html::index_page`] links several reports.
//! - [`fmt`]: number formatting for tables (`0.2066`, `1.0005`, `3.2e-5`, `0.2066 ± 0.0031`).
//! - [`escape`]: text/attribute escaping and a small allow-list sanitizer for inline HTML.
//!
//! ```
//! use mesalab_report::{html::{Cell, Page}, svg::{LineChart, Series}};
//! let mut page = Page::new("Linear regression in-context");
//! page.subtitle("seed 0");
//! page.section("Loss")
//!     .paragraph("Test loss over training.")
//!     .figure(LineChart::new("loss").series(Series::new("model", vec![(0.0, 1.0), (1.0, 0.5)])).to_svg(), "Loss.")
//!     .table(vec!["metric", "value"], vec![vec![Cell::text("mse"), Cell::num(0.2066)]]);
//! let html = page.render();
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! ```

pub mod escape;
pub mod fmt;
pub mod html;
pub mod svg;

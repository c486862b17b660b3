//! Which algorithm does the trained model run? Every candidate is scored against the model on the
//! same validation tasks, the closest one by squared prediction difference (SPD) is named, and
//! the identification verdict asks whether it *fits*: loss within a tolerance of the candidate's
//! and implied weights aligned with its weights, on every converged seed, with every seed naming
//! the same candidate.
//!
//! Candidates (all for k = the model's depth): k-step GD, k-step GD++ (shared and per-step η;
//! for k ≥ 3 also a γ per step),
//! k-step preconditioned GD with a matrix per step fitted to the labels (Ahn et al. 2023), the
//! same family fitted to the model's own predictions on the fit tasks (the family member closest
//! to the model: if even it does not fit, no member does), ridge and OLS.
//!
//! Where the weights allow it, the model's own first-step preconditioner is read off its first
//! layer and compared with the fitted one.

use super::{Baselines, Config, SeedMetrics, converged, predict};
use mesalab_analysis::icl::Tasks;
use mesalab_analysis::icl_identify::{Comparison, MatrixMatch, compare, fit_preconditioned_gd, matrix_match};
use mesalab_nn::lsa::{LayerWeights, Lsa};
use serde_json::json;

/// Block-coordinate sweeps of the preconditioner fits (no sweep raises the fit loss; each starts
/// from the previous one's matrices).
pub(super) const SWEEPS: usize = 4;

/// Label of the projection candidate.
fn projection_label(steps: usize) -> String {
    format!("{steps}-step preconditioned GD, fitted to the model")
}

/// The model against every candidate on `val`, and its own first-layer preconditioner read
/// against the fitted ones.
pub(super) struct Identification {
    pub comparisons: Vec<Comparison>,
    /// Index of the closest candidate by SPD.
    pub closest: usize,
    /// The model's first-step preconditioner vs the label-fitted one's and the projection's.
    pub layer1: Option<(MatrixMatch, MatrixMatch)>,
}

/// Scores `model` (predictions `pred` on `val` and ∂ŷ/∂x_q `sens` on its first tasks) against
/// every candidate; `fit` holds the tasks on which the projection is fitted.
pub(super) fn identify(
    cfg: &Config,
    model: &Lsa,
    fit: &Tasks,
    val: &Tasks,
    b: &Baselines,
    pred: &[f64],
    sens: &[f64],
) -> Identification {
    let k = cfg.reference_steps();
    let d = val.d;
    let count = sens.len() / d;
    let first = |v: Vec<f64>| v[..count * d].to_vec();
    let mut candidates: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut scalar = vec![b.reference(k)];
    scalar.extend(b.gd_pp(k));
    scalar.extend(b.gd_pp_per_step.as_ref());
    scalar.extend(b.gd_pp_free.as_ref());
    scalar.push(&b.ridge);
    scalar.push(&b.ols);
    for alg in scalar {
        candidates.push((alg.label(), alg.predict(val), first(alg.implied_weights(val))));
    }
    candidates.push((b.precond.label(), b.precond.predict(val), first(b.precond.implied_weights(val))));
    let projection = fit_preconditioned_gd(fit, &b.precond_init, &predict(model, fit), SWEEPS);
    candidates.push((projection_label(k), projection.predict(val), first(projection.implied_weights(val))));

    let comparisons: Vec<Comparison> =
        candidates.into_iter().map(|(label, p, v)| compare(label, val, pred, sens, &p, &v)).collect();
    let closest =
        comparisons.iter().enumerate().min_by(|a, b| a.1.spd.total_cmp(&b.1.spd)).map(|(i, _)| i).unwrap_or(0);
    let spec = cfg.lsa_spec();
    let layer1 = (!spec.softmax).then(|| {
        let read = read_first_step_preconditioner(&model.weights()[0], spec.d_token, spec.heads, val.n_context);
        (matrix_match(&read, b.precond.step(0), d), matrix_match(&read, projection.step(0), d))
    });
    Identification { comparisons, closest, layer1 }
}

/// The first layer's step-1 preconditioner: with only the x-block `A_h` of `W_KQ` and the y,y
/// entry `c_h` of `P W_V` active, the layer adds `Σ_h c_h Σ_i y_i x_iᵀ A_h x_q` to the query's
/// y-slot, and the prediction is minus that slot, so `ŷ_1 = x_qᵀ P (Xᵀy/N)` with
/// `P = −N Σ_h c_h A_hᵀ` (the GD construction gives `P = η I`). The other blocks are ignored: for
/// them the reading is an approximation, which the comparison with the fitted P measures.
pub(super) fn read_first_step_preconditioner(w: &LayerWeights, d_token: usize, heads: usize, n: usize) -> Vec<f64> {
    let (dt, dx) = (d_token, d_token - 1);
    let mut p = vec![0.0; dx * dx];
    for h in 0..heads {
        let (wkq, pwv) = (w.w_kq(h, dt), w.p_w_v(h, dt));
        let c = f64::from(pwv[dt * dt - 1]);
        for r in 0..dx {
            for col in 0..dx {
                // P[r, col] = −N c A[col, r]
                p[r * dx + col] -= n as f64 * c * f64::from(wkq[col * dt + r]);
            }
        }
    }
    p
}

/// Writes the closest candidate's certificate into a seed's metrics.
pub(super) fn record(m: &mut SeedMetrics, id: &Identification, cfg: &Config) {
    let c = &id.comparisons[id.closest];
    m.identified_algorithm = Some(c.algorithm.clone());
    m.identified_loss_ratio = Some(c.loss_ratio);
    m.identified_spd = Some(c.spd);
    m.identified_ilwd = Some(c.ilwd);
    m.identified_cosine = Some(c.cosine);
    m.identified_fits = fits(cfg, c);
    if let Some(pc) = id.comparisons.iter().find(|c| c.algorithm.ends_with("preconditioned GD")) {
        m.precond_loss = Some(pc.candidate_loss);
        m.loss_ratio_vs_precond = Some(pc.loss_ratio);
    }
    if let Some((fitted, projection)) = &id.layer1 {
        m.layer1_precond_cosine = Some(fitted.cosine);
        m.layer1_precond_rel_distance = Some(fitted.rel_distance);
        m.layer1_precond_anisotropy = Some(fitted.read_anisotropy);
        m.layer1_projection_cosine = Some(projection.cosine);
    }
}

fn fits(cfg: &Config, c: &Comparison) -> bool {
    let v = &cfg.verdict;
    (c.loss_ratio - 1.0).abs() <= v.max_identified_loss_gap && c.cosine >= v.min_identified_cosine
}

/// Rows `[seed, algorithm, candidate_loss, loss_ratio, spd, ilwd, cosine]` of the
/// `identification` table.
pub(super) fn rows(seed: u64, id: &Identification) -> Vec<Vec<serde_json::Value>> {
    id.comparisons
        .iter()
        .map(|c| {
            vec![
                json!(seed),
                json!(c.algorithm),
                json!(c.candidate_loss),
                json!(c.loss_ratio),
                json!(c.spd),
                json!(c.ilwd),
                json!(c.cosine),
            ]
        })
        .collect()
}

pub(super) const COLUMNS: [&str; 7] = ["seed", "algorithm", "candidate_loss", "loss_ratio", "spd", "ilwd", "cosine"];

/// The identification verdict over the converged seeds: the candidate most seeds find closest is
/// named, and it fits when every converged seed finds it closest, its loss is within
/// `1 ± max_identified_loss_gap` of the candidate's and its implied weights have mean cosine ≥
/// `min_identified_cosine` with the candidate's. `per_seed_comparisons[i]` belongs to
/// `all_seeds[i]`.
pub fn verdict(cfg: &Config, all_seeds: &[SeedMetrics], per_seed_comparisons: &[Vec<Comparison>]) -> serde_json::Value {
    use crate::verdict::{Bound, Check, Verdict};
    let v = &cfg.verdict;
    let seeds: Vec<(&SeedMetrics, &Vec<Comparison>)> =
        all_seeds.iter().zip(per_seed_comparisons).filter(|(m, _)| converged(cfg, m.progress)).collect();
    let unconverged: Vec<u64> = all_seeds.iter().filter(|m| !converged(cfg, m.progress)).map(|m| m.seed).collect();
    // The closest candidate most seeds name (ties: the first seed's).
    let (named, agreeing) =
        crate::verdict::modal(seeds.iter().map(|(m, _)| m.identified_algorithm.as_deref().unwrap_or("")));
    let of_named = |f: &dyn Fn(&Comparison) -> f64| -> Vec<(u64, f64)> {
        seeds.iter().map(|(m, cs)| (m.seed, cs.iter().find(|c| c.algorithm == named).map_or(f64::NAN, f))).collect()
    };
    let checks = vec![
        Check::count(format!("seeds whose closest candidate is {named}"), seeds.len().max(1) as u64, agreeing),
        Check::worst_seed(
            format!("loss / {named} loss"),
            Bound::Within { center: 1.0, tol: v.max_identified_loss_gap },
            of_named(&|c| c.loss_ratio),
        ),
        Check::worst_seed(
            format!("implied-weight cosine vs {named}"),
            Bound::AtLeast(v.min_identified_cosine),
            of_named(&|c| c.cosine),
        ),
        Check::seeds(v.min_seeds, seeds.len()),
    ];
    let count = per_seed_comparisons.first().map_or(0, Vec::len);
    let verdict = Verdict::new(
        format!("runs {named} (the closest of {count} candidate algorithms by prediction distance fits it)"),
        "k-step GD, GD++ (shared and per-step η and γ), preconditioned GD with a matrix per step (fitted to the labels, \
         and to the model's own predictions), ridge and OLS, on the same validation tasks",
        checks,
    )
    .with_unconverged(unconverged, seeds.len(), v.min_seeds);
    let identified = if verdict.holds { named.clone() } else { "none fits".into() };
    verdict.with_context(json!({ "identified": identified, "closest": named })).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icl_gd::{Baselines, sensitivities};
    use burn::module::Module;
    use mesalab_analysis::icl::Algorithm;
    use mesalab_core::{Seed, Streams};
    use mesalab_nn::device::cpu_autodiff;

    fn small_config(layers: usize) -> Config {
        let mut cfg = Config::default();
        cfg.model.layers = layers;
        cfg.task.d = 4;
        cfg.task.n_context = 8;
        cfg
    }

    /// Identification of `model` (on the autodiff device) against baselines fitted on fresh tasks, with everything measured
    /// as `evaluate` measures it.
    fn identify_model(cfg: &Config, model: &Lsa) -> (Identification, Baselines) {
        let spec = cfg.task_spec();
        let base = Streams::new(Seed(5));
        let fit = Tasks::sample(&spec, 2000, &mut base.stream("fit"));
        let precond_fit = Tasks::sample(&spec, 6000, &mut base.stream("precond"));
        let val = Tasks::sample(&spec, 2000, &mut base.stream("val"));
        let b = Baselines::fit(&fit, &precond_fit, cfg.model.layers.max(2), cfg.model.layers);
        let inference = model.valid();
        let pred = predict(&inference, &val);
        let sens = sensitivities(model, &val, 500, &cpu_autodiff());
        (identify(cfg, &inference, &precond_fit, &val, &b, &pred, &sens), b)
    }

    fn metrics(seed: u64, id: &Identification, cfg: &Config) -> SeedMetrics {
        let mut m = SeedMetrics { seed, progress: 1.0, ..SeedMetrics::default() };
        record(&mut m, id, cfg);
        m
    }

    #[test]
    fn the_gd_construction_reads_as_eta_times_identity() {
        let (d_token, n, eta_over_n) = (5, 8, 0.07f32);
        let w = LayerWeights::gd_construction(d_token, 2, eta_over_n);
        let p = read_first_step_preconditioner(&w, d_token, 2, n);
        for r in 0..4 {
            for c in 0..4 {
                let want = if r == c { f64::from(eta_over_n) * n as f64 } else { 0.0 };
                assert!((p[r * 4 + c] - want).abs() < 1e-6, "P[{r},{c}] = {}, want {want}", p[r * 4 + c]);
            }
        }
    }

    /// A hand-built 2-layer LSA that runs exactly 2 steps of GD is identified as an algorithm that
    /// fits (2-step GD itself or the preconditioned GD closest to it, which is then 2-step GD);
    /// a random network of the same shape is a measured "none fits".
    #[test]
    fn two_step_gd_is_identified_and_a_random_network_is_not() {
        let cfg = small_config(2);
        let spec = cfg.lsa_spec();
        let base = Streams::new(Seed(5));
        let fit = Tasks::sample(&cfg.task_spec(), 2000, &mut base.stream("fit"));
        let Algorithm::Gd { eta_over_n, .. } = mesalab_analysis::icl::fit_gd(&fit, 2) else { unreachable!() };
        let layer = || LayerWeights::gd_construction(spec.d_token, 1, eta_over_n as f32);
        let gd_model = Lsa::from_weights(spec.clone(), vec![layer(), layer()], &cpu_autodiff());
        let (id, _) = identify_model(&cfg, &gd_model);
        let best = &id.comparisons[id.closest];
        assert!(best.algorithm.contains("2-step"), "closest: {best:?}");
        assert!(fits(&cfg, best), "{best:?}");
        let (fitted, _) = id.layer1.as_ref().expect("linear attention is read");
        assert!(fitted.cosine > 0.98 && fitted.read_anisotropy < 1e-6, "{fitted:?}");

        let mut rng = Streams::new(Seed(11)).stream("init");
        let random = Lsa::init(spec.clone(), 0.3, &mut rng, &cpu_autodiff());
        let (rid, _) = identify_model(&cfg, &random);
        assert!(!fits(&cfg, &rid.comparisons[rid.closest]), "{:?}", rid.comparisons[rid.closest]);

        // Over three seeds: GD models → yes, naming the candidate; random models → "none fits".
        let yes: Vec<SeedMetrics> = (0..3).map(|s| metrics(s, &id, &cfg)).collect();
        let comparisons = vec![id.comparisons.clone(); 3];
        let v = verdict(&cfg, &yes, &comparisons);
        assert_eq!(v["answer"], "yes", "{v:#}");
        assert!(v["context"]["identified"].as_str().unwrap().contains("2-step"), "{v:#}");
        let no: Vec<SeedMetrics> = (0..3).map(|s| metrics(s, &rid, &cfg)).collect();
        let v = verdict(&cfg, &no, &vec![rid.comparisons.clone(); 3]);
        assert_eq!((v["answer"].as_str(), v["context"]["identified"].as_str()), (Some("no"), Some("none fits")));
    }

    #[test]
    fn the_verdict_fails_closed_and_needs_the_seeds_to_agree() {
        let cfg = small_config(2);
        let comparison = |name: &str, ratio: f64, cosine: f64| Comparison {
            algorithm: name.into(),
            candidate_loss: 0.1,
            loss_ratio: ratio,
            spd: 0.0,
            ilwd: 0.0,
            cosine,
        };
        let seed = |s: u64, name: &str| SeedMetrics {
            seed: s,
            progress: 1.0,
            identified_algorithm: Some(name.into()),
            ..SeedMetrics::default()
        };
        let good = vec![comparison("A", 1.01, 0.999), comparison("B", 0.8, 0.9)];
        let seeds = [seed(0, "A"), seed(1, "A"), seed(2, "A")];
        assert_eq!(verdict(&cfg, &seeds, &vec![good.clone(); 3])["answer"], "yes");
        // One seed's closest candidate is another one: the seeds disagree.
        let split = [seed(0, "A"), seed(1, "B"), seed(2, "A")];
        assert_eq!(verdict(&cfg, &split, &vec![good.clone(); 3])["answer"], "no");
        // NaN cosine on one seed fails.
        let mut nan = vec![good.clone(); 3];
        nan[1][0].cosine = f64::NAN;
        assert_eq!(verdict(&cfg, &seeds, &nan)["answer"], "no");
        // Two seeds are too few.
        assert_eq!(verdict(&cfg, &seeds[..2], &vec![good; 2])["answer"], "no");
    }
}

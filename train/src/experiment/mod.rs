//! `train experiment`: the paper's comparisons at small scale, run end to end from one command.
//!
//! Three studies share one pool of runs, and an opt-in fourth chooses their settings:
//! - **methods**: cross-entropy vs MoCo-v2 vs Exemplar-v2, and the v1 variants, each scored by
//!   a linear probe and kNN on frozen features, against the untrained network;
//! - **augmentation**: MoCo-v2 and cross-entropy along the paper's ablation
//!   (flip → +crop → +colour → +grayscale → +blur), on the built-in colour scenes, with the
//!   change each step makes to the views measured ([`views`]);
//! - **transfer**: detection, segmentation and landmarks fine-tuned from each pretrained
//!   backbone (and from random initialisation) on the built-in scenes and faces;
//! - **sweep** ([`sweep`]): MoCo-v2 with one setting changed at a time, scored on held-out
//!   training images, which is how `configs/study.toml` was chosen.
//!
//! Every run is identified by its full configuration: a run whose recorded configuration matches
//! is reused, so an interrupted study resumes where it stopped and the studies share the runs
//! they have in common. The report — tables, paired 95% intervals ([`stats`]), PNG charts, the
//! command and the machine — is written by [`report`].

mod arms;
pub mod budget;
mod claims;
pub mod plot;
pub mod report;
mod runs;
mod sections;
pub mod stats;
pub mod sweep;
pub mod views;

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use self::arms::transfer_config;
pub use self::arms::{
    ABLATED, ABLATION, Arm, Corpus, METHODS, TASKS, TRANSFERRED, arms, pretrain_config, scenes,
};
pub use self::budget::{Budget, BudgetError};
use self::runs::{Probe, pretrain_run, transfer_run, untrained_run};
use crate::config::Method;
use crate::data::{self, DataSource, Split};

/// The studies `train experiment` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Study {
    Methods,
    Augmentation,
    Transfer,
    /// Not part of the default study: one setting changed at a time, on held-out data.
    Sweep,
}

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("{0}")]
    Invalid(String),
    #[error("study settings")]
    Budget(#[from] BudgetError),
    #[error("pretraining {run}")]
    Pretrain {
        run: PathBuf,
        #[source]
        source: crate::run::RunError,
    },
    #[error("fine-tuning {run}")]
    Finetune {
        run: PathBuf,
        #[source]
        source: crate::run::RunError,
    },
    #[error("evaluating {run}")]
    Eval {
        run: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("measuring the ablation's views")]
    Views(#[source] data::DataError),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What to run, and where.
#[derive(Debug, Clone)]
pub struct StudyOptions {
    pub studies: Vec<Study>,
    pub seeds: usize,
    /// The shared settings (`configs/study.toml`, or [`Budget::default`]).
    pub settings: Budget,
    /// Multiplies the data budget (pretraining images, probe and transfer sets); 1 is the
    /// default study sized for about an hour on 2 CPU cores.
    pub scale: f64,
    /// Pretraining and linear-probe data of the methods study (Fashion-MNIST by default).
    pub data: DataSource,
    /// Where runs go (reused across invocations).
    pub work: PathBuf,
    /// Where the report goes.
    pub out: PathBuf,
    /// The command line, recorded in the report.
    pub command: String,
    pub workers: usize,
    pub device: String,
}

fn main_corpus() -> String {
    Corpus::Main.name().to_string()
}

/// A finished pretraining run, scored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainResult {
    pub method: String,
    pub augment: String,
    /// `main` or `scenes` ([`Corpus::name`]).
    #[serde(default = "main_corpus")]
    pub corpus: String,
    pub seed: u64,
    pub linear_top1: f64,
    pub knn_top1: f64,
    /// `(step, mean loss of the interval)`.
    pub loss_curve: Vec<(usize, f64)>,
    pub images_per_second: f64,
    pub seconds: f64,
    /// The configuration it ran with; a run is reused only when this matches.
    pub config: String,
}

impl PretrainResult {
    /// One line for the log.
    fn scores(&self) -> String {
        format!(
            "linear {:.2}%, kNN {:.2}%",
            self.linear_top1 * 100.0,
            self.knn_top1 * 100.0
        )
    }

    pub fn is(&self, arm: Arm) -> bool {
        self.method == arm.method.name()
            && self.augment == arm.augment.name()
            && self.corpus == arm.corpus.name()
    }
}

/// The method name under which the untrained network is reported.
pub const UNTRAINED: &str = "untrained";

/// Where the pretraining run of `name` (an arm's slug, or `untrained`) and `seed` goes.
fn pretrain_dir(options: &StudyOptions, name: &str, seed: u64) -> PathBuf {
    options
        .work
        .join("pretrain")
        .join(name)
        .join(format!("seed{seed}"))
}

/// A finished transfer run, scored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransferResult {
    pub task: String,
    /// `random` or the pretraining arm's slug.
    pub init: String,
    pub seed: u64,
    /// The task's headline metric (VOC07 mAP50, mIoU, NME) and its value after fine-tuning.
    pub metric: String,
    pub value: f64,
    pub seconds: f64,
    pub config: String,
}

/// Everything the report is made of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudyResults {
    pub studies: Vec<Study>,
    pub seeds: usize,
    pub scale: f64,
    pub budget: Budget,
    pub data: String,
    pub command: String,
    pub pretrain: Vec<PretrainResult>,
    pub transfer: Vec<TransferResult>,
    /// What each ablation step changes in the views, on the ablation's scenes and on `data`.
    #[serde(default)]
    pub views: Vec<views::ViewChange>,
    /// The settings sweep's runs, scored on held-out training images.
    #[serde(default)]
    pub sweep: Vec<sweep::SweepResult>,
    pub seconds: f64,
    /// Runs reused from an earlier invocation instead of trained.
    pub reused: usize,
}

/// Runs the studies (reusing finished runs) and writes the report into `options.out`.
pub fn run(options: &StudyOptions) -> Result<StudyResults, ExperimentError> {
    if options.seeds == 0 {
        return Err(ExperimentError::Invalid(
            "--seeds must be at least 1".into(),
        ));
    }
    if !(options.scale.is_finite() && options.scale > 0.0) {
        return Err(ExperimentError::Invalid(format!(
            "--scale must be a positive number (got {})",
            options.scale
        )));
    }
    if options.studies.is_empty() {
        return Err(ExperimentError::Invalid("no study chosen".into()));
    }
    let started = Instant::now();
    let budget = options.settings.scaled(options.scale);
    let arms = arms(&options.studies);
    let mut results = StudyResults {
        studies: options.studies.clone(),
        seeds: options.seeds,
        scale: options.scale,
        budget,
        data: options.data.to_string(),
        command: options.command.clone(),
        pretrain: Vec::new(),
        transfer: Vec::new(),
        views: Vec::new(),
        sweep: Vec::new(),
        seconds: 0.0,
        reused: 0,
    };
    let has = |study| options.studies.contains(&study);
    let total = (arms.len() + usize::from(has(Study::Methods))) * options.seeds
        + if has(Study::Transfer) {
            TASKS.len() * (TRANSFERRED.len() + 1) * options.seeds
        } else {
            0
        }
        + if has(Study::Sweep) {
            (sweep::points(&budget).len() + 1) * options.seeds
        } else {
            0
        };
    let mut done = 0;
    for arm in &arms {
        let probe = Probe::for_corpus(options, &budget, arm.corpus);
        for seed in 0..options.seeds as u64 {
            done += 1;
            let dir = pretrain_dir(options, &arm.slug(), seed);
            let config = pretrain_config(options, &budget, *arm, seed);
            let (result, reused) = pretrain_run(&config, *arm, &dir, &probe, options)?;
            log(
                done,
                total,
                &format!("{} seed {seed}", arm.slug()),
                reused,
                result.scores(),
            );
            results.reused += usize::from(reused);
            results.pretrain.push(result);
        }
    }
    if has(Study::Methods) {
        // The floor every method must clear: the same network, untrained, scored the same way.
        let probe = Probe::for_corpus(options, &budget, Corpus::Main);
        for seed in 0..options.seeds as u64 {
            done += 1;
            // Everything that shapes the network and its input is in the CE arm's config.
            let config =
                pretrain_config(options, &budget, Arm::default_for(Method::Supervised), seed);
            let dir = pretrain_dir(options, UNTRAINED, seed);
            let (result, reused) = untrained_run(options, &config, &probe, &dir, seed)?;
            log(
                done,
                total,
                &format!("untrained seed {seed}"),
                reused,
                result.scores(),
            );
            results.reused += usize::from(reused);
            results.pretrain.push(result);
        }
    }
    if has(Study::Augmentation) {
        results.views = measure_views(options, &budget)?;
    }
    if has(Study::Transfer) {
        transfer_study(options, &budget, &mut results, &mut done, total)?;
    }
    if has(Study::Sweep) {
        sweep::run(options, &budget, &mut results, &mut done, total)?;
    }
    results.seconds = started.elapsed().as_secs_f64();
    report::write(&results, &options.out)?;
    Ok(results)
}

fn transfer_study(
    options: &StudyOptions,
    budget: &Budget,
    results: &mut StudyResults,
    done: &mut usize,
    total: usize,
) -> Result<(), ExperimentError> {
    for task in TASKS {
        for init in std::iter::once(None).chain(TRANSFERRED.map(Some)) {
            for seed in 0..options.seeds as u64 {
                *done += 1;
                let init_name = init.map_or("random".to_string(), |m| Arm::default_for(m).slug());
                let dir = options
                    .work
                    .join("transfer")
                    .join(task.name())
                    .join(&init_name)
                    .join(format!("seed{seed}"));
                let backbone =
                    init.map(|m| pretrain_dir(options, &Arm::default_for(m).slug(), seed));
                // The backbone's own configuration is part of the run's identity: a retrained
                // backbone means the transfer must be redone too.
                let backbone_config = match init {
                    Some(method) => {
                        pretrain_config(options, budget, Arm::default_for(method), seed).to_toml()
                    }
                    None => String::new(),
                };
                let config = transfer_config(options, budget, task, backbone, seed);
                let (result, reused) = transfer_run(config, &backbone_config, &dir, &init_name)?;
                log(
                    *done,
                    total,
                    &format!("{} from {init_name} seed {seed}", task.name()),
                    reused,
                    format!("{} {:.2}", result.metric, result.value),
                );
                results.reused += usize::from(reused);
                results.transfer.push(result);
            }
        }
    }
    Ok(())
}

/// What each ablation step changes in the views: on the scenes the ablation runs on, and on
/// the methods study's data for comparison.
fn measure_views(
    options: &StudyOptions,
    budget: &Budget,
) -> Result<Vec<views::ViewChange>, ExperimentError> {
    let mut changes = Vec::new();
    for (source, size) in [
        (&DataSource::Synthetic, budget.ablation_image_size),
        (&options.data, budget.image_size),
    ] {
        let synthetic = scenes(budget);
        let dataset = data::open(source, Split::Train, synthetic, size)
            .map_err(ExperimentError::Views)?
            .ok_or_else(|| ExperimentError::Invalid(format!("{source} has no training split")))?;
        changes.extend(
            views::measure(&dataset, &source.to_string(), &ABLATION, size)
                .map_err(ExperimentError::Views)?,
        );
    }
    Ok(changes)
}

fn log(done: usize, total: usize, what: &str, reused: bool, result: String) {
    let how = if reused { " (reused)" } else { "" };
    eprintln!("[{done}/{total}] {what}: {result}{how}");
}

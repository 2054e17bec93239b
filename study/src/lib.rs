//! exemplar-study: the paper's comparisons at small scale (`train experiment`), run end to end
//! from one command, and feature inversion ([`inversion`], `train analyze`).
//!
//! The studies share one pool of runs, and an opt-in sweep chooses their settings:
//! - **methods**: cross-entropy vs MoCo-v2 vs Exemplar-v2, and the v1 variants, each scored by
//!   a linear probe and kNN on frozen features, against the untrained network;
//! - **augmentation**: MoCo-v2 and cross-entropy along the paper's ablation
//!   (flip → +crop → +colour → +grayscale → +blur), on the built-in colour scenes, with the
//!   change each step makes to the views measured ([`views`]);
//! - **transfer**: detection, segmentation and landmarks fine-tuned from each pretrained
//!   backbone (and from random initialisation) on the built-in scenes and faces;
//! - the paper's analyses ([`analyses`], [`analysis_sections`]): **misalignment** (pretrained
//!   on face identities, transferred to landmarks), **inversion** (what a backbone's features
//!   keep of a picture), **detection errors** (localisation, confusion, background),
//!   **pretraining data** (other corpora, a tenth of the images, the base classes only) and
//!   **few-shot** episodes on classes a backbone never saw;
//! - **sweep** ([`sweep`]): MoCo-v2 with one setting changed at a time, scored on held-out
//!   training images, which is how `configs/study.toml` was chosen.
//!
//! Every run is identified by its full configuration: a run whose recorded configuration matches
//! is reused, so an interrupted study resumes where it stopped and the studies share the runs
//! they have in common; [`plan`] lists the runs, so that machines sharing the work directory can
//! run them side by side (`--plan`, `--only N`). The report — tables, paired 95% intervals
//! ([`stats`]), PNG charts, the command and the machine — is written by [`report`].

pub mod analyses;
mod arms;
pub mod budget;
pub mod inversion;
pub mod plan;
pub mod plot;
pub mod report;
mod runs;
pub mod stats;
pub mod sweep;
pub mod views;

use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use self::arms::{
    ABLATED, ABLATION, Arm, BASE_CLASSES, Corpus, DATA_CORPORA, INVERTED_CORPUS, METHODS, TASKS,
    TRANSFERRED, arms, faces, pretrain_config, scenes,
};
pub use self::budget::{Budget, BudgetError};
pub use self::plan::Step;
pub use self::sweep::SweepResult;
use exemplar_data::{self, DataSource, Split};

/// The studies `train experiment` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Study {
    /// CE, MoCo-v2 and Exemplar-v2 on the main data, against the untrained network.
    Methods,
    /// MoCo-v1 and Exemplar-v1 on the main data: the paper's v1 comparison.
    V1,
    Augmentation,
    Transfer,
    /// CE on the built-in faces' identity labels against MoCo-v2 and Exemplar-v2 on the same
    /// images, each transferred to landmarks: a pretraining task misaligned with the target.
    Misalignment,
    /// Each method's backbone, pretrained on the scenes, inverted: how much of a picture its
    /// features keep (pixel error of the reconstruction).
    Inversion,
    /// The types of the transferred detectors' false positives (localisation, confusion,
    /// background).
    DetectionErrors,
    /// Each method pretrained on other data (textures, faces) and on less of it (10% of the
    /// images, half the classes), then transferred to the same tasks.
    PretrainingData,
    /// 5-way 1- and 5-shot episodes on classes the backbone never saw in pretraining.
    FewShot,
    /// Not part of the default study: one setting changed at a time, on held-out data.
    Sweep,
}

impl Study {
    /// What `train experiment` runs without `--study`: the three methods, their transfer and
    /// the two analyses that reuse it or need few runs: about 1.3 hours on 2 CPU cores
    /// (docs/study.md). The rest is in [`Study::ALL`].
    pub const DEFAULT: [Study; 4] = [
        Study::Methods,
        Study::Transfer,
        Study::Misalignment,
        Study::DetectionErrors,
    ];

    /// Every study but the sweep: what the cluster's Indexed Job runs (`docker/k8s/`).
    pub const ALL: [Study; 9] = [
        Study::Methods,
        Study::V1,
        Study::Augmentation,
        Study::Transfer,
        Study::Misalignment,
        Study::Inversion,
        Study::DetectionErrors,
        Study::PretrainingData,
        Study::FewShot,
    ];
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
        source: exemplar_train::run::RunError,
    },
    #[error("fine-tuning {run}")]
    Finetune {
        run: PathBuf,
        #[source]
        source: exemplar_train::run::RunError,
    },
    #[error("evaluating {run}")]
    Eval {
        run: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("inverting {run}")]
    Invert {
        run: PathBuf,
        #[source]
        source: crate::inversion::InvertError,
    },
    #[error("measuring the ablation's views")]
    Views(#[source] exemplar_data::DataError),
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
    /// default, whose four default studies take about 1.3 hours on 2 CPU cores.
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
    /// The types of a detector's top-ranked false positives on the validation images.
    #[serde(default)]
    pub errors: Option<exemplar_train::eval::detection_errors::ErrorBreakdown>,
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
    /// Novel-class few-shot accuracies.
    #[serde(default)]
    pub fewshot: Vec<analyses::FewShotRun>,
    /// Feature inversions.
    #[serde(default)]
    pub inversion: Vec<analyses::InversionRun>,
    pub seconds: f64,
    /// Runs reused from an earlier invocation instead of trained.
    pub reused: usize,
}

/// The shared settings at the study's scale, after checking the options.
fn checked_budget(options: &StudyOptions) -> Result<Budget, ExperimentError> {
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
    Ok(options.settings.scaled(options.scale))
}

/// The runs of the study `options` describes, in order ([`plan::plan`]), with the settings
/// they run at.
pub fn steps(options: &StudyOptions) -> Result<(Budget, Vec<Step>), ExperimentError> {
    let budget = checked_budget(options)?;
    let steps = plan::plan(options, &budget);
    Ok((budget, steps))
}

fn empty_results(options: &StudyOptions, budget: Budget) -> StudyResults {
    StudyResults {
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
        fewshot: Vec::new(),
        inversion: Vec::new(),
        seconds: 0.0,
        reused: 0,
    }
}

/// Runs the studies (reusing finished runs) and writes the report into `options.out`.
pub fn run(options: &StudyOptions) -> Result<StudyResults, ExperimentError> {
    let started = Instant::now();
    let (budget, steps) = steps(options)?;
    let mut results = run_steps(options, budget, &steps, 0..steps.len())?;
    if options.studies.contains(&Study::Augmentation) {
        results.views = measure_views(options, &budget)?;
    }
    if options.studies.contains(&Study::Inversion) {
        std::fs::create_dir_all(&options.out).map_err(|source| ExperimentError::Io {
            path: options.out.clone(),
            source,
        })?;
        analyses::inversion_figure(
            options,
            &budget,
            &options.out.join(report::INVERSION_FIGURE),
        )?;
    }
    results.seconds = started.elapsed().as_secs_f64();
    report::write(&results, &options.out)?;
    Ok(results)
}

/// Runs (or reuses) run `index` of the plan alone, without a report: one pod's share of the
/// study on a cluster. A fine-tuning run needs its backbone finished first.
pub fn run_only(options: &StudyOptions, index: usize) -> Result<StudyResults, ExperimentError> {
    let started = Instant::now();
    let (budget, steps) = steps(options)?;
    if index >= steps.len() {
        return Err(ExperimentError::Invalid(format!(
            "--only {index}: the plan has {} runs, numbered 0 to {}",
            steps.len(),
            steps.len().saturating_sub(1)
        )));
    }
    let mut results = run_steps(options, budget, &steps, index..index + 1)?;
    results.seconds = started.elapsed().as_secs_f64();
    Ok(results)
}

/// Runs (or reuses) the plan's runs `which`, in order, and collects their results.
fn run_steps(
    options: &StudyOptions,
    budget: Budget,
    steps: &[Step],
    which: std::ops::Range<usize>,
) -> Result<StudyResults, ExperimentError> {
    let mut results = empty_results(options, budget);
    for index in which {
        let number = (index + 1, steps.len());
        plan::execute(&steps[index], options, &budget, &mut results, number)?;
    }
    Ok(results)
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
        let dataset = exemplar_data::open(source, Split::Train, synthetic, size)
            .map_err(ExperimentError::Views)?
            .ok_or_else(|| ExperimentError::Invalid(format!("{source} has no training split")))?;
        changes.extend(
            views::measure(&dataset, &source.to_string(), &ABLATION, size)
                .map_err(ExperimentError::Views)?,
        );
    }
    Ok(changes)
}

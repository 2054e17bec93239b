//! `train experiment`: the paper's comparisons at small scale, run end to end from one command.
//!
//! Three studies share one pool of runs:
//! - **methods**: cross-entropy vs MoCo-v2 vs Exemplar-v2, and the v1 variants, each scored by
//!   a linear probe and kNN on frozen features;
//! - **augmentation**: MoCo-v2 and cross-entropy along the paper's ablation
//!   (flip → +crop → +colour → +grayscale → +blur);
//! - **transfer**: detection, segmentation and landmarks fine-tuned from each pretrained
//!   backbone (and from random initialisation) on the built-in scenes and faces.
//!
//! Every run is identified by its full configuration: a run whose recorded configuration matches
//! is reused, so an interrupted study resumes where it stopped and the studies share the runs
//! they have in common (MoCo-v2 with aug+ is both a method and the ablation's last step).
//! The report — Markdown tables of mean ± std over seeds, PNG charts, the command and the
//! machine — is written by [`report`].

pub mod plot;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use exemplar_models::{Depth, Stem};
use serde::{Deserialize, Serialize};

use crate::augment::AugmentPreset;
use crate::config::{BadImagePolicy, Method, PretrainConfig};
use crate::data::subset::Subset;
use crate::data::{self, DataSource, Split};
use crate::eval::features::{ExtractOptions, train_and_val_features};
use crate::eval::knn::knn_classify;
use crate::eval::linear::{LinearProbeOptions, linear_probe};
use crate::finetune::classification::ClassificationTask;
use crate::finetune::config::{FinetuneConfig, Init, TaskKind};
use crate::finetune::detection::DetectionTask;
use crate::finetune::landmarks::LandmarkTask;
use crate::finetune::segmentation::SegmentationTask;

/// The studies `train experiment` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Study {
    Methods,
    Augmentation,
    Transfer,
}

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("{0}")]
    Invalid(String),
    #[error("pretraining {run}: {source}")]
    Pretrain {
        run: PathBuf,
        source: crate::pretrain::PretrainError,
    },
    #[error("fine-tuning {run}: {source}")]
    Finetune {
        run: PathBuf,
        source: crate::finetune::FinetuneError,
    },
    #[error("evaluating {run}: {reason}")]
    Eval { run: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What to run, and where.
#[derive(Debug, Clone)]
pub struct StudyOptions {
    pub studies: Vec<Study>,
    pub seeds: usize,
    /// Multiplies the data budget (pretraining images, probe and transfer sets); 1 is the
    /// default study sized for about an hour on 2 CPU cores.
    pub scale: f64,
    /// Pretraining and linear-probe data (Fashion-MNIST in the default study).
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

/// Sizes of everything, derived from `--scale`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub image_size: usize,
    pub width: f32,
    pub batch_size: usize,
    pub queue_size: usize,
    pub train_subset: usize,
    pub epochs: usize,
    pub probe_train: usize,
    pub probe_val: usize,
    pub knn_k: usize,
    pub probe_epochs: usize,
    pub transfer_image_size: usize,
    pub transfer_train: usize,
    pub transfer_val: usize,
    pub transfer_epochs: usize,
}

impl Budget {
    /// The default study at `scale` 1: a ResNet-18 at 1/8 width on 16-pixel images, 12 000
    /// pretraining images seen twice, a probe on 10 000 / 5 000 images, transfer on 1 000
    /// generated images at 32 pixels for 2 epochs.
    pub fn at_scale(scale: f64) -> Self {
        let scaled = |n: f64, floor: usize| ((n * scale).round() as usize).max(floor);
        let train_subset = scaled(12_000.0, 64).min(60_000);
        // Past the 60 000 images of Fashion-MNIST a larger scale means more epochs.
        let epochs = ((2.0 * 12_000.0 * scale / train_subset as f64).round() as usize).max(2);
        let batch_size = (train_subset / 4).clamp(16, 128);
        Self {
            image_size: 16,
            width: 0.125,
            batch_size,
            queue_size: 4096
                .min(train_subset.next_power_of_two())
                .max(batch_size * 2),
            train_subset,
            epochs,
            probe_train: scaled(10_000.0, 100),
            probe_val: scaled(5_000.0, 100),
            knn_k: 20,
            probe_epochs: 50,
            transfer_image_size: 32,
            transfer_train: scaled(1_000.0, 32),
            transfer_val: scaled(200.0, 16),
            transfer_epochs: 2,
        }
    }
}

/// One pretraining recipe: a method with an augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arm {
    pub method: Method,
    pub augment: AugmentPreset,
}

impl Arm {
    pub fn default_for(method: Method) -> Self {
        Self {
            method,
            augment: method.default_augment(),
        }
    }

    /// Directory name: `moco-v2+aug-plus`.
    pub fn slug(&self) -> String {
        format!("{}+{}", self.method.name(), self.augment.name())
    }

    /// How the report names it.
    pub fn label(&self) -> &'static str {
        match self.method {
            Method::Supervised => "CE",
            Method::MocoV2 => "MoCo-v2",
            Method::ExemplarV2 => "Exemplar-v2",
            Method::MocoV1 => "MoCo-v1",
            Method::ExemplarV1 => "Exemplar-v1",
        }
    }
}

/// Study (a), in the report's order.
pub const METHODS: [Method; 5] = [
    Method::Supervised,
    Method::MocoV2,
    Method::ExemplarV2,
    Method::MocoV1,
    Method::ExemplarV1,
];
/// Study (b): the paper's augmentation ablation, one step more each time.
pub const ABLATION: [AugmentPreset; 5] = [
    AugmentPreset::Flip,
    AugmentPreset::Crop,
    AugmentPreset::Color,
    AugmentPreset::Grayscale,
    AugmentPreset::AugPlus,
];
/// The methods whose augmentation is ablated.
pub const ABLATED: [Method; 2] = [Method::MocoV2, Method::Supervised];
/// Study (c): backbones transferred (plus random initialisation).
pub const TRANSFERRED: [Method; 3] = [Method::Supervised, Method::MocoV2, Method::ExemplarV2];
pub const TASKS: [TaskKind; 3] = [
    TaskKind::Detection,
    TaskKind::Segmentation,
    TaskKind::Landmarks,
];

/// A finished pretraining run, scored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainResult {
    pub method: String,
    pub augment: String,
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
}

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
    pub seconds: f64,
    /// Runs reused from an earlier invocation instead of trained.
    pub reused: usize,
}

/// The file each finished run records its result in.
const RESULT_FILE: &str = "study-result.json";

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
    let budget = Budget::at_scale(options.scale);
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
        seconds: 0.0,
        reused: 0,
    };
    let untrained = usize::from(options.studies.contains(&Study::Methods));
    let total = (arms.len() + untrained) * options.seeds
        + if options.studies.contains(&Study::Transfer) {
            TASKS.len() * (TRANSFERRED.len() + 1) * options.seeds
        } else {
            0
        };
    let mut done = 0;
    for arm in &arms {
        for seed in 0..options.seeds as u64 {
            done += 1;
            let dir = pretrain_dir(options, &arm.slug(), seed);
            let config = pretrain_config(options, &budget, *arm, seed);
            let (result, reused) = pretrain_run(&config, *arm, &dir, &budget, options)?;
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
    if options.studies.contains(&Study::Methods) {
        // The floor every method must clear: the same network, untrained, scored the same way.
        for seed in 0..options.seeds as u64 {
            done += 1;
            let (result, reused) = untrained_run(options, &budget, seed)?;
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
    if options.studies.contains(&Study::Transfer) {
        for task in TASKS {
            for init in std::iter::once(None).chain(TRANSFERRED.map(Some)) {
                for seed in 0..options.seeds as u64 {
                    done += 1;
                    let init_name =
                        init.map_or("random".to_string(), |m| Arm::default_for(m).slug());
                    let dir = options
                        .work
                        .join("transfer")
                        .join(task.name())
                        .join(&init_name)
                        .join(format!("seed{seed}"));
                    let backbone =
                        init.map(|m| pretrain_dir(options, &Arm::default_for(m).slug(), seed));
                    // The backbone's own configuration is part of the run's identity: a
                    // retrained backbone means the transfer must be redone too.
                    let backbone_config = match init {
                        Some(method) => {
                            pretrain_config(options, &budget, Arm::default_for(method), seed)
                                .to_toml()
                        }
                        None => String::new(),
                    };
                    let config = transfer_config(options, &budget, task, backbone, seed);
                    let (result, reused) =
                        transfer_run(config, &backbone_config, &dir, &init_name)?;
                    log(
                        done,
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
    }
    results.seconds = started.elapsed().as_secs_f64();
    report::write(&results, &options.out)?;
    Ok(results)
}

fn log(done: usize, total: usize, what: &str, reused: bool, result: String) {
    let how = if reused { " (reused)" } else { "" };
    eprintln!("[{done}/{total}] {what}: {result}{how}");
}

/// The pretraining arms the chosen studies need, without repeats.
pub fn arms(studies: &[Study]) -> Vec<Arm> {
    let mut arms: Vec<Arm> = Vec::new();
    let mut add = |arm: Arm| {
        if !arms.contains(&arm) {
            arms.push(arm);
        }
    };
    for study in studies {
        match study {
            Study::Methods => METHODS.map(Arm::default_for).into_iter().for_each(&mut add),
            Study::Augmentation => {
                for method in ABLATED {
                    for augment in ABLATION {
                        add(Arm { method, augment });
                    }
                }
            }
            Study::Transfer => TRANSFERRED
                .map(Arm::default_for)
                .into_iter()
                .for_each(&mut add),
        }
    }
    arms
}

/// One arm's pretraining configuration: everything but the method and augmentation is shared.
pub fn pretrain_config(
    options: &StudyOptions,
    budget: &Budget,
    arm: Arm,
    seed: u64,
) -> PretrainConfig {
    let mut config = PretrainConfig::defaults(arm.method);
    config.arch = Depth::ResNet18;
    config.width = budget.width;
    config.stem = Stem::Small;
    config.image_size = budget.image_size;
    config.batch_size = budget.batch_size;
    config.queue_size = budget.queue_size;
    config.epochs = budget.epochs;
    config.train_subset = Some(budget.train_subset);
    config.augment = arm.augment.pipeline();
    config.seed = seed;
    config.data = options.data.clone();
    config.checkpoint_every = usize::MAX;
    config.keep_checkpoints = 1;
    // The study scores every run itself, on the same features for kNN and the probe.
    config.knn_bank_size = 0;
    config.log_every = (budget.train_subset / budget.batch_size / 4).max(1);
    config.workers = options.workers;
    config.device = options.device.clone();
    config.on_bad_image = BadImagePolicy::Fail;
    config
}

fn transfer_config(
    options: &StudyOptions,
    budget: &Budget,
    task: TaskKind,
    backbone: Option<PathBuf>,
    seed: u64,
) -> FinetuneConfig {
    let mut config = FinetuneConfig::defaults(task);
    config.init = backbone.map_or(Init::Random, Init::Run);
    config.arch = Depth::ResNet18;
    config.width = budget.width;
    config.stem = Stem::Small;
    config.image_size = budget.transfer_image_size;
    config.head_channels = 16;
    config.epochs = budget.transfer_epochs;
    config.synthetic.train_size = budget.transfer_train;
    config.synthetic.val_size = budget.transfer_val;
    config.seed = seed;
    config.checkpoint_every = usize::MAX;
    config.keep_checkpoints = 1;
    config.log_every = usize::MAX;
    config.workers = options.workers;
    config.device = options.device.clone();
    config
}

/// The result recorded in `dir` if it was produced by `config`.
fn recorded<R: serde::de::DeserializeOwned>(
    dir: &Path,
    config: &str,
    get: impl Fn(&R) -> &str,
) -> Option<R> {
    let text = std::fs::read_to_string(dir.join(RESULT_FILE)).ok()?;
    let result: R = serde_json::from_str(&text).ok()?;
    (get(&result) == config).then_some(result)
}

fn record(dir: &Path, result: &impl Serialize) -> Result<(), ExperimentError> {
    let path = dir.join(RESULT_FILE);
    let json = serde_json::to_vec_pretty(result).expect("results serialise");
    crate::checkpoint::atomic_write(&path, &json)
        .map_err(|source| ExperimentError::Io { path, source })
}

/// Starts `dir` afresh: a run left by an interrupted or different study is replaced.
fn fresh_dir(dir: &Path) -> Result<(), ExperimentError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| ExperimentError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

fn pretrain_run(
    config: &PretrainConfig,
    arm: Arm,
    dir: &Path,
    budget: &Budget,
    options: &StudyOptions,
) -> Result<(PretrainResult, bool), ExperimentError> {
    let toml = config.to_toml();
    if let Some(result) = recorded::<PretrainResult>(dir, &toml, |r| &r.config) {
        return Ok((result, true));
    }
    fresh_dir(dir)?;
    let started = Instant::now();
    let summary = crate::pretrain::pretrain(config, dir, false).map_err(|source| {
        ExperimentError::Pretrain {
            run: dir.to_path_buf(),
            source,
        }
    })?;
    let (linear_top1, knn_top1) = score_run(dir, &config.data, budget, options)?;
    let result = PretrainResult {
        method: config.method.name().to_string(),
        augment: arm.augment.name().to_string(),
        seed: config.seed,
        linear_top1,
        knn_top1,
        loss_curve: loss_curve(dir)?,
        images_per_second: summary.images_per_second,
        seconds: started.elapsed().as_secs_f64(),
        config: toml,
    };
    record(dir, &result)?;
    Ok((result, false))
}

/// The method name under which the untrained network is reported.
pub const UNTRAINED: &str = "untrained";

/// Scores the randomly initialised network of `seed` (BatchNorm at its initial statistics).
fn untrained_run(
    options: &StudyOptions,
    budget: &Budget,
    seed: u64,
) -> Result<(PretrainResult, bool), ExperimentError> {
    let dir = pretrain_dir(options, UNTRAINED, seed);
    // Everything that shapes the network, its input and the scoring is in the CE arm's config.
    let config = pretrain_config(options, budget, Arm::default_for(Method::Supervised), seed);
    let identity = format!("{}\n# untrained: no training steps", config.to_toml());
    if let Some(result) = recorded::<PretrainResult>(&dir, &identity, |r| &r.config) {
        return Ok((result, true));
    }
    fresh_dir(&dir)?;
    std::fs::create_dir_all(&dir).map_err(|source| ExperimentError::Io {
        path: dir.clone(),
        source,
    })?;
    let started = Instant::now();
    let device = crate::device::select(&options.device).map_err(|e| ExperimentError::Eval {
        run: dir.clone(),
        reason: e.to_string(),
    })?;
    device.seed(seed);
    let backbone = exemplar_models::ResNetConfig::new(config.arch)
        .with_width(config.width)
        .with_stem(config.stem)
        .init(&device);
    let view = View {
        image_size: config.image_size,
        normalization: config.normalization,
    };
    let (linear_top1, knn_top1) = score_backbone(
        &dir,
        &backbone,
        view,
        &config.data,
        budget,
        options,
        &device,
    )?;
    let result = PretrainResult {
        method: UNTRAINED.to_string(),
        augment: "none".to_string(),
        seed,
        linear_top1,
        knn_top1,
        loss_curve: Vec::new(),
        images_per_second: 0.0,
        seconds: started.elapsed().as_secs_f64(),
        config: identity,
    };
    record(&dir, &result)?;
    Ok((result, false))
}

/// The `(step, loss)` entries of a run's `metrics.jsonl`.
fn loss_curve(dir: &Path) -> Result<Vec<(usize, f64)>, ExperimentError> {
    let path = dir.join("metrics.jsonl");
    let text =
        std::fs::read_to_string(&path).map_err(|source| ExperimentError::Io { path, source })?;
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|entry| Some((entry["step"].as_u64()? as usize, entry["loss"].as_f64()?)))
        .collect())
}

/// Linear-probe and kNN top-1 of the run's frozen backbone.
fn score_run(
    dir: &Path,
    source: &DataSource,
    budget: &Budget,
    options: &StudyOptions,
) -> Result<(f64, f64), ExperimentError> {
    let device = crate::device::select(&options.device).map_err(|e| ExperimentError::Eval {
        run: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (backbone, card) =
        crate::card::load_backbone(dir, &device).map_err(|e| ExperimentError::Eval {
            run: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
    let backbone = burn::module::Module::valid(&backbone);
    let view = View {
        image_size: card.image_size,
        normalization: card.normalization,
    };
    score_backbone(dir, &backbone, view, source, budget, options, &device)
}

/// How a backbone sees its input.
#[derive(Debug, Clone, Copy)]
struct View {
    image_size: usize,
    normalization: crate::config::Normalization,
}

/// Linear-probe and kNN top-1 of a frozen backbone (in inference mode), from one feature
/// extraction.
fn score_backbone(
    dir: &Path,
    backbone: &exemplar_models::ResNet,
    view: View,
    source: &DataSource,
    budget: &Budget,
    options: &StudyOptions,
    device: &burn::tensor::Device,
) -> Result<(f64, f64), ExperimentError> {
    let fail = |reason: String| ExperimentError::Eval {
        run: dir.to_path_buf(),
        reason,
    };
    let synthetic = PretrainConfig::defaults(Method::Supervised).synthetic;
    let open = |split| {
        data::open(source, split, synthetic, view.image_size)
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail(format!("{source} has no {split:?} split")))
    };
    let train: Arc<dyn data::Dataset> =
        Arc::new(Subset::sample(open(Split::Train)?, budget.probe_train));
    let val: Arc<dyn data::Dataset> = Arc::new(Subset::sample(open(Split::Val)?, budget.probe_val));
    let extract = ExtractOptions {
        image_size: view.image_size,
        normalization: view.normalization,
        batch_size: 256,
        workers: options.workers,
        on_bad_image: BadImagePolicy::Fail,
    };
    let (bank, queries) =
        train_and_val_features(backbone, &train, &val, train.len(), extract, device)
            .map_err(|e| fail(e.to_string()))?;
    let classes = train.class_names().len();
    let knn = knn_classify(&bank, &queries, classes, budget.knn_k, 0.1, device);
    let probe = LinearProbeOptions {
        epochs: budget.probe_epochs,
        ..LinearProbeOptions::default()
    };
    let linear = linear_probe(&bank, &queries, classes, probe, device);
    Ok((linear.top1, knn.top1))
}

fn transfer_run(
    config: FinetuneConfig,
    backbone_config: &str,
    dir: &Path,
    init_name: &str,
) -> Result<(TransferResult, bool), ExperimentError> {
    let toml = format!("{}\n# backbone\n{backbone_config}", config.to_toml());
    if let Some(result) = recorded::<TransferResult>(dir, &toml, |r| &r.config) {
        return Ok((result, true));
    }
    fresh_dir(dir)?;
    let (task, seed) = (config.task, config.seed);
    let started = Instant::now();
    let summary = match task {
        TaskKind::Detection => crate::finetune::finetune::<DetectionTask>(config, dir, false),
        TaskKind::Segmentation => crate::finetune::finetune::<SegmentationTask>(config, dir, false),
        TaskKind::Landmarks => crate::finetune::finetune::<LandmarkTask>(config, dir, false),
        TaskKind::Classification => {
            crate::finetune::finetune::<ClassificationTask>(config, dir, false)
        }
    }
    .map_err(|source| ExperimentError::Finetune {
        run: dir.to_path_buf(),
        source,
    })?;
    let (metric, value) = summary.after.ok_or_else(|| ExperimentError::Eval {
        run: dir.to_path_buf(),
        reason: "the run ended without its final evaluation".into(),
    })?;
    let result = TransferResult {
        task: task.name().to_string(),
        init: init_name.to_string(),
        seed,
        metric,
        value,
        seconds: started.elapsed().as_secs_f64(),
        config: toml,
    };
    record(dir, &result)?;
    Ok((result, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn studies_share_runs_and_list_each_arm_once() {
        let all = arms(&[Study::Methods, Study::Augmentation, Study::Transfer]);
        // 5 methods + 5 ablation steps × 2 methods − the two that coincide (MoCo-v2 with aug+
        // is a method and an ablation step; CE's own recipe is not an ablation step).
        assert_eq!(all.len(), 5 + 10 - 1);
        assert_eq!(arms(&[Study::Transfer]).len(), 3);
    }

    #[test]
    fn the_budget_grows_with_the_scale() {
        let base = Budget::at_scale(1.0);
        assert_eq!(
            (base.train_subset, base.epochs, base.batch_size),
            (12_000, 2, 128)
        );
        let large = Budget::at_scale(10.0);
        assert_eq!(large.train_subset, 60_000);
        assert_eq!(large.epochs, 4);
        let tiny = Budget::at_scale(0.001);
        assert!(tiny.batch_size <= tiny.train_subset / 2);
    }
}

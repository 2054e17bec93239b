//! One run of the study: trained (or reused when its recorded configuration matches) and
//! scored. Pretraining runs are scored by a linear probe and kNN on frozen features;
//! transfer runs by their task's own metric.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::budget::Budget;
use crate::{
    Arm, Corpus, ExperimentError, PretrainResult, StudyOptions, TransferResult, UNTRAINED,
};
use exemplar_data::subset::Subset;
use exemplar_data::{self, DataSource, Split, SyntheticOptions};
use exemplar_train::config::{BadImagePolicy, Normalization, PretrainConfig};
use exemplar_train::eval::detection_errors::ErrorBreakdown;
use exemplar_train::eval::features::{ExtractOptions, train_and_val_features};
use exemplar_train::eval::knn::knn_classify;
use exemplar_train::eval::linear::{LinearProbeOptions, linear_probe};
use exemplar_train::finetune::config::{FinetuneConfig, TaskKind};
use exemplar_train::finetune::detection::DetectionTask;
use exemplar_train::finetune::{MODEL_CARD, evaluate_run};

/// The file each finished run records its result in.
pub(super) const RESULT_FILE: &str = "study-result.json";

/// A boxed error that keeps its source chain.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which images score a backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// The probe is fitted on training images and scored on the validation split: the report.
    Validation,
    /// Fitted and scored on two disjoint parts of the training split, neither of them among
    /// the pretraining images: the settings sweep, which must not look at the validation split.
    HeldOut,
}

/// What a study needs to know about the data an arm is scored on.
pub struct Probe<'a> {
    pub source: &'a DataSource,
    pub synthetic: SyntheticOptions,
    /// Images the probe is fitted on and scored on.
    pub train: usize,
    pub val: usize,
    /// The pretraining subset's size, kept out of the held-out images.
    pub pretrain_subset: usize,
    pub scoring: Scoring,
    pub knn_k: usize,
    /// Epochs of the linear probe.
    pub epochs: usize,
}

impl<'a> Probe<'a> {
    pub fn for_corpus(options: &'a StudyOptions, budget: &Budget, corpus: Corpus) -> Self {
        match corpus {
            Corpus::Main => Self {
                source: &options.data,
                synthetic: PretrainConfig::defaults(exemplar_train::config::Method::Supervised)
                    .synthetic,
                train: budget.probe_train,
                val: budget.probe_val,
                pretrain_subset: budget.train_subset,
                scoring: Scoring::Validation,
                knn_k: budget.knn_k,
                epochs: budget.probe_epochs,
            },
            Corpus::Tenth | Corpus::Base => Self::for_corpus(options, budget, Corpus::Main),
            Corpus::Faces => Self {
                source: &DataSource::SyntheticFaces,
                synthetic: crate::faces(budget),
                ..Self::for_corpus(options, budget, Corpus::Scenes)
            },
            Corpus::Textures => Self {
                source: &DataSource::SyntheticTextures,
                ..Self::for_corpus(options, budget, Corpus::Scenes)
            },
            Corpus::Scenes => Self {
                source: &DataSource::Synthetic,
                synthetic: crate::scenes(budget),
                train: budget.ablation_train,
                val: budget.ablation_val,
                pretrain_subset: budget.ablation_train,
                scoring: Scoring::Validation,
                knn_k: budget.knn_k,
                epochs: budget.probe_epochs,
            },
        }
    }
}

/// The result recorded in `dir` if it was produced by `config`.
pub(super) fn recorded<R: serde::de::DeserializeOwned>(
    dir: &Path,
    config: &str,
    get: impl Fn(&R) -> &str,
) -> Option<R> {
    let text = std::fs::read_to_string(dir.join(RESULT_FILE)).ok()?;
    let result: R = serde_json::from_str(&text).ok()?;
    (get(&result) == config).then_some(result)
}

pub(super) fn record(dir: &Path, result: &impl Serialize) -> Result<(), ExperimentError> {
    let path = dir.join(RESULT_FILE);
    let json = serde_json::to_vec_pretty(result).expect("results serialise");
    exemplar_train::checkpoint::atomic_write(&path, &json)
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

pub(super) fn eval_error(dir: &Path) -> impl Fn(BoxError) -> ExperimentError + '_ {
    move |source| ExperimentError::Eval {
        run: dir.to_path_buf(),
        source,
    }
}

/// Whether `dir` holds a finished pretraining run of `config` (a TOML configuration).
pub fn pretrain_finished(dir: &Path, config: &str) -> bool {
    recorded::<PretrainResult>(dir, config, |r| &r.config).is_some()
}

/// Pretrains `arm` with `config` in `dir` (or reuses the run there) and scores it.
pub fn pretrain_run(
    config: &PretrainConfig,
    arm: Arm,
    dir: &Path,
    probe: &Probe,
    options: &StudyOptions,
) -> Result<(PretrainResult, bool), ExperimentError> {
    let toml = config.to_toml();
    if let Some(result) = recorded::<PretrainResult>(dir, &toml, |r| &r.config) {
        return Ok((result, true));
    }
    fresh_dir(dir)?;
    let started = Instant::now();
    let summary = exemplar_train::pretrain::pretrain(config, dir, false).map_err(|source| {
        ExperimentError::Pretrain {
            run: dir.to_path_buf(),
            source,
        }
    })?;
    let (linear_top1, knn_top1) = score_run(dir, probe, options)?;
    let result = PretrainResult {
        method: config.method.name().to_string(),
        augment: arm.augment.name().to_string(),
        corpus: arm.corpus.name().to_string(),
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

/// Scores the randomly initialised network of `seed` (BatchNorm at its initial statistics),
/// shaped and fed as `config` (the CE arm's) would shape and feed it.
pub fn untrained_run(
    options: &StudyOptions,
    config: &PretrainConfig,
    probe: &Probe,
    dir: &Path,
    seed: u64,
) -> Result<(PretrainResult, bool), ExperimentError> {
    let dir = dir.to_path_buf();
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
    let device =
        exemplar_train::device::select(&options.device).map_err(|e| eval_error(&dir)(e.into()))?;
    device.seed(seed);
    let backbone = exemplar_models::ResNetConfig::new(config.arch)
        .with_width(config.width)
        .with_stem(config.stem)
        .init(&device);
    let view = View {
        image_size: config.image_size,
        normalization: config.normalization,
    };
    let (linear_top1, knn_top1) = score_backbone(&dir, &backbone, view, probe, options, &device)?;
    let result = PretrainResult {
        method: UNTRAINED.to_string(),
        augment: "none".to_string(),
        corpus: Corpus::Main.name().to_string(),
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
pub fn score_run(
    dir: &Path,
    probe: &Probe,
    options: &StudyOptions,
) -> Result<(f64, f64), ExperimentError> {
    let fail = eval_error(dir);
    let device = exemplar_train::device::select(&options.device).map_err(|e| fail(e.into()))?;
    let (backbone, card) =
        exemplar_models::card::load_backbone(dir, &device).map_err(|e| fail(e.into()))?;
    let backbone = burn::module::Module::valid(&backbone);
    let view = View {
        image_size: card.image_size,
        normalization: card.normalization,
    };
    score_backbone(dir, &backbone, view, probe, options, &device)
}

/// How a backbone sees its input.
#[derive(Debug, Clone, Copy)]
struct View {
    image_size: usize,
    normalization: Normalization,
}

/// A probe's fitting and scoring images.
type ProbeSets = (
    Arc<dyn exemplar_data::Dataset>,
    Arc<dyn exemplar_data::Dataset>,
);

/// The probe's fitting and scoring images.
fn probe_sets(probe: &Probe, image_size: usize) -> Result<ProbeSets, BoxError> {
    let open = |split: Split| -> Result<Arc<dyn exemplar_data::Dataset>, BoxError> {
        exemplar_data::open(probe.source, split, probe.synthetic, image_size)?
            .ok_or_else(|| format!("{} has no {split:?} split", probe.source).into())
    };
    let train = open(Split::Train)?;
    Ok(match probe.scoring {
        Scoring::Validation => (
            Arc::new(Subset::sample(Arc::clone(&train), probe.train)),
            Arc::new(Subset::sample(open(Split::Val)?, probe.val)),
        ),
        Scoring::HeldOut => {
            let pretraining = Subset::sample(Arc::clone(&train), probe.pretrain_subset);
            let (fit, score) =
                Subset::disjoint_outside(train, pretraining.indices(), probe.train, probe.val);
            (Arc::new(fit), Arc::new(score))
        }
    })
}

/// Linear-probe and kNN top-1 of a frozen backbone (in inference mode), from one feature
/// extraction.
fn score_backbone(
    dir: &Path,
    backbone: &exemplar_models::ResNet,
    view: View,
    probe: &Probe,
    options: &StudyOptions,
    device: &burn::tensor::Device,
) -> Result<(f64, f64), ExperimentError> {
    let fail = eval_error(dir);
    let (train, val) = probe_sets(probe, view.image_size).map_err(&fail)?;
    let extract = ExtractOptions {
        image_size: view.image_size,
        normalization: view.normalization,
        batch_size: 256,
        workers: options.workers,
        on_bad_image: BadImagePolicy::Fail,
    };
    let (bank, queries) =
        train_and_val_features(backbone, &train, &val, train.len(), extract, device)
            .map_err(|e| fail(e.into()))?;
    let classes = train.class_names().len();
    let knn = knn_classify(&bank, &queries, classes, probe.knn_k, 0.1, device);
    let linear = linear_probe(
        &bank,
        &queries,
        classes,
        LinearProbeOptions {
            epochs: probe.epochs,
            ..LinearProbeOptions::default()
        },
        device,
    );
    Ok((linear.top1, knn.top1))
}

/// Fine-tunes `config` in `dir` (or reuses the run there) and records its final metric.
pub fn transfer_run(
    config: FinetuneConfig,
    backbone_config: &str,
    dir: &Path,
    init_name: &str,
) -> Result<(TransferResult, bool), ExperimentError> {
    let toml = format!("{}\n# backbone\n{backbone_config}", config.to_toml());
    if let Some(mut result) = recorded::<TransferResult>(dir, &toml, |r| &r.config) {
        // Runs recorded before the error breakdown existed get it now.
        if config.task == TaskKind::Detection && result.errors.is_none() {
            result.errors = Some(detection_errors(&config, dir)?);
            record(dir, &result)?;
        }
        return Ok((result, true));
    }
    fresh_dir(dir)?;
    let (task, seed) = (config.task, config.seed);
    let started = Instant::now();
    let summary =
        exemplar_train::with_task!(task, T => exemplar_train::finetune::finetune::<T>(config.clone(), dir, false))
            .map_err(|source| ExperimentError::Finetune {
                run: dir.to_path_buf(),
                source,
            })?;
    let (metric, value) = summary
        .after
        .ok_or_else(|| eval_error(dir)("the run ended without its final evaluation".into()))?;
    let errors = match task {
        TaskKind::Detection => Some(detection_errors(&config, dir)?),
        _ => None,
    };
    let result = TransferResult {
        task: task.name().to_string(),
        init: init_name.to_string(),
        seed,
        metric,
        value,
        errors,
        seconds: started.elapsed().as_secs_f64(),
        config: toml,
    };
    record(dir, &result)?;
    Ok((result, false))
}

/// The types of a finished detection run's false positives on its validation images
/// ([`exemplar_train::eval::detection_errors`]).
fn detection_errors(
    config: &FinetuneConfig,
    dir: &Path,
) -> Result<ErrorBreakdown, ExperimentError> {
    let fail = eval_error(dir);
    let device = exemplar_train::device::select(&config.device).map_err(|e| fail(e.into()))?;
    let card =
        exemplar_inference::ModelCard::read(&dir.join(MODEL_CARD)).map_err(|e| fail(e.into()))?;
    let (evaluation, _) =
        evaluate_run::<DetectionTask>(dir, config, &card, &device).map_err(|e| fail(e.into()))?;
    serde_json::from_value(evaluation.result["errors"].clone()).map_err(|e| fail(e.into()))
}

#[cfg(test)]
mod tests {
    use super::{record, recorded};

    /// A reused run must give the report the first run gave, to the last digit: every number
    /// read back is the number written (serde_json's `float_roundtrip`).
    #[test]
    fn recorded_numbers_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let numbers: Vec<f64> = (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0
            })
            .collect();
        let written = (numbers.clone(), "identity".to_string());
        record(dir.path(), &written).unwrap();
        let read: (Vec<f64>, String) =
            recorded(dir.path(), "identity", |r: &(Vec<f64>, String)| &r.1).unwrap();
        let differ = numbers
            .iter()
            .zip(&read.0)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differ, 0, "{differ} of {} numbers changed", numbers.len());
    }
}

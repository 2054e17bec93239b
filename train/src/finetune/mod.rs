//! Fine-tuning a backbone on a downstream task, and evaluating the result.
//!
//! A run lives in one directory:
//! ```text
//! RUN/config.toml        the resolved configuration (task, init, data, optimisation)
//! RUN/metrics.jsonl      step, loss, lr, images/s, and the evaluations
//! RUN/checkpoints/       step-NNNNNNNN/ {model,optimizer}.bpk, state.json, model.json
//! RUN/model.bpk          the fine-tuned network …
//! RUN/model.json         … and its model card (task, classes, input, outputs, decoding)
//! RUN/eval/<task>.json   the final evaluation on the validation split
//! ```
//!
//! The loop is shared by every task; what differs (head, targets, loss, metric, card) is the
//! [`Task`] implementation in this module's children.

pub mod augment;
pub mod classification;
pub mod config;
pub mod detection;
pub mod init;
pub mod landmarks;
pub mod segmentation;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{Module, ParamGroup};
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor, TensorData};
use exemplar_inference::ModelCard;
use exemplar_inference::card::{CARD_FORMAT, InputSpec, OutputSpec, Provenance, TaskSpec};
use exemplar_kernels::sgd::FusedSgd;
use exemplar_models::ResNet;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::json;
use thiserror::Error;

use self::augment::TaskAugmentation;
use self::config::{FinetuneConfig, Init};
use crate::checkpoint::{atomic_write, latest_checkpoint, write_checkpoint};
use crate::config::BadImagePolicy;
use crate::data::annotated::{Annotated, TaskDataset};
use crate::data::synthetic::rng_for;
use crate::data::{DataError, Split};
use crate::device::DeviceError;
use crate::eval::{default_result_path, write_result};
use crate::loader::Prefetch;
use crate::progress::{MetricsLog, Progress};

pub use self::config::TaskKind;

/// File names of a fine-tuned model inside its run directory.
pub const MODEL_WEIGHTS: &str = "model.bpk";
pub const MODEL_CARD: &str = "model.json";

#[derive(Debug, Error)]
pub enum FinetuneError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Init(#[from] init::InitError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot resume from {path}: {reason}")]
    Resume { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("{0}")]
    Setup(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> FinetuneError + '_ {
    move |source| FinetuneError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A task's evaluation: one headline number, a line for humans and the full JSON result.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Name and value of the metric that sums the result up (higher or lower is better as the
    /// metric says: `nme_percent` is an error).
    pub metric: &'static str,
    pub value: f64,
    pub summary: String,
    pub result: serde_json::Value,
}

/// What the shared loop needs from a task.
pub trait Task: Send + Sync + 'static {
    type Sample: Annotated;
    type Model: Module + 'static;
    /// Batch targets, built on the loader threads.
    type Targets: Send + 'static;

    fn kind(&self) -> TaskKind;

    /// Class names (point names for landmarks), as written to the card.
    fn class_names(&self) -> &[String];

    /// The task's model around `backbone`, with a fresh head.
    fn build(&self, backbone: ResNet, device: &Device) -> Self::Model;

    fn backbone(model: &Self::Model) -> &ResNet;

    /// Label-preserving training augmentation.
    fn augmentation(&self) -> TaskAugmentation;

    /// Targets of a batch of augmented `size × size` samples.
    fn targets(&self, samples: &[Self::Sample], size: usize) -> Self::Targets;

    /// The loss of a batch (images on the autodiff device).
    fn loss(&self, model: &Self::Model, images: Tensor<4>, targets: Self::Targets) -> Tensor<1>;

    /// Scores `model` (in inference mode, on the plain device) on `dataset`.
    fn evaluate(
        &self,
        model: &Self::Model,
        dataset: &Arc<dyn TaskDataset<Self::Sample>>,
        input: &EvalInput,
        device: &Device,
    ) -> Result<Evaluation, DataError>;

    /// The task part of the card and the output tensors.
    fn card_task(&self, config: &FinetuneConfig) -> (TaskSpec, Vec<OutputSpec>);
}

/// How evaluation feeds images to the network.
#[derive(Debug, Clone)]
pub struct EvalInput {
    pub image_size: usize,
    pub normalization: crate::config::Normalization,
    pub batch_size: usize,
    pub workers: usize,
    pub on_bad_image: BadImagePolicy,
}

impl EvalInput {
    pub fn from_config(config: &FinetuneConfig) -> Self {
        Self {
            image_size: config.image_size,
            normalization: config.normalization,
            batch_size: config.batch_size.max(16),
            workers: config.workers.max(1),
            on_bad_image: config.on_bad_image,
        }
    }
}

/// Runs `score` over `dataset` in batches: each sample is preprocessed exactly as the server
/// will (`exemplar_inference::image::preprocess`) and handed over with its annotations.
pub fn for_each_batch<S: Annotated>(
    dataset: &Arc<dyn TaskDataset<S>>,
    input: &EvalInput,
    device: &Device,
    mut score: impl FnMut(Tensor<4>, Vec<S>),
) -> Result<usize, DataError> {
    let len = dataset.len();
    let batch = input.batch_size.max(1);
    let batches = len.div_ceil(batch);
    let size = input.image_size;
    let normalization = input.normalization;
    let policy = input.on_bad_image;
    let shared = Arc::clone(dataset);
    let loader = Prefetch::new(0, batches, input.workers, 2, move |b| {
        let mut pixels = Vec::new();
        let mut samples = Vec::new();
        let mut skipped = 0usize;
        for index in b * batch..((b + 1) * batch).min(len) {
            match shared.get(index) {
                Ok(sample) => {
                    exemplar_inference::image::preprocess(
                        sample.image(),
                        [size, size],
                        &normalization,
                        &mut pixels,
                    );
                    samples.push(sample);
                }
                Err(err) if policy == BadImagePolicy::Fail => return Err(err),
                Err(err) => {
                    eprintln!("warning: skipped in evaluation: {err}");
                    skipped += 1;
                }
            }
        }
        Ok((pixels, samples, skipped))
    });
    let mut skipped = 0;
    for item in loader {
        let (pixels, samples, missed) = item?;
        skipped += missed;
        if samples.is_empty() {
            continue;
        }
        let images = Tensor::<4>::from_data(
            TensorData::new(pixels, [samples.len(), 3, size, size]),
            device,
        );
        score(images, samples);
    }
    Ok(skipped)
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneSummary {
    pub run_dir: PathBuf,
    pub steps: usize,
    pub first_loss: Option<f64>,
    pub last_loss: Option<f64>,
    /// The metric before training (a fresh head) and after (absent when stopped early).
    pub before: Option<(String, f64)>,
    pub after: Option<(String, f64)>,
    pub summary: String,
    pub images_per_second: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoopState {
    step: usize,
    task: TaskKind,
}

/// Opens the split of the configured data source that `task` reads.
pub trait OpenSplit: Task {
    fn open(
        config: &FinetuneConfig,
        split: Split,
    ) -> Result<Arc<dyn TaskDataset<Self::Sample>>, DataError>;
}

/// Builds the task for the configuration and its training data.
pub trait FromConfig: Task + Sized {
    fn from_config(config: &FinetuneConfig, class_names: Vec<String>) -> Self;
}

/// Runs (or resumes) fine-tuning of `config` in `run_dir` for any task.
pub fn finetune<T: Task + OpenSplit + FromConfig>(
    mut config: FinetuneConfig,
    run_dir: &Path,
    resume: bool,
) -> Result<FinetuneSummary, FinetuneError> {
    let plain = crate::device::select(&config.device)?;
    let device = plain.clone().autodiff();
    // Heads are initialised from the device's generator: seeded, a run is repeatable.
    device.seed(config.seed);
    // A resumed run's saved configuration already holds what the initial weights dictated, and
    // its checkpoint replaces them.
    let backbone = if resume {
        config.backbone_config().init(&device)
    } else {
        init::initial_backbone(&mut config, &device)?
    };
    config.validate().map_err(FinetuneError::Setup)?;
    let train = T::open(&config, Split::Train)?;
    let val = T::open(&config, Split::Val)?;
    if val.class_names() != train.class_names() {
        return Err(FinetuneError::Setup(format!(
            "the splits disagree on the classes: {} has {:?}, {} has {:?}",
            train.describe(),
            train.class_names(),
            val.describe(),
            val.class_names()
        )));
    }
    let task = Arc::new(T::from_config(&config, train.class_names().to_vec()));
    let steps_per_epoch = train.len() / config.batch_size;
    if steps_per_epoch == 0 {
        return Err(FinetuneError::Setup(format!(
            "{} has {} images, fewer than one batch of {}",
            train.describe(),
            train.len(),
            config.batch_size
        )));
    }
    let total = steps_per_epoch * config.epochs;
    let end = config.max_steps.map_or(total, |m| m.min(total));

    std::fs::create_dir_all(run_dir).map_err(io_error(run_dir))?;
    let config_path = run_dir.join("config.toml");
    if !resume {
        atomic_write(&config_path, config.to_toml().as_bytes()).map_err(io_error(&config_path))?;
    }
    let mut optim = optimizer(&config);
    let mut model = prepare(task.build(backbone, &device), &config)?;
    let mut start = 0;
    if resume {
        let (step, restored, record) = restore::<T>(&task, &config, run_dir, &device)?;
        model = prepare(restored, &config)?;
        optim = optimizer(&config).load_record(record);
        start = step;
    }
    let card = model_card(task.as_ref(), &config, total);
    let metrics_path = run_dir.join("metrics.jsonl");
    let mut metrics = MetricsLog::open(&metrics_path, resume.then_some(start))
        .map_err(io_error(&metrics_path))?;
    let input = EvalInput::from_config(&config);
    let before = if start == 0 {
        let eval = task.evaluate(&model.valid(), &val, &input, &plain)?;
        log_eval(&mut metrics, 0, "before", &eval)?;
        println!("before fine-tuning: {}", eval.summary);
        Some((eval.metric.to_string(), eval.value))
    } else {
        None
    };

    let loader = spawn_batches(Arc::clone(&task), Arc::clone(&train), &config, start, end);
    let mut progress = Progress::new(start, end, config.log_every);
    let (mut interval_loss, mut interval_steps) = (0.0, 0usize);
    let (mut first_loss, mut last_loss) = (None, None);
    let started = Instant::now();
    let mut images = 0usize;
    for (step, batch) in (start..end).zip(loader) {
        let batch = batch?;
        for reason in &batch.skipped {
            progress.println(&format!("warning: skipped unreadable sample: {reason}"));
        }
        let n = batch.count;
        let size = config.image_size;
        let input_images =
            Tensor::<4>::from_data(TensorData::new(batch.images, [n, 3, size, size]), &device);
        let loss = task.loss(&model, input_images, batch.targets);
        let value = loss.clone().into_scalar::<f32>() as f64;
        if !value.is_finite() {
            return Err(FinetuneError::Setup(format!(
                "the loss became {value} at step {step}: lower --lr"
            )));
        }
        let lr = learning_rate(&config, step, total);
        model = optimizer_step::<T>(&mut optim, model, loss, lr, config.backbone_lr_scale);
        images += n;
        interval_loss += value;
        interval_steps += 1;
        let done = step + 1;
        if done.is_multiple_of(config.log_every) || done == end {
            let mean = interval_loss / interval_steps as f64;
            first_loss.get_or_insert(mean);
            last_loss = Some(mean);
            let rate = images as f64 / started.elapsed().as_secs_f64().max(1e-9);
            metrics
                .write(&json!({"step": done, "loss": mean, "lr": lr, "images_per_second": rate}))
                .map_err(io_error(&metrics_path))?;
            progress.step(done, &format!("loss {mean:.4} lr {lr:.4} {rate:.1} img/s"));
            (interval_loss, interval_steps) = (0.0, 0);
        } else {
            progress.step(done, "");
        }
        if done.is_multiple_of(config.checkpoint_every) || done == end {
            save_checkpoint(run_dir, done, &model, &optim, &config, &card)?;
        }
    }
    progress.finish();
    if end < total {
        return Ok(FinetuneSummary {
            run_dir: run_dir.to_path_buf(),
            steps: end,
            first_loss,
            last_loss,
            before,
            after: None,
            summary: format!("stopped at step {end} of {total}; continue with --resume"),
            images_per_second: images as f64 / started.elapsed().as_secs_f64().max(1e-9),
        });
    }
    let inference = model.valid();
    save_model(run_dir, &inference, &card)?;
    let eval = task.evaluate(&inference, &val, &input, &plain)?;
    log_eval(&mut metrics, total, "after", &eval)?;
    let path = default_result_path(run_dir, task.kind().name());
    write_result(
        &path,
        task.kind().name(),
        run_dir,
        &config.init.to_string(),
        &val.describe(),
        &eval.result,
    )
    .map_err(io_error(&path))?;
    Ok(FinetuneSummary {
        run_dir: run_dir.to_path_buf(),
        steps: total,
        first_loss,
        last_loss,
        before,
        after: Some((eval.metric.to_string(), eval.value)),
        summary: eval.summary,
        images_per_second: images as f64 / started.elapsed().as_secs_f64().max(1e-9),
    })
}

fn log_eval(
    metrics: &mut MetricsLog,
    step: usize,
    when: &str,
    eval: &Evaluation,
) -> Result<(), FinetuneError> {
    let path = metrics.path().to_path_buf();
    metrics
        .write(&json!({"step": step, "eval": when, eval.metric: eval.value}))
        .map_err(io_error(&path))
}

/// Applies the configuration's freezing: the whole backbone (`backbone_lr_scale` 0) or its
/// BatchNorm layers (`freeze_bn`). Frozen BatchNorm uses its running statistics even on the
/// training device (burn's `freeze` turns the layer's training flag off).
fn prepare<M: Module>(model: M, config: &FinetuneConfig) -> Result<M, FinetuneError> {
    let group = |pattern: &str| {
        ParamGroup::from_regex(pattern)
            .map_err(|e| FinetuneError::Setup(format!("parameter group {pattern}: {e:?}")))
    };
    if config.backbone_lr_scale == 0.0 {
        return Ok(model.freeze_group(group(r"^backbone\.")?));
    }
    if config.freeze_bn {
        return Ok(model.freeze_group(group(r"^backbone\.(.*\.)?bn\d*\.")?));
    }
    Ok(model)
}

/// SGD with PyTorch's semantics (no dampening, weight decay added to the gradient).
/// One fused pass per parameter on the CPU (`exemplar_kernels::sgd`), burn's operations elsewhere.
fn optimizer(config: &FinetuneConfig) -> ModuleOptimizer {
    FusedSgd {
        momentum: config.momentum as f32,
        weight_decay: config.weight_decay as f32,
    }
    .init()
}

/// Linear warm-up over the first 5% of steps (at most 200), then cosine decay to zero.
pub fn learning_rate(config: &FinetuneConfig, step: usize, total: usize) -> f64 {
    let warmup = (total / 20).clamp(1, 200);
    if step < warmup {
        return config.lr * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (total - warmup).max(1) as f64;
    config.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// One SGD step; with a backbone scale below 1 the backbone's gradients are applied with the
/// scaled rate and the head's with the full one.
fn optimizer_step<T: Task>(
    optim: &mut ModuleOptimizer,
    model: T::Model,
    loss: Tensor<1>,
    lr: f64,
    backbone_scale: f64,
) -> T::Model {
    let mut grads = loss.backward();
    if backbone_scale == 1.0 || backbone_scale == 0.0 {
        // Frozen parameters have no gradients: one step covers both cases.
        let grads = GradientsParams::from_grads(grads, &model);
        return optim.step(lr, model, grads);
    }
    let backbone = GradientsParams::from_module(&mut grads, T::backbone(&model));
    let head = GradientsParams::from_grads(grads, &model);
    let model = optim.step(lr * backbone_scale, model, backbone);
    optim.step(lr, model, head)
}

/// A batch of augmented samples, ready for the device.
struct TrainBatch<Targets> {
    images: Vec<f32>,
    targets: Targets,
    count: usize,
    skipped: Vec<String>,
}

/// Batches `start..total` built on loader threads; batch `s` depends only on `(seed, s)`, so a
/// resumed run sees the batches the interrupted one would have.
fn spawn_batches<T: Task>(
    task: Arc<T>,
    dataset: Arc<dyn TaskDataset<T::Sample>>,
    config: &FinetuneConfig,
    start: usize,
    total: usize,
) -> Prefetch<Result<TrainBatch<T::Targets>, DataError>> {
    let augmentation = task.augmentation();
    let (batch, size, seed, policy) = (
        config.batch_size,
        config.image_size,
        config.seed,
        config.on_bad_image,
    );
    let normalization = config.normalization;
    Prefetch::new(start, total, config.workers, 2, move |step| {
        let len = dataset.len();
        let per_epoch = len / batch;
        let mut order: Vec<usize> = (0..len).collect();
        order.shuffle(&mut rng_for(seed, &[60, (step / per_epoch) as u64]));
        let first = (step % per_epoch) * batch;
        let mut samples = Vec::with_capacity(batch);
        let mut skipped = Vec::new();
        let mut pixels = Vec::with_capacity(batch * 3 * size * size);
        for (position, &index) in order[first..first + batch].iter().enumerate() {
            let sample = read_or_skip(dataset.as_ref(), index, policy, &mut skipped)?;
            let mut rng = rng_for(seed, &[61, step as u64, position as u64]);
            let sample = augmentation.apply(sample, size, &mut rng);
            sample
                .image()
                .write_chw_normalized(normalization.mean, normalization.std, &mut pixels);
            samples.push(sample);
        }
        Ok(TrainBatch {
            targets: task.targets(&samples, size),
            images: pixels,
            count: samples.len(),
            skipped,
        })
    })
}

/// Reads sample `index`, or under [`BadImagePolicy::Skip`] the next readable one.
fn read_or_skip<S>(
    dataset: &dyn TaskDataset<S>,
    index: usize,
    policy: BadImagePolicy,
    skipped: &mut Vec<String>,
) -> Result<S, DataError> {
    let mut candidate = index;
    loop {
        match dataset.get(candidate) {
            Ok(sample) => return Ok(sample),
            Err(err) if policy == BadImagePolicy::Fail => return Err(err),
            Err(err) => {
                skipped.push(err.to_string());
                candidate = (candidate + 1) % dataset.len();
                if candidate == index {
                    return Err(DataError::Empty {
                        what: dataset.describe(),
                        hint: "no sample could be read".into(),
                    });
                }
            }
        }
    }
}

/// The card saved beside the model and every checkpoint.
pub fn model_card<T: Task>(task: &T, config: &FinetuneConfig, steps: usize) -> ModelCard {
    let (spec, outputs) = task.card_task(config);
    let init = match &config.init {
        Init::Run(dir) => {
            let method = crate::card::load_backbone_card(dir)
                .map(|c| c.method.to_string())
                .unwrap_or_else(|_| "pretrained".into());
            format!("{method} ({})", dir.display())
        }
        other => other.to_string(),
    };
    ModelCard {
        format: CARD_FORMAT.into(),
        task: spec,
        class_names: task.class_names().to_vec(),
        input: InputSpec {
            name: "images".into(),
            width: config.image_size,
            height: config.image_size,
            normalization: config.normalization,
        },
        outputs,
        provenance: Provenance {
            backbone: config.backbone_config().describe(),
            init,
            data: config.data.to_string(),
            steps,
        },
    }
}

fn record_bytes<M: Module>(model: &M, what: &str) -> Result<Vec<u8>, FinetuneError> {
    // `valid()` folds in the BatchNorm running statistics' latest per-thread updates.
    Ok(model
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| FinetuneError::Setup(format!("cannot serialise the {what}: {e}")))?
        .to_vec())
}

fn save_model<M: Module>(run_dir: &Path, model: &M, card: &ModelCard) -> Result<(), FinetuneError> {
    let weights = run_dir.join(MODEL_WEIGHTS);
    atomic_write(&weights, &record_bytes(model, "model")?).map_err(io_error(&weights))?;
    let card_path = run_dir.join(MODEL_CARD);
    atomic_write(&card_path, card.to_json().as_bytes()).map_err(io_error(&card_path))
}

fn save_checkpoint<M: Module>(
    run_dir: &Path,
    step: usize,
    model: &M,
    optim: &ModuleOptimizer,
    config: &FinetuneConfig,
    card: &ModelCard,
) -> Result<(), FinetuneError> {
    let optimizer = optim
        .into_bytes()
        .map_err(|e| FinetuneError::Setup(format!("cannot serialise the optimizer: {e}")))?
        .to_vec();
    let state = serde_json::to_vec(&LoopState {
        step,
        task: config.task,
    })
    .expect("serialisable");
    let model = record_bytes(model, "model")?;
    let card = card.to_json().into_bytes();
    let files: [(&str, &[u8]); 4] = [
        (MODEL_WEIGHTS, &model),
        ("optimizer.bpk", &optimizer),
        ("state.json", &state),
        (MODEL_CARD, &card),
    ];
    write_checkpoint(run_dir, step, &files, config.keep_checkpoints)
        .map_err(io_error(&run_dir.join("checkpoints")))?;
    Ok(())
}

fn restore<T: Task>(
    task: &T,
    config: &FinetuneConfig,
    run_dir: &Path,
    device: &Device,
) -> Result<(usize, T::Model, burn::optim::OptimizerRecord), FinetuneError> {
    let Some((step, dir)) = latest_checkpoint(run_dir).map_err(io_error(run_dir))? else {
        return Err(FinetuneError::Resume {
            path: run_dir.to_path_buf(),
            reason: "no checkpoint found (was the run started with this directory?)".into(),
        });
    };
    let fail = |reason: String| FinetuneError::Resume {
        path: dir.clone(),
        reason,
    };
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| fail(format!("{name}: {e}")));
    let state: LoopState = serde_json::from_slice(&read("state.json")?)
        .map_err(|e| fail(format!("state.json: {e}")))?;
    if state.step != step || state.task != config.task {
        return Err(fail(format!(
            "checkpoint is step {} of {}, expected step {step} of {}",
            state.step, state.task, config.task
        )));
    }
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(read(MODEL_WEIGHTS)?))
        .map_err(|e| fail(format!("{MODEL_WEIGHTS}: {e}")))?;
    let model = task
        .build(config.backbone_config().init(device), device)
        .try_load_record(record)
        .map_err(|e| fail(format!("{MODEL_WEIGHTS}: {e}")))?;
    let optimizer = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(read("optimizer.bpk")?))
        .map_err(|e| fail(format!("optimizer.bpk: {e}")))?;
    Ok((step, model, optimizer))
}

/// A fine-tuned run loaded for evaluation: its configuration, task and model (inference mode).
pub fn load_run<T: Task + FromConfig + OpenSplit>(
    run_dir: &Path,
    config: &FinetuneConfig,
    class_names: Vec<String>,
    device: &Device,
) -> Result<(T, T::Model), FinetuneError> {
    let task = T::from_config(config, class_names);
    let weights = run_dir.join(MODEL_WEIGHTS);
    let bytes = std::fs::read(&weights).map_err(io_error(&weights))?;
    let model_error = |reason: String| FinetuneError::Model {
        path: weights.clone(),
        reason,
    };
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| model_error(e.to_string()))?;
    let model = task
        .build(config.backbone_config().init(device), device)
        .try_load_record(record)
        .map_err(|e| model_error(format!("does not fit the run's configuration: {e}")))?;
    Ok((task, model.valid()))
}

/// Evaluates a fine-tuned run on the validation split of `config.data`.
pub fn evaluate_run<T: Task + FromConfig + OpenSplit>(
    run_dir: &Path,
    config: &FinetuneConfig,
    card: &ModelCard,
    device: &Device,
) -> Result<(Evaluation, String), FinetuneError> {
    let val = T::open(config, Split::Val)?;
    let (task, model) = load_run::<T>(run_dir, config, card.class_names.clone(), device)?;
    if val.class_names() != card.class_names.as_slice() {
        return Err(FinetuneError::Setup(format!(
            "{} has classes {:?}, the model was trained on {:?}",
            val.describe(),
            val.class_names(),
            card.class_names
        )));
    }
    let eval = task.evaluate(&model, &val, &EvalInput::from_config(config), device)?;
    Ok((eval, val.describe()))
}

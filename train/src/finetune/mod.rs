//! Fine-tuning a backbone on a downstream task, and evaluating the result.
//!
//! A run lives in one directory:
//! ```text
//! RUN/config.toml        the resolved configuration (task, init, data, optimisation)
//! RUN/metrics.jsonl      step, loss, lr, images/s, and the evaluations
//! RUN/checkpoints/       step-NNNNNNNN/ {model,optimizer}.bpk, state.json, network.json, model.json
//! RUN/model.bpk          the fine-tuned network,
//! RUN/network.json       its architecture (what `export` rebuilds it from) …
//! RUN/model.json         … and its model card (task, classes, input, outputs, decoding)
//! RUN/eval/<task>.json   the final evaluation on the validation split
//! ```
//!
//! The loop is shared by every task; what differs (head, targets, loss, metric, card) is the
//! [`Task`] implementation in this module's children.

pub mod augment;
mod batches;
pub mod classification;
pub mod config;
pub mod detection;
pub mod init;
mod kind;
pub mod landmarks;
mod saved;
pub mod segmentation;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{Module, ParamGroup};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use exemplar_inference::card::{OutputSpec, TaskSpec};
use exemplar_models::network::NetworkConfig;
use exemplar_models::{HeadConfig, ResNet};
use serde::Serialize;
use serde_json::json;

use self::augment::TaskAugmentation;
use self::batches::spawn_batches;
use self::config::FinetuneConfig;
use self::saved::{restore, save_checkpoint, save_model};
use crate::checkpoint::atomic_write;
use crate::eval::{default_result_path, write_result};
use crate::progress::{MetricsLog, Progress};
use crate::run::{self, RunError, io_error};
use exemplar_data::annotated::{Annotated, TaskDataset};
use exemplar_data::{DataError, DataSource, Split};

pub use self::batches::{EvalInput, for_each_batch};

pub use self::kind::TaskKind;
pub use self::saved::{evaluate_run, load_run, model_card};

/// File names of a fine-tuned model inside its run directory.
pub use exemplar_models::network::NETWORK_WEIGHTS as MODEL_WEIGHTS;
pub const MODEL_CARD: &str = "model.json";

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
    /// The head's configuration; the network it builds is the task's model.
    type Head: HeadConfig<Network = Self::Model>;
    type Model: Module + 'static;
    /// Batch targets, built on the loader threads.
    type Targets: Send + 'static;

    /// The headline metric as the study's report titles it, with the task and the unit
    /// (`"detection VOC07 mAP50 (%)"`).
    const METRIC_TITLE: &'static str;
    /// Whether a lower headline metric is better (an error rather than a score).
    const LOWER_IS_BETTER: bool = false;
    /// The data it trains on unless told otherwise.
    const DEFAULT_DATA: DataSource = DataSource::Synthetic;

    fn kind(&self) -> TaskKind;

    /// Class names (point names for landmarks), as written to the card.
    fn class_names(&self) -> &[String];

    /// The head this run trains.
    fn head(&self) -> &Self::Head;

    /// The task's model around `backbone`, with a fresh head.
    fn build(&self, backbone: ResNet, device: &Device) -> Self::Model {
        self.head().with_backbone(backbone, device)
    }

    /// The architecture [`Task::build`] builds, saved as `network.json` beside the weights.
    fn network(&self) -> NetworkConfig {
        self.head().network_config()
    }

    fn backbone(model: &Self::Model) -> &ResNet {
        Self::Head::backbone(model)
    }

    /// Label-preserving training augmentation; by default the scenes' (crops of 30–100% of the
    /// image, flips, colour jitter).
    fn augmentation(&self) -> TaskAugmentation {
        TaskAugmentation::scenes()
    }

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

/// The task's model around `backbone` (on the CPU), with a head drawn on the CPU, moved to
/// `device`.
fn to_device<T: Task>(
    task: &T,
    config: &FinetuneConfig,
    backbone: ResNet,
    cpu: &Device,
    device: &Device,
) -> T::Model {
    let drawn = task.build(backbone, cpu);
    if crate::device::is_cpu(&config.device) {
        return drawn;
    }
    let target = task.build(config.backbone_config().init(device), device);
    crate::device::move_weights(drawn, target)
}

/// Runs (or resumes) fine-tuning of `config` in `run_dir` for any task.
pub fn finetune<T: Task + OpenSplit + FromConfig>(
    mut config: FinetuneConfig,
    run_dir: &Path,
    resume: bool,
) -> Result<FinetuneSummary, RunError> {
    let plain = crate::device::select(&config.device)?;
    let device = plain.clone().autodiff();
    device.seed(config.seed);
    // Fresh weights (a new head, a random backbone) are drawn on the CPU from the run's seed and
    // moved (`crate::device::move_weights`).
    let cpu = Device::flex().autodiff();
    cpu.seed(config.seed);
    // A resumed run's saved configuration already holds what the initial weights dictated, and
    // its checkpoint replaces them.
    let backbone = if resume {
        config.backbone_config().init(&cpu)
    } else {
        init::initial_backbone(&mut config, &cpu)?
    };
    config.validate().map_err(RunError::Setup)?;
    let (train, val) = open_splits::<T>(&config)?;
    let task = Arc::new(T::from_config(&config, train.class_names().to_vec()));
    let total = total_steps(train.as_ref(), &config)?;
    let end = config.max_steps.map_or(total, |m| m.min(total));

    std::fs::create_dir_all(run_dir).map_err(io_error(run_dir))?;
    let config_path = run_dir.join(run::dir::CONFIG_FILE);
    if !resume {
        atomic_write(&config_path, config.to_toml().as_bytes()).map_err(io_error(&config_path))?;
    }
    let mut optim = optimizer(&config);
    let mut model = prepare(
        to_device(task.as_ref(), &config, backbone, &cpu, &device),
        &config,
    )?;
    let mut start = 0;
    if resume {
        let (step, restored, record) = restore::<T>(&task, &config, run_dir, &device)?;
        model = prepare(restored, &config)?;
        optim = optimizer(&config).load_record(record);
        start = step;
    }
    let card = model_card(task.as_ref(), &config, total);
    let network = task.network().to_json();
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
    let mut window = run::Window::new();
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
            return Err(RunError::Setup(format!(
                "the loss became {value} at step {step}: lower --lr"
            )));
        }
        let lr = learning_rate(&config, step, total);
        model = optimizer_step::<T>(&mut optim, model, loss, lr, config.backbone_lr_scale);
        images += n;
        window.add(value, 0.0, n);
        let done = step + 1;
        if done.is_multiple_of(config.log_every) || done == end {
            let mean = window.mean_loss();
            first_loss.get_or_insert(mean);
            last_loss = Some(mean);
            let rate = window.images_per_second();
            metrics
                .write(&json!({"step": done, "loss": mean, "lr": lr, "images_per_second": rate}))
                .map_err(io_error(&metrics_path))?;
            progress.step(done, &format!("loss {mean:.4} lr {lr:.4} {rate:.1} img/s"));
            window = run::Window::new();
        } else {
            progress.step(done, "");
        }
        if done.is_multiple_of(config.checkpoint_every) || done == end {
            save_checkpoint(run_dir, done, &model, &optim, &config, &card, &network)?;
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
    save_model(run_dir, &inference, &card, &network)?;
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

/// A task's training and validation splits.
type Splits<S> = (Arc<dyn TaskDataset<S>>, Arc<dyn TaskDataset<S>>);

/// Opens the [`Splits`] of the configured data; they must agree on the classes.
fn open_splits<T: OpenSplit>(config: &FinetuneConfig) -> Result<Splits<T::Sample>, RunError> {
    let train = T::open(config, Split::Train)?;
    let val = T::open(config, Split::Val)?;
    if val.class_names() != train.class_names() {
        return Err(RunError::Setup(format!(
            "the splits disagree on the classes: {} has {:?}, {} has {:?}",
            train.describe(),
            train.class_names(),
            val.describe(),
            val.class_names()
        )));
    }
    Ok((train, val))
}

/// Steps of the whole run: whole batches per epoch times the epochs.
fn total_steps<S>(train: &dyn TaskDataset<S>, config: &FinetuneConfig) -> Result<usize, RunError> {
    let steps_per_epoch = train.len() / config.batch_size;
    if steps_per_epoch == 0 {
        return Err(RunError::Setup(format!(
            "{} has {} images, fewer than one batch of {}",
            train.describe(),
            train.len(),
            config.batch_size
        )));
    }
    Ok(steps_per_epoch * config.epochs)
}

fn log_eval(
    metrics: &mut MetricsLog,
    step: usize,
    when: &str,
    eval: &Evaluation,
) -> Result<(), RunError> {
    let path = metrics.path().to_path_buf();
    metrics
        .write(&json!({"step": step, "eval": when, eval.metric: eval.value}))
        .map_err(io_error(&path))
}

/// Applies the configuration's freezing: the whole backbone (`backbone_lr_scale` 0) or its
/// BatchNorm layers (`freeze_bn`). Frozen BatchNorm uses its running statistics even on the
/// training device (burn's `freeze` turns the layer's training flag off).
fn prepare<M: Module>(model: M, config: &FinetuneConfig) -> Result<M, RunError> {
    let group = |pattern: &str| {
        ParamGroup::from_regex(pattern)
            .map_err(|e| RunError::Setup(format!("parameter group {pattern}: {e:?}")))
    };
    if config.backbone_lr_scale == 0.0 {
        return Ok(model.freeze_group(group(r"^backbone\.")?));
    }
    if config.freeze_bn {
        return Ok(model.freeze_group(group(r"^backbone\.(.*\.)?bn\d*\.")?));
    }
    Ok(model)
}

/// One SGD step; with a backbone scale below 1 the backbone's gradients are applied with the
/// scaled rate and the head's with the full one.
/// SGD with PyTorch's semantics (`crate::run::sgd`).
fn optimizer(config: &FinetuneConfig) -> ModuleOptimizer {
    run::sgd(config.momentum, config.weight_decay)
}

/// Linear warm-up over the first 5% of steps (at most 200), then cosine decay to zero.
pub fn learning_rate(config: &FinetuneConfig, step: usize, total: usize) -> f64 {
    run::warmup_cosine(config.lr, step, total)
}

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

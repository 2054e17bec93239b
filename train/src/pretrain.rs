//! The pretraining loop for every method: Exemplar-v2/v1 and MoCo v2/v1 (query encoder trained
//! by SGD, key encoder by momentum, a queue of negatives) and the supervised cross-entropy
//! baseline.
//!
//! A run lives in one directory:
//! ```text
//! RUN/config.toml          the resolved configuration
//! RUN/metrics.jsonl        step, loss, lr, images/s, … (and kNN results)
//! RUN/checkpoints/         step-NNNNNNNN/ {query,key,model,optimizer}.bpk, queue.bin, state.json
//! RUN/backbone.bpk         the trained backbone …
//! RUN/backbone.json        … and its card (architecture, input, provenance)
//! RUN/eval/knn.json        the final kNN monitor result
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Int, Tensor, TensorData};
use exemplar_kernels::sgd::FusedSgd;
use exemplar_models::contrastive::loss::positive_top1;
use exemplar_models::encoder::l2_normalize;
use exemplar_models::{
    Encoder, EncoderConfig, KeyQueue, ResNetConfig, contrastive_loss, momentum_update,
};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::json;
use thiserror::Error;

use crate::card::{BackboneCard, CARD_FORMAT, CardError, save_backbone};
use crate::checkpoint::{atomic_write, latest_checkpoint, write_checkpoint};
use crate::config::{PretrainConfig, Schedule};
use crate::data::synthetic::rng_for;
use crate::data::{self, DataError, Dataset, Split};
use crate::device::DeviceError;
use crate::eval::features::{ExtractOptions, train_and_val_features};
use crate::eval::knn::{KnnResult, knn_classify};
use crate::eval::{default_result_path, write_result};
use crate::loader::Batch;
use crate::progress::{MetricsLog, Progress};

#[derive(Debug, Error)]
pub enum PretrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot resume from {path}: {reason}")]
    Resume { path: PathBuf, reason: String },
    #[error("{0}")]
    Setup(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PretrainError + '_ {
    move |source| PretrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone, Serialize)]
pub struct PretrainSummary {
    pub run_dir: PathBuf,
    pub steps: usize,
    pub total_steps: usize,
    /// Mean loss of the first and of the last log interval of this invocation.
    pub first_loss: Option<f64>,
    pub last_loss: Option<f64>,
    pub knn: Option<KnnResult>,
    pub images_per_second: f64,
    pub skipped_images: usize,
}

/// Loop state saved in each checkpoint beside the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoopState {
    step: usize,
    method: String,
    queue_ptr: usize,
    queue_labels: Vec<i64>,
    queue_dim: usize,
}

/// The trainable state of either kind of method.
// One learner exists per run and it is moved, not copied, each step: boxing the large variant
// would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Learner {
    Contrastive {
        query: Encoder,
        key: Encoder,
        queue: KeyQueue,
    },
    Supervised {
        model: Encoder,
    },
}

impl Learner {
    /// A freshly initialised learner: for contrastive methods a query encoder, its copy as key
    /// encoder and a random queue; for the supervised baseline an encoder whose head is a
    /// `num_classes`-way classifier.
    pub fn new(config: &PretrainConfig, num_classes: usize, device: &Device) -> Self {
        fresh(config, &encoder_config(config, num_classes), device)
    }

    /// The backbone being pretrained (the query encoder's, for contrastive methods).
    pub fn backbone(&self) -> &exemplar_models::ResNet {
        match self {
            Learner::Contrastive { query, .. } => &query.backbone,
            Learner::Supervised { model } => &model.backbone,
        }
    }
}

/// Runs (or resumes) pretraining in `run_dir`.
pub fn pretrain(
    config: &PretrainConfig,
    run_dir: &Path,
    resume: bool,
) -> Result<PretrainSummary, PretrainError> {
    let device = crate::device::select(&config.device)?;
    device.seed(config.seed);
    let train_device = device.clone().autodiff();

    let train_set = data::open(
        &config.data,
        Split::Train,
        config.synthetic,
        config.image_size,
    )?
    .ok_or_else(|| PretrainError::Setup(format!("{} has no training split", config.data)))?;
    let train_set: Arc<dyn data::Dataset> = match config.train_subset {
        Some(limit) => Arc::new(data::subset::Subset::sample(train_set, limit)),
        None => train_set,
    };
    let val_set = data::open(
        &config.data,
        Split::Val,
        config.synthetic,
        config.image_size,
    )?;
    let num_classes = train_set.class_names().len();
    let plan = config.batch_plan();
    let steps_per_epoch = plan.steps_per_epoch(train_set.len());
    if steps_per_epoch == 0 {
        return Err(PretrainError::Setup(format!(
            "the training set has {} images, fewer than one batch of {}",
            train_set.len(),
            config.batch_size
        )));
    }
    let total_steps = steps_per_epoch * config.epochs;
    let end = config.max_steps.map_or(total_steps, |m| m.min(total_steps));

    std::fs::create_dir_all(run_dir).map_err(io_error(run_dir))?;
    let encoder_config = encoder_config(config, num_classes);
    let mut optim = optimizer(config);
    let (mut learner, start) = if resume {
        restore(config, run_dir, &encoder_config, &train_device, &mut optim)?
    } else {
        (fresh(config, &encoder_config, &train_device), 0)
    };
    let config_path = run_dir.join("config.toml");
    atomic_write(&config_path, config.to_toml().as_bytes()).map_err(io_error(&config_path))?;
    let metrics_path = run_dir.join("metrics.jsonl");
    // A fresh run starts a fresh log (a run directory whose first attempt died before its first
    // checkpoint may hold one); a resumed run keeps the entries up to its checkpoint.
    let mut metrics = MetricsLog::open(&metrics_path, resume.then_some(start))
        .map_err(io_error(&metrics_path))?;

    let mut progress = Progress::new(start, end, config.log_every);
    progress.println(&format!(
        "{} on {}: {} ({} steps/epoch, {} epochs, steps {}..{}, lr {:.4})",
        config.method,
        config.device,
        train_set.describe(),
        steps_per_epoch,
        config.epochs,
        start,
        end,
        config.lr()
    ));

    let mut summary = PretrainSummary {
        run_dir: run_dir.to_path_buf(),
        steps: start,
        total_steps,
        first_loss: None,
        last_loss: None,
        knn: None,
        images_per_second: 0.0,
        skipped_images: 0,
    };
    let monitor = KnnMonitor {
        config,
        train_set: &train_set,
        val_set: val_set.as_ref(),
        device: &device,
    };
    if start == 0 && config.knn_every > 0 {
        // The untrained network's score: the baseline every later kNN result is read against.
        monitor.record(&learner, 0, " (initialisation)", &progress, &mut metrics)?;
    }
    let loader = plan.spawn(Arc::clone(&train_set), start, end, config.workers);
    let started = Instant::now();
    let mut window = Window::new();
    for batch in loader {
        let batch = batch?;
        for reason in &batch.skipped {
            progress.println(&format!("warning: skipped {reason}"));
        }
        summary.skipped_images += batch.skipped.len();
        let step = batch.step;
        let lr = learning_rate(config, step, total_steps);
        let (loss, accuracy);
        (learner, loss, accuracy) =
            train_step(learner, &mut optim, batch, config, lr, &train_device);
        let done = step + 1;
        summary.steps = done;

        window.add(loss, accuracy, config.batch_size);
        let ips = window.images_per_second();
        progress.step(done, &format!("loss {loss:.4} lr {lr:.4} {ips:.1} img/s"));
        if done.is_multiple_of(config.log_every) || done == end {
            let entry = json!({
                "step": done,
                "epoch": done as f64 / steps_per_epoch as f64,
                "loss": window.mean_loss(),
                "accuracy": window.mean_accuracy(),
                "lr": lr,
                "images_per_second": ips,
            });
            metrics.write(&entry).map_err(io_error(metrics.path()))?;
            summary.first_loss.get_or_insert(window.mean_loss());
            summary.last_loss = Some(window.mean_loss());
            window = Window::new();
        }
        if config.knn_every > 0 && done.is_multiple_of(config.knn_every) && done != end {
            monitor.record(&learner, done, "", &progress, &mut metrics)?;
        }
        if done.is_multiple_of(config.checkpoint_every) || done == end {
            save_checkpoint(run_dir, done, &learner, &optim, config)?;
        }
    }
    progress.finish();
    let trained = summary.steps - start;
    summary.images_per_second =
        (trained * config.batch_size) as f64 / started.elapsed().as_secs_f64().max(1e-9);

    let card = BackboneCard {
        format: CARD_FORMAT.to_string(),
        backbone: encoder_config.backbone,
        out_features: encoder_config.backbone.out_features(),
        image_size: config.image_size,
        normalization: config.normalization,
        method: config.method,
        steps: summary.steps,
        data: train_set.describe(),
        class_names: train_set.class_names().to_vec(),
    };
    save_backbone(run_dir, learner.backbone().valid(), &card)?;

    summary.knn = monitor.record(&learner, summary.steps, " (final)", &progress, &mut metrics)?;
    if let Some(knn) = &summary.knn {
        let path = default_result_path(run_dir, "knn");
        let data = train_set.describe();
        write_result(&path, "knn", run_dir, config.method.name(), &data, knn)
            .map_err(io_error(&path))?;
    }
    Ok(summary)
}

fn encoder_config(config: &PretrainConfig, num_classes: usize) -> EncoderConfig {
    EncoderConfig {
        backbone: ResNetConfig::new(config.arch)
            .with_width(config.width)
            .with_stem(config.stem),
        head: config.method.head(),
        out_features: if config.method.is_contrastive() {
            config.embed_dim
        } else {
            num_classes
        },
    }
}

/// Running means over one log interval.
struct Window {
    started: Instant,
    steps: usize,
    loss: f64,
    accuracy: f64,
    images: usize,
}

impl Window {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            steps: 0,
            loss: 0.0,
            accuracy: 0.0,
            images: 0,
        }
    }

    fn add(&mut self, loss: f64, accuracy: f64, images: usize) {
        self.steps += 1;
        self.loss += loss;
        self.accuracy += accuracy;
        self.images += images;
    }

    fn mean_loss(&self) -> f64 {
        self.loss / self.steps.max(1) as f64
    }

    fn mean_accuracy(&self) -> f64 {
        self.accuracy / self.steps.max(1) as f64
    }

    fn images_per_second(&self) -> f64 {
        self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }
}

/// SGD as MoCo configures it, with PyTorch's semantics (no dampening, weight decay added to the gradient; burn's default is 0.1).
/// One fused pass per parameter on the CPU (`exemplar_kernels::sgd`), burn's operations elsewhere.
pub fn optimizer(config: &PretrainConfig) -> ModuleOptimizer {
    FusedSgd {
        momentum: config.sgd_momentum as f32,
        weight_decay: config.weight_decay as f32,
    }
    .init()
}

/// The rate for `step`: linear scaling with batch size, then the schedule (evaluated per step,
/// a smooth version of MoCo's per-epoch cosine).
pub fn learning_rate(config: &PretrainConfig, step: usize, total_steps: usize) -> f64 {
    match config.schedule {
        Schedule::Constant => config.lr(),
        Schedule::Cosine => {
            let progress = step as f64 / total_steps.max(1) as f64;
            config.lr() * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

/// A freshly initialised learner on `device`.
///
/// Every backend has its own random generator, so one seed would start a GPU run from other
/// weights than a CPU run. The initial weights and queue are therefore always drawn on the CPU
/// (seeded with the run's seed) and moved: a seed means one starting point on every backend,
/// and a GPU run's loss curve can be checked against the CPU's step by step.
fn fresh(config: &PretrainConfig, encoder: &EncoderConfig, device: &Device) -> Learner {
    if matches!(config.device.parse(), Ok(crate::device::DeviceSpec::Cpu)) {
        return draw(config, encoder, device);
    }
    let cpu = Device::flex();
    cpu.seed(config.seed);
    match draw(config, encoder, &cpu.autodiff()) {
        Learner::Supervised { model } => Learner::Supervised {
            model: move_encoder(model, encoder, device),
        },
        Learner::Contrastive { query, key, queue } => Learner::Contrastive {
            query: move_encoder(query, encoder, device),
            key: move_encoder(key, encoder, device).no_grad(),
            queue: KeyQueue::from_parts(
                Tensor::<2>::from_data(queue.keys().into_data(), device),
                queue.labels().to_vec(),
                queue.ptr(),
            ),
        },
    }
}

/// `model`'s parameters in a new encoder on `device`, through the checkpoints' record format.
fn move_encoder(model: Encoder, encoder: &EncoderConfig, device: &Device) -> Encoder {
    let bytes = model
        .into_record()
        .into_bytes()
        .expect("a freshly initialised encoder serialises");
    let record = ModuleRecord::from_bytes(bytes).expect("the record just written reads back");
    encoder.init(device).load_record(record)
}

/// The learner's initial state, drawn from `device`'s random generator.
fn draw(config: &PretrainConfig, encoder: &EncoderConfig, device: &Device) -> Learner {
    let model = encoder.init(device);
    if !config.method.is_contrastive() {
        return Learner::Supervised { model };
    }
    // The key encoder starts as a copy of the query encoder. Copy through a record rather than
    // `clone()`: clones share lazily initialised parameters.
    let key = encoder
        .init(device)
        .load_record(model.clone().into_record())
        .no_grad();
    Learner::Contrastive {
        query: model,
        key,
        queue: KeyQueue::random(config.queue_size, config.embed_dim, device),
    }
}

fn restore(
    config: &PretrainConfig,
    run_dir: &Path,
    encoder: &EncoderConfig,
    device: &Device,
    optim: &mut ModuleOptimizer,
) -> Result<(Learner, usize), PretrainError> {
    let Some((step, dir)) = latest_checkpoint(run_dir).map_err(io_error(run_dir))? else {
        return Err(PretrainError::Resume {
            path: run_dir.to_path_buf(),
            reason: "no checkpoint found (was the run started with this directory?)".into(),
        });
    };
    let fail = |reason: String| PretrainError::Resume {
        path: dir.clone(),
        reason,
    };
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| fail(format!("{name}: {e}")));
    let state: LoopState = serde_json::from_slice(&read("state.json")?)
        .map_err(|e| fail(format!("state.json: {e}")))?;
    if state.step != step || state.method != config.method.name() {
        return Err(fail(format!(
            "checkpoint is step {} of {}, expected step {step} of {}",
            state.step, state.method, config.method
        )));
    }
    let load = |name: &str| -> Result<Encoder, PretrainError> {
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(read(name)?))
            .map_err(|e| fail(format!("{name}: {e}")))?;
        encoder
            .init(device)
            .try_load_record(record)
            .map_err(|e| fail(format!("{name}: {e}")))
    };
    let optimizer = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(read("optimizer.bpk")?))
        .map_err(|e| fail(format!("optimizer.bpk: {e}")))?;
    let learner = if config.method.is_contrastive() {
        let query = load("query.bpk")?;
        let key = load("key.bpk")?.no_grad();
        let raw = read("queue.bin")?;
        let expected = config.queue_size * state.queue_dim * 4;
        if raw.len() != expected
            || state.queue_labels.len() != config.queue_size
            || state.queue_ptr >= config.queue_size
        {
            return Err(fail(format!(
                "queue.bin holds {} bytes, expected {expected} for {} keys of {}",
                raw.len(),
                config.queue_size,
                state.queue_dim
            )));
        }
        let keys: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let keys = Tensor::<2>::from_data(
            TensorData::new(keys, [config.queue_size, state.queue_dim]),
            device,
        );
        let queue = KeyQueue::from_parts(keys, state.queue_labels, state.queue_ptr);
        Learner::Contrastive { query, key, queue }
    } else {
        Learner::Supervised {
            model: load("model.bpk")?,
        }
    };
    *optim = std::mem::replace(optim, self::optimizer(config)).load_record(optimizer);
    Ok((learner, step))
}

fn save_checkpoint(
    run_dir: &Path,
    step: usize,
    learner: &Learner,
    optim: &ModuleOptimizer,
    config: &PretrainConfig,
) -> Result<(), PretrainError> {
    let record_error = |what: &str, e: burn::store::RecordError| {
        PretrainError::Setup(format!("cannot serialise {what}: {e}"))
    };
    // `valid()` first: it folds the BatchNorm running statistics' latest per-thread updates in,
    // which a plain record of the training module would miss (they lag one step behind).
    let to_bytes = |what: &str, encoder: &Encoder| -> Result<Vec<u8>, PretrainError> {
        Ok(encoder
            .valid()
            .into_record()
            .into_bytes()
            .map_err(|e| record_error(what, e))?
            .to_vec())
    };
    let optimizer = optim
        .into_bytes()
        .map_err(|e| record_error("optimizer", e))?
        .to_vec();
    let mut files: Vec<(&str, Vec<u8>)> = vec![("optimizer.bpk", optimizer)];
    let mut state = LoopState {
        step,
        method: config.method.name().to_string(),
        queue_ptr: 0,
        queue_labels: Vec::new(),
        queue_dim: 0,
    };
    match learner {
        Learner::Contrastive { query, key, queue } => {
            files.push(("query.bpk", to_bytes("query encoder", query)?));
            files.push(("key.bpk", to_bytes("key encoder", key)?));
            let keys: Vec<u8> = queue
                .keys()
                .into_data()
                .iter::<f32>()
                .flat_map(f32::to_le_bytes)
                .collect();
            files.push(("queue.bin", keys));
            state.queue_ptr = queue.ptr();
            state.queue_labels = queue.labels().to_vec();
            state.queue_dim = queue.dim();
        }
        Learner::Supervised { model } => files.push(("model.bpk", to_bytes("model", model)?)),
    }
    files.push((
        "state.json",
        serde_json::to_vec(&state).expect("serialisable"),
    ));
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    write_checkpoint(run_dir, step, &borrowed, config.keep_checkpoints)
        .map_err(io_error(&run_dir.join("checkpoints")))?;
    Ok(())
}

/// One optimisation step on `batch` (made by the same config's
/// [`batch_plan`](PretrainConfig::batch_plan)) on the autodiff `device`. Returns the updated
/// learner, the loss and the accuracy monitor (positive top-1 for contrastive methods,
/// classification top-1 for supervised).
pub fn train_step(
    learner: Learner,
    optim: &mut ModuleOptimizer,
    batch: Batch,
    config: &PretrainConfig,
    lr: f64,
    device: &Device,
) -> (Learner, f64, f64) {
    let n = batch.labels.len();
    let size = config.image_size;
    let mut views = batch.views.into_iter();
    let mut next_view = || {
        let data = views.next().expect("the plan makes one view per input");
        Tensor::<4>::from_data(TensorData::new(data, [n, 3, size, size]), device)
    };
    let labels = Tensor::<1, Int>::from_data(TensorData::new(batch.labels.clone(), [n]), device);
    match learner {
        Learner::Supervised { model } => {
            let logits = model.forward(next_view());
            let accuracy = logits
                .clone()
                .argmax(1)
                .reshape([n])
                .equal(labels.clone())
                .int()
                .sum()
                .into_scalar::<i64>() as f64
                / n as f64;
            let loss = CrossEntropyLossConfig::new()
                .init(device)
                .forward(logits, labels);
            let value = loss.clone().into_scalar::<f32>() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let model = optim.step(lr, model, grads);
            (Learner::Supervised { model }, value, accuracy)
        }
        Learner::Contrastive {
            query,
            key,
            mut queue,
        } => {
            // MoCo updates the key encoder before computing this batch's keys.
            let key = momentum_update(key, &query, config.key_momentum);
            let q = l2_normalize(query.forward(next_view()));
            let k = key_features(&key, next_view(), config, batch.step).detach();
            let masking = config
                .method
                .masks_same_class()
                .then(|| (labels, queue.labels_tensor()));
            let out = contrastive_loss(q, k.clone(), queue.keys(), masking, config.temperature);
            let value = out.loss.clone().into_scalar::<f32>() as f64;
            let accuracy = positive_top1(out.logits.detach()) as f64;
            let grads = GradientsParams::from_grads(out.loss.backward(), &query);
            let query = optim.step(lr, query, grads);
            queue.enqueue(k, &batch.labels);
            (Learner::Contrastive { query, key, queue }, value, accuracy)
        }
    }
}

/// Keys for a batch. With `bn_splits > 1` the batch is shuffled and each group goes through the
/// key encoder separately, so BatchNorm statistics mix unrelated images (MoCo's shuffle-BN on
/// one device); the keys are put back in order afterwards.
fn key_features(
    key: &Encoder,
    images: Tensor<4>,
    config: &PretrainConfig,
    step: usize,
) -> Tensor<2> {
    if config.bn_splits <= 1 {
        return l2_normalize(key.forward(images));
    }
    let n = images.dims()[0];
    let device = images.device();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng_for(config.seed, &[30, step as u64]));
    let mut inverse = vec![0usize; n];
    for (position, &index) in order.iter().enumerate() {
        inverse[index] = position;
    }
    let to_tensor = |v: &[usize]| {
        Tensor::<1, Int>::from_data(
            TensorData::new(v.iter().map(|&i| i as i64).collect::<Vec<_>>(), [n]),
            &device,
        )
    };
    let shuffled = images.select(0, to_tensor(&order));
    let group = n / config.bn_splits;
    let outputs: Vec<Tensor<2>> = (0..config.bn_splits)
        .map(|g| key.forward(shuffled.clone().narrow(0, g * group, group)))
        .collect();
    l2_normalize(Tensor::cat(outputs, 0).select(0, to_tensor(&inverse)))
}

/// The kNN monitor: scores the current backbone on the validation split (when there is one),
/// prints the result and logs it.
struct KnnMonitor<'a> {
    config: &'a PretrainConfig,
    train_set: &'a Arc<dyn Dataset>,
    val_set: Option<&'a Arc<dyn Dataset>>,
    device: &'a Device,
}

impl KnnMonitor<'_> {
    fn record(
        &self,
        learner: &Learner,
        step: usize,
        note: &str,
        progress: &Progress,
        metrics: &mut MetricsLog,
    ) -> Result<Option<KnnResult>, PretrainError> {
        let Some(val_set) = self.val_set.filter(|_| self.config.knn_bank_size > 0) else {
            return Ok(None);
        };
        let config = self.config;
        let backbone = learner.backbone().valid();
        let options = ExtractOptions {
            image_size: config.image_size,
            normalization: config.normalization,
            batch_size: config.batch_size.max(64),
            workers: config.workers,
            on_bad_image: config.on_bad_image,
        };
        let (bank, queries) = train_and_val_features(
            &backbone,
            self.train_set,
            val_set,
            config.knn_bank_size,
            options,
            self.device,
        )?;
        let knn = knn_classify(
            &bank,
            &queries,
            self.train_set.class_names().len(),
            config.knn_k,
            config.knn_temperature,
            self.device,
        );
        progress.println(&format!(
            "step {step}: kNN top-1 {:.2}%{note}",
            knn.top1 * 100.0
        ));
        let entry = json!({"step": step, "knn_top1": knn.top1});
        metrics.write(&entry).map_err(io_error(metrics.path()))?;
        Ok(Some(knn))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use exemplar_models::{Depth, Stem};

    use super::*;
    use crate::config::Method;

    /// The GPU start-up path draws the weights on the CPU and moves them through a record; the
    /// moved encoder must compute exactly what the drawn one does.
    #[test]
    fn a_moved_encoder_keeps_its_weights() {
        let mut config = PretrainConfig::defaults(Method::ExemplarV2);
        config.arch = Depth::ResNet18;
        config.width = 0.125;
        config.stem = Stem::Small;
        let encoder = encoder_config(&config, 4);
        let cpu = Device::flex();
        cpu.seed(7);
        let drawn = encoder.init(&cpu.clone().autodiff());
        let images = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &cpu);
        let expected = drawn.valid().forward(images.clone());
        let moved = move_encoder(drawn, &encoder, &cpu);
        let got = moved.forward(images);
        expected.into_data().assert_eq(&got.into_data(), true);
    }
}

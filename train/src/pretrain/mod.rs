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

mod learner;
mod monitor;
mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::optim::ModuleOptimizer;
use exemplar_models::card::{BackboneCard, CARD_FORMAT, save_backbone};
use exemplar_models::{EncoderConfig, ResNetConfig};
use serde::Serialize;
use serde_json::json;

use crate::checkpoint::atomic_write;
use crate::config::{PretrainConfig, Schedule};
use crate::eval::knn::KnnResult;
use crate::progress::{MetricsLog, Progress};
use crate::run::{self, RunError, Window, io_error};
use exemplar_data::{self, Dataset, Split};

use self::learner::fresh;
use self::monitor::KnnMonitor;
use self::state::{restore, save_checkpoint};

pub use self::learner::{Learner, train_step};

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

/// Runs (or resumes) pretraining in `run_dir`.
pub fn pretrain(
    config: &PretrainConfig,
    run_dir: &Path,
    resume: bool,
) -> Result<PretrainSummary, RunError> {
    let device = crate::device::select(&config.device)?;
    device.seed(config.seed);
    let train_device = device.clone().autodiff();

    let (train_set, val_set) = open_splits(config)?;
    let num_classes = train_set.class_names().len();
    let plan = config.batch_plan();
    let steps_per_epoch = plan.steps_per_epoch(train_set.len());
    if steps_per_epoch == 0 {
        return Err(RunError::Setup(format!(
            "the training set has {} images, fewer than one batch of {}",
            train_set.len(),
            config.batch_size
        )));
    }
    let total_steps = steps_per_epoch * config.epochs;
    let end = config.max_steps.map_or(total_steps, |m| m.min(total_steps));
    if config.method.is_contrastive()
        && end > steps_per_epoch
        && config.queue_size > train_set.len()
    {
        // From the second epoch on, every query's own earlier key would be one of its negatives.
        return Err(RunError::Setup(format!(
            "the queue holds {} keys but the training set has only {} images, so from the second \
             epoch on every query's own earlier key would be one of its negatives: use \
             --queue-size {} or less, or train one epoch",
            config.queue_size,
            train_set.len(),
            train_set.len()
        )));
    }

    std::fs::create_dir_all(run_dir).map_err(io_error(run_dir))?;
    let encoder_config = encoder_config(config, num_classes);
    let mut optim = optimizer(config);
    let (mut learner, start) = if resume {
        restore(config, run_dir, &encoder_config, &train_device, &mut optim)?
    } else {
        (fresh(config, &encoder_config, &train_device), 0)
    };
    let config_path = run_dir.join(run::dir::CONFIG_FILE);
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
    monitor.at_start(&learner, start, &progress, &mut metrics)?;
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
        monitor.after_step(&learner, done, end, &progress, &mut metrics)?;
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
        method: config.method.name().to_string(),
        steps: summary.steps,
        data: train_set.describe(),
        class_names: train_set.class_names().to_vec(),
    };
    save_backbone(run_dir, learner.backbone(), &card)?;

    summary.knn = monitor.at_end(&learner, summary.steps, run_dir, &progress, &mut metrics)?;
    Ok(summary)
}

/// The training split (or its `train_subset`) and the validation split, when the data has one.
type Splits = (Arc<dyn Dataset>, Option<Arc<dyn Dataset>>);

/// Opens the [`Splits`] of the configured data.
fn open_splits(config: &PretrainConfig) -> Result<Splits, RunError> {
    let open =
        |split| exemplar_data::open(&config.data, split, config.synthetic, config.image_size);
    let train_set = open(Split::Train)?
        .ok_or_else(|| RunError::Setup(format!("{} has no training split", config.data)))?;
    let train_set: Arc<dyn Dataset> = match config.base_classes {
        Some(classes) => {
            let base = exemplar_data::subset::Subset::with_labels(train_set, |label| {
                usize::try_from(label).is_ok_and(|label| label < classes)
            })?;
            if base.is_empty() {
                return Err(RunError::Setup(format!(
                    "{} has no images of the first {classes} classes",
                    config.data
                )));
            }
            Arc::new(base)
        }
        None => train_set,
    };
    let train_set: Arc<dyn Dataset> = match config.train_subset {
        Some(limit) => Arc::new(exemplar_data::subset::Subset::sample(train_set, limit)),
        None => train_set,
    };
    Ok((train_set, open(Split::Val)?))
}

pub(crate) fn encoder_config(config: &PretrainConfig, num_classes: usize) -> EncoderConfig {
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

/// SGD as MoCo configures it (`crate::run::sgd`).
pub fn optimizer(config: &PretrainConfig) -> ModuleOptimizer {
    run::sgd(config.sgd_momentum, config.weight_decay)
}

/// The rate for `step`: linear scaling with batch size, then the schedule (evaluated per step,
/// a smooth version of MoCo's per-epoch cosine).
pub fn learning_rate(config: &PretrainConfig, step: usize, total_steps: usize) -> f64 {
    match config.schedule {
        Schedule::Constant => config.lr(),
        Schedule::Cosine => run::cosine(config.lr(), step, total_steps),
    }
}

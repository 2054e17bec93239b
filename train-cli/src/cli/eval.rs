//! `train eval`: frozen-feature evaluations of a backbone (kNN, linear probe, few-shot) and a
//! fine-tuned model on its task.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use exemplar_data::subset::Subset;
use exemplar_data::{self, DataSource, Dataset, Split};
use exemplar_models::card::load_backbone;
use exemplar_train::config::{self, BadImagePolicy, PretrainConfig};
use exemplar_train::eval::features::{ExtractOptions, Features, train_and_val_features};
use exemplar_train::eval::fewshot::{self, FewShotOptions};
use exemplar_train::eval::knn::knn_classify;
use exemplar_train::eval::linear::{LinearProbeOptions, linear_probe};
use exemplar_train::eval::{default_result_path, write_result};
use exemplar_train::finetune::config::FinetuneConfig;
use exemplar_train::finetune::{self, FromConfig, MODEL_CARD, OpenSplit, Task, TaskKind};
use exemplar_train::run::dir;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Weighted kNN classification on frozen features (the pretraining monitor).
    Knn(KnnArgs),
    /// Linear probe: a linear classifier trained on frozen features.
    Linear(LinearArgs),
    /// N-way K-shot episodes on frozen features (mean accuracy with a 95% interval).
    FewShot(FewShotArgs),
    /// A fine-tuned detector: VOC07 AP50 (11-point and area) and COCO AP.
    Detection(TaskEvalArgs),
    /// A fine-tuned segmenter: mIoU and per-class IoU.
    Segmentation(TaskEvalArgs),
    /// A fine-tuned landmark regressor: inter-ocular normalised error.
    Landmarks(TaskEvalArgs),
    /// A fine-tuned classifier: top-1 accuracy.
    Classification(TaskEvalArgs),
}

#[derive(Debug, Args)]
pub struct FewShotArgs {
    #[command(flatten)]
    data: EvalData,
    /// Classes per episode
    #[arg(long, default_value_t = 5)]
    ways: usize,
    /// Support images per class (comma-separated for several settings)
    #[arg(long, value_delimiter = ',', default_value = "1,5")]
    shots: Vec<usize>,
    /// Query images per class
    #[arg(long, default_value_t = 15)]
    queries: usize,
    /// Episodes per setting
    #[arg(long, default_value_t = 600)]
    episodes: usize,
    /// Gradient rounds of each episode's classifier
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Learning rate of each episode's classifier (on L2-normalised features)
    #[arg(long, default_value_t = 1.0)]
    lr: f32,
    /// Seed of the episode sampler
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draw episodes only from the classes with labels from N on: the novel classes of a
    /// backbone pretrained with `--base-classes N` [default: every class]
    #[arg(long, value_name = "N")]
    classes_from: Option<usize>,
}

#[derive(Debug, Args)]
pub struct TaskEvalArgs {
    /// A fine-tuning run directory (with config.toml, model.bpk and model.json).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Data to evaluate on (its validation split) [default: the run's data]
    #[arg(long)]
    data: Option<DataSource>,
    #[command(flatten)]
    common: EvalRunning,
}

/// How every evaluation runs, and where its result goes.
#[derive(Debug, Args)]
struct EvalRunning {
    /// Data-loading threads
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Compute device: cpu, wgpu, vulkan or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Where to write the JSON result [default: RUN/eval/<evaluation>.json]
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Which backbone and which data to evaluate on.
#[derive(Debug, Args)]
struct EvalData {
    /// Run directory (or any directory with backbone.bpk and backbone.json).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Data to evaluate on [default: the run's pretraining data]
    #[arg(long)]
    data: Option<DataSource>,
    /// Use at most this many training images [default: all]
    #[arg(long)]
    train_limit: Option<usize>,
    #[command(flatten)]
    common: EvalRunning,
}

#[derive(Debug, Args)]
pub struct KnnArgs {
    #[command(flatten)]
    data: EvalData,
    /// Number of neighbours
    #[arg(long, default_value_t = 200)]
    k: usize,
    /// Temperature of the weighted vote
    #[arg(long, default_value_t = 0.1)]
    temperature: f32,
}

#[derive(Debug, Args)]
pub struct LinearArgs {
    #[command(flatten)]
    data: EvalData,
    /// Training epochs of the probe
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Batch size of the probe
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Initial learning rate (cosine schedule) on standardised features
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Weight decay
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Seed of the probe's sample order
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Everything an evaluation needs: backbone, card, data splits.
struct EvalSetup {
    backbone: exemplar_models::ResNet,
    card: exemplar_models::card::BackboneCard,
    train: Arc<dyn exemplar_data::Dataset>,
    val: Arc<dyn exemplar_data::Dataset>,
    options: ExtractOptions,
    device: burn::tensor::Device,
    train_limit: usize,
}

impl EvalSetup {
    /// Frozen features of the training split (the bank / probe training set) and of the
    /// validation split.
    fn features(&self) -> Result<(Features, Features)> {
        Ok(train_and_val_features(
            &self.backbone,
            &self.train,
            &self.val,
            self.train_limit,
            self.options,
            &self.device,
        )?)
    }
}

fn eval_setup(args: &EvalData) -> Result<EvalSetup> {
    let device = exemplar_train::device::select(&args.common.device)?;
    let (backbone, card) = load_backbone(&args.run, &device)
        .with_context(|| format!("loading the backbone of {}", args.run.display()))?;
    let saved = args.run.join("config.toml");
    let run_config = saved
        .exists()
        .then(|| config::load_saved(&saved))
        .transpose()?;
    let source = match (&args.data, &run_config) {
        (Some(source), _) => source.clone(),
        (None, Some(config)) => config.data.clone(),
        (None, None) => bail!("{} has no config.toml: pass --data", args.run.display()),
    };
    let synthetic = run_config.as_ref().map_or(
        PretrainConfig::defaults(exemplar_train::config::Method::ExemplarV2).synthetic,
        |c| c.synthetic,
    );
    let train = exemplar_data::open(&source, Split::Train, synthetic, card.image_size)?
        .with_context(|| format!("{source} has no training split"))?;
    let val = exemplar_data::open(&source, Split::Val, synthetic, card.image_size)?
        .with_context(|| format!("{source} has no validation split (ImageFolder: add ROOT/val)"))?;
    let options = ExtractOptions {
        image_size: card.image_size,
        normalization: card.normalization,
        batch_size: 128,
        workers: args.common.workers.max(1),
        on_bad_image: BadImagePolicy::Skip,
    };
    Ok(EvalSetup {
        backbone: burn::module::Module::valid(&backbone),
        card,
        train,
        val,
        options,
        device,
        train_limit: args.train_limit.unwrap_or(usize::MAX),
    })
}

/// Writes an evaluation's JSON to `--json` or the run's `eval/<kind>.json`.
fn save_result(
    args: &EvalData,
    setup: &EvalSetup,
    kind: &str,
    result: &impl serde::Serialize,
) -> Result<PathBuf> {
    let path = args
        .common
        .json
        .clone()
        .unwrap_or_else(|| default_result_path(&args.run, kind));
    write_result(
        &path,
        kind,
        &args.run,
        &setup.card.method,
        &setup.train.describe(),
        result,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub fn run_knn(args: KnnArgs) -> Result<()> {
    let setup = eval_setup(&args.data)?;
    let (bank, queries) = setup.features()?;
    let result = knn_classify(
        &bank,
        &queries,
        setup.train.class_names().len(),
        args.k,
        args.temperature,
        &setup.device,
    );
    let path = save_result(&args.data, &setup, "knn", &result)?;
    println!(
        "kNN top-1 {:.2}% (k={}, {} bank images, {} queries) -> {}",
        result.top1 * 100.0,
        result.k,
        result.bank_size,
        result.queries,
        path.display()
    );
    Ok(())
}

pub fn run_linear(args: LinearArgs) -> Result<()> {
    if args.epochs == 0 || args.batch_size == 0 {
        bail!("--epochs and --batch-size must be at least 1");
    }
    let setup = eval_setup(&args.data)?;
    let (train, val) = setup.features()?;
    let options = LinearProbeOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        weight_decay: args.weight_decay,
        seed: args.seed,
    };
    let result = linear_probe(
        &train,
        &val,
        setup.train.class_names().len(),
        options,
        &setup.device,
    );
    let path = save_result(&args.data, &setup, "linear", &result)?;
    println!(
        "linear probe top-1 {:.2}%, top-5 {:.2}% (train {:.2}%, {} train / {} val images, {} epochs) -> {}",
        result.top1 * 100.0,
        result.top5 * 100.0,
        result.train_top1 * 100.0,
        result.train_size,
        result.val_size,
        args.epochs,
        path.display()
    );
    Ok(())
}

fn task_eval<T: Task + FromConfig + OpenSplit>(args: TaskEvalArgs, kind: TaskKind) -> Result<()> {
    let saved = dir::saved_config(&args.run, "fine-tuning")?;
    let mut config = FinetuneConfig::load(&saved)?;
    if config.task != kind {
        bail!(
            "{} is a {} run: use `train eval {}`",
            args.run.display(),
            config.task,
            config.task
        );
    }
    let card = exemplar_inference::ModelCard::read(&args.run.join(MODEL_CARD))
        .with_context(|| format!("{} has no finished model", args.run.display()))?;
    if let Some(data) = args.data {
        config.data = data;
    }
    config.workers = args.common.workers.max(1);
    let device = exemplar_train::device::select(&args.common.device)?;
    let (eval, data) = finetune::evaluate_run::<T>(&args.run, &config, &card, &device)?;
    let path = args
        .common
        .json
        .clone()
        .unwrap_or_else(|| default_result_path(&args.run, kind.name()));
    write_result(
        &path,
        kind.name(),
        &args.run,
        &config.init.to_string(),
        &data,
        &eval.result,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    println!("{kind}: {} -> {}", eval.summary, path.display());
    Ok(())
}

pub fn run_few_shot(args: FewShotArgs) -> Result<()> {
    let setup = eval_setup(&args.data)?;
    let images: Arc<dyn Dataset> = match args.classes_from {
        Some(first) => {
            let novel = Subset::with_labels(Arc::clone(&setup.val), |label| {
                usize::try_from(label).is_ok_and(|label| label >= first)
            })?;
            if novel.is_empty() {
                bail!(
                    "--classes-from {first}: {} has no images of classes from {first} on",
                    setup.val.describe()
                );
            }
            Arc::new(novel)
        }
        None => Arc::clone(&setup.val),
    };
    let all = (0..images.len()).collect();
    let features = exemplar_train::eval::features::extract(
        &setup.backbone,
        images,
        all,
        setup.options,
        &setup.device,
    )?;
    let mut results = Vec::new();
    for &shots in &args.shots {
        let options = FewShotOptions {
            ways: args.ways,
            shots,
            queries: args.queries,
            episodes: args.episodes,
            rounds: args.rounds,
            lr: args.lr,
            seed: args.seed,
        };
        results.push(fewshot::evaluate(&features, options)?);
    }
    let path = save_result(&args.data, &setup, "few-shot", &results)?;
    let settings: Vec<String> = results
        .iter()
        .map(|r| format!("{}-shot {:.2}% ± {:.2}%", r.shots, r.accuracy, r.ci95))
        .collect();
    println!(
        "{}-way {} ({} episodes, {} queries per class, {} images) -> {}",
        args.ways,
        settings.join(", "),
        args.episodes,
        args.queries,
        features.len(),
        path.display()
    );
    Ok(())
}

/// Runs an evaluation subcommand.
pub fn run(command: EvalCommand) -> Result<()> {
    match command {
        EvalCommand::Knn(args) => run_knn(args),
        EvalCommand::Linear(args) => run_linear(args),
        EvalCommand::FewShot(args) => run_few_shot(args),
        EvalCommand::Detection(args) => run_task_eval(args, TaskKind::Detection),
        EvalCommand::Segmentation(args) => run_task_eval(args, TaskKind::Segmentation),
        EvalCommand::Landmarks(args) => run_task_eval(args, TaskKind::Landmarks),
        EvalCommand::Classification(args) => run_task_eval(args, TaskKind::Classification),
    }
}

pub fn run_task_eval(args: TaskEvalArgs, kind: TaskKind) -> Result<()> {
    exemplar_train::with_task!(kind, T => task_eval::<T>(args, kind))
}

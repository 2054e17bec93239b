//! `train`: pretrain backbones with Exemplar-v2 and its baselines, fine-tune them on the transfer
//! tasks, and evaluate both.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use exemplar_train::card::load_backbone;
use exemplar_train::checkpoint::latest_checkpoint;
use exemplar_train::config::{self, BadImagePolicy, PretrainConfig, PretrainFlags};
use exemplar_train::data::{self, DataSource, Split};
use exemplar_train::eval::features::{ExtractOptions, Features, train_and_val_features};
use exemplar_train::eval::fewshot::{self, FewShotOptions};
use exemplar_train::eval::knn::knn_classify;
use exemplar_train::eval::linear::{LinearProbeOptions, linear_probe};
use exemplar_train::eval::{default_result_path, write_result};
use exemplar_train::finetune::classification::ClassificationTask;
use exemplar_train::finetune::config::{FinetuneConfig, FinetuneFlags};
use exemplar_train::finetune::detection::DetectionTask;
use exemplar_train::finetune::landmarks::LandmarkTask;
use exemplar_train::finetune::segmentation::SegmentationTask;
use exemplar_train::finetune::{
    self, FinetuneSummary, FromConfig, MODEL_CARD, OpenSplit, Task, TaskKind,
};
use exemplar_train::pretrain::pretrain;

/// Pretrain vision backbones with Exemplar-v2 (label-filtered MoCo negatives) and its baselines,
/// and evaluate them on frozen features.
#[derive(Debug, Parser)]
#[command(
    name = "train",
    version,
    propagate_version = true,
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up; the size of the flags struct does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Pretrain a backbone (exemplar-v2, exemplar-v1, moco-v2, moco-v1 or supervised).
    Pretrain(PretrainArgs),
    /// Fine-tune a backbone on a downstream task (detection, segmentation, landmarks or
    /// classification).
    Finetune(FinetuneArgs),
    /// Evaluate a pretrained backbone's frozen features, or a fine-tuned model on its task.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Run the paper's comparisons at small scale (methods, augmentation ablation, transfer)
    /// over several seeds and write a report with tables and charts.
    Experiment(ExperimentArgs),
}

#[derive(Debug, Args)]
#[command(args_override_self = true)]
struct ExperimentArgs {
    /// Studies to run (repeat or comma-separate) [default: all three]
    #[arg(long = "study", value_enum, value_delimiter = ',')]
    studies: Vec<exemplar_train::experiment::Study>,
    /// Pretraining and linear-probe data, e.g. idx:PATH for Fashion-MNIST
    /// (scripts/fetch-fashion-mnist.sh prints the path).
    #[arg(long)]
    data: DataSource,
    /// Seeds per arm.
    #[arg(long, default_value_t = 5)]
    seeds: usize,
    /// The settings every compared method shares (sizes, epochs, MoCo settings); TOML with
    /// every field, as configs/study.toml [default: the built-in copy of configs/study.toml]
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,
    /// Multiplies the data budget: 1 is sized for about an hour on 2 CPU cores; larger on a GPU.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Where the report (report.md, PNG charts, results.json) goes.
    #[arg(long, value_name = "DIR", default_value = "results/study")]
    out: PathBuf,
    /// Where the runs go; finished runs with the same configuration are reused.
    #[arg(long, value_name = "DIR", default_value = "runs/study")]
    work: PathBuf,
    /// Data-loading threads [default: number of cores]
    #[arg(long)]
    workers: Option<usize>,
    /// Compute device: cpu, vulkan or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Debug, Args)]
struct FinetuneArgs {
    /// Run directory: config, metrics, checkpoints, the model and its card go here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint, with its saved configuration.
    #[arg(long, requires = "out")]
    resume: bool,
    #[command(flatten)]
    flags: FinetuneFlags,
}

#[derive(Debug, Args)]
struct PretrainArgs {
    /// TOML file with any of the settings below (flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run directory: config, metrics, checkpoints and the trained backbone go here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint, with its saved configuration.
    #[arg(long, requires = "out")]
    resume: bool,
    #[command(flatten)]
    flags: PretrainFlags,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
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
struct FewShotArgs {
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
}

#[derive(Debug, Args)]
struct TaskEvalArgs {
    /// A fine-tuning run directory (with config.toml, model.bpk and model.json).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Data to evaluate on (its validation split) [default: the run's data]
    #[arg(long)]
    data: Option<DataSource>,
    /// Data-loading threads
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Compute device: cpu, vulkan or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Where to write the JSON result [default: RUN/eval/<task>.json]
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
    /// Data-loading threads
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Compute device: cpu, vulkan or cuda:N
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Where to write the JSON result [default: RUN/eval/<kind>.json]
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct KnnArgs {
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
struct LinearArgs {
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

fn main() -> ExitCode {
    exemplar_train::allocator::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pretrain(args) => run_pretrain(args),
        Command::Eval(EvalCommand::Knn(args)) => run_knn(args),
        Command::Eval(EvalCommand::Linear(args)) => run_linear(args),
        Command::Eval(EvalCommand::FewShot(args)) => run_few_shot(args),
        Command::Finetune(args) => run_finetune(args),
        Command::Experiment(args) => run_experiment(args),
        Command::Eval(EvalCommand::Detection(args)) => {
            run_task_eval::<DetectionTask>(args, TaskKind::Detection)
        }
        Command::Eval(EvalCommand::Segmentation(args)) => {
            run_task_eval::<SegmentationTask>(args, TaskKind::Segmentation)
        }
        Command::Eval(EvalCommand::Landmarks(args)) => {
            run_task_eval::<LandmarkTask>(args, TaskKind::Landmarks)
        }
        Command::Eval(EvalCommand::Classification(args)) => {
            run_task_eval::<ClassificationTask>(args, TaskKind::Classification)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            // Our error messages already quote their source ("PATH: reason"); print a cause only
            // when it adds something to the line above it.
            let mut shown = err.to_string();
            for cause in err.chain().skip(1) {
                let text = cause.to_string();
                if !shown.contains(&text) {
                    eprintln!("  caused by: {text}");
                }
                shown = text;
            }
            ExitCode::FAILURE
        }
    }
}

fn run_experiment(args: ExperimentArgs) -> Result<()> {
    use exemplar_train::experiment::{self, Study, StudyOptions};
    let studies = if args.studies.is_empty() {
        vec![Study::Methods, Study::Augmentation, Study::Transfer]
    } else {
        args.studies
    };
    let settings = match &args.settings {
        Some(path) => experiment::Budget::load(path)?,
        None => experiment::Budget::default(),
    };
    let options = StudyOptions {
        studies,
        seeds: args.seeds,
        settings,
        scale: args.scale,
        data: args.data,
        work: args.work,
        out: args.out,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        workers: args
            .workers
            .unwrap_or_else(|| PretrainConfig::defaults(config::Method::Supervised).workers),
        device: args.device,
    };
    let results = experiment::run(&options)?;
    println!(
        "study: {} pretraining and {} transfer runs ({} reused) in {:.1} min -> {}",
        results.pretrain.len(),
        results.transfer.len(),
        results.reused,
        results.seconds / 60.0,
        options.out.join("report.md").display()
    );
    Ok(())
}

fn run_pretrain(args: PretrainArgs) -> Result<()> {
    let (config, out) = if args.resume {
        let out = args.out.expect("clap requires --out with --resume");
        (resumed_config(&args.config, &out, &args.flags)?, out)
    } else {
        let config = config::resolve(args.config.as_deref(), &args.flags)?;
        let out = args.out.unwrap_or_else(|| default_run_dir(&config));
        if latest_checkpoint(&out)?.is_some() {
            bail!(
                "{} already holds a run with checkpoints: pass --resume to continue it, or choose another --out",
                out.display()
            );
        }
        (config, out)
    };
    let summary = pretrain(&config, &out, args.resume)?;
    let knn = summary
        .knn
        .as_ref()
        .map(|k| format!(", kNN top-1 {:.2}% (k={})", k.top1 * 100.0, k.k))
        .unwrap_or_else(|| {
            if config.knn_bank_size == 0 {
                ", kNN monitor off".into()
            } else {
                ", no validation split for kNN".into()
            }
        });
    println!(
        "{}: {} steps, loss {} (first log interval) -> {} (last){}, {:.1} img/s; backbone in {}",
        config.method,
        summary.steps,
        summary.first_loss.map_or("-".into(), |l| format!("{l:.4}")),
        summary.last_loss.map_or("-".into(), |l| format!("{l:.4}")),
        knn,
        summary.images_per_second,
        out.display()
    );
    if summary.skipped_images > 0 {
        eprintln!(
            "warning: {} unreadable images were skipped",
            summary.skipped_images
        );
    }
    Ok(())
}

/// The saved configuration of the run in `out`, with only the runtime flags applied.
fn resumed_config(
    file: &Option<PathBuf>,
    out: &Path,
    flags: &PretrainFlags,
) -> Result<PretrainConfig> {
    if file.is_some() {
        bail!("--resume continues with the run's saved configuration; drop --config");
    }
    let given = flags.training_flags_given();
    if !given.is_empty() {
        bail!(
            "--resume continues with the run's saved configuration; these flags would change it: {}",
            given.join(", ")
        );
    }
    let saved = out.join("config.toml");
    if !saved.exists() {
        bail!("{} is not a run directory (no config.toml)", out.display());
    }
    let mut config = config::load_saved(&saved)?;
    flags.apply_runtime(&mut config);
    config.validate()?;
    Ok(config)
}

fn default_run_dir(config: &PretrainConfig) -> PathBuf {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("runs").join(format!("{}-{seconds}", config.method))
}

/// Everything an evaluation needs: backbone, card, data splits.
struct EvalSetup {
    backbone: exemplar_models::ResNet,
    card: exemplar_train::card::BackboneCard,
    train: Arc<dyn data::Dataset>,
    val: Arc<dyn data::Dataset>,
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
    let device = exemplar_train::device::select(&args.device)?;
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
    let train = data::open(&source, Split::Train, synthetic, card.image_size)?
        .with_context(|| format!("{source} has no training split"))?;
    let val = data::open(&source, Split::Val, synthetic, card.image_size)?
        .with_context(|| format!("{source} has no validation split (ImageFolder: add ROOT/val)"))?;
    let options = ExtractOptions {
        image_size: card.image_size,
        normalization: card.normalization,
        batch_size: 128,
        workers: args.workers.max(1),
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
        .json
        .clone()
        .unwrap_or_else(|| default_result_path(&args.run, kind));
    write_result(
        &path,
        kind,
        &args.run,
        setup.card.method.name(),
        &setup.train.describe(),
        result,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn run_knn(args: KnnArgs) -> Result<()> {
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

fn run_linear(args: LinearArgs) -> Result<()> {
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

fn run_finetune(args: FinetuneArgs) -> Result<()> {
    let (config, out) = if args.resume {
        let out = args.out.expect("clap requires --out with --resume");
        let given = args.flags.training_flags_given();
        if !given.is_empty() {
            bail!(
                "--resume continues with the run's saved configuration; these flags would change it: {}",
                given.join(", ")
            );
        }
        let saved = out.join("config.toml");
        if !saved.exists() {
            bail!(
                "{} is not a fine-tuning run directory (no config.toml)",
                out.display()
            );
        }
        let mut config = FinetuneConfig::load(&saved).map_err(anyhow::Error::msg)?;
        args.flags.apply_runtime(&mut config);
        (config, out)
    } else {
        let config = args.flags.resolve().map_err(anyhow::Error::msg)?;
        let out = args.out.unwrap_or_else(|| {
            let seconds = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            PathBuf::from("runs").join(format!("{}-{seconds}", config.task))
        });
        if latest_checkpoint(&out)?.is_some() {
            bail!(
                "{} already holds a run with checkpoints: pass --resume to continue it, or choose another --out",
                out.display()
            );
        }
        (config, out)
    };
    let task = config.task;
    let summary = match task {
        TaskKind::Detection => finetune::finetune::<DetectionTask>(config, &out, args.resume),
        TaskKind::Segmentation => finetune::finetune::<SegmentationTask>(config, &out, args.resume),
        TaskKind::Landmarks => finetune::finetune::<LandmarkTask>(config, &out, args.resume),
        TaskKind::Classification => {
            finetune::finetune::<ClassificationTask>(config, &out, args.resume)
        }
    }?;
    print_finetune_summary(task, &summary);
    Ok(())
}

fn print_finetune_summary(task: TaskKind, summary: &FinetuneSummary) {
    let Some((metric, after)) = &summary.after else {
        println!(
            "{task}: {} in {}",
            summary.summary,
            summary.run_dir.display()
        );
        return;
    };
    let before = summary
        .before
        .as_ref()
        .map_or(String::new(), |(_, v)| format!("{v:.2} -> "));
    println!(
        "{task}: {} steps, loss {} -> {}, {metric} {before}{after:.2}, {:.1} img/s; model in {}",
        summary.steps,
        summary.first_loss.map_or("-".into(), |l| format!("{l:.4}")),
        summary.last_loss.map_or("-".into(), |l| format!("{l:.4}")),
        summary.images_per_second,
        summary.run_dir.display()
    );
    println!("  {}", summary.summary);
}

fn run_task_eval<T: Task + FromConfig + OpenSplit>(
    args: TaskEvalArgs,
    kind: TaskKind,
) -> Result<()> {
    let saved = args.run.join("config.toml");
    if !saved.exists() {
        bail!(
            "{} is not a fine-tuning run directory (no config.toml)",
            args.run.display()
        );
    }
    let mut config = FinetuneConfig::load(&saved).map_err(anyhow::Error::msg)?;
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
    config.workers = args.workers.max(1);
    let device = exemplar_train::device::select(&args.device)?;
    let (eval, data) = finetune::evaluate_run::<T>(&args.run, &config, &card, &device)?;
    let path = args
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

fn run_few_shot(args: FewShotArgs) -> Result<()> {
    let setup = eval_setup(&args.data)?;
    let all = (0..setup.val.len()).collect();
    let features = exemplar_train::eval::features::extract(
        &setup.backbone,
        Arc::clone(&setup.val),
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

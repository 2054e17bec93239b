//! `train experiment`: the paper's comparisons at small scale.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use exemplar_data::DataSource;
use exemplar_train::config::{self, PretrainConfig};

#[derive(Debug, Args)]
#[command(args_override_self = true)]
pub struct ExperimentArgs {
    /// Studies to run (repeat or comma-separate) [default: methods, transfer, misalignment,
    /// detection-errors]
    #[arg(long = "study", value_enum, value_delimiter = ',')]
    studies: Vec<exemplar_study::Study>,
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
    /// Multiplies the data budget: at 1 the default studies take about 1.3 hours on 2 CPU
    /// cores; larger on a GPU.
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
    /// Compute device: cpu, wgpu, vulkan or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// List the study's runs, one line each (index, stage, name), and exit: what
    /// --only takes. Stage-2 runs (fine-tuning) need the stage-1 runs (pretraining) finished.
    #[arg(long, conflicts_with = "only")]
    plan: bool,
    /// Run only run N of --plan (from 0, as a Kubernetes Indexed Job's completion index) and
    /// write no report; a later invocation without --only reuses every finished run and writes
    /// it.
    #[arg(long, value_name = "N")]
    only: Option<usize>,
}

pub fn run(args: ExperimentArgs) -> Result<()> {
    use exemplar_study::{self, Study, StudyOptions};
    let studies = if args.studies.is_empty() {
        Study::DEFAULT.to_vec()
    } else {
        args.studies
    };
    let settings = match &args.settings {
        Some(path) => exemplar_study::Budget::load(path)?,
        None => exemplar_study::Budget::default(),
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
    if args.plan {
        let (budget, steps) = exemplar_study::steps(&options)?;
        for (index, step) in steps.iter().enumerate() {
            println!("{index}\t{}\t{}", step.stage(), step.label(&budget));
        }
        let first_stage_two = steps.iter().position(|s| s.stage() == 2);
        eprintln!(
            "plan: {} runs, stage 1 = 0..{}, stage 2 = {}..{}",
            steps.len(),
            first_stage_two.unwrap_or(steps.len()),
            first_stage_two.unwrap_or(steps.len()),
            steps.len()
        );
        return Ok(());
    }
    if let Some(index) = args.only {
        let results = exemplar_study::run_only(&options, index)?;
        println!(
            "study: run {index} done in {:.1} min ({} reused); run without --only for the report",
            results.seconds / 60.0,
            results.reused
        );
        return Ok(());
    }
    let results = exemplar_study::run(&options)?;
    println!(
        "study: {} pretraining, {} transfer and {} analysis runs ({} reused) in {:.1} min -> {}",
        results.pretrain.len(),
        results.transfer.len(),
        results.fewshot.len() + results.inversion.len(),
        results.reused,
        results.seconds / 60.0,
        options.out.join("report.md").display()
    );
    Ok(())
}

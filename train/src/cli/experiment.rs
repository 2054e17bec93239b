//! `train experiment`: the paper's comparisons at small scale.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use exemplar_train::config::{self, PretrainConfig};
use exemplar_train::data::DataSource;

#[derive(Debug, Args)]
#[command(args_override_self = true)]
pub struct ExperimentArgs {
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

pub fn run(args: ExperimentArgs) -> Result<()> {
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

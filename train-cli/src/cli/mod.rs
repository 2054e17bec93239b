//! The `train` command line: one module per subcommand, each parsing its flags and calling the
//! library.

mod analyze;
mod eval;
mod experiment;
mod finetune;
mod pretrain;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use exemplar_train::run::dir;

use self::analyze::AnalyzeCommand;
use self::eval::EvalCommand;
use self::experiment::ExperimentArgs;
use self::finetune::FinetuneArgs;
use self::pretrain::PretrainArgs;

/// Pretrain vision backbones with Exemplar-v2 (label-filtered MoCo negatives) and its baselines,
/// and evaluate them on frozen features.
#[derive(Debug, Parser)]
#[command(
    name = "train",
    version,
    propagate_version = true,
    args_override_self = true
)]
pub struct Cli {
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
    /// Analyse what trained backbones keep (feature inversion).
    #[command(subcommand)]
    Analyze(AnalyzeCommand),
}

impl Cli {
    /// Runs the parsed command.
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Pretrain(args) => pretrain::run(args),
            Command::Finetune(args) => finetune::run(args),
            Command::Eval(command) => eval::run(command),
            Command::Experiment(args) => experiment::run(args),
            Command::Analyze(command) => analyze::run(command),
        }
    }
}

/// Where a training run goes, and whether it continues one: the flags `pretrain` and
/// `finetune` share.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// TOML file with any of the settings below, `method` or `task` included (flags override
    /// it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run directory: the configuration, metrics, checkpoints and what the run trains go here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint, with its saved configuration.
    #[arg(long, requires = "out")]
    resume: bool,
}

impl RunArgs {
    /// The configuration and run directory: with `--resume`, the run's saved configuration
    /// (`load` reads it; no `--config` and none of the flags in `training_flags` may be given);
    /// otherwise `resolve(--config)` and `--out` or a fresh directory named by `name`.
    fn settle<C>(
        &self,
        what: &'static str,
        training_flags: Vec<&'static str>,
        load: impl FnOnce(&std::path::Path) -> Result<C>,
        resolve: impl FnOnce(Option<&std::path::Path>) -> Result<C>,
        name: impl FnOnce(&C) -> &'static str,
    ) -> Result<(C, PathBuf)> {
        if self.resume {
            let out = self.out.clone().expect("clap requires --out with --resume");
            let given = training_flags.into_iter().map(String::from).collect();
            let saved = dir::resume_config(&out, what, self.config.is_some(), given)?;
            return Ok((load(&saved)?, out));
        }
        let config = resolve(self.config.as_deref())?;
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| dir::default_run_dir(name(&config)));
        dir::check_new(&out)?;
        Ok((config, out))
    }
}

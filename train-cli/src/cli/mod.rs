//! The `train` command line: one module per subcommand, each parsing its flags and calling the
//! library.

mod analyze;
mod eval;
mod experiment;
mod finetune;
mod pretrain;

use anyhow::Result;
use clap::{Parser, Subcommand};

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

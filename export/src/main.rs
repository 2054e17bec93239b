//! `export`: a trained model (fine-tuned task model or pretrained backbone) to ONNX plus its model
//! card, verified against ONNX Runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Export a model trained by `train` to ONNX (dynamic batch axis, embedded weights) with its model
/// card, after checking that ONNX Runtime reproduces burn's output.
#[derive(Debug, Parser)]
#[command(name = "export", version, args_override_self = true)]
struct Cli {
    /// A fine-tuning run, one of its checkpoints (RUN/checkpoints/step-N), or a pretraining run
    /// (exported as an embedding model).
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// Output directory for model.onnx and model.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Batch size of the parity check.
    #[arg(long, default_value_t = 2)]
    parity_batch: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match exemplar_export::export(&cli.checkpoint, &cli.out, cli.parity_batch) {
        Ok(report) => {
            println!(
                "{} model -> {} ({:.1} MB) and {}; ONNX Runtime matches burn to {:.2e} (max abs {:.2e}, batch {})",
                report.task,
                report.onnx.display(),
                report.bytes as f64 / 1e6,
                report.card.display(),
                report.parity.relative,
                report.parity.max_abs_diff,
                report.parity.batch
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

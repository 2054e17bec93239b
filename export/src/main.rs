//! `export`: a trained model (fine-tuned task model or pretrained backbone) to ONNX plus its model
//! card, verified against ONNX Runtime; or a backbone to torchvision-named SafeTensors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

/// Export a model trained by `train` to ONNX (dynamic batch axis, embedded weights) with its model
/// card, after checking that ONNX Runtime reproduces burn's output; or, with `--format
/// torchvision`, its backbone as SafeTensors under torchvision's key names.
#[derive(Debug, Parser)]
#[command(name = "export", version, args_override_self = true)]
struct Cli {
    /// A fine-tuning run, one of its checkpoints (RUN/checkpoints/step-N), or a pretraining run
    /// (exported as an embedding model).
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// Output directory: model.onnx and model.json, or backbone.safetensors and backbone.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value_t = Format::Onnx)]
    format: Format,
    /// Batch size of the parity check (ONNX only).
    #[arg(long, default_value_t = 2)]
    parity_batch: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// The whole model as ONNX, checked against ONNX Runtime, for `serve`.
    Onnx,
    /// The backbone's weights as SafeTensors with torchvision ResNet key names (no `fc`).
    Torchvision,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Each error names its file; the causes below it say what was wrong with it.
            eprintln!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), exemplar_export::ExportError> {
    match cli.format {
        Format::Onnx => {
            let report = exemplar_export::export(&cli.checkpoint, &cli.out, cli.parity_batch)?;
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
        }
        Format::Torchvision => {
            let report = exemplar_export::export_torchvision(&cli.checkpoint, &cli.out)?;
            println!(
                "{} backbone -> {} ({:.1} MB, torchvision key names) and {}",
                report.backbone,
                report.weights.display(),
                report.bytes as f64 / 1e6,
                report.card.display()
            );
        }
    }
    Ok(())
}

//! `export`: a trained model (fine-tuned task model or pretrained backbone) to ONNX plus its model
//! card, verified against ONNX Runtime; or a backbone to torchvision-named SafeTensors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use exemplar_export::ExportOptions;
use exemplar_inference::InputDatatype;

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
    #[arg(long, default_value_t = ExportOptions::default().parity_batch)]
    parity_batch: usize,
    /// What the ONNX model's input takes (ONNX only): fp32, normalised pixels as the network was
    /// trained on them; uint8, pixels 0-255 that the graph normalises (a quarter of the bytes
    /// per request); fp16, normalised pixels in 16 bits that the graph widens (half the bytes).
    #[arg(long, value_enum, default_value_t = Datatype::Fp32)]
    input_datatype: Datatype,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Datatype {
    Fp32,
    Fp16,
    Uint8,
}

impl From<Datatype> for InputDatatype {
    fn from(datatype: Datatype) -> Self {
        match datatype {
            Datatype::Fp32 => InputDatatype::Fp32,
            Datatype::Fp16 => InputDatatype::Fp16,
            Datatype::Uint8 => InputDatatype::Uint8,
        }
    }
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
    if matches!(cli.format, Format::Torchvision) && !matches!(cli.input_datatype, Datatype::Fp32) {
        eprintln!(
            "error: --input-datatype applies to ONNX exports; --format torchvision writes weights only"
        );
        return ExitCode::from(2);
    }
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
            let options = ExportOptions {
                parity_batch: cli.parity_batch,
                input_datatype: cli.input_datatype.into(),
            };
            let report = exemplar_export::export_with(&cli.checkpoint, &cli.out, &options)?;
            println!(
                "{} model ({} input) -> {} ({:.1} MB) and {}; ONNX Runtime matches burn to {:.2e} (max abs {:.2e}, batch {})",
                report.task,
                options.input_datatype,
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

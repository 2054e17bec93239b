//! exemplar-export: trained burn models → ONNX files with their model card, each checked
//! against ONNX Runtime before it is written.
//!
//! - [`model`]: loads a fine-tuning run (or one of its checkpoints) or a pretraining run.
//! - [`onnx`]: the burn-onnx export with a symbolic batch axis.
//! - [`names`]: the graph's input and output renamed to the card's names.
//! - [`datatype`]: the input's datatype (FP32, or UINT8 / FP16 converted inside the graph).
//! - [`parity`]: ONNX Runtime's output against burn's on a random batch.
//! - [`torchvision`]: the backbone as SafeTensors with torchvision's names (`--format torchvision`).
//!
//! Models are rebuilt from the files beside their weights (`exemplar_models`), so this crate does
//! not link the training stack.
//!
//! The ONNX Runtime library is located by `exemplar_inference::runtime`, shared with `serve`.

pub mod datatype;
pub mod model;
pub mod names;
pub mod onnx;
pub mod parity;
pub mod torchvision;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use exemplar_inference::{InputDatatype, ModelCard};
use exemplar_models::store::atomic_write;
use serde::Serialize;
use thiserror::Error;

pub use parity::Parity;
pub use torchvision::{TorchvisionReport, export_torchvision};

/// File names of an export.
pub const ONNX_FILE: &str = "model.onnx";
pub const CARD_FILE: &str = "model.json";

#[derive(Debug, Error)]
pub enum ExportError {
    #[error(
        "{0} is neither a fine-tuning run (model.json) nor a pretraining run (backbone.json), nor a checkpoint of one"
    )]
    NotARun(PathBuf),
    #[error(transparent)]
    Card(#[from] exemplar_inference::CardError),
    #[error("the model card is invalid: {0}")]
    InvalidCard(String),
    #[error(transparent)]
    Backbone(#[from] exemplar_models::card::CardError),
    #[error(transparent)]
    Network(#[from] exemplar_models::network::NetworkError),
    #[error(transparent)]
    Store(#[from] exemplar_models::store::StoreError),
    #[error(transparent)]
    Torchvision(#[from] exemplar_models::torchvision::TorchvisionError),
    #[error("burn-onnx could not export the model: {0}")]
    Capture(#[from] burn_onnx::export::ExportError),
    #[error("burn-onnx could not export the model: {0}")]
    Onnx(String),
    #[error(transparent)]
    RuntimeLibrary(#[from] exemplar_inference::runtime::RuntimeError),
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("parity check failed: {0}")]
    Parity(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What an export wrote and measured.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub onnx: PathBuf,
    pub card: PathBuf,
    pub task: String,
    pub bytes: usize,
    pub parity: Parity,
}

/// How a model is exported to ONNX.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// Images in the parity check's random batch.
    pub parity_batch: usize,
    /// What the graph's input takes: normalised FP32 (the network as trained), or UINT8 pixels
    /// or FP16 normalised pixels, converted inside the graph ([`datatype`]).
    pub input_datatype: InputDatatype,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            parity_batch: 2,
            input_datatype: InputDatatype::Fp32,
        }
    }
}

/// Exports the model of `source` (a run directory or a checkpoint directory inside one) to
/// `out/model.onnx` and `out/model.json` with an FP32 input. The files are written only after
/// ONNX Runtime has reproduced burn's output on a random batch of `batch` images.
pub fn export(source: &Path, out: &Path, batch: usize) -> Result<ExportReport, ExportError> {
    let options = ExportOptions {
        parity_batch: batch,
        ..ExportOptions::default()
    };
    export_with(source, out, &options)
}

/// [`export`] with `options`: the card records the input datatype, and the parity check feeds
/// ONNX Runtime that datatype while burn gets the same images as FP32 network input.
pub fn export_with(
    source: &Path,
    out: &Path,
    options: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    let device = Device::flex();
    let (model, mut card) = model::load(source, &device)?;
    card.input.datatype = options.input_datatype;
    let size = [card.input.height, card.input.width];
    let reference = parity::reference(&model, &card.input, options.parity_batch.max(1), &device);
    let onnx = onnx::to_onnx(&model, size, &device)?.into_bytes();
    let onnx = name_tensors(&onnx, &card)?;
    let input = &card.input;
    let onnx = datatype::typed_input(&onnx, &input.name, input.datatype, &input.normalization)?;
    let parity = parity::check(&onnx, &reference)?;
    // The graph must carry the card's names, which a server feeds and reads by.
    let card_outputs: Vec<&str> = card.outputs.iter().map(|o| o.name.as_str()).collect();
    if parity.input_name != card.input.name || parity.output_names != card_outputs {
        return Err(ExportError::InvalidCard(format!(
            "the graph names its tensors {} → {:?}, the card {} → {card_outputs:?}",
            parity.input_name, parity.output_names, card.input.name
        )));
    }
    card.validate().map_err(ExportError::InvalidCard)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let onnx_path = out.join(ONNX_FILE);
    let card_path = out.join(CARD_FILE);
    atomic_write(&onnx_path, &onnx).map_err(io(&onnx_path))?;
    atomic_write(&card_path, card.to_json().as_bytes()).map_err(io(&card_path))?;
    Ok(ExportReport {
        onnx: onnx_path,
        card: card_path,
        task: card.task.name().to_string(),
        bytes: onnx.len(),
        parity,
    })
}

/// Gives the graph's input and outputs the card's names. The network has one output; a card
/// that lists several (detection's `heatmaps`, `offsets`, `sizes`) has it split along the
/// channel axis by their channel counts, in order.
fn name_tensors(onnx: &[u8], card: &ModelCard) -> Result<Vec<u8>, ExportError> {
    let input = &card.input.name;
    match card.outputs.as_slice() {
        [] => Err(ExportError::InvalidCard("the card names no outputs".into())),
        [output] => names::rename_io(onnx, input, &output.name),
        parts => {
            let parts = parts
                .iter()
                .map(|o| match o.shape.get(1).map(|c| c.parse::<usize>()) {
                    Some(Ok(channels)) => Ok((o.name.as_str(), channels)),
                    _ => Err(ExportError::InvalidCard(format!(
                        "output {} has no channel count in its shape {:?}",
                        o.name, o.shape
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let joined = "maps";
            let onnx = names::rename_io(onnx, input, joined)?;
            names::split_output(&onnx, joined, &parts)
        }
    }
}

/// Reads an exported model's card.
pub fn read_card(dir: &Path) -> Result<ModelCard, ExportError> {
    Ok(ModelCard::read(&dir.join(CARD_FILE))?)
}

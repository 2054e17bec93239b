//! `export --format torchvision`: a run's backbone as a SafeTensors file with torchvision's key
//! names, for PyTorch, detectron2 and mmdetection users, with the backbone card beside it.
//!
//! The file holds the backbone only (no `fc`), and the round trip is exact: `train finetune
//! --init DIR/backbone.safetensors` reads back the same network.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use exemplar_models::card::{BACKBONE_CARD, BackboneCard, CARD_FORMAT};
use exemplar_models::store::write_file;
use exemplar_models::torchvision;
use serde::Serialize;

use crate::ExportError;
use crate::model::{Source, read};

/// File name of the weights in the output directory.
pub const SAFETENSORS_FILE: &str = "backbone.safetensors";

/// What a torchvision export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct TorchvisionReport {
    pub weights: PathBuf,
    pub card: PathBuf,
    /// The architecture, as in the card (`resnet50 (width 1, imagenet stem)`).
    pub backbone: String,
    pub bytes: u64,
}

/// Writes the backbone of `source` (a pretraining run, a fine-tuning run or a checkpoint) to
/// `out/backbone.safetensors` and its card to `out/backbone.json`.
pub fn export_torchvision(source: &Path, out: &Path) -> Result<TorchvisionReport, ExportError> {
    let device = Device::flex();
    let (backbone, card) = match read(source, &device)? {
        Source::Pretrained(backbone, card) => (backbone, card),
        Source::Finetuned(network, config, model_card) => {
            let arch = *config.backbone();
            let card = BackboneCard {
                format: CARD_FORMAT.into(),
                backbone: arch,
                out_features: arch.out_features(),
                image_size: model_card.input.width,
                normalization: model_card.input.normalization,
                method: format!(
                    "fine-tuned for {} from {}",
                    config.name(),
                    model_card.provenance.init
                ),
                steps: model_card.provenance.steps,
                data: model_card.provenance.data,
                class_names: Vec::new(),
            };
            (network.into_backbone(), card)
        }
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let weights = out.join(SAFETENSORS_FILE);
    // Written beside, then renamed: a failed export leaves no half file under the final name.
    let partial = out.join(format!(".{SAFETENSORS_FILE}.partial"));
    torchvision::save_safetensors(&backbone, &partial)?;
    std::fs::rename(&partial, &weights).map_err(io(&weights))?;
    let card_path = out.join(BACKBONE_CARD);
    let json = serde_json::to_vec_pretty(&card).expect("a card serialises");
    write_file(&card_path, &json)?;
    let bytes = std::fs::metadata(&weights).map_err(io(&weights))?.len();
    Ok(TorchvisionReport {
        weights,
        card: card_path,
        backbone: card.backbone.describe(),
        bytes,
    })
}

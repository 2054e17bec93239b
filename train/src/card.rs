//! The backbone card: the JSON file saved beside a pretrained backbone's weights, saying how to
//! rebuild the network and feed it (architecture, input size, normalisation) and where it came
//! from. Fine-tuning, evaluation and export read it instead of asking the user again.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use exemplar_models::{ResNet, ResNetConfig};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{Method, Normalization};

/// File names inside a run directory.
pub const BACKBONE_WEIGHTS: &str = "backbone.bpk";
pub const BACKBONE_CARD: &str = "backbone.json";
/// Identifies the card's schema; bumped on incompatible changes.
pub const CARD_FORMAT: &str = "exemplar-backbone/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneCard {
    pub format: String,
    pub backbone: ResNetConfig,
    /// Size of the pooled feature vector.
    pub out_features: usize,
    pub image_size: usize,
    pub normalization: Normalization,
    /// How it was trained.
    pub method: Method,
    pub steps: usize,
    pub data: String,
    pub class_names: Vec<String>,
}

#[derive(Debug, Error)]
pub enum CardError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a backbone card: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: weights do not fit the card's {arch}: {reason}")]
    Weights {
        path: PathBuf,
        arch: String,
        reason: String,
    },
}

/// Saves `backbone` and its card into `dir`, both atomically.
pub fn save_backbone(dir: &Path, backbone: ResNet, card: &BackboneCard) -> Result<(), CardError> {
    let weights = dir.join(BACKBONE_WEIGHTS);
    let bytes = backbone
        .into_record()
        .into_bytes()
        .map_err(|e| CardError::Format {
            path: weights.clone(),
            reason: e.to_string(),
        })?;
    let io = |path: PathBuf| move |source| CardError::Io { path, source };
    crate::checkpoint::atomic_write(&weights, &bytes).map_err(io(weights.clone()))?;
    let card_path = dir.join(BACKBONE_CARD);
    let json = serde_json::to_vec_pretty(card).expect("card serialises");
    crate::checkpoint::atomic_write(&card_path, &json).map_err(io(card_path.clone()))
}

/// Loads the backbone of a run directory (or of a directory holding the two files).
pub fn load_backbone(dir: &Path, device: &Device) -> Result<(ResNet, BackboneCard), CardError> {
    let card = load_backbone_card(dir)?;
    let weights = dir.join(BACKBONE_WEIGHTS);
    let backbone = load_module(
        &weights,
        card.backbone.init(device),
        &card.backbone.depth.to_string(),
    )?;
    Ok((backbone, card))
}

/// Reads and checks the backbone card of a run directory.
pub fn load_backbone_card(dir: &Path) -> Result<BackboneCard, CardError> {
    let card_path = dir.join(BACKBONE_CARD);
    let text = std::fs::read_to_string(&card_path).map_err(|source| CardError::Io {
        path: card_path.clone(),
        source,
    })?;
    let card: BackboneCard = serde_json::from_str(&text).map_err(|e| CardError::Format {
        path: card_path.clone(),
        reason: e.to_string(),
    })?;
    if card.format != CARD_FORMAT {
        return Err(CardError::Format {
            path: card_path,
            reason: format!("format '{}', expected '{CARD_FORMAT}'", card.format),
        });
    }
    Ok(card)
}

/// Applies a saved record to `module`, with errors naming the file.
pub fn load_module<M: Module>(path: &Path, module: M, what: &str) -> Result<M, CardError> {
    let bytes = std::fs::read(path).map_err(|source| CardError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let weights_error = |reason: String| CardError::Weights {
        path: path.to_path_buf(),
        arch: what.to_string(),
        reason,
    };
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| weights_error(e.to_string()))?;
    module
        .try_load_record(record)
        .map_err(|e| weights_error(e.to_string()))
}

//! The backbone card: the JSON file saved beside a pretrained backbone's weights, saying how to
//! rebuild the network and feed it (architecture, input size, normalisation) and where it came
//! from. Fine-tuning, evaluation and export read it instead of asking the user again.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use exemplar_inference::Normalization;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::store::{StoreError, load_module, save_module, write_file};
use crate::{ResNet, ResNetConfig};

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
    /// How it was trained: the pretraining method's name (`exemplar-v2`, `moco-v2`, …).
    pub method: String,
    pub steps: usize,
    pub data: String,
    pub class_names: Vec<String>,
}

#[derive(Debug, Error)]
pub enum CardError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a backbone card")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: card format '{found}', expected '{CARD_FORMAT}'")]
    Version { path: PathBuf, found: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Saves `backbone` and its card into `dir`, both atomically.
pub fn save_backbone(dir: &Path, backbone: &ResNet, card: &BackboneCard) -> Result<(), CardError> {
    save_module(&dir.join(BACKBONE_WEIGHTS), backbone, "the backbone")?;
    let json = serde_json::to_vec_pretty(card).expect("a card serialises");
    Ok(write_file(&dir.join(BACKBONE_CARD), &json)?)
}

/// Loads the backbone of a run directory (or of a directory holding the two files).
pub fn load_backbone(dir: &Path, device: &Device) -> Result<(ResNet, BackboneCard), CardError> {
    let card = load_backbone_card(dir)?;
    let backbone = load_module(
        &dir.join(BACKBONE_WEIGHTS),
        card.backbone.init(device),
        &card.backbone.describe(),
    )?;
    Ok((backbone, card))
}

/// Reads and checks the backbone card of a run directory.
pub fn load_backbone_card(dir: &Path) -> Result<BackboneCard, CardError> {
    let path = dir.join(BACKBONE_CARD);
    let text = std::fs::read_to_string(&path).map_err(|source| CardError::Io {
        path: path.clone(),
        source,
    })?;
    let card: BackboneCard = serde_json::from_str(&text).map_err(|source| CardError::Json {
        path: path.clone(),
        source,
    })?;
    if card.format != CARD_FORMAT {
        return Err(CardError::Version {
            path,
            found: card.format,
        });
    }
    Ok(card)
}

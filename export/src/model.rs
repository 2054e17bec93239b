//! Loading what `train` produced — a fine-tuned task model or a pretrained backbone — as a
//! network in inference mode with the model card that will travel with its ONNX file.
//!
//! Everything needed is in the run (or checkpoint) directory: `network.json` and `model.bpk`
//! rebuild a task model, `backbone.json` and `backbone.bpk` a backbone (`exemplar_models`
//! reads both), so no training configuration is parsed here.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use exemplar_inference::ModelCard;
use exemplar_inference::card::{CARD_FORMAT, InputSpec, OutputSpec, Provenance, TaskSpec};
use exemplar_models::card::{BACKBONE_CARD, BackboneCard, load_backbone};
use exemplar_models::network::NETWORK_CONFIG;
use exemplar_models::{Network, NetworkConfig, NetworkVisitor, ResNet};

use crate::ExportError;

/// The model card of a fine-tuned model, beside its weights.
pub const MODEL_CARD: &str = "model.json";

/// A network ready for export, with its card.
// One value exists per export and it is only borrowed: boxing the larger variants buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Exportable {
    /// A pretrained backbone: pooled features `[batch, dim]`.
    Embedding(ResNet),
    /// A fine-tuned task network.
    Task(Network),
}

impl Exportable {
    /// `visitor` on the network and its forward pass, whatever its task.
    pub fn visit<V: NetworkVisitor>(&self, visitor: V) -> V::Output {
        match self {
            Exportable::Embedding(backbone) => visitor.visit(backbone, ResNet::forward),
            Exportable::Task(network) => network.visit(visitor),
        }
    }
}

/// What a run directory holds.
// One value exists per export and it is unpacked at once: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Source {
    /// A fine-tuned task model with its architecture.
    Finetuned(Network, NetworkConfig, ModelCard),
    /// A pretrained backbone with its card.
    Pretrained(ResNet, BackboneCard),
}

/// Reads the model of `run`: a fine-tuning run or one of its checkpoints (`model.json`,
/// `network.json`, `model.bpk`) or a pretraining run (`backbone.json`, `backbone.bpk`), on the
/// plain (inference) `device`.
pub fn read(run: &Path, device: &Device) -> Result<Source, ExportError> {
    if run.join(MODEL_CARD).is_file() && run.join(NETWORK_CONFIG).is_file() {
        let card = ModelCard::read(&run.join(MODEL_CARD))?;
        let (network, config) = Network::load(run, device)?;
        Ok(Source::Finetuned(network, config, card))
    } else if run.join(BACKBONE_CARD).is_file() {
        let (backbone, card) = load_backbone(run, device)?;
        Ok(Source::Pretrained(backbone.valid(), card))
    } else {
        Err(ExportError::NotARun(run.to_path_buf()))
    }
}

/// Loads the model of `run` (see [`read`]) for ONNX export.
pub fn load(run: &Path, device: &Device) -> Result<(Exportable, ModelCard), ExportError> {
    Ok(match read(run, device)? {
        Source::Finetuned(network, _, card) => (Exportable::Task(network), card),
        Source::Pretrained(backbone, card) => {
            let card = embedding_card(&card);
            (Exportable::Embedding(backbone), card)
        }
    })
}

/// The model card of a backbone exported as an embedding model.
fn embedding_card(backbone: &BackboneCard) -> ModelCard {
    let dim = backbone.out_features;
    ModelCard {
        format: CARD_FORMAT.into(),
        task: TaskSpec::Embedding { dim },
        class_names: Vec::new(),
        input: InputSpec {
            name: "images".into(),
            width: backbone.image_size,
            height: backbone.image_size,
            normalization: backbone.normalization,
            datatype: Default::default(),
        },
        outputs: vec![OutputSpec {
            name: "embedding".into(),
            shape: vec!["batch".into(), dim.to_string()],
            description: "globally pooled backbone features (L2-normalise for cosine similarity)"
                .into(),
        }],
        provenance: Provenance {
            backbone: backbone.backbone.describe(),
            init: backbone.method.clone(),
            data: backbone.data.clone(),
            steps: backbone.steps,
        },
    }
}

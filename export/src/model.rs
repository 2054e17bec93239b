//! Loading what `train` produced — a fine-tuned task model or a pretrained backbone — as a
//! network in inference mode with the model card that will travel with its ONNX file.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use exemplar_inference::ModelCard;
use exemplar_inference::card::{CARD_FORMAT, InputSpec, OutputSpec, Provenance, TaskSpec};
use exemplar_models::{Classifier, Detector, LandmarkRegressor, ResNet, Segmenter};
use exemplar_train::card::load_backbone;
use exemplar_train::finetune::classification::ClassificationTask;
use exemplar_train::finetune::config::FinetuneConfig;
use exemplar_train::finetune::detection::DetectionTask;
use exemplar_train::finetune::landmarks::LandmarkTask;
use exemplar_train::finetune::segmentation::SegmentationTask;
use exemplar_train::finetune::{MODEL_CARD, TaskKind, load_run};

use crate::ExportError;

/// A network ready for export, with its card.
// One value exists per export and it is only borrowed: boxing the larger variants buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Exportable {
    /// A pretrained backbone: pooled features `[batch, dim]`.
    Embedding(ResNet),
    Classifier(Classifier),
    Detector(Detector),
    Segmenter(Segmenter),
    Landmarks(LandmarkRegressor),
}

/// Loads the model of `run`: a fine-tuning run (`model.json` + `model.bpk` + `config.toml`) or a
/// pretraining run (`backbone.json` + `backbone.bpk`), on the plain (inference) `device`.
pub fn load(run: &Path, device: &Device) -> Result<(Exportable, ModelCard), ExportError> {
    if run.join(MODEL_CARD).is_file() {
        load_finetuned(run, device)
    } else if run.join(exemplar_train::card::BACKBONE_CARD).is_file() {
        load_pretrained(run, device)
    } else {
        Err(ExportError::NotARun(run.to_path_buf()))
    }
}

fn load_finetuned(run: &Path, device: &Device) -> Result<(Exportable, ModelCard), ExportError> {
    let card = ModelCard::read(&run.join(MODEL_CARD))?;
    // A checkpoint (RUN/checkpoints/step-N) holds the weights and card; the run holds the config.
    let config_path = [run.join("config.toml"), run.join("../../config.toml")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| ExportError::NotARun(run.to_path_buf()))?;
    let config = FinetuneConfig::load(&config_path).map_err(ExportError::Config)?;
    let names = card.class_names.clone();
    let failed = |e: exemplar_train::finetune::FinetuneError| ExportError::Load(e.to_string());
    let model = match config.task {
        TaskKind::Classification => Exportable::Classifier(
            load_run::<ClassificationTask>(run, &config, names, device)
                .map_err(failed)?
                .1,
        ),
        TaskKind::Detection => Exportable::Detector(
            load_run::<DetectionTask>(run, &config, names, device)
                .map_err(failed)?
                .1,
        ),
        TaskKind::Segmentation => Exportable::Segmenter(
            load_run::<SegmentationTask>(run, &config, names, device)
                .map_err(failed)?
                .1,
        ),
        TaskKind::Landmarks => Exportable::Landmarks(
            load_run::<LandmarkTask>(run, &config, names, device)
                .map_err(failed)?
                .1,
        ),
    };
    Ok((model, card))
}

fn load_pretrained(run: &Path, device: &Device) -> Result<(Exportable, ModelCard), ExportError> {
    let (backbone, backbone_card) =
        load_backbone(run, device).map_err(|e| ExportError::Load(e.to_string()))?;
    let dim = backbone_card.out_features;
    let card = ModelCard {
        format: CARD_FORMAT.into(),
        task: TaskSpec::Embedding { dim },
        class_names: Vec::new(),
        input: InputSpec {
            name: "images".into(),
            width: backbone_card.image_size,
            height: backbone_card.image_size,
            normalization: backbone_card.normalization,
        },
        outputs: vec![OutputSpec {
            name: "embedding".into(),
            shape: vec!["batch".into(), dim.to_string()],
            description: "globally pooled backbone features (L2-normalise for cosine similarity)"
                .into(),
        }],
        provenance: Provenance {
            backbone: backbone_card.backbone.describe(),
            init: backbone_card.method.to_string(),
            data: backbone_card.data.clone(),
            steps: backbone_card.steps,
        },
    };
    Ok((Exportable::Embedding(backbone.valid()), card))
}

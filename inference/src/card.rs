//! The model card: a JSON file saved beside every fine-tuned model (and later beside its ONNX
//! export) that says what the network does and how to feed it and read it. The server trusts
//! nothing else, so everything decoding needs is here: task, class or point names, input size and
//! normalisation, output tensors and the task's decoding parameters.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::detection::DetectionDecoding;

/// Identifies the card's schema; bumped on incompatible changes.
pub const CARD_FORMAT: &str = "exemplar-model/1";

/// Per-channel normalisation of network inputs: `(v - mean) / std` on values in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for Normalization {
    /// ImageNet statistics, as torchvision and MoCo use.
    fn default() -> Self {
        Self {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }
}

/// The task a model solves, with what decoding its output needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TaskSpec {
    /// Pooled backbone features, `[batch, dim]`.
    Embedding { dim: usize },
    /// Class logits, `[batch, classes]`.
    Classification,
    /// CenterNet-style dense maps, `[batch, classes + 4, h, w]` (see [`crate::detection`]); the
    /// card lists them as `heatmaps` `[batch, classes, h, w]`, `offsets` and `sizes` (`[batch,
    /// 2, h, w]` each), the export's three outputs (cards from before list one `maps`).
    Detection(DetectionDecoding),
    /// Per-pixel class logits at input resolution, `[batch, classes, height, width]`.
    Segmentation {
        /// Label of pixels that are not scored (255 in VOC and Cityscapes).
        ignore_index: u8,
    },
    /// Point coordinates relative to the input, `[batch, 2 × points]` as `x0, y0, x1, y1, …`
    /// in `[0, 1]`.
    Landmarks {
        /// The two points whose distance normalises the error (the eye centres).
        normalizer: [usize; 2],
        /// Pairs of points that swap under a horizontal flip (left eye ↔ right eye, …).
        flip_pairs: Vec<[usize; 2]>,
    },
}

impl TaskSpec {
    pub fn name(&self) -> &'static str {
        match self {
            TaskSpec::Embedding { .. } => "embedding",
            TaskSpec::Classification => "classification",
            TaskSpec::Detection(_) => "detection",
            TaskSpec::Segmentation { .. } => "segmentation",
            TaskSpec::Landmarks { .. } => "landmarks",
        }
    }
}

/// The network input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Name of the input tensor (ONNX).
    pub name: String,
    /// Images are resized (stretched, aspect ratio not kept) to `width × height`.
    pub width: usize,
    pub height: usize,
    pub normalization: Normalization,
    /// What the input tensor holds. Absent (and not written) for FP32, so cards from before
    /// the field existed read as they always did.
    #[serde(default, skip_serializing_if = "InputDatatype::is_fp32")]
    pub datatype: InputDatatype,
}

/// The element type of a model's `[batch, 3, height, width]` input and what its values mean,
/// named as the Open Inference Protocol names datatypes. Every datatype feeds the same network:
/// `export --input-datatype` puts the conversion in front of it, inside the graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InputDatatype {
    /// Normalised pixels, `(v - mean) / std` of values in `[0, 1]`, as 32-bit floats.
    #[default]
    #[serde(rename = "FP32")]
    Fp32,
    /// The same normalised pixels as 16-bit floats (half the bytes per request); the graph
    /// widens them to FP32 before the first layer.
    #[serde(rename = "FP16")]
    Fp16,
    /// Resized but not normalised pixels, `0..=255` (a quarter of the bytes); the graph
    /// normalises them with the card's mean and std.
    #[serde(rename = "UINT8")]
    Uint8,
}

impl InputDatatype {
    pub const ALL: [InputDatatype; 3] = [Self::Fp32, Self::Fp16, Self::Uint8];

    /// The Open Inference Protocol's name: `FP32`, `FP16` or `UINT8`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "FP32",
            Self::Fp16 => "FP16",
            Self::Uint8 => "UINT8",
        }
    }

    /// The datatype the protocol name `name` stands for, if a model input can have it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            Self::Fp32 => 4,
            Self::Fp16 => 2,
            Self::Uint8 => 1,
        }
    }

    pub fn is_fp32(&self) -> bool {
        *self == Self::Fp32
    }
}

impl std::fmt::Display for InputDatatype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One output tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub name: String,
    /// Axis names or sizes, e.g. `["batch", "14", "16", "16"]`.
    pub shape: Vec<String>,
    pub description: String,
}

/// Where the weights came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Architecture, e.g. `resnet18 (width 0.25, small stem)`.
    pub backbone: String,
    /// How the backbone was initialised: a pretraining run and its method, a PyTorch file, or
    /// `random`.
    pub init: String,
    /// Data it was fine-tuned on.
    pub data: String,
    /// Optimisation steps of the fine-tuning.
    pub steps: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub format: String,
    pub task: TaskSpec,
    /// Class names (classification, detection, segmentation) or point names (landmarks); empty
    /// for embeddings.
    pub class_names: Vec<String>,
    pub input: InputSpec,
    pub outputs: Vec<OutputSpec>,
    pub provenance: Provenance,
}

#[derive(Debug, Error)]
pub enum CardError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a model card: {reason}")]
    Format { path: PathBuf, reason: String },
}

impl ModelCard {
    /// Parses and checks a card; `path` only names the source in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, CardError> {
        let format_error = |reason: String| CardError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let card: ModelCard =
            serde_json::from_str(text).map_err(|e| format_error(e.to_string()))?;
        card.validate().map_err(format_error)?;
        Ok(card)
    }

    /// Reads and checks a card file.
    pub fn read(path: &Path) -> Result<Self, CardError> {
        let text = std::fs::read_to_string(path).map_err(|source| CardError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a card always serialises")
    }

    /// Checks what decoding relies on; the reason names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != CARD_FORMAT {
            return Err(format!(
                "format '{}', expected '{CARD_FORMAT}'",
                self.format
            ));
        }
        let input = &self.input;
        if input.width == 0 || input.height == 0 {
            return Err("input width and height must be positive".into());
        }
        if input
            .normalization
            .std
            .iter()
            .any(|s| !s.is_finite() || *s <= 0.0)
        {
            return Err("input normalization std must be positive".into());
        }
        if self.outputs.is_empty() {
            return Err("no outputs listed".into());
        }
        let classes = self.class_names.len();
        match &self.task {
            TaskSpec::Embedding { dim } if *dim == 0 => {
                Err("embedding dim must be positive".into())
            }
            TaskSpec::Embedding { .. } => Ok(()),
            TaskSpec::Classification | TaskSpec::Segmentation { .. } if classes < 2 => {
                Err("needs at least two class names".into())
            }
            TaskSpec::Detection(_) if classes == 0 => Err("needs class names".into()),
            TaskSpec::Detection(decoding) => decoding.validate(input.width, input.height),
            TaskSpec::Landmarks {
                normalizer,
                flip_pairs,
            } => {
                let ok = |i: usize| i < classes;
                if classes == 0 {
                    Err("landmarks need point names".into())
                } else if !normalizer.iter().all(|&i| ok(i)) || normalizer[0] == normalizer[1] {
                    Err(format!(
                        "normalizer {normalizer:?} must name two different points"
                    ))
                } else if !flip_pairs.iter().flatten().all(|&i| ok(i)) {
                    Err(format!(
                        "flip_pairs {flip_pairs:?} name points that do not exist"
                    ))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection_card() -> ModelCard {
        ModelCard {
            format: CARD_FORMAT.into(),
            task: TaskSpec::Detection(DetectionDecoding {
                stride: 4,
                score_threshold: 0.05,
                nms_iou: 0.5,
                max_detections: 100,
            }),
            class_names: vec!["disc".into(), "square".into()],
            input: InputSpec {
                name: "images".into(),
                width: 64,
                height: 64,
                normalization: Normalization::default(),
                datatype: InputDatatype::Fp32,
            },
            outputs: vec![OutputSpec {
                name: "maps".into(),
                shape: vec!["batch".into(), "6".into(), "16".into(), "16".into()],
                description: "heatmap logits, offsets, log sizes".into(),
            }],
            provenance: Provenance {
                backbone: "resnet18".into(),
                init: "random".into(),
                data: "synthetic".into(),
                steps: 10,
            },
        }
    }

    #[test]
    fn a_card_round_trips_through_json() {
        let card = detection_card();
        let back = ModelCard::from_json(&card.to_json(), Path::new("card.json")).unwrap();
        assert_eq!(back, card);
        assert!(card.to_json().contains("\"kind\": \"detection\""));
    }

    #[test]
    fn bad_cards_are_rejected_with_the_field_at_fault() {
        let path = Path::new("m.json");
        let mut card = detection_card();
        card.input.normalization.std[1] = 0.0;
        let err = ModelCard::from_json(&card.to_json(), path).unwrap_err();
        assert!(err.to_string().contains("std"), "{err}");

        let mut card = detection_card();
        card.task = TaskSpec::Detection(DetectionDecoding {
            stride: 5,
            score_threshold: 0.05,
            nms_iou: 0.5,
            max_detections: 100,
        });
        let err = ModelCard::from_json(&card.to_json(), path).unwrap_err();
        assert!(err.to_string().contains("stride"), "{err}");

        let text = detection_card()
            .to_json()
            .replace("exemplar-model/1", "other/9");
        let err = ModelCard::from_json(&text, path).unwrap_err();
        assert!(
            err.to_string().starts_with("m.json: not a model card"),
            "{err}"
        );

        let err = ModelCard::from_json("{\"format\": 1}", path).unwrap_err();
        assert!(err.to_string().contains("m.json"), "{err}");

        let text = detection_card()
            .to_json()
            .replace("\"width\": 64", "\"datatype\": \"INT64\", \"width\": 64");
        let err = ModelCard::from_json(&text, path).unwrap_err();
        assert!(err.to_string().contains("INT64"), "{err}");
    }

    /// FP32 cards are written as before the datatype existed, and read either way; the other
    /// datatypes are written by their protocol names.
    #[test]
    fn the_input_datatype_is_written_only_when_not_fp32() {
        let path = Path::new("m.json");
        let card = detection_card();
        assert!(!card.to_json().contains("datatype"), "{}", card.to_json());
        for datatype in InputDatatype::ALL {
            let mut typed = detection_card();
            typed.input.datatype = datatype;
            let text = typed.to_json();
            assert_eq!(
                text.contains(&format!("\"datatype\": \"{datatype}\"")),
                datatype != InputDatatype::Fp32,
                "{text}"
            );
            assert_eq!(ModelCard::from_json(&text, path).unwrap(), typed);
        }
    }
}

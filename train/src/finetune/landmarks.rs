//! Facial landmarks: the paper's two-layer head on spatial features ([`LandmarkRegressor`]),
//! trained with an L1 loss on input-relative coordinates, scored with the inter-ocular
//! normalised error on each image's own pixels.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use exemplar_inference::card::{OutputSpec, TaskSpec};
use exemplar_inference::landmarks::{denormalize, normalize};
use exemplar_models::{LandmarkRegressor, LandmarkRegressorConfig};

use super::augment::TaskAugmentation;
use super::config::FinetuneConfig;
use super::{EvalInput, Evaluation, FromConfig, OpenSplit, Task, TaskKind, for_each_batch};
use crate::eval::landmarks::evaluate;
use exemplar_data::DataSource;
use exemplar_data::annotated::{LandmarkSample, TaskDataset};
use exemplar_data::{self, DataError, Split};

/// Eye centres normalise the error; left/right eyes and mouth corners swap under a flip
/// (the five MAFL points: left eye, right eye, nose, left mouth, right mouth).
pub const NORMALIZER: [usize; 2] = [0, 1];
pub const FLIP_PAIRS: [[usize; 2]; 2] = [[0, 1], [3, 4]];

pub struct LandmarkTask {
    point_names: Vec<String>,
    model: LandmarkRegressorConfig,
}

pub struct LandmarkTargets {
    coordinates: Vec<f32>,
    count: usize,
}

impl FromConfig for LandmarkTask {
    fn from_config(config: &FinetuneConfig, point_names: Vec<String>) -> Self {
        let model = LandmarkRegressorConfig {
            backbone: config.backbone_config(),
            points: point_names.len(),
            channels: config.head_channels,
            image_size: config.image_size,
        };
        Self { point_names, model }
    }
}

impl OpenSplit for LandmarkTask {
    fn open(
        config: &FinetuneConfig,
        split: Split,
    ) -> Result<Arc<dyn TaskDataset<LandmarkSample>>, DataError> {
        exemplar_data::open_landmarks(&config.data, split, config.synthetic, config.image_size)
    }
}

impl Task for LandmarkTask {
    type Sample = LandmarkSample;
    type Head = LandmarkRegressorConfig;
    type Model = LandmarkRegressor;
    type Targets = LandmarkTargets;

    const METRIC_TITLE: &'static str = "landmarks NME (%, lower is better)";
    const LOWER_IS_BETTER: bool = true;
    const DEFAULT_DATA: DataSource = DataSource::SyntheticFaces;

    fn kind(&self) -> TaskKind {
        TaskKind::Landmarks
    }

    fn class_names(&self) -> &[String] {
        &self.point_names
    }

    fn head(&self) -> &LandmarkRegressorConfig {
        &self.model
    }

    fn augmentation(&self) -> TaskAugmentation {
        TaskAugmentation {
            // Mild: the face must stay in the frame.
            crop_scale: Some([0.8, 1.0]),
            flip: true,
            flip_pairs: FLIP_PAIRS.to_vec(),
            color: true,
        }
    }

    fn targets(&self, samples: &[LandmarkSample], size: usize) -> LandmarkTargets {
        let s = size as f32;
        LandmarkTargets {
            coordinates: samples
                .iter()
                .flat_map(|sample| normalize(&sample.points, [s, s]))
                .collect(),
            count: samples.len(),
        }
    }

    fn loss(&self, model: &LandmarkRegressor, images: Tensor<4>, t: LandmarkTargets) -> Tensor<1> {
        let device = images.device();
        let width = 2 * self.point_names.len();
        let target =
            Tensor::<2>::from_data(TensorData::new(t.coordinates, [t.count, width]), &device);
        (model.forward(images) - target).abs().mean()
    }

    fn evaluate(
        &self,
        model: &LandmarkRegressor,
        dataset: &Arc<dyn TaskDataset<LandmarkSample>>,
        input: &EvalInput,
        device: &Device,
    ) -> Result<Evaluation, DataError> {
        let width = 2 * self.point_names.len();
        let mut pairs = Vec::with_capacity(dataset.len());
        for_each_batch(dataset, input, device, |images, samples| {
            let values: Vec<f32> = model.forward(images).into_data().iter::<f32>().collect();
            for (i, sample) in samples.into_iter().enumerate() {
                let size = [sample.image.width as f32, sample.image.height as f32];
                let predicted = denormalize(&values[i * width..(i + 1) * width], size);
                pairs.push((predicted, sample.points));
            }
        })?;
        let metrics = evaluate(&pairs, &self.point_names, NORMALIZER);
        Ok(Evaluation {
            metric: "nme_percent",
            value: metrics.nme_percent,
            summary: format!(
                "inter-ocular NME {:.2}% (lower is better), failures >10%: {:.1}% of {} images",
                metrics.nme_percent, metrics.failure_rate_percent, metrics.images
            ),
            result: serde_json::to_value(&metrics).expect("metrics serialise"),
        })
    }

    fn card_task(&self, _config: &FinetuneConfig) -> (TaskSpec, Vec<OutputSpec>) {
        (
            TaskSpec::Landmarks {
                normalizer: NORMALIZER,
                flip_pairs: FLIP_PAIRS.to_vec(),
            },
            vec![OutputSpec {
                name: "points".into(),
                shape: vec!["batch".into(), (2 * self.point_names.len()).to_string()],
                description: "x0, y0, x1, y1, … relative to the input width and height".into(),
            }],
        )
    }
}

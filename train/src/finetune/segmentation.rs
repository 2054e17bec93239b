//! Semantic segmentation: the DeepLabv3 [`Segmenter`], trained with per-pixel cross-entropy
//! that skips label 255, scored with mIoU on masks mapped back to each image's own size.

use std::sync::Arc;

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use exemplar_inference::card::{OutputSpec, TaskSpec};
use exemplar_inference::segmentation::{argmax, resize_nearest};
use exemplar_models::{Segmenter, SegmenterConfig};

use super::config::FinetuneConfig;
use super::{EvalInput, Evaluation, FromConfig, OpenSplit, Task, TaskKind, for_each_batch};
use crate::eval::segmentation::Confusion;
use exemplar_data::annotated::{IGNORE_LABEL, SegmentationSample, TaskDataset};
use exemplar_data::{self, DataError, Split};

pub struct SegmentationTask {
    class_names: Vec<String>,
    model: SegmenterConfig,
}

/// Labels of a batch, `[n, size, size]`, 255 where not scored.
pub struct SegmentationTargets {
    labels: Vec<i64>,
    count: usize,
    size: usize,
}

impl FromConfig for SegmentationTask {
    fn from_config(config: &FinetuneConfig, class_names: Vec<String>) -> Self {
        let backbone = config.backbone_config();
        let cells = config.image_size.div_ceil(backbone.stage_strides()[2]);
        let model = SegmenterConfig {
            backbone,
            num_classes: class_names.len(),
            channels: config.head_channels,
            rates: SegmenterConfig::rates_for(cells),
        };
        Self { class_names, model }
    }
}

impl OpenSplit for SegmentationTask {
    fn open(
        config: &FinetuneConfig,
        split: Split,
    ) -> Result<Arc<dyn TaskDataset<SegmentationSample>>, DataError> {
        exemplar_data::open_segmentation(&config.data, split, config.synthetic, config.image_size)
    }
}

impl Task for SegmentationTask {
    type Sample = SegmentationSample;
    type Head = SegmenterConfig;
    type Model = Segmenter;
    type Targets = SegmentationTargets;

    const METRIC_TITLE: &'static str = "segmentation mIoU (%)";

    fn kind(&self) -> TaskKind {
        TaskKind::Segmentation
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn head(&self) -> &SegmenterConfig {
        &self.model
    }

    fn targets(&self, samples: &[SegmentationSample], size: usize) -> SegmentationTargets {
        let classes = self.class_names.len();
        let labels = samples
            .iter()
            .flat_map(|s| s.mask.iter())
            .map(|&v| {
                // A label beyond the classes cannot be trained on: treat it like a border.
                if (v as usize) < classes {
                    v as i64
                } else {
                    IGNORE_LABEL as i64
                }
            })
            .collect();
        SegmentationTargets {
            labels,
            count: samples.len(),
            size,
        }
    }

    fn loss(&self, model: &Segmenter, images: Tensor<4>, t: SegmentationTargets) -> Tensor<1> {
        let device = images.device();
        let logits = model.forward(images);
        let labels = Tensor::<4, Int>::from_data(
            TensorData::new(t.labels, [t.count, 1, t.size, t.size]),
            &device,
        );
        let ignored = labels.clone().equal_elem(IGNORE_LABEL as i64);
        let valid = ignored.clone().bool_not().float();
        let safe = labels.mask_fill(ignored, 0);
        let picked = log_softmax(logits, 1).gather(1, safe);
        let count = valid.clone().sum().clamp_min(1.0);
        picked.mul(valid).sum().neg().div(count)
    }

    fn evaluate(
        &self,
        model: &Segmenter,
        dataset: &Arc<dyn TaskDataset<SegmentationSample>>,
        input: &EvalInput,
        device: &Device,
    ) -> Result<Evaluation, DataError> {
        let classes = self.class_names.len();
        let mut confusion = Confusion::new(classes);
        let mut images = 0;
        for_each_batch(dataset, input, device, |batch, samples| {
            let out = model.forward(batch);
            let [_, c, h, w] = out.dims();
            let values: Vec<f32> = out.into_data().iter::<f32>().collect();
            for (i, sample) in samples.iter().enumerate() {
                let predicted = argmax(&values[i * c * h * w..(i + 1) * c * h * w], c, [h, w]);
                let (iw, ih) = (sample.image.width, sample.image.height);
                confusion.add(&sample.mask, &resize_nearest(&predicted, [w, h], [iw, ih]));
                images += 1;
            }
        })?;
        let metrics = confusion.metrics(&self.class_names);
        Ok(Evaluation {
            metric: "miou",
            value: metrics.miou * 100.0,
            summary: format!(
                "mIoU {:.2}%, pixel accuracy {:.2}% on {images} images",
                metrics.miou * 100.0,
                metrics.pixel_accuracy * 100.0
            ),
            result: serde_json::to_value(&metrics).expect("metrics serialise"),
        })
    }

    fn card_task(&self, config: &FinetuneConfig) -> (TaskSpec, Vec<OutputSpec>) {
        let size = config.image_size.to_string();
        (
            TaskSpec::Segmentation {
                ignore_index: IGNORE_LABEL,
            },
            vec![OutputSpec {
                name: "logits".into(),
                shape: vec![
                    "batch".into(),
                    self.class_names.len().to_string(),
                    size.clone(),
                    size,
                ],
                description: "per-pixel class logits at the input size".into(),
            }],
        )
    }
}

//! Detection: the CenterNet-style [`Detector`], trained with CenterNet's penalty-reduced focal
//! loss on the class heatmaps and an L1 loss on the offsets and log sizes at object centres,
//! scored with VOC07 AP50 and COCO AP.

use std::sync::Arc;

use burn::tensor::activation::{log_sigmoid, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};
use exemplar_inference::card::{OutputSpec, TaskSpec};
use exemplar_inference::detection::{self as decode, BOX_CHANNELS, DetectionDecoding};
use exemplar_models::{Detector, DetectorConfig};

use super::config::FinetuneConfig;
use super::{EvalInput, Evaluation, FromConfig, OpenSplit, Task, TaskKind, for_each_batch};
use crate::eval::detection::{ImageResult, evaluate};
use exemplar_data::annotated::{DetectionSample, TaskDataset};
use exemplar_data::{self, DataError, Split};

/// Decoding written to the card for serving.
pub const SERVING_DECODING: DetectionDecoding = DetectionDecoding {
    stride: 0, // set from the architecture
    score_threshold: 0.3,
    nms_iou: 0.5,
    max_detections: 100,
};

/// Evaluation keeps low-scoring detections: AP integrates over the whole ranking.
const EVAL_SCORE_THRESHOLD: f32 = 0.01;

pub struct DetectionTask {
    class_names: Vec<String>,
    model: DetectorConfig,
}

/// Targets of a batch, each laid out like the network output (see
/// `exemplar_inference::detection::encode`).
pub struct DetectionTargets {
    heatmap: Vec<f32>,
    boxes: Vec<f32>,
    mask: Vec<f32>,
    objects: usize,
    count: usize,
    map: [usize; 2],
}

impl FromConfig for DetectionTask {
    fn from_config(config: &FinetuneConfig, class_names: Vec<String>) -> Self {
        let model = DetectorConfig {
            backbone: config.backbone_config(),
            num_classes: class_names.len(),
            channels: config.head_channels,
        };
        Self { class_names, model }
    }
}

impl OpenSplit for DetectionTask {
    fn open(
        config: &FinetuneConfig,
        split: Split,
    ) -> Result<Arc<dyn TaskDataset<DetectionSample>>, DataError> {
        exemplar_data::open_detection(&config.data, split, config.synthetic, config.image_size)
    }
}

impl DetectionTask {
    fn decoding(&self, score_threshold: f32) -> DetectionDecoding {
        DetectionDecoding {
            stride: self.model.stride(),
            score_threshold,
            ..SERVING_DECODING
        }
    }
}

impl Task for DetectionTask {
    type Sample = DetectionSample;
    type Head = DetectorConfig;
    type Model = Detector;
    type Targets = DetectionTargets;

    const METRIC_TITLE: &'static str = "detection VOC07 mAP50 (%)";

    fn kind(&self) -> TaskKind {
        TaskKind::Detection
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn head(&self) -> &DetectorConfig {
        &self.model
    }

    fn targets(&self, samples: &[DetectionSample], size: usize) -> DetectionTargets {
        let stride = self.model.stride();
        let map = [size / stride, size / stride];
        let classes = self.class_names.len();
        let mut t = DetectionTargets {
            heatmap: Vec::new(),
            boxes: Vec::new(),
            mask: Vec::new(),
            objects: 0,
            count: samples.len(),
            map,
        };
        for sample in samples {
            // Difficult and crowd objects are neither positives nor negatives worth learning.
            let scored: Vec<_> = sample.objects.iter().filter(|o| !o.ignore).collect();
            let boxes: Vec<[f32; 4]> = scored.iter().map(|o| o.bbox).collect();
            let labels: Vec<usize> = scored.iter().map(|o| o.class).collect();
            let encoded = decode::encode(&boxes, &labels, classes, map, stride);
            t.heatmap.extend(encoded.heatmap);
            t.boxes.extend(encoded.boxes);
            t.mask.extend(encoded.mask);
            t.objects += encoded.objects;
        }
        t
    }

    fn loss(&self, model: &Detector, images: Tensor<4>, t: DetectionTargets) -> Tensor<1> {
        let device = images.device();
        let classes = self.class_names.len();
        let [h, w] = t.map;
        let n = t.count;
        let out = model.forward(images);
        let logits = out.clone().narrow(1, 0, classes);
        let predicted_boxes = out.narrow(1, classes, BOX_CHANNELS);
        let heat = Tensor::<4>::from_data(TensorData::new(t.heatmap, [n, classes, h, w]), &device);
        let target_boxes =
            Tensor::<4>::from_data(TensorData::new(t.boxes, [n, BOX_CHANNELS, h, w]), &device);
        let mask = Tensor::<4>::from_data(TensorData::new(t.mask, [n, 1, h, w]), &device);
        let positives = (t.objects as f32).max(1.0);
        focal_loss(logits, heat).div_scalar(positives)
            + (predicted_boxes - target_boxes)
                .abs()
                .mul(mask)
                .sum()
                .div_scalar(positives)
    }

    fn evaluate(
        &self,
        model: &Detector,
        dataset: &Arc<dyn TaskDataset<DetectionSample>>,
        input: &EvalInput,
        device: &Device,
    ) -> Result<Evaluation, DataError> {
        let classes = self.class_names.len();
        let decoding = self.decoding(EVAL_SCORE_THRESHOLD);
        let size = input.image_size as f32;
        let mut results = Vec::with_capacity(dataset.len());
        for_each_batch(dataset, input, device, |images, samples| {
            let out = model.forward(images);
            let [_, c, h, w] = out.dims();
            let values: Vec<f32> = out.into_data().iter::<f32>().collect();
            for (i, sample) in samples.into_iter().enumerate() {
                let (iw, ih) = (sample.image.width as f32, sample.image.height as f32);
                let map = &values[i * c * h * w..(i + 1) * c * h * w];
                let detections = decode::decode(
                    map,
                    classes,
                    [h, w],
                    &decoding,
                    [iw / size, ih / size],
                    [iw, ih],
                );
                results.push(ImageResult {
                    detections,
                    truth: sample.objects,
                });
            }
        })?;
        let metrics = evaluate(&results, &self.class_names);
        let errors = metrics.errors.percentages();
        Ok(Evaluation {
            metric: "voc07_map50",
            value: metrics.voc07_map50_11point * 100.0,
            summary: format!(
                "VOC07 mAP50 {:.2}% (11-point; area {:.2}%), COCO AP {:.2}% (AP50 {:.2}%, AP75 {:.2}%) on {} images; top false positives: {:.0}% localisation, {:.0}% confusion, {:.0}% background",
                metrics.voc07_map50_11point * 100.0,
                metrics.voc_map50_area * 100.0,
                metrics.coco_ap * 100.0,
                metrics.coco_ap50 * 100.0,
                metrics.coco_ap75 * 100.0,
                metrics.images,
                errors[0],
                errors[1],
                errors[2]
            ),
            result: serde_json::to_value(&metrics).expect("metrics serialise"),
        })
    }

    /// The network's one output, `[batch, classes + 4, cells, cells]`, is listed as the three
    /// tensors the export splits it into.
    fn card_task(&self, config: &FinetuneConfig) -> (TaskSpec, Vec<OutputSpec>) {
        let cells = (config.image_size / self.model.stride()).to_string();
        let output = |name: &str, channels: usize, description: &str| OutputSpec {
            name: name.into(),
            shape: vec![
                "batch".into(),
                channels.to_string(),
                cells.clone(),
                cells.clone(),
            ],
            description: description.into(),
        };
        (
            TaskSpec::Detection(self.decoding(SERVING_DECODING.score_threshold)),
            vec![
                output(
                    "heatmaps",
                    self.class_names.len(),
                    "per cell and class: the logit of an object centre",
                ),
                output(
                    "offsets",
                    2,
                    "per cell: the x/y centre offset within the cell",
                ),
                output(
                    "sizes",
                    BOX_CHANNELS - 2,
                    "per cell: ln(width / stride), ln(height / stride)",
                ),
            ],
        )
    }
}

/// CenterNet's penalty-reduced focal loss (α = 2, β = 4), summed: positives are the cells where
/// the target is 1, negatives are down-weighted by `(1 - target)^4` near object centres.
fn focal_loss(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let p = sigmoid(logits.clone());
    let log_p = log_sigmoid(logits.clone());
    let log_not_p = log_sigmoid(logits.neg());
    let positive = target.clone().greater_equal_elem(1.0 - 1e-4).float();
    let negative = positive.clone().neg().add_scalar(1.0);
    let pos_loss = p
        .clone()
        .neg()
        .add_scalar(1.0)
        .powi_scalar(2)
        .mul(log_p)
        .mul(positive);
    let neg_weight = target.neg().add_scalar(1.0).powi_scalar(4);
    let neg_loss = p
        .powi_scalar(2)
        .mul(log_not_p)
        .mul(neg_weight)
        .mul(negative);
    (pos_loss + neg_loss).sum().neg()
}

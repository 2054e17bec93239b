//! Classification: a linear classifier on pooled features ([`Classifier`]), trained with
//! cross-entropy. With `--backbone-lr-scale 0` this is the linear evaluation protocol
//! (frozen backbone, BatchNorm in inference mode); otherwise full fine-tuning.

use std::sync::Arc;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use exemplar_inference::card::{OutputSpec, TaskSpec};
use exemplar_models::{Classifier, ClassifierConfig};

use super::augment::TaskAugmentation;
use super::config::FinetuneConfig;
use super::{EvalInput, Evaluation, FromConfig, OpenSplit, Task, TaskKind, for_each_batch};
use crate::eval::knn::argmax;
use exemplar_data::annotated::{ClassSample, Labelled, TaskDataset};
use exemplar_data::{self, DataError, Split};

pub struct ClassificationTask {
    class_names: Vec<String>,
    model: ClassifierConfig,
}

pub struct ClassTargets(Vec<i64>);

impl FromConfig for ClassificationTask {
    fn from_config(config: &FinetuneConfig, class_names: Vec<String>) -> Self {
        let model = ClassifierConfig {
            backbone: config.backbone_config(),
            num_classes: class_names.len(),
        };
        Self { class_names, model }
    }
}

impl OpenSplit for ClassificationTask {
    fn open(
        config: &FinetuneConfig,
        split: Split,
    ) -> Result<Arc<dyn TaskDataset<ClassSample>>, DataError> {
        let dataset =
            exemplar_data::open(&config.data, split, config.synthetic, config.image_size)?
                .ok_or_else(|| DataError::Empty {
                    what: config.data.to_string(),
                    hint: "no validation split (ImageFolder: add ROOT/val)".into(),
                })?;
        Ok(Arc::new(Labelled(dataset)))
    }
}

impl Task for ClassificationTask {
    type Sample = ClassSample;
    type Head = ClassifierConfig;
    type Model = Classifier;
    type Targets = ClassTargets;

    const METRIC_TITLE: &'static str = "classification top-1 (%)";

    fn kind(&self) -> TaskKind {
        TaskKind::Classification
    }

    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn head(&self) -> &ClassifierConfig {
        &self.model
    }

    fn augmentation(&self) -> TaskAugmentation {
        TaskAugmentation {
            crop_scale: Some([0.35, 1.0]),
            flip: true,
            flip_pairs: Vec::new(),
            color: false,
        }
    }

    fn targets(&self, samples: &[ClassSample], _size: usize) -> ClassTargets {
        ClassTargets(samples.iter().map(|s| s.label).collect())
    }

    fn loss(&self, model: &Classifier, images: Tensor<4>, t: ClassTargets) -> Tensor<1> {
        let device = images.device();
        let n = t.0.len();
        let labels = Tensor::<1, Int>::from_data(TensorData::new(t.0, [n]), &device);
        CrossEntropyLossConfig::new()
            .init(&device)
            .forward(model.forward(images), labels)
    }

    fn evaluate(
        &self,
        model: &Classifier,
        dataset: &Arc<dyn TaskDataset<ClassSample>>,
        input: &EvalInput,
        device: &Device,
    ) -> Result<Evaluation, DataError> {
        let classes = self.class_names.len();
        let (mut correct, mut total) = (0usize, 0usize);
        for_each_batch(dataset, input, device, |images, samples| {
            let values: Vec<f32> = model.forward(images).into_data().iter::<f32>().collect();
            for (i, sample) in samples.iter().enumerate() {
                if argmax(&values[i * classes..(i + 1) * classes]) as i64 == sample.label {
                    correct += 1;
                }
                total += 1;
            }
        })?;
        let top1 = 100.0 * correct as f64 / total.max(1) as f64;
        Ok(Evaluation {
            metric: "top1",
            value: top1,
            summary: format!("top-1 {top1:.2}% on {total} images"),
            result: serde_json::json!({"top1": top1, "images": total, "correct": correct}),
        })
    }

    fn card_task(&self, _config: &FinetuneConfig) -> (TaskSpec, Vec<OutputSpec>) {
        (
            TaskSpec::Classification,
            vec![OutputSpec {
                name: "logits".into(),
                shape: vec!["batch".into(), self.class_names.len().to_string()],
                description: "class logits (softmax for probabilities)".into(),
            }],
        )
    }
}

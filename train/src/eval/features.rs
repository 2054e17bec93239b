//! Frozen-feature extraction: centre views through a backbone in inference mode.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use exemplar_models::ResNet;

use crate::config::{BadImagePolicy, Normalization};
use exemplar_data::loader::eval_batches;
use exemplar_data::{DataError, Dataset};

/// Features of a set of samples: `[count, dim]` row-major, with their labels.
#[derive(Debug, Clone)]
pub struct Features {
    pub values: Vec<f32>,
    pub labels: Vec<i64>,
    pub dim: usize,
}

impl Features {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The features as a `[count, dim]` tensor.
    pub fn tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.values.clone(), [self.len(), self.dim]),
            device,
        )
    }
}

/// Options of an extraction pass.
#[derive(Debug, Clone, Copy)]
pub struct ExtractOptions {
    pub image_size: usize,
    pub normalization: Normalization,
    pub batch_size: usize,
    pub workers: usize,
    pub on_bad_image: BadImagePolicy,
}

/// Pooled backbone features of `indices`. `backbone` must be in inference mode (`valid()`),
/// so BatchNorm uses its running statistics; `device` is the plain (non-autodiff) device.
pub fn extract(
    backbone: &ResNet,
    dataset: Arc<dyn Dataset>,
    indices: Vec<usize>,
    options: ExtractOptions,
    device: &Device,
) -> Result<Features, DataError> {
    let size = options.image_size;
    let mut values = Vec::new();
    let mut labels = Vec::with_capacity(indices.len());
    let mut dim = 0;
    let batches = eval_batches(
        dataset,
        Arc::new(indices),
        size,
        options.normalization,
        options.batch_size,
        options.workers,
        options.on_bad_image,
    );
    for batch in batches {
        let batch = batch?;
        for reason in &batch.skipped {
            eprintln!("warning: skipped in evaluation: {reason}");
        }
        let count = batch.samples.len();
        if count == 0 {
            continue;
        }
        let images = Tensor::<4>::from_data(
            TensorData::new(batch.images, [count, 3, size, size]),
            device,
        );
        let features = backbone.forward(images);
        dim = features.dims()[1];
        values.extend(features.into_data().iter::<f32>());
        labels.extend(batch.samples.iter().map(|(_, label)| *label));
    }
    Ok(Features {
        values,
        labels,
        dim,
    })
}

/// Features of (at most `train_limit` evenly spread samples of) a training split and of a whole
/// validation split: the inputs of the kNN monitor and of the linear probe.
pub fn train_and_val_features(
    backbone: &ResNet,
    train: &Arc<dyn Dataset>,
    val: &Arc<dyn Dataset>,
    train_limit: usize,
    options: ExtractOptions,
    device: &Device,
) -> Result<(Features, Features), DataError> {
    let train_indices = spread_indices(train.len(), train_limit);
    let train_features = extract(backbone, Arc::clone(train), train_indices, options, device)?;
    let val_indices = (0..val.len()).collect();
    let val_features = extract(backbone, Arc::clone(val), val_indices, options, device)?;
    Ok((train_features, val_features))
}

/// Evenly spaced indices: at most `limit` of `len`, spread over the whole dataset so every class
/// is represented even when samples are sorted by class (ImageFolder).
pub fn spread_indices(len: usize, limit: usize) -> Vec<usize> {
    if limit >= len {
        return (0..len).collect();
    }
    (0..limit).map(|i| i * len / limit).collect()
}

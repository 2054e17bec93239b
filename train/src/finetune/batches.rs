//! The batches of fine-tuning: augmented training batches built on loader threads, and
//! evaluation batches preprocessed exactly as the server will.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;

use super::Task;
use super::config::FinetuneConfig;
use crate::config::BadImagePolicy;
use exemplar_data::DataError;
use exemplar_data::annotated::{Annotated, TaskDataset};
use exemplar_data::loader::{Prefetch, Source, read_or_skip_from, view_batches};
use exemplar_data::synthetic::rng_for;

/// How evaluation feeds images to the network.
#[derive(Debug, Clone)]
pub struct EvalInput {
    pub image_size: usize,
    pub normalization: crate::config::Normalization,
    pub batch_size: usize,
    pub workers: usize,
    pub on_bad_image: BadImagePolicy,
}

impl EvalInput {
    pub fn from_config(config: &FinetuneConfig) -> Self {
        Self {
            image_size: config.image_size,
            normalization: config.normalization,
            batch_size: config.batch_size.max(16),
            workers: config.workers.max(1),
            on_bad_image: config.on_bad_image,
        }
    }
}

/// Runs `score` over `dataset` in batches: each sample is preprocessed exactly as the server
/// will (`exemplar_inference::image::preprocess`) and handed over with its annotations.
pub fn for_each_batch<S: Annotated>(
    dataset: &Arc<dyn TaskDataset<S>>,
    input: &EvalInput,
    device: &Device,
    mut score: impl FnMut(Tensor<4>, Vec<S>),
) -> Result<usize, DataError> {
    let size = input.image_size;
    let normalization = input.normalization;
    let shared = Arc::clone(dataset);
    let loader = view_batches(
        Arc::new((0..dataset.len()).collect()),
        input.batch_size,
        input.workers,
        input.on_bad_image,
        move |index| shared.get(index),
        move |sample: &S, pixels| {
            exemplar_inference::image::preprocess(
                sample.image(),
                [size, size],
                &normalization,
                pixels,
            )
        },
    );
    let mut skipped = 0;
    for batch in loader {
        let batch = batch?;
        for reason in &batch.skipped {
            eprintln!("warning: skipped in evaluation: {reason}");
        }
        skipped += batch.skipped.len();
        if batch.samples.is_empty() {
            continue;
        }
        let images = Tensor::<4>::from_data(
            TensorData::new(batch.images, [batch.samples.len(), 3, size, size]),
            device,
        );
        score(images, batch.samples);
    }
    Ok(skipped)
}

/// A batch of augmented samples, ready for the device.
pub(super) struct TrainBatch<Targets> {
    pub(super) images: Vec<f32>,
    pub(super) targets: Targets,
    pub(super) count: usize,
    pub(super) skipped: Vec<String>,
}

/// Batches `start..total` built on loader threads; batch `s` depends only on `(seed, s)`, so a
/// resumed run sees the batches the interrupted one would have.
pub(super) fn spawn_batches<T: Task>(
    task: Arc<T>,
    dataset: Arc<dyn TaskDataset<T::Sample>>,
    config: &FinetuneConfig,
    start: usize,
    total: usize,
) -> Prefetch<Result<TrainBatch<T::Targets>, DataError>> {
    let augmentation = task.augmentation();
    let (batch, size, seed, policy) = (
        config.batch_size,
        config.image_size,
        config.seed,
        config.on_bad_image,
    );
    let normalization = config.normalization;
    Prefetch::new(start, total, config.workers, 2, move |step| {
        let len = dataset.len();
        let per_epoch = len / batch;
        let mut order: Vec<usize> = (0..len).collect();
        order.shuffle(&mut rng_for(seed, &[60, (step / per_epoch) as u64]));
        let first = (step % per_epoch) * batch;
        let mut samples = Vec::with_capacity(batch);
        let mut skipped = Vec::new();
        let mut pixels = Vec::with_capacity(batch * 3 * size * size);
        for (position, &index) in order[first..first + batch].iter().enumerate() {
            let source = Source {
                len,
                describe: &|| dataset.describe(),
                get: &|i| dataset.get(i),
            };
            let sample = read_or_skip_from(&source, index, policy, &mut skipped)?;
            let mut rng = rng_for(seed, &[61, step as u64, position as u64]);
            let sample = augmentation.apply(sample, size, &mut rng);
            sample
                .image()
                .write_chw_normalized(normalization.mean, normalization.std, &mut pixels);
            samples.push(sample);
        }
        Ok(TrainBatch {
            targets: task.targets(&samples, size),
            images: pixels,
            count: samples.len(),
            skipped,
        })
    })
}

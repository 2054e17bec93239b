//! Batches for the training loops, built by worker threads ahead of the trainer.
//!
//! What batch `s` contains depends only on `(seed, s)`: the epoch's sample order is a seeded
//! permutation and every view is augmented with a generator seeded by `(seed, step, position)`.
//! Any worker can build any batch, and a resumed run sees exactly the batches the interrupted one
//! would have seen.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, bounded};
use rand::seq::SliceRandom;

use crate::BadImagePolicy;
use crate::augment::{Augmentation, center_view};
use crate::synthetic::rng_for;
use crate::{DataError, Dataset, Image};
use exemplar_inference::Normalization;

/// Produces items `start..end` on `workers` threads, handed out in order.
///
/// Item `i` is built by worker `(i - start) % workers` and sent through that worker's own
/// bounded channel, so the consumer reads them in order with no reordering buffer, and each
/// worker runs at most `depth` items ahead.
pub struct Prefetch<T> {
    receivers: Vec<Receiver<T>>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
    start: usize,
    end: usize,
}

impl<T: Send + 'static> Prefetch<T> {
    pub fn new<F>(start: usize, end: usize, workers: usize, depth: usize, make: F) -> Self
    where
        F: Fn(usize) -> T + Send + Sync + 'static,
    {
        let workers = workers.max(1);
        let make = Arc::new(make);
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (sender, receiver) = bounded(depth.max(1));
            let make = Arc::clone(&make);
            let handle = std::thread::Builder::new()
                .name(format!("loader-{worker}"))
                .spawn(move || {
                    let mut item = start + worker;
                    while item < end {
                        // The consumer has gone (finished or failed): stop quietly.
                        if sender.send(make(item)).is_err() {
                            return;
                        }
                        item += workers;
                    }
                })
                .expect("spawning a loader thread");
            receivers.push(receiver);
            handles.push(handle);
        }
        Self {
            receivers,
            handles,
            next: start,
            start,
            end,
        }
    }
}

impl<T> Iterator for Prefetch<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.next >= self.end {
            return None;
        }
        let worker = (self.next - self.start) % self.receivers.len();
        self.next += 1;
        // A worker only drops its sender early by panicking; surface that as the end of data
        // rather than a hang.
        self.receivers[worker].recv().ok()
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Dropping the receivers unblocks workers waiting to send; then they exit.
        self.receivers.clear();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// A training batch: one or two augmented views of each image, as normalised CHW floats.
#[derive(Debug, Clone)]
pub struct Batch {
    pub step: usize,
    /// `[batch, 3, size, size]` flattened, one entry per view.
    pub views: Vec<Vec<f32>>,
    pub labels: Vec<i64>,
    /// Samples that could not be read and were replaced (path and reason).
    pub skipped: Vec<String>,
}

/// How training batches are made.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    pub batch_size: usize,
    pub image_size: usize,
    /// 2 for contrastive methods (query and key view), 1 for the supervised baseline.
    pub views: usize,
    pub augment: Augmentation,
    pub normalization: Normalization,
    pub seed: u64,
    pub on_bad_image: BadImagePolicy,
}

impl BatchPlan {
    /// Full batches per epoch (the last partial batch is dropped, as MoCo does).
    pub fn steps_per_epoch(&self, dataset_len: usize) -> usize {
        dataset_len / self.batch_size
    }

    /// Starts building batches `start..end` in the background.
    pub fn spawn(
        self,
        dataset: Arc<dyn Dataset>,
        start: usize,
        end: usize,
        workers: usize,
    ) -> Prefetch<Result<Batch, DataError>> {
        let plan = Arc::new(self);
        Prefetch::new(start, end, workers, 2, move |step| {
            plan.build(dataset.as_ref(), step)
        })
    }

    /// Dataset indices of the samples of `step`.
    pub fn indices(&self, dataset_len: usize, step: usize) -> Vec<usize> {
        let per_epoch = self.steps_per_epoch(dataset_len).max(1);
        let epoch = step / per_epoch;
        let mut order: Vec<usize> = (0..dataset_len).collect();
        order.shuffle(&mut rng_for(self.seed, &[10, epoch as u64]));
        let first = (step % per_epoch) * self.batch_size;
        order[first..first + self.batch_size].to_vec()
    }

    /// Builds batch `step`.
    pub fn build(&self, dataset: &dyn Dataset, step: usize) -> Result<Batch, DataError> {
        let plane = 3 * self.image_size * self.image_size;
        let mut views = vec![Vec::with_capacity(self.batch_size * plane); self.views];
        let mut labels = Vec::with_capacity(self.batch_size);
        let mut skipped = Vec::new();
        for (position, index) in self.indices(dataset.len(), step).into_iter().enumerate() {
            let (image, label) = read_or_skip(dataset, index, self.on_bad_image, &mut skipped)?;
            let mut rng = rng_for(self.seed, &[20, step as u64, position as u64]);
            for view in views.iter_mut() {
                let augmented = self.augment.apply(&image, self.image_size, &mut rng);
                let Normalization { mean, std } = self.normalization;
                augmented.write_chw_normalized(mean, std, view);
            }
            labels.push(label);
        }
        Ok(Batch {
            step,
            views,
            labels,
            skipped,
        })
    }
}

/// Reads sample `index`; under [`BadImagePolicy::Skip`] an unreadable sample is reported in
/// `skipped` and the next one is used instead (deterministically, so resumes agree).
pub fn read_or_skip(
    dataset: &dyn Dataset,
    index: usize,
    policy: BadImagePolicy,
    skipped: &mut Vec<String>,
) -> Result<(Image, i64), DataError> {
    let source = Source {
        len: dataset.len(),
        describe: &|| dataset.describe(),
        get: &|i| dataset.get(i),
    };
    read_or_skip_from(&source, index, policy, skipped)
}

/// A dataset of any sample type, seen as its length, its description and a reader.
pub struct Source<'a, S> {
    pub len: usize,
    pub describe: &'a dyn Fn() -> String,
    pub get: &'a dyn Fn(usize) -> Result<S, DataError>,
}

/// [`read_or_skip`] for any sample type (the fine-tuning tasks' annotated samples too).
pub fn read_or_skip_from<S>(
    source: &Source<'_, S>,
    index: usize,
    policy: BadImagePolicy,
    skipped: &mut Vec<String>,
) -> Result<S, DataError> {
    let len = source.len;
    let mut candidate = index;
    loop {
        match (source.get)(candidate) {
            Ok(sample) => return Ok(sample),
            Err(err @ DataError::OutOfRange { .. }) => return Err(err),
            Err(err) if policy == BadImagePolicy::Fail => return Err(err),
            Err(err) => {
                skipped.push(err.to_string());
                candidate = (candidate + 1) % len;
                if candidate == index {
                    return Err(DataError::Empty {
                        what: (source.describe)(),
                        hint: "no sample could be read".into(),
                    });
                }
            }
        }
    }
}

/// An evaluation batch: the pixels of `samples.len()` images in CHW order, the samples, and the
/// samples that could not be read.
pub struct ViewBatch<S> {
    pub images: Vec<f32>,
    pub samples: Vec<S>,
    pub skipped: Vec<String>,
}

/// The one evaluation loader: the samples `indices` in order, `batch_size` at a time, read and
/// turned into pixels by `view` on `workers` background threads. Under [`BadImagePolicy::Skip`]
/// an unreadable sample is left out and reported, never replaced, so no sample is scored twice.
pub fn view_batches<S, R, V>(
    indices: Arc<Vec<usize>>,
    batch_size: usize,
    workers: usize,
    policy: BadImagePolicy,
    read: R,
    view: V,
) -> Prefetch<Result<ViewBatch<S>, DataError>>
where
    S: Send + 'static,
    R: Fn(usize) -> Result<S, DataError> + Send + Sync + 'static,
    V: Fn(&S, &mut Vec<f32>) + Send + Sync + 'static,
{
    let batch_size = batch_size.max(1);
    let batches = indices.len().div_ceil(batch_size);
    Prefetch::new(0, batches, workers, 2, move |b| {
        let chunk = &indices[b * batch_size..((b + 1) * batch_size).min(indices.len())];
        let mut batch = ViewBatch {
            images: Vec::new(),
            samples: Vec::with_capacity(chunk.len()),
            skipped: Vec::new(),
        };
        for &index in chunk {
            match read(index) {
                Ok(sample) => {
                    view(&sample, &mut batch.images);
                    batch.samples.push(sample);
                }
                Err(err) if policy == BadImagePolicy::Fail => return Err(err),
                Err(err) => batch.skipped.push(err.to_string()),
            }
        }
        Ok(batch)
    })
}

/// Centre views (the linear-evaluation protocol's resize and centre crop) of the samples
/// `indices` with their labels: what kNN and the linear probe score.
pub fn eval_batches(
    dataset: Arc<dyn Dataset>,
    indices: Arc<Vec<usize>>,
    image_size: usize,
    normalization: Normalization,
    batch_size: usize,
    workers: usize,
    on_bad_image: BadImagePolicy,
) -> Prefetch<Result<ViewBatch<(Image, i64)>, DataError>> {
    let Normalization { mean, std } = normalization;
    view_batches(
        indices,
        batch_size,
        workers,
        on_bad_image,
        move |index| dataset.get(index),
        move |(image, _), pixels| {
            center_view(image, image_size).write_chw_normalized(mean, std, pixels)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_leaves_unreadable_samples_out_or_stops() {
        let read = |index: usize| {
            if index == 2 {
                Err(DataError::Empty {
                    what: "sample 2".into(),
                    hint: "unreadable".into(),
                })
            } else {
                Ok(index)
            }
        };
        let view = |sample: &usize, pixels: &mut Vec<f32>| pixels.push(*sample as f32);
        let indices = Arc::new(vec![0, 1, 2, 3, 4]);
        let batches: Vec<ViewBatch<usize>> =
            view_batches(Arc::clone(&indices), 2, 2, BadImagePolicy::Skip, read, view)
                .map(|b| b.unwrap())
                .collect();
        let samples: Vec<usize> = batches.iter().flat_map(|b| b.samples.clone()).collect();
        let pixels: Vec<f32> = batches.iter().flat_map(|b| b.images.clone()).collect();
        assert_eq!(samples, [0, 1, 3, 4], "left out, not replaced");
        assert_eq!(pixels, [0.0, 1.0, 3.0, 4.0]);
        assert_eq!(batches[1].skipped.len(), 1);
        assert!(batches[1].skipped[0].contains("sample 2"));
        let failed =
            view_batches(indices, 2, 2, BadImagePolicy::Fail, read, view).any(|b| b.is_err());
        assert!(failed);
    }
    use crate::augment::AugmentPreset;
    use crate::synthetic::{Stream, SyntheticObjects};

    fn plan() -> BatchPlan {
        BatchPlan {
            batch_size: 4,
            image_size: 16,
            views: 2,
            augment: AugmentPreset::AugPlus.pipeline(),
            normalization: Normalization::default(),
            seed: 3,
            on_bad_image: BadImagePolicy::Skip,
        }
    }

    #[test]
    fn batches_are_deterministic_in_order_and_cover_each_epoch_once() {
        let data: Arc<dyn Dataset> = Arc::new(SyntheticObjects::new(0, Stream::Train, 10, 16));
        let serial: Vec<_> = (0..6)
            .map(|s| plan().build(data.as_ref(), s).unwrap())
            .collect();
        let parallel: Vec<_> = plan()
            .spawn(Arc::clone(&data), 0, 6, 3)
            .map(|b| b.unwrap())
            .collect();
        for (a, b) in serial.iter().zip(&parallel) {
            assert_eq!(a.step, b.step);
            assert_eq!(a.views, b.views);
            assert_eq!(a.labels, b.labels);
        }
        assert_eq!(serial[0].views.len(), 2);
        assert_eq!(serial[0].views[0].len(), 4 * 3 * 16 * 16);
        assert_ne!(
            serial[0].views[0], serial[0].views[1],
            "two different views"
        );
        // 10 images, batch 4: two steps per epoch covering 8 distinct images.
        let p = plan();
        let mut epoch0: Vec<usize> = [p.indices(10, 0), p.indices(10, 1)].concat();
        epoch0.sort();
        epoch0.dedup();
        assert_eq!(epoch0.len(), 8);
        assert_ne!(p.indices(10, 0), p.indices(10, 2), "a new order each epoch");
    }

    #[test]
    fn resuming_midway_gives_the_same_batches() {
        let data: Arc<dyn Dataset> = Arc::new(SyntheticObjects::new(0, Stream::Train, 12, 16));
        let full: Vec<_> = plan()
            .spawn(Arc::clone(&data), 0, 5, 2)
            .map(|b| b.unwrap())
            .collect();
        let resumed: Vec<_> = plan().spawn(data, 3, 5, 2).map(|b| b.unwrap()).collect();
        assert_eq!(full[3].views, resumed[0].views);
        assert_eq!(full[4].labels, resumed[1].labels);
    }

    #[test]
    fn dropping_a_loader_midway_stops_its_threads() {
        let data: Arc<dyn Dataset> = Arc::new(SyntheticObjects::new(0, Stream::Train, 12, 16));
        let mut loader = plan().spawn(data, 0, 1000, 2);
        assert!(loader.next().is_some());
        drop(loader); // must not hang
    }
}

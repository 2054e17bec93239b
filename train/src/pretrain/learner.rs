//! The pretraining learner, in the spirit of MoCo's `builder.py`: it owns the query encoder, the
//! momentum key encoder and the label-aware queue, and one [`train_step`] does the momentum
//! update, the keys through shuffled BatchNorm, the loss (Exemplar drops same-class queue entries
//! from the negatives, MoCo does not) and the enqueue. The supervised baseline is the same
//! learner with one encoder and cross-entropy.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use exemplar_models::contrastive::loss::positive_top1;
use exemplar_models::encoder::l2_normalize;
use exemplar_models::{Encoder, EncoderConfig, KeyQueue, contrastive_loss, momentum_update};
use rand::seq::SliceRandom;

use super::encoder_config;
use crate::config::PretrainConfig;
use crate::device::{is_cpu, move_weights};
use exemplar_data::loader::Batch;
use exemplar_data::synthetic::rng_for;

/// The trainable state of either kind of method.
// One learner exists per run and it is moved, not copied, each step: boxing the large variant
// would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Learner {
    Contrastive {
        query: Encoder,
        key: Encoder,
        queue: KeyQueue,
    },
    Supervised {
        model: Encoder,
    },
}

impl Learner {
    /// A freshly initialised learner: for contrastive methods a query encoder, its copy as key
    /// encoder and a random queue; for the supervised baseline an encoder whose head is a
    /// `num_classes`-way classifier.
    pub fn new(config: &PretrainConfig, num_classes: usize, device: &Device) -> Self {
        fresh(config, &encoder_config(config, num_classes), device)
    }

    /// The backbone being pretrained (the query encoder's, for contrastive methods).
    pub fn backbone(&self) -> &exemplar_models::ResNet {
        match self {
            Learner::Contrastive { query, .. } => &query.backbone,
            Learner::Supervised { model } => &model.backbone,
        }
    }
}

/// A freshly initialised learner on `device`: the weights and the queue are drawn on the CPU
/// from the run's seed and moved ([`move_weights`]).
pub(super) fn fresh(config: &PretrainConfig, encoder: &EncoderConfig, device: &Device) -> Learner {
    if is_cpu(&config.device) {
        return draw(config, encoder, device);
    }
    let cpu = Device::flex();
    cpu.seed(config.seed);
    match draw(config, encoder, &cpu.autodiff()) {
        Learner::Supervised { model } => Learner::Supervised {
            model: move_weights(model, encoder.init(device)),
        },
        Learner::Contrastive { query, key, queue } => Learner::Contrastive {
            query: move_weights(query, encoder.init(device)),
            key: move_weights(key, encoder.init(device)).no_grad(),
            queue: KeyQueue::from_parts(
                Tensor::<2>::from_data(queue.keys().into_data(), device),
                queue.labels().to_vec(),
                queue.ptr(),
            ),
        },
    }
}

/// The learner's initial state, drawn from `device`'s random generator.
fn draw(config: &PretrainConfig, encoder: &EncoderConfig, device: &Device) -> Learner {
    let model = encoder.init(device);
    if !config.method.is_contrastive() {
        return Learner::Supervised { model };
    }
    // The key encoder starts as a copy of the query encoder. Copy through a record rather than
    // `clone()`: clones share lazily initialised parameters.
    let key = encoder
        .init(device)
        .load_record(model.clone().into_record())
        .no_grad();
    Learner::Contrastive {
        query: model,
        key,
        queue: KeyQueue::random(config.queue_size, config.embed_dim, device),
    }
}

/// One optimisation step on `batch` (made by the same config's
/// [`batch_plan`](PretrainConfig::batch_plan)) on the autodiff `device`. Returns the updated
/// learner, the loss and the accuracy monitor (positive top-1 for contrastive methods,
/// classification top-1 for supervised).
pub fn train_step(
    learner: Learner,
    optim: &mut ModuleOptimizer,
    batch: Batch,
    config: &PretrainConfig,
    lr: f64,
    device: &Device,
) -> (Learner, f64, f64) {
    let n = batch.labels.len();
    let size = config.image_size;
    let mut views = batch.views.into_iter();
    let mut next_view = || {
        let data = views.next().expect("the plan makes one view per input");
        Tensor::<4>::from_data(TensorData::new(data, [n, 3, size, size]), device)
    };
    let labels = Tensor::<1, Int>::from_data(TensorData::new(batch.labels.clone(), [n]), device);
    match learner {
        Learner::Supervised { model } => {
            let logits = model.forward(next_view());
            let accuracy = logits
                .clone()
                .argmax(1)
                .reshape([n])
                .equal(labels.clone())
                .int()
                .sum()
                .into_scalar::<i64>() as f64
                / n as f64;
            let loss = CrossEntropyLossConfig::new()
                .init(device)
                .forward(logits, labels);
            let value = loss.clone().into_scalar::<f32>() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let model = optim.step(lr, model, grads);
            (Learner::Supervised { model }, value, accuracy)
        }
        Learner::Contrastive {
            query,
            key,
            mut queue,
        } => {
            // MoCo updates the key encoder before computing this batch's keys.
            let key = momentum_update(key, &query, config.key_momentum);
            let q = l2_normalize(query.forward(next_view()));
            let k = key_features(&key, next_view(), config, batch.step).detach();
            let masking = config
                .method
                .masks_same_class()
                .then(|| (labels, queue.labels_tensor()));
            let out = contrastive_loss(q, k.clone(), queue.keys(), masking, config.temperature);
            let value = out.loss.clone().into_scalar::<f32>() as f64;
            let accuracy = positive_top1(out.logits.detach()) as f64;
            let grads = GradientsParams::from_grads(out.loss.backward(), &query);
            let query = optim.step(lr, query, grads);
            queue.enqueue(k, &batch.labels);
            (Learner::Contrastive { query, key, queue }, value, accuracy)
        }
    }
}

/// Keys for a batch. With `bn_splits > 1` the batch is shuffled and each group goes through the
/// key encoder separately, so BatchNorm statistics mix unrelated images (MoCo's shuffle-BN on
/// one device); the keys are put back in order afterwards.
fn key_features(
    key: &Encoder,
    images: Tensor<4>,
    config: &PretrainConfig,
    step: usize,
) -> Tensor<2> {
    if config.bn_splits <= 1 {
        return l2_normalize(key.forward(images));
    }
    let n = images.dims()[0];
    let device = images.device();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng_for(config.seed, &[30, step as u64]));
    let mut inverse = vec![0usize; n];
    for (position, &index) in order.iter().enumerate() {
        inverse[index] = position;
    }
    let to_tensor = |v: &[usize]| {
        Tensor::<1, Int>::from_data(
            TensorData::new(v.iter().map(|&i| i as i64).collect::<Vec<_>>(), [n]),
            &device,
        )
    };
    let shuffled = images.select(0, to_tensor(&order));
    let group = n / config.bn_splits;
    let outputs: Vec<Tensor<2>> = (0..config.bn_splits)
        .map(|g| key.forward(shuffled.clone().narrow(0, g * group, group)))
        .collect();
    l2_normalize(Tensor::cat(outputs, 0).select(0, to_tensor(&inverse)))
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use exemplar_models::{Depth, Stem};

    use super::*;
    use crate::config::Method;

    /// The GPU start-up path draws the weights on the CPU and moves them through a record; the
    /// moved encoder must compute exactly what the drawn one does.
    #[test]
    fn a_moved_encoder_keeps_its_weights() {
        let mut config = PretrainConfig::defaults(Method::ExemplarV2);
        config.arch = Depth::ResNet18;
        config.width = 0.125;
        config.stem = Stem::Small;
        let encoder = encoder_config(&config, 4);
        let cpu = Device::flex();
        cpu.seed(7);
        let drawn = encoder.init(&cpu.clone().autodiff());
        let images = Tensor::<4>::random([2, 3, 16, 16], Distribution::Default, &cpu);
        let expected = drawn.valid().forward(images.clone());
        let moved = move_weights(drawn, encoder.init(&cpu));
        let got = moved.forward(images);
        expected.into_data().assert_eq(&got.into_data(), true);
    }
}

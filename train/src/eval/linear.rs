//! The linear probe: a linear classifier trained on frozen features (MoCo's `main_lincls.py`
//! protocol, scaled down).
//!
//! Differences from `main_lincls.py`, chosen so the probe runs in seconds on a CPU: features are
//! extracted once from centre views (no crop/flip augmentation per epoch), and standardised per
//! dimension with the training set's statistics (the BatchNorm-without-affine trick of MAE's
//! probe), which makes one learning rate work for contrastive and cross-entropy features alike
//! (MoCo's lr = 30 is specific to its feature scale).

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::features::Features;
use exemplar_data::synthetic::rng_for;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearProbeOptions {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
}

impl Default for LinearProbeOptions {
    fn default() -> Self {
        Self {
            epochs: 100,
            batch_size: 256,
            lr: 0.1,
            weight_decay: 0.0,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LinearProbeResult {
    pub top1: f64,
    pub top5: f64,
    pub train_top1: f64,
    pub train_size: usize,
    pub val_size: usize,
    pub options: LinearProbeOptions,
}

/// Trains the probe on `train` and reports accuracy on `val`. `device` is a plain device; the
/// probe trains on its autodiff counterpart.
pub fn linear_probe(
    train: &Features,
    val: &Features,
    num_classes: usize,
    options: LinearProbeOptions,
    device: &Device,
) -> LinearProbeResult {
    let (mean, std) = statistics(train);
    let train_x = standardize(train, &mean, &std);
    let val_x = standardize(val, &mean, &std);
    let autodiff = device.clone().autodiff();
    let mut model: Linear = LinearConfig::new(train.dim, num_classes).init(&autodiff);
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_dampening(0.0)))
        .with_weight_decay(
            (options.weight_decay > 0.0)
                .then(|| burn::optim::decay::WeightDecayConfig::new(options.weight_decay as f32)),
        )
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&autodiff);
    let n = train.len();
    let batch = options.batch_size.clamp(1, n.max(1));
    let steps_per_epoch = n.div_ceil(batch);
    let total = (options.epochs * steps_per_epoch).max(1);
    let mut order: Vec<usize> = (0..n).collect();
    let mut step = 0;
    for epoch in 0..options.epochs {
        order.shuffle(&mut rng_for(options.seed, &[40, epoch as u64]));
        for chunk in order.chunks(batch) {
            let lr = options.lr
                * 0.5
                * (1.0 + (std::f64::consts::PI * step as f64 / total as f64).cos());
            let x = rows(&train_x, train.dim, chunk, &autodiff);
            let y = labels(&train.labels, chunk, &autodiff);
            let loss = loss_fn.forward(model.forward(x), y);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            step += 1;
        }
    }
    let model = model.valid();
    let (train_top1, _) = accuracy(&model, &train_x, train, device);
    let (top1, top5) = accuracy(&model, &val_x, val, device);
    LinearProbeResult {
        top1,
        top5,
        train_top1,
        train_size: train.len(),
        val_size: val.len(),
        options,
    }
}

fn statistics(features: &Features) -> (Vec<f32>, Vec<f32>) {
    let (n, d) = (features.len().max(1) as f32, features.dim);
    let mut mean = vec![0.0f32; d];
    for row in features.values.chunks_exact(d) {
        row.iter().zip(&mut mean).for_each(|(v, m)| *m += v / n);
    }
    let mut var = vec![0.0f32; d];
    for row in features.values.chunks_exact(d) {
        for ((v, m), s) in row.iter().zip(&mean).zip(&mut var) {
            *s += (v - m) * (v - m) / n;
        }
    }
    (mean, var.into_iter().map(|v| (v + 1e-6).sqrt()).collect())
}

fn standardize(features: &Features, mean: &[f32], std: &[f32]) -> Vec<f32> {
    features
        .values
        .chunks_exact(features.dim)
        .flat_map(|row| row.iter().zip(mean).zip(std).map(|((v, m), s)| (v - m) / s))
        .collect()
}

fn rows(values: &[f32], dim: usize, indices: &[usize], device: &Device) -> Tensor<2> {
    let data: Vec<f32> = indices
        .iter()
        .flat_map(|&i| values[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    Tensor::from_data(TensorData::new(data, [indices.len(), dim]), device)
}

fn labels(all: &[i64], indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = indices.iter().map(|&i| all[i]).collect();
    Tensor::from_data(TensorData::new(data, [indices.len()]), device)
}

/// Top-1 and top-5 accuracy.
fn accuracy(model: &Linear, values: &[f32], features: &Features, device: &Device) -> (f64, f64) {
    let n = features.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let all: Vec<usize> = (0..n).collect();
    let logits = model.forward(rows(values, features.dim, &all, device));
    let classes = logits.dims()[1];
    let k = classes.min(5);
    let (_, top) = logits.topk_with_indices(k, 1);
    let top: Vec<i64> = top.into_data().iter::<i64>().collect();
    let (mut top1, mut top5) = (0usize, 0usize);
    for (i, &label) in features.labels.iter().enumerate() {
        let row = &top[i * k..(i + 1) * k];
        top1 += (row[0] == label) as usize;
        top5 += row.contains(&label) as usize;
    }
    (top1 as f64 / n as f64, top5 as f64 / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_features_are_learned_and_noise_is_not() {
        let device = Device::flex();
        let make = |n: usize, seed: u64, informative: bool| {
            use rand::Rng;
            let mut rng = rng_for(seed, &[]);
            let mut values = Vec::new();
            let mut labels = Vec::new();
            for i in 0..n {
                let label = (i % 3) as i64;
                for d in 0..4 {
                    let signal = if informative && d == label as usize {
                        3.0
                    } else {
                        0.0
                    };
                    values.push(signal + rng.random_range(-1.0f32..1.0));
                }
                labels.push(label);
            }
            Features {
                values,
                labels,
                dim: 4,
            }
        };
        let options = LinearProbeOptions {
            epochs: 20,
            batch_size: 32,
            ..Default::default()
        };
        let good = linear_probe(
            &make(300, 1, true),
            &make(150, 2, true),
            3,
            options,
            &device,
        );
        assert!(good.top1 > 0.9, "{good:?}");
        assert_eq!(good.top5, 1.0);
        let noise = linear_probe(
            &make(300, 1, false),
            &make(150, 2, false),
            3,
            options,
            &device,
        );
        assert!(noise.top1 < 0.6, "{noise:?}");
    }
}

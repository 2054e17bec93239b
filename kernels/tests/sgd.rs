//! `exemplar_kernels::sgd::FusedSgd` against burn's own SGD with the same settings (momentum 0.9,
//! no dampening, weight decay): the same weights after every step, on the fused path and on the
//! composed fallback, and optimizer records that load in either.
//!
//! One test in its own file: `exemplar_kernels::set_enabled` switches the whole process.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Distribution, Tensor};
use exemplar_kernels::sgd::FusedSgd;

const MOMENTUM: f64 = 0.9;
const WEIGHT_DECAY: f64 = 1e-3;

fn burn_sgd() -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new()
                .with_momentum(MOMENTUM)
                .with_dampening(0.0),
        ))
        .with_weight_decay(Some(WeightDecayConfig::new(WEIGHT_DECAY as f32)))
        .init()
}

fn fused_sgd() -> ModuleOptimizer {
    FusedSgd {
        momentum: MOMENTUM as f32,
        weight_decay: WEIGHT_DECAY as f32,
    }
    .init()
}

/// A layer of 300 × 257 weights (over the fused update's parallel chunk) from seed 0.
fn layer(device: &Device) -> Linear {
    device.seed(0);
    LinearConfig::new(300, 257).init(device)
}

/// `steps` SGD steps on a fixed regression, with a varying learning rate.
fn train(mut model: Linear, optim: &mut ModuleOptimizer, steps: std::ops::Range<usize>) -> Linear {
    let device = model.devices()[0].clone();
    for step in steps {
        device.seed(100 + step as u64);
        let x = Tensor::<2>::random([16, 300], Distribution::Normal(0.0, 1.0), &device);
        let loss = model.forward(x).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.05 / (1 + step) as f64, model, grads);
    }
    model
}

fn weights(model: &Linear) -> Vec<f32> {
    let mut values = model
        .weight
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
    if let Some(bias) = &model.bias {
        values.extend(bias.val().into_data().try_to_vec::<f32>().expect("f32"));
    }
    values
}

fn assert_same(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 * (1.0 + w.abs()),
            "{what}[{i}]: {g} != {w}"
        );
    }
}

#[test]
fn fused_sgd_matches_burn_and_shares_its_records() {
    let device = Device::flex().autodiff();
    let want = weights(&train(layer(&device), &mut burn_sgd(), 0..5));
    assert_ne!(
        want,
        weights(&layer(&device)),
        "the steps moved the weights"
    );

    for enabled in [true, false] {
        exemplar_kernels::set_enabled(enabled);
        let got = weights(&train(layer(&device), &mut fused_sgd(), 0..5));
        assert_same(&got, &want, &format!("kernels enabled: {enabled}"));
    }
    exemplar_kernels::set_enabled(true);

    // Three steps with one optimizer, its record loaded into the other, two more steps.
    let mut fused = fused_sgd();
    let model = train(layer(&device), &mut fused, 0..3);
    let mut burn = burn_sgd().load_record(fused.to_record());
    let got = weights(&train(model, &mut burn, 3..5));
    assert_same(&got, &want, "fused record continued by burn's SGD");

    let mut burn = burn_sgd();
    let model = train(layer(&device), &mut burn, 0..3);
    let mut fused = fused_sgd().load_record(burn.to_record());
    let got = weights(&train(model, &mut fused, 3..5));
    assert_same(&got, &want, "burn's record continued by the fused SGD");
}

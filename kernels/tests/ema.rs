//! `exemplar_kernels::ema::momentum_update` against burn's own operations: the same values to
//! the bit on the autodiff device (where the key encoder lives) and on the plain one, with the
//! result detached, and a key buffer shared elsewhere left as it was.
//!
//! One test in its own file: `exemplar_kernels::set_enabled` switches the whole process.

use burn::tensor::{Device, Distribution, Tensor};
use exemplar_kernels::ema::momentum_update;

const MOMENTUM: f64 = 0.999;

/// Burn's composed update, as the models computed it before the fused one.
fn composed(key: Tensor<2>, query: Tensor<2>) -> Tensor<2> {
    (key.detach() * MOMENTUM + query * (1.0 - MOMENTUM)).detach()
}

fn values(tensor: Tensor<2>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().expect("f32")
}

#[test]
fn the_fused_momentum_update_is_burns_to_the_bit() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        device.seed(3);
        // 300 × 257: over the fused update's parallel chunk.
        let draw = || Tensor::<2>::random([300, 257], Distribution::Normal(0.0, 1.0), &device);
        let (key, query) = (draw(), draw());
        // On the autodiff device, as the encoders' parameters are: the query's trained.
        let (key, query) = if device.is_autodiff() {
            (key.autodiff(), query.autodiff().require_grad())
        } else {
            (key, query)
        };
        let before = values(key.clone());
        let want = values(composed(key.clone(), query.clone()));

        // `key` is still held here, so the fused update must copy it rather than overwrite it.
        let got = momentum_update(key.clone(), query.clone(), MOMENTUM);
        assert_eq!(got.is_autodiff(), device.is_autodiff());
        assert!(
            !got.is_require_grad(),
            "the key encoder's parameters take no gradient"
        );
        assert_eq!(values(got), want, "fused, on {device:?}");
        assert_eq!(
            values(key.clone()),
            before,
            "the shared key buffer was overwritten"
        );

        exemplar_kernels::set_enabled(false);
        let fallback = momentum_update(key, query, MOMENTUM);
        exemplar_kernels::set_enabled(true);
        assert_eq!(values(fallback), want, "burn's operations, on {device:?}");
        assert_ne!(want, before, "the update moved the key");
    }
}

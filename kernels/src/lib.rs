//! Fused CPU training kernels for burn's flex backend.
//!
//! [`conv2d()`] and [`batch_norm()`] run a burn [`Conv2d`] or [`BatchNorm`] module through this
//! crate's kernels when the input lives on the flex backend in `f32`, and through the module's
//! own `forward` everywhere else (GPU backends, graph capture for ONNX export, other precisions,
//! grouped or `Same`-padded convolutions, batch norm in inference mode). Both paths compute the
//! same function: the tests check the kernels against the definitions and against burn.
//!
//! - [`conv2d`](mod@conv2d): im2col and one matrix product per group of images, for the forward
//!   pass and for both gradients;
//! - [`batch_norm`](mod@batch_norm): batch statistics and normalisation in two passes, and the
//!   closed-form backward pass in two more;
//! - [`ema`]: the key encoder's momentum update as one pass per parameter;
//! - [`sgd`]: SGD with momentum and weight decay as one pass per parameter ([`sgd::FusedSgd`],
//!   a burn optimizer).
//!
//! Each sits behind a burn backend extension with its own autodiff node ([`ops`]), so it is one
//! operation in the autodiff graph, as burn's own is.

pub mod batch_norm;
pub mod conv2d;
pub mod ema;
pub mod ops;
pub mod sgd;

use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::{Dispatch, DispatchDevice};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{DType, Device, Tensor};

use ops::batch_norm::FastBatchNorm;
use ops::conv2d::{ConvGeometry, FastConv};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the kernels off (or back on) for the whole process: [`conv2d()`] and [`batch_norm()`]
/// then call burn's modules. For comparisons: the same run with and without them.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether [`set_enabled`] left the kernels on (they are by default).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Makes the calling thread the first thread of rayon's global pool, which then holds as many
/// threads in all as rayon would start by default (`RAYON_NUM_THREADS`, else one per core).
/// A program that trains calls it first thing on the thread that will train.
///
/// The kernels and burn's flex operations split their work with rayon. From a thread outside
/// the pool each such operation hands its work to the pool and sleeps until it is done: two
/// thread switches per operation, hundreds per training step. From a thread of the pool the
/// same operations fork and join in place. Measured on 2 cores, a training step ran 3–20%
/// faster, most on the narrowest network (results/train-throughput-cpu.md). The training
/// thread stays the same thread, which matters: burn keeps BatchNorm's running statistics per
/// thread, so a step that moved between threads would change them.
///
/// Fails when the global pool was started already (rayon was used before this call).
pub fn join_thread_pool() -> Result<(), rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
}

/// `conv.forward(x)`, through this crate's kernels where they apply.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let weight = conv.weight.val();
    let geometry = match geometry(conv) {
        Some(geometry) if enabled() && on_flex_f32(&x) && weight.dtype() == DType::F32 => geometry,
        _ => return conv.forward(x),
    };
    let out = Tensor::<4>::from_dispatch(<Dispatch as FastConv>::fast_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        geometry,
    ));
    match &conv.bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            out + bias.val().reshape([1, channels, 1, 1])
        }
        None => out,
    }
}

/// `bn.forward(x)`, through this crate's kernels when it normalises with the batch's statistics
/// (a training device and a layer that is not frozen). The running statistics are updated as
/// burn's `BatchNorm` updates them.
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let training = x.device().is_autodiff() && bn.training.is_enabled();
    if !enabled() || !training || !on_flex_f32(&x) || bn.gamma.val().dtype() != DType::F32 {
        return bn.forward(x);
    }
    let (output, mean, variance) = <Dispatch as FastBatchNorm>::fast_batch_norm_train(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
    );
    let [mean, variance] = [mean, variance].map(Tensor::<1>::from_dispatch);
    let device = mean.device();
    let update = |running: Tensor<1>, batch: Tensor<1>| {
        running
            .to_device(&device)
            .mul_scalar(1.0 - bn.momentum)
            .add(batch.detach().mul_scalar(bn.momentum))
            .detach()
    };
    bn.running_mean
        .update(update(bn.running_mean.value_sync(), mean));
    bn.running_var
        .update(update(bn.running_var.value_sync(), variance));
    Tensor::from_dispatch(output)
}

/// The geometry of the convolutions the kernel covers: one group, explicit or no padding.
fn geometry(conv: &Conv2d) -> Option<ConvGeometry> {
    if conv.groups != 1 {
        return None;
    }
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => return None,
    };
    Some(ConvGeometry {
        stride: conv.stride,
        padding,
        dilation: conv.dilation,
    })
}

/// Whether `device` is the flex backend (the CPU), with or without autodiff.
pub fn on_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// Whether `x` is an `f32` tensor on the flex backend, with or without autodiff.
fn on_flex_f32(x: &Tensor<4>) -> bool {
    x.dtype() == DType::F32 && on_flex(&x.device())
}

/// A deterministic pseudo-random fill in `[-1, 1)` for the kernels' unit tests (xorshift).
#[cfg(test)]
fn test_values(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

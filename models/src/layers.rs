//! How the networks run their convolutions and batch norms, and how the key encoder takes its
//! momentum step.
//!
//! With the `training` feature (the trainer turns it on) they go through exemplar-kernels' fused
//! CPU kernels where those apply, and through burn's modules everywhere else. Without it (export,
//! whose graph capture for ONNX takes burn's modules anyway, and any inference-only user) they are
//! burn's modules, the same functions, and this crate then links neither the kernels nor burn's
//! autodiff (`cargo tree -p exemplar-export`; docs/design.md).

use burn::tensor::Device;

#[cfg(feature = "training")]
pub(crate) use exemplar_kernels::ema::momentum_update;
#[cfg(feature = "training")]
pub(crate) use exemplar_kernels::{batch_norm, conv2d};

#[cfg(not(feature = "training"))]
use burn::{
    nn::{BatchNorm, conv::Conv2d},
    tensor::Tensor,
};

/// `conv.forward(x)`.
#[cfg(not(feature = "training"))]
pub(crate) fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv.forward(x)
}

/// `bn.forward(x)`.
#[cfg(not(feature = "training"))]
pub(crate) fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    bn.forward(x)
}

/// `key · momentum + query · (1 − momentum)`, detached.
#[cfg(not(feature = "training"))]
pub(crate) fn momentum_update<const D: usize>(
    key: Tensor<D>,
    query: Tensor<D>,
    momentum: f64,
) -> Tensor<D> {
    (key.detach() * momentum + query * (1.0 - momentum)).detach()
}

/// Whether `device` trains on a GPU backend (autodiff on anything but the flex CPU backend).
/// Training needs the `training` feature, so without it this is always false.
pub(crate) fn trains_on_gpu(device: &Device) -> bool {
    #[cfg(feature = "training")]
    {
        device.is_autodiff() && !exemplar_kernels::on_flex(device)
    }
    #[cfg(not(feature = "training"))]
    {
        let _ = device;
        false
    }
}

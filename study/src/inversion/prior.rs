//! The two image parameterisations feature inversion optimises.
//!
//! - [`Generator`]: a Deep Image Prior (Ulyanov et al., 2018), as the paper uses. A small
//!   convolutional hourglass (two resolutions, one skip connection) maps a fixed noise tensor to
//!   an image; its weights, not the pixels, are optimised per image, so the image is whatever
//!   a convolutional generator finds easiest to draw that matches the features.
//! - [`Canvas`]: the pixels themselves (through a sigmoid, to stay in `[0, 1]`), optimised with
//!   a total-variation penalty (Mahendran & Vedaldi, 2015) as the prior.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::{leaky_relu, sigmoid};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Distribution, Tensor};
use exemplar_kernels::{batch_norm, conv2d};

/// Channels of the generator's noise input, of its full-resolution and half-resolution maps,
/// and of its skip connection (Deep Image Prior's "skip" network, two levels deep and narrower).
const NOISE: usize = 16;
const WIDE: usize = 32;
const DEEP: usize = 64;
const SKIP: usize = 4;

/// Deep Image Prior: `image = generator(noise)`, with `noise` fixed.
#[derive(Module, Debug)]
pub struct Generator {
    noise: Param<Tensor<4>>,
    in_conv: Conv2d,
    in_bn: BatchNorm,
    down: Conv2d,
    down_bn: BatchNorm,
    deep: Conv2d,
    deep_bn: BatchNorm,
    skip: Conv2d,
    skip_bn: BatchNorm,
    up: Conv2d,
    up_bn: BatchNorm,
    out: Conv2d,
}

fn conv(input: usize, output: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([input, output], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(device)
}

fn norm(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

impl Generator {
    /// A generator of `[1, 3, height, width]` images; the noise is drawn from the device's
    /// generator (seed it first for a repeatable inversion) as Deep Image Prior draws it,
    /// uniform in `[0, 0.1)`.
    pub fn new([height, width]: [usize; 2], device: &Device) -> Self {
        let noise = Tensor::<4>::random(
            [1, NOISE, height, width],
            Distribution::Uniform(0.0, 0.1),
            device,
        );
        Self {
            // The input is fixed: it is a parameter only so that the module carries it.
            noise: Param::from_tensor(noise).set_require_grad(false),
            in_conv: conv(NOISE, WIDE, 3, 1, device),
            in_bn: norm(WIDE, device),
            down: conv(WIDE, DEEP, 3, 2, device),
            down_bn: norm(DEEP, device),
            deep: conv(DEEP, DEEP, 3, 1, device),
            deep_bn: norm(DEEP, device),
            skip: conv(WIDE, SKIP, 1, 1, device),
            skip_bn: norm(SKIP, device),
            up: conv(DEEP + SKIP, WIDE, 3, 1, device),
            up_bn: norm(WIDE, device),
            out: conv(WIDE, 3, 1, 1, device),
        }
    }

    /// The image, `[1, 3, height, width]` in `[0, 1]`.
    pub fn image(&self) -> Tensor<4> {
        let act = |x| leaky_relu(x, 0.2);
        let x = self.noise.val();
        let [_, _, height, width] = x.dims();
        let full = act(batch_norm(&self.in_bn, conv2d(&self.in_conv, x)));
        let half = act(batch_norm(&self.down_bn, conv2d(&self.down, full.clone())));
        let half = act(batch_norm(&self.deep_bn, conv2d(&self.deep, half)));
        let upsampled = interpolate(
            half,
            InterpolateOptions::new(InterpolateMode::Bilinear).with_output_size([height, width]),
        );
        let skip = act(batch_norm(&self.skip_bn, conv2d(&self.skip, full)));
        let joined = Tensor::cat(vec![upsampled, skip], 1);
        let x = act(batch_norm(&self.up_bn, conv2d(&self.up, joined)));
        sigmoid(conv2d(&self.out, x))
    }
}

/// The pixels themselves, as logits: `image = sigmoid(logits)`.
#[derive(Module, Debug)]
pub struct Canvas {
    logits: Param<Tensor<4>>,
}

impl Canvas {
    /// A grey canvas with a little noise (drawn from the device's generator).
    pub fn new([height, width]: [usize; 2], device: &Device) -> Self {
        let logits = Tensor::<4>::random(
            [1, 3, height, width],
            Distribution::Normal(0.0, 0.1),
            device,
        );
        Self {
            logits: Param::from_tensor(logits),
        }
    }

    /// The image, `[1, 3, height, width]` in `[0, 1]`.
    pub fn image(&self) -> Tensor<4> {
        sigmoid(self.logits.val())
    }
}

/// Total variation with β = 2: the mean squared difference between neighbouring pixels,
/// horizontally and vertically.
pub fn total_variation(image: Tensor<4>) -> Tensor<1> {
    let [_, _, height, width] = image.dims();
    if height < 2 || width < 2 {
        return image.sum().mul_scalar(0.0);
    }
    let dx = image.clone().narrow(3, 1, width - 1) - image.clone().narrow(3, 0, width - 1);
    let dy = image.clone().narrow(2, 1, height - 1) - image.narrow(2, 0, height - 1);
    dx.powi_scalar(2).mean() + dy.powi_scalar(2).mean()
}

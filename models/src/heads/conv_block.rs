//! Convolution → BatchNorm → ReLU, the building block of the dense heads.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBnRelu {
    /// A `kernel × kernel` convolution with the given dilation, padded to keep the size.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        dilation: usize,
        device: &Device,
    ) -> Self {
        Self {
            conv: conv2d(in_channels, out_channels, kernel, dilation, false, device),
            bn: BatchNormConfig::new(out_channels).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(crate::layers::batch_norm(
            &self.bn,
            crate::layers::conv2d(&self.conv, x),
        ))
    }
}

/// A stride-1 convolution padded to keep the size, with Kaiming (fan-out) initialisation.
pub fn conv2d(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    dilation: usize,
    bias: bool,
    device: &Device,
) -> Conv2d {
    let pad = dilation * (kernel - 1) / 2;
    Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
        .with_dilation([dilation, dilation])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(bias)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
        .init(device)
}

//! A one-stage CenterNet-style detector: backbone stages → a small top-down feature pyramid →
//! one dense map of class heatmaps and box parameters at the pyramid's finest level.
//!
//! Only convolutions, BatchNorm, ReLU, bilinear resizing and additions: everything exports to
//! ONNX with burn-onnx. The output layout, the training targets and the decoding (peaks,
//! thresholds, NMS) live in `exemplar_inference::detection`.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::conv_block::{ConvBnRelu, conv2d};
use crate::{ResNet, ResNetConfig};

/// Channels besides the class heatmaps (x/y offset, log width/height).
pub const BOX_CHANNELS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    pub backbone: ResNetConfig,
    pub num_classes: usize,
    /// Channels of the pyramid and the head.
    pub channels: usize,
}

impl DetectorConfig {
    /// Input pixels per output cell (the stride of the backbone's stage 2).
    pub fn stride(&self) -> usize {
        self.backbone.stage_strides()[0]
    }

    pub fn init(&self, device: &Device) -> Detector {
        self.with_backbone(self.backbone.init(device), device)
    }

    /// A detector around an existing (e.g. pretrained) backbone.
    pub fn with_backbone(&self, backbone: ResNet, device: &Device) -> Detector {
        let d = self.channels;
        let [c3, c4, c5] = self.backbone.stage_channels();
        // CenterNet's initialisation of the output layers: small weights, so the first
        // predictions are the priors rather than noise amplified by the pyramid.
        let mut heatmap = output_conv(d, self.num_classes, device);
        // Start every heatmap at a probability of 0.01 (RetinaNet/CenterNet's prior), so the
        // first steps are not swamped by the loss of a million easy negatives.
        let prior = -(0.99f32 / 0.01).ln();
        heatmap.bias = Some(Param::from_tensor(Tensor::full(
            [self.num_classes],
            prior,
            device,
        )));
        Detector {
            backbone,
            lateral3: conv2d(c3, d, 1, 1, true, device),
            lateral4: conv2d(c4, d, 1, 1, true, device),
            lateral5: conv2d(c5, d, 1, 1, true, device),
            smooth: ConvBnRelu::new(d, d, 3, 1, device),
            head: ConvBnRelu::new(d, d, 3, 1, device),
            heatmap,
            boxes: output_conv(d, BOX_CHANNELS, device),
        }
    }
}

#[derive(Module, Debug)]
pub struct Detector {
    pub backbone: ResNet,
    pub lateral3: Conv2d,
    pub lateral4: Conv2d,
    pub lateral5: Conv2d,
    pub smooth: ConvBnRelu,
    pub head: ConvBnRelu,
    pub heatmap: Conv2d,
    pub boxes: Conv2d,
}

impl Detector {
    /// `[batch, num_classes + 4, h / stride, w / stride]`: heatmap logits, then x/y offset and
    /// log width/height.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let [c3, c4, c5] = self.backbone.forward_stages(images);
        let p5 = crate::layers::conv2d(&self.lateral5, c5);
        let p4 = crate::layers::conv2d(&self.lateral4, c4.clone()) + upsample_to(p5, &c4);
        let p3 = crate::layers::conv2d(&self.lateral3, c3.clone()) + upsample_to(p4, &c3);
        let x = self.head.forward(self.smooth.forward(p3));
        Tensor::cat(
            vec![
                crate::layers::conv2d(&self.heatmap, x.clone()),
                crate::layers::conv2d(&self.boxes, x),
            ],
            1,
        )
    }
}

/// A 1×1 output convolution with weights drawn from N(0, 0.01²) and zero bias.
fn output_conv(in_channels: usize, out_channels: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([in_channels, out_channels], [1, 1])
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        })
        .init(device)
}

/// Bilinear resize of `x` to the spatial size of `like`.
pub fn upsample_to(x: Tensor<4>, like: &Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = like.dims();
    super::resize::bilinear(x, [h, w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Depth, Stem};
    use burn::tensor::Distribution;

    #[test]
    fn output_map_has_classes_plus_four_channels_at_stage_two_stride() {
        let device = Device::flex();
        for stem in [Stem::Small, Stem::ImageNet] {
            let config = DetectorConfig {
                backbone: ResNetConfig::new(Depth::ResNet18)
                    .with_width(0.0625)
                    .with_stem(stem),
                num_classes: 3,
                channels: 8,
            };
            let net = config.init(&device);
            let x = Tensor::<4>::random([2, 3, 64, 48], Distribution::Normal(0.0, 1.0), &device);
            let s = config.stride();
            assert_eq!(net.forward(x).dims(), [2, 7, 64 / s, 48 / s]);
        }
    }
}

//! DeepLabv3's head (Chen et al. 2017): atrous spatial pyramid pooling on the last backbone stage
//! (a 1×1 branch, three dilated 3×3 branches, an image-pooling branch), a 1×1 projection, a 3×3
//! convolution, the classifier, and a bilinear upsampling of the logits to the input size.
//!
//! With the ImageNet stem the backbone's last stage is dilated (`dilate_last_stage`), so ASPP
//! runs at output stride 16 as in DeepLabv3; the small stem already gives a stride-8 last stage.
//! Dilation rates are a config value because they must follow the feature map size (DeepLab's
//! 6/12/18 assume a 33×33 map).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::conv_block::{ConvBnRelu, conv2d};
use super::resize::bilinear;
use crate::{ResNet, ResNetConfig};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmenterConfig {
    pub backbone: ResNetConfig,
    pub num_classes: usize,
    /// Channels of every ASPP branch (256 in DeepLabv3).
    pub channels: usize,
    /// Dilation rates of the three 3×3 branches.
    pub rates: [usize; 3],
}

impl SegmenterConfig {
    /// DeepLab's rates (6, 12, 18 for a 33-cell map) scaled to a `cells`-wide last stage.
    pub fn rates_for(cells: usize) -> [usize; 3] {
        let scale = |r: f32| ((r * cells as f32 / 33.0).round() as usize).max(1);
        let [a, b, c] = [scale(6.0), scale(12.0), scale(18.0)];
        [a, b.max(a + 1), c.max(b.max(a + 1) + 1)]
    }

    pub fn init(&self, device: &Device) -> Segmenter {
        self.with_backbone(self.backbone.init(device), device)
    }

    pub fn with_backbone(&self, backbone: ResNet, device: &Device) -> Segmenter {
        let [_, _, c5] = self.backbone.stage_channels();
        let d = self.channels;
        let [r1, r2, r3] = self.rates;
        Segmenter {
            backbone,
            aspp1: ConvBnRelu::new(c5, d, 1, 1, device),
            aspp2: ConvBnRelu::new(c5, d, 3, r1, device),
            aspp3: ConvBnRelu::new(c5, d, 3, r2, device),
            aspp4: ConvBnRelu::new(c5, d, 3, r3, device),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            pool_conv: ConvBnRelu::new(c5, d, 1, 1, device),
            project: ConvBnRelu::new(5 * d, d, 1, 1, device),
            refine: ConvBnRelu::new(d, d, 3, 1, device),
            classifier: conv2d(d, self.num_classes, 1, 1, true, device),
        }
    }
}

#[derive(Module, Debug)]
pub struct Segmenter {
    pub backbone: ResNet,
    pub aspp1: ConvBnRelu,
    pub aspp2: ConvBnRelu,
    pub aspp3: ConvBnRelu,
    pub aspp4: ConvBnRelu,
    pub pool: AdaptiveAvgPool2d,
    pub pool_conv: ConvBnRelu,
    pub project: ConvBnRelu,
    pub refine: ConvBnRelu,
    pub classifier: Conv2d,
}

impl Segmenter {
    /// Per-pixel class logits at the input size, `[batch, num_classes, h, w]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = images.dims();
        let c5 = self.backbone.forward_spatial(images);
        let [_, _, fh, fw] = c5.dims();
        let pooled = self.pool_conv.forward(self.pool.forward(c5.clone()));
        let pooled = bilinear(pooled, [fh, fw]);
        let branches = vec![
            self.aspp1.forward(c5.clone()),
            self.aspp2.forward(c5.clone()),
            self.aspp3.forward(c5.clone()),
            self.aspp4.forward(c5),
            pooled,
        ];
        let x = self.project.forward(Tensor::cat(branches, 1));
        let logits = crate::layers::conv2d(&self.classifier, self.refine.forward(x));
        bilinear(logits, [h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Depth, Stem};
    use burn::tensor::Distribution;

    #[test]
    fn logits_come_out_at_the_input_size() {
        let device = Device::flex();
        let config = SegmenterConfig {
            backbone: ResNetConfig::new(Depth::ResNet18)
                .with_width(0.0625)
                .with_stem(Stem::Small),
            num_classes: 4,
            channels: 8,
            rates: SegmenterConfig::rates_for(4),
        };
        let net = config.init(&device);
        let x = Tensor::<4>::random([2, 3, 32, 24], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(net.forward(x).dims(), [2, 4, 32, 24]);
    }

    #[test]
    fn rates_follow_the_map_size_and_stay_distinct() {
        assert_eq!(SegmenterConfig::rates_for(33), [6, 12, 18]);
        assert_eq!(SegmenterConfig::rates_for(8), [1, 3, 4]);
        assert_eq!(SegmenterConfig::rates_for(2), [1, 2, 3]);
    }
}

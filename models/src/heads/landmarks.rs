//! The paper's landmark regressor (MAFL protocol): a two-layer head on the last stage's *spatial*
//! features — a 1×1 convolution with BatchNorm and ReLU, then a fully connected layer from the
//! flattened map to `2 × points` coordinates. Pooling first would throw away the very
//! positions the head must report, which is why the map is flattened instead; the price is a
//! fixed input size.
//!
//! Outputs are relative to the input (`x / width`, `y / height`), see
//! `exemplar_inference::landmarks`.

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::conv_block::ConvBnRelu;
use crate::{ResNet, ResNetConfig};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandmarkRegressorConfig {
    pub backbone: ResNetConfig,
    pub points: usize,
    /// Channels of the 1×1 convolution.
    pub channels: usize,
    /// Square input side in pixels (the flattened map's size depends on it).
    pub image_size: usize,
}

impl LandmarkRegressorConfig {
    /// Cells per side of the last stage's map.
    pub fn cells(&self) -> usize {
        self.image_size.div_ceil(self.backbone.stage_strides()[2])
    }

    pub fn init(&self, device: &Device) -> LandmarkRegressor {
        self.with_backbone(self.backbone.init(device), device)
    }

    pub fn with_backbone(&self, backbone: ResNet, device: &Device) -> LandmarkRegressor {
        let [_, _, c5] = self.backbone.stage_channels();
        let cells = self.cells();
        // Small weights and a bias of 0.5: a fresh head predicts every point at the image
        // centre, so the error before training is that of the "mean face" guess rather than of
        // random projections.
        let mut fc = LinearConfig::new(self.channels * cells * cells, 2 * self.points)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 1e-3,
            })
            .init(device);
        fc.bias = Some(Param::from_tensor(Tensor::full(
            [2 * self.points],
            0.5,
            device,
        )));
        LandmarkRegressor {
            backbone,
            reduce: ConvBnRelu::new(c5, self.channels, 1, 1, device),
            fc,
        }
    }
}

#[derive(Module, Debug)]
pub struct LandmarkRegressor {
    pub backbone: ResNet,
    pub reduce: ConvBnRelu,
    pub fc: Linear,
}

impl LandmarkRegressor {
    /// `[batch, 2 × points]`: `x0, y0, x1, y1, …` relative to the input size.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.reduce.forward(self.backbone.forward_spatial(images));
        self.fc.forward(x.flatten(1, 3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Depth, Stem};

    #[test]
    fn predicts_two_coordinates_per_point_starting_at_the_centre() {
        let device = Device::flex();
        let config = LandmarkRegressorConfig {
            backbone: ResNetConfig::new(Depth::ResNet18)
                .with_width(0.0625)
                .with_stem(Stem::Small),
            points: 5,
            channels: 4,
            image_size: 32,
        };
        assert_eq!(config.cells(), 4);
        let net = config.init(&device);
        let x = Tensor::<4>::zeros([2, 3, 32, 32], &device);
        let out = net.forward(x);
        assert_eq!(out.dims(), [2, 10]);
        // Zero input, fresh BatchNorm in inference mode: only the bias speaks.
        let values: Vec<f32> = out.into_data().iter::<f32>().collect();
        assert!(values.iter().all(|v| (v - 0.5).abs() < 1e-5), "{values:?}");
    }
}

//! An encoder is a backbone plus a head: the unit MoCo duplicates into query and key encoders,
//! and the unit the supervised baseline trains with a classifier as its head.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::backbone::resnet::{ResNet, ResNetConfig};
use crate::heads::projection::{ProjectionHead, ProjectionHeadConfig, ProjectionKind};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    pub backbone: ResNetConfig,
    pub head: ProjectionKind,
    /// Output size of the head: the embedding size for contrastive methods, the number of
    /// classes for the supervised baseline.
    pub out_features: usize,
}

impl EncoderConfig {
    pub fn init(&self, device: &Device) -> Encoder {
        let head = ProjectionHeadConfig {
            kind: self.head,
            in_features: self.backbone.out_features(),
            out_features: self.out_features,
        };
        Encoder {
            backbone: self.backbone.init(device),
            head: head.init(device),
        }
    }
}

#[derive(Module, Debug)]
pub struct Encoder {
    pub backbone: ResNet,
    pub head: ProjectionHead,
}

impl Encoder {
    /// Head outputs, `[batch, out_features]` (not normalised).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.backbone.forward(images))
    }
}

/// Scales each row to unit L2 norm (as `F.normalize(x, dim=1)`, with its 1e-12 floor).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

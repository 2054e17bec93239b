//! A backbone with a linear classifier on its pooled features: the linear-evaluation model when
//! the backbone is frozen, full fine-tuning otherwise.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::{ResNet, ResNetConfig};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    pub backbone: ResNetConfig,
    pub num_classes: usize,
}

impl ClassifierConfig {
    pub fn init(&self, device: &Device) -> Classifier {
        self.with_backbone(self.backbone.init(device), device)
    }

    pub fn with_backbone(&self, backbone: ResNet, device: &Device) -> Classifier {
        Classifier {
            backbone,
            fc: LinearConfig::new(self.backbone.out_features(), self.num_classes).init(device),
        }
    }
}

/// torchvision's layout: `fc` after global average pooling.
#[derive(Module, Debug)]
pub struct Classifier {
    pub backbone: ResNet,
    pub fc: Linear,
}

impl Classifier {
    /// Class logits, `[batch, num_classes]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.fc.forward(self.backbone.forward(images))
    }
}

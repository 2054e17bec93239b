//! Projection heads that map pooled backbone features to the contrastive embedding space.
//!
//! MoCo v2 (and Exemplar-v2) use a 2-layer MLP (`fc → ReLU → fc`, 2048 → 2048 → 128 on a
//! ResNet-50); MoCo v1 (and Exemplar-v1) a single linear layer. The hidden layer keeps the
//! backbone's width, as in the MoCo code (`dim_mlp = encoder_q.fc.weight.shape[1]`).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Which head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectionKind {
    /// One linear layer (MoCo v1).
    Linear,
    /// Linear, ReLU, linear (MoCo v2).
    Mlp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectionHeadConfig {
    pub kind: ProjectionKind,
    pub in_features: usize,
    /// Size of the embedding (128 in MoCo).
    pub out_features: usize,
}

impl ProjectionHeadConfig {
    pub fn init(&self, device: &Device) -> ProjectionHead {
        let (hidden, fc) = match self.kind {
            ProjectionKind::Linear => (
                None,
                LinearConfig::new(self.in_features, self.out_features).init(device),
            ),
            ProjectionKind::Mlp => (
                Some(LinearConfig::new(self.in_features, self.in_features).init(device)),
                LinearConfig::new(self.in_features, self.out_features).init(device),
            ),
        };
        ProjectionHead { hidden, fc }
    }
}

/// The head; `hidden` is present for the MLP variant.
#[derive(Module, Debug)]
pub struct ProjectionHead {
    pub hidden: Option<Linear>,
    pub fc: Linear,
}

impl ProjectionHead {
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        let x = match &self.hidden {
            Some(hidden) => relu(hidden.forward(features)),
            None => features,
        };
        self.fc.forward(x)
    }
}

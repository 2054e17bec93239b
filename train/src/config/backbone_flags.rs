//! The flags that say which network trains, on how large an input and for how long: the same
//! six for `train pretrain` and `train finetune`, flattened into both (only their defaults
//! differ, and each configuration keeps its own).

use clap::Args;
use exemplar_models::{Depth, Stem};

use super::layers::flags_given;

#[derive(Debug, Clone, Default, Args)]
pub struct BackboneFlags {
    /// Backbone: resnet18, resnet34 or resnet50 [default: resnet50 to pretrain, resnet18 to
    /// fine-tune from random or PyTorch weights]
    #[arg(long)]
    pub arch: Option<Depth>,
    /// Channel width multiplier [default: 1 to pretrain, 0.25 to fine-tune from random init]
    #[arg(long)]
    pub width: Option<f32>,
    /// Network stem: imagenet (7×7/2 + max-pool) or small (3×3/1) [default: imagenet to
    /// pretrain, small to fine-tune]
    #[arg(long)]
    pub stem: Option<Stem>,
    /// Input size in pixels [default: 224 to pretrain, 64 to fine-tune]
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Training epochs [default: 200 to pretrain, 8 to fine-tune]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size [default: 256 to pretrain, 32 to fine-tune]
    #[arg(long)]
    pub batch_size: Option<usize>,
}

impl BackboneFlags {
    /// The names of the flags given, for refusing them on `--resume`.
    pub fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        flags_given!(self => given;
            arch => "--arch", width => "--width", stem => "--stem",
            image_size => "--image-size", epochs => "--epochs", batch_size => "--batch-size",
        );
        given
    }
}

/// Copies the given flags of a [`BackboneFlags`] into the same fields of a configuration.
macro_rules! set_backbone {
    ($flags:expr => $config:expr) => {
        $crate::config::layers::set_given!($flags => $config;
            arch, width, stem, image_size, epochs, batch_size);
    };
}

pub(crate) use set_backbone;

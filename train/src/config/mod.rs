//! The pretraining configuration: defaults per method (the MoCo v2 recipe), a TOML file, and
//! command-line flags, resolved in that order (`layers`, shared with fine-tuning). The resolved configuration is saved with the run
//! and is what `--resume` continues with.

use std::path::Path;

use clap::ValueEnum;
use exemplar_models::{Depth, ProjectionKind, Stem};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use exemplar_data::augment::{AugmentPreset, Augmentation};
use exemplar_data::{DataSource, SyntheticOptions};

mod backbone_flags;
mod flags;
pub mod layers;

pub use self::backbone_flags::BackboneFlags;
pub(crate) use self::backbone_flags::set_backbone;
pub use self::flags::PretrainFlags;
pub use self::layers::resolve;

/// The pretraining method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// MoCo v2 whose queue negatives of the query's own class are masked (Zhao et al. 2021).
    ExemplarV2,
    /// The same on MoCo v1: linear head, τ = 0.07, v1 augmentation.
    ExemplarV1,
    /// MoCo v2 (Chen et al. 2020): MLP head, τ = 0.2, aug+.
    MocoV2,
    /// MoCo v1 (He et al. 2020).
    MocoV1,
    /// Cross-entropy with a linear classifier: the supervised baseline.
    Supervised,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::ExemplarV2 => "exemplar-v2",
            Method::ExemplarV1 => "exemplar-v1",
            Method::MocoV2 => "moco-v2",
            Method::MocoV1 => "moco-v1",
            Method::Supervised => "supervised",
        }
    }

    pub fn is_contrastive(self) -> bool {
        self != Method::Supervised
    }

    /// Exemplar removes same-class queue entries from the negatives; MoCo does not.
    pub fn masks_same_class(self) -> bool {
        matches!(self, Method::ExemplarV1 | Method::ExemplarV2)
    }

    /// Whether the method needs class labels.
    pub fn needs_labels(self) -> bool {
        matches!(
            self,
            Method::ExemplarV1 | Method::ExemplarV2 | Method::Supervised
        )
    }

    fn is_v1(self) -> bool {
        matches!(self, Method::ExemplarV1 | Method::MocoV1)
    }

    pub fn head(self) -> ProjectionKind {
        if self.is_v1() || self == Method::Supervised {
            ProjectionKind::Linear
        } else {
            ProjectionKind::Mlp
        }
    }

    fn default_temperature(self) -> f64 {
        if self.is_v1() { 0.07 } else { 0.2 }
    }

    pub fn default_augment(self) -> AugmentPreset {
        match self {
            Method::Supervised => AugmentPreset::Supervised,
            m if m.is_v1() => AugmentPreset::V1,
            _ => AugmentPreset::AugPlus,
        }
    }

    /// Learning rate at batch size 256: MoCo's 0.03, and the standard 0.1 for cross-entropy.
    fn default_base_lr(self) -> f64 {
        if self == Method::Supervised {
            0.1
        } else {
            0.03
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Half-period cosine from the initial rate to zero (MoCo v2's `--cos`).
    Cosine,
    Constant,
}

pub use exemplar_data::BadImagePolicy;
pub use exemplar_inference::Normalization;

/// Everything a pretraining run depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    pub method: Method,
    pub arch: Depth,
    /// Channel width multiplier of the ResNet.
    pub width: f32,
    pub stem: Stem,
    /// Side of the square network input, in pixels.
    pub image_size: usize,
    /// Size of the contrastive embedding (128 in MoCo).
    pub embed_dim: usize,
    /// Number of queued keys K (65536 in MoCo on ImageNet).
    pub queue_size: usize,
    /// Momentum m of the key encoder's update.
    pub key_momentum: f64,
    /// Softmax temperature τ.
    pub temperature: f64,
    pub epochs: usize,
    /// Stop after this many steps in total (for smoke tests and benchmarks); the schedule still
    /// spans `epochs`.
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    /// Learning rate at batch size 256; the rate used is scaled linearly with `batch_size`.
    pub base_lr: f64,
    pub sgd_momentum: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    /// Number of groups the key batch is split into for BatchNorm (1 = no split). MoCo shuffles
    /// keys across GPUs so BatchNorm statistics cannot leak which key is the positive; on one
    /// device the equivalent is to normalise shuffled sub-batches separately.
    pub bn_splits: usize,
    pub seed: u64,
    pub data: DataSource,
    /// Train on this many images of the training split, drawn once with a fixed seed (all when
    /// absent).
    /// Studies use it to fix the data budget on large datasets.
    #[serde(default)]
    pub train_subset: Option<usize>,
    /// Train only on the images of the first this many classes (labels below it), before
    /// `train_subset` draws from them: the base classes of a novel-class few-shot evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_classes: Option<usize>,
    pub synthetic: SyntheticOptions,
    pub augment: Augmentation,
    pub normalization: Normalization,
    pub on_bad_image: BadImagePolicy,
    /// Write a checkpoint every this many steps (and always at the end).
    pub checkpoint_every: usize,
    /// How many checkpoints to keep.
    pub keep_checkpoints: usize,
    /// Run the kNN monitor every this many steps (0 = only at the end).
    pub knn_every: usize,
    pub knn_k: usize,
    pub knn_temperature: f32,
    /// At most this many training images form the kNN memory bank (0 = no kNN monitor).
    pub knn_bank_size: usize,
    /// Data-loading threads.
    pub workers: usize,
    /// `cpu`, `wgpu`, `vulkan` or `cuda:N`.
    pub device: String,
    /// Print a log line every this many steps when not on a terminal.
    pub log_every: usize,
}

impl PretrainConfig {
    /// How the loader builds this configuration's batches: two augmented views per image for
    /// the contrastive methods, one for the supervised baseline.
    pub fn batch_plan(&self) -> exemplar_data::loader::BatchPlan {
        exemplar_data::loader::BatchPlan {
            batch_size: self.batch_size,
            image_size: self.image_size,
            views: if self.method.is_contrastive() { 2 } else { 1 },
            augment: self.augment,
            normalization: self.normalization,
            seed: self.seed,
            on_bad_image: self.on_bad_image,
        }
    }

    /// The MoCo v2 ImageNet recipe (`main_moco.py --mlp --moco-t 0.2 --aug-plus --cos`),
    /// adapted to `method`: ResNet-50, 224 px, batch 256, lr 0.03, K = 65536, m = 0.999, 200
    /// epochs. `configs/cpu-quick.toml` scales it down for the built-in data on a CPU.
    pub fn defaults(method: Method) -> Self {
        Self {
            method,
            arch: Depth::ResNet50,
            width: 1.0,
            stem: Stem::ImageNet,
            image_size: 224,
            embed_dim: 128,
            queue_size: 65_536,
            key_momentum: 0.999,
            temperature: method.default_temperature(),
            epochs: 200,
            max_steps: None,
            batch_size: 256,
            base_lr: method.default_base_lr(),
            sgd_momentum: 0.9,
            weight_decay: 1e-4,
            schedule: Schedule::Cosine,
            bn_splits: 1,
            seed: 0,
            data: DataSource::Synthetic,
            train_subset: None,
            base_classes: None,
            synthetic: SyntheticOptions {
                train_size: 5000,
                val_size: 1000,
                seed: 0,
                identities: 10,
            },
            augment: method.default_augment().pipeline(),
            normalization: Normalization::default(),
            on_bad_image: BadImagePolicy::Skip,
            checkpoint_every: 100,
            keep_checkpoints: 2,
            knn_every: 0,
            knn_k: 200,
            knn_temperature: 0.1,
            knn_bank_size: 10_000,
            workers: default_workers(),
            device: "cpu".to_string(),
            log_every: 20,
        }
    }

    /// The learning rate actually used: `base_lr · batch_size / 256`.
    pub fn lr(&self) -> f64 {
        self.base_lr * self.batch_size as f64 / 256.0
    }

    /// Checks values that would otherwise fail deep inside training.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError::Invalid(msg));
        if self.base_classes == Some(0) {
            return fail("base_classes must be at least 1".into());
        }
        if self.batch_size < 2 {
            return fail(format!(
                "batch_size must be at least 2 (got {})",
                self.batch_size
            ));
        }
        if self.image_size < 8 {
            return fail(format!(
                "image_size must be at least 8 (got {})",
                self.image_size
            ));
        }
        if !(self.width > 0.0 && self.width <= 8.0) {
            return fail(format!("width must be in (0, 8] (got {})", self.width));
        }
        if self.epochs == 0 {
            return fail("epochs must be at least 1".into());
        }
        if self.temperature <= 0.0 {
            return fail(format!(
                "temperature must be positive (got {})",
                self.temperature
            ));
        }
        if !(0.0..=1.0).contains(&self.key_momentum) {
            return fail(format!(
                "key_momentum must be in [0, 1] (got {})",
                self.key_momentum
            ));
        }
        if self.method.is_contrastive() && self.queue_size == 0 {
            return fail("queue_size must be at least 1".into());
        }
        if self.bn_splits == 0 || !self.batch_size.is_multiple_of(self.bn_splits) {
            return fail(format!(
                "bn_splits ({}) must divide batch_size ({})",
                self.bn_splits, self.batch_size
            ));
        }
        if self.batch_size / self.bn_splits < 2 {
            return fail("each BatchNorm split needs at least 2 images".into());
        }
        if self.checkpoint_every == 0 {
            return fail("checkpoint_every must be at least 1".into());
        }
        if self.workers == 0 {
            return fail("workers must be at least 1".into());
        }
        if let Some(scale) = self.augment.crop_scale
            && !(0.0 < scale[0] && scale[0] <= scale[1] && scale[1] <= 1.0)
        {
            return fail(format!(
                "augment.crop_scale must satisfy 0 < min <= max <= 1 (got {scale:?})"
            ));
        }
        Ok(())
    }

    /// The configuration as TOML (what is saved in the run directory).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configuration serialises to TOML")
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// One loader thread per core, at least two.
fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
}

/// Reads a configuration saved with a run.
pub fn load_saved(path: &Path) -> Result<PretrainConfig, ConfigError> {
    layers::read_saved(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_defaults_follow_moco() {
        let v2 = PretrainConfig::defaults(Method::ExemplarV2);
        assert_eq!(
            (v2.queue_size, v2.key_momentum, v2.batch_size),
            (65_536, 0.999, 256)
        );
        assert!((v2.lr() - 0.03).abs() < 1e-12);
        assert_eq!(
            (v2.temperature, v2.method.head()),
            (0.2, ProjectionKind::Mlp)
        );
        assert_eq!(v2.augment, AugmentPreset::AugPlus.pipeline());
        let v1 = PretrainConfig::defaults(Method::MocoV1);
        assert_eq!(
            (v1.temperature, v1.method.head()),
            (0.07, ProjectionKind::Linear)
        );
        assert!(Method::ExemplarV1.masks_same_class() && !Method::MocoV2.masks_same_class());
        let mut c = PretrainConfig::defaults(Method::MocoV2);
        c.batch_size = 512;
        assert!((c.lr() - 0.06).abs() < 1e-12);
    }

    #[test]
    fn file_then_flags_override_defaults_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "method = \"moco-v1\"\nbatch_size = 32\nepochs = 3\n[synthetic]\ntrain_size = 100\n",
        )
        .unwrap();
        let flags = PretrainFlags {
            backbone: BackboneFlags {
                epochs: Some(5),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = resolve(Some(&path), &flags).unwrap();
        assert_eq!(config.method, Method::MocoV1);
        assert_eq!(config.temperature, 0.07);
        assert_eq!((config.batch_size, config.epochs), (32, 5));
        assert_eq!(config.synthetic.train_size, 100);
        assert_eq!(config.synthetic.val_size, 1000);
        let saved = dir.path().join("saved.toml");
        std::fs::write(&saved, config.to_toml()).unwrap();
        assert_eq!(load_saved(&saved).unwrap(), config);
    }

    #[test]
    fn typos_and_bad_values_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "batch_sise = 32\n").unwrap();
        let err = resolve(Some(&path), &PretrainFlags::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_sise"), "{err}");
        std::fs::write(&path, "method = \"simclr\"\n").unwrap();
        let err = resolve(Some(&path), &PretrainFlags::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("method"), "{err}");
        let flags = PretrainFlags {
            backbone: BackboneFlags {
                batch_size: Some(10),
                ..Default::default()
            },
            bn_splits: Some(3),
            ..Default::default()
        };
        let err = resolve(None, &flags).unwrap_err().to_string();
        assert!(err.contains("bn_splits"), "{err}");
        let err = resolve(
            Some(&dir.path().join("missing.toml")),
            &PretrainFlags::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing.toml"), "{err}");
    }
}

//! The command-line flags of `train pretrain`.

use clap::Args;

use super::layers::{flags_given, set_given};
use super::{BackboneFlags, BadImagePolicy, Method, PretrainConfig, Schedule, set_backbone};
use exemplar_data::DataSource;
use exemplar_data::augment::AugmentPreset;

/// Command-line flags of `train pretrain`. Each one, when given, overrides the config file and
/// the method's defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct PretrainFlags {
    /// Pretraining method [default: exemplar-v2]
    #[arg(long, value_enum)]
    pub method: Option<Method>,
    #[command(flatten)]
    pub backbone: BackboneFlags,
    /// Contrastive embedding size [default: 128]
    #[arg(long)]
    pub embed_dim: Option<usize>,
    /// Queue length K [default: 65536]
    #[arg(long)]
    pub queue_size: Option<usize>,
    /// Key encoder momentum m [default: 0.999]
    #[arg(long)]
    pub key_momentum: Option<f64>,
    /// Temperature τ [default: 0.2 (v2), 0.07 (v1)]
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Stop after this many steps (the schedule still spans all epochs)
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Learning rate at batch size 256, scaled linearly [default: 0.03 (contrastive), 0.1 (supervised)]
    #[arg(long = "lr")]
    pub base_lr: Option<f64>,
    /// SGD momentum [default: 0.9]
    #[arg(long)]
    pub sgd_momentum: Option<f64>,
    /// Weight decay [default: 1e-4]
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule [default: cosine]
    #[arg(long, value_enum)]
    pub schedule: Option<Schedule>,
    /// Split the key batch into this many BatchNorm groups (shuffle-BN on one device) [default: 1]
    #[arg(long)]
    pub bn_splits: Option<usize>,
    /// Seed for initialisation, sampling and augmentation [default: 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Data: synthetic, synthetic-faces, image-folder:PATH or idx:PATH [default: synthetic]
    #[arg(long)]
    pub data: Option<DataSource>,
    /// Train on this many images of the training split, a fixed random subset [default: all]
    #[arg(long)]
    pub train_subset: Option<usize>,
    /// Train only on the images of the first N classes (labels below N): the base classes of a
    /// novel-class few-shot evaluation (`train eval few-shot --classes-from N`) [default: all]
    #[arg(long, value_name = "N")]
    pub base_classes: Option<usize>,
    /// Training images of the built-in dataset [default: 5000]
    #[arg(long)]
    pub synthetic_train_size: Option<usize>,
    /// Validation images of the built-in dataset [default: 1000]
    #[arg(long)]
    pub synthetic_val_size: Option<usize>,
    /// Augmentation preset: aug-plus, v1, supervised, or an ablation step (flip, crop, color, grayscale)
    #[arg(long)]
    pub augment: Option<AugmentPreset>,
    /// Undecodable images: skip (report and use the next one) or fail [default: skip]
    #[arg(long, value_enum)]
    pub on_bad_image: Option<BadImagePolicy>,
    /// Checkpoint every N steps [default: 100]
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Checkpoints to keep [default: 2]
    #[arg(long)]
    pub keep_checkpoints: Option<usize>,
    /// kNN monitor every N steps, 0 = at the end only [default: 0]
    #[arg(long)]
    pub knn_every: Option<usize>,
    /// Neighbours of the kNN monitor [default: 200]
    #[arg(long)]
    pub knn_k: Option<usize>,
    /// Temperature of the kNN monitor's weighted vote [default: 0.1]
    #[arg(long)]
    pub knn_temperature: Option<f32>,
    /// Largest kNN memory bank, in training images; 0 turns the monitor off [default: 10000]
    #[arg(long)]
    pub knn_bank_size: Option<usize>,
    /// Data-loading threads [default: number of cores]
    #[arg(long)]
    pub workers: Option<usize>,
    /// Compute device: cpu, wgpu, vulkan or cuda:N [default: cpu]
    #[arg(long)]
    pub device: Option<String>,
    /// Log line interval in steps when not on a terminal [default: 20]
    #[arg(long)]
    pub log_every: Option<usize>,
}

impl PretrainFlags {
    /// Names of the flags that change what is trained (as opposed to how it runs), for refusing
    /// them on `--resume`.
    pub fn training_flags_given(&self) -> Vec<&'static str> {
        let mut given = self.backbone.given();
        flags_given!(self => given;
            method => "--method", embed_dim => "--embed-dim", queue_size => "--queue-size",
            key_momentum => "--key-momentum", temperature => "--temperature",
            base_lr => "--lr", sgd_momentum => "--sgd-momentum",
            weight_decay => "--weight-decay", schedule => "--schedule", bn_splits => "--bn-splits",
            seed => "--seed", data => "--data", train_subset => "--train-subset",
            base_classes => "--base-classes",
            synthetic_train_size => "--synthetic-train-size",
            synthetic_val_size => "--synthetic-val-size", augment => "--augment",
        );
        given
    }

    /// Applies the flags that may change on `--resume` (how the run executes, not what it trains).
    pub fn apply_runtime(&self, config: &mut PretrainConfig) {
        set_given!(self => config;
            on_bad_image,
            checkpoint_every,
            keep_checkpoints,
            knn_every,
            knn_k,
            knn_temperature,
            knn_bank_size,
            workers,
            device,
            log_every
        );
        if let Some(v) = self.max_steps {
            config.max_steps = Some(v);
        }
    }

    pub(super) fn apply(&self, config: &mut PretrainConfig) {
        if let Some(v) = self.train_subset {
            config.train_subset = Some(v);
        }
        if let Some(v) = self.base_classes {
            config.base_classes = Some(v);
        }
        set_backbone!(self.backbone => config);
        set_given!(self => config;
            embed_dim,
            queue_size,
            key_momentum,
            temperature,
            base_lr,
            sgd_momentum,
            weight_decay,
            schedule,
            bn_splits,
            seed,
            data
        );
        if let Some(v) = self.synthetic_train_size {
            config.synthetic.train_size = v;
        }
        if let Some(v) = self.synthetic_val_size {
            config.synthetic.val_size = v;
        }
        if let Some(preset) = self.augment {
            config.augment = preset.pipeline();
        }
        self.apply_runtime(config);
    }
}

//! The fine-tuning configuration: task, backbone initialisation, data and optimisation, resolved
//! as pretraining's is (task defaults ← `--config` file ← flags, `crate::config::layers`). The
//! resolved configuration is saved as `RUN/config.toml`; `--resume` and `train eval` read it.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use exemplar_models::{Depth, Stem};
use serde::{Deserialize, Serialize};

pub use super::kind::TaskKind;

use crate::config::layers::{flags_given, overlay, read_saved, read_table, set_given, value};
use crate::config::{BackboneFlags, BadImagePolicy, ConfigError, Normalization, set_backbone};
use exemplar_data::{DataSource, SyntheticOptions};

/// Where the backbone's initial weights come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Init {
    /// A `train pretrain` run directory (its `backbone.bpk` and `backbone.json`).
    Run(PathBuf),
    /// A PyTorch `.pth`/`.pt`/`.tar` or `.safetensors` file with torchvision ResNet keys
    /// (MoCo's `module.encoder_q.` prefix is stripped).
    PyTorch(PathBuf),
    /// Random initialisation (the lower bound every pretraining must beat).
    Random,
}

impl FromStr for Init {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "random" {
            return Ok(Init::Random);
        }
        match s.split_once(':') {
            Some(("run", path)) if !path.is_empty() => Ok(Init::Run(path.into())),
            Some(("pytorch", path)) if !path.is_empty() => Ok(Init::PyTorch(path.into())),
            _ => {
                let path = Path::new(s);
                let weights = ["pth", "pt", "tar", "safetensors"];
                if path.is_dir() {
                    Ok(Init::Run(path.into()))
                } else if path
                    .extension()
                    .is_some_and(|e| weights.iter().any(|w| e == *w))
                {
                    Ok(Init::PyTorch(path.into()))
                } else {
                    Err(format!(
                        "unknown initialisation '{s}' (expected 'random', a pretraining run directory, run:DIR, pytorch:FILE or a .pth/.safetensors file)"
                    ))
                }
            }
        }
    }
}

impl TryFrom<String> for Init {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Init> for String {
    fn from(init: Init) -> String {
        init.to_string()
    }
}

impl std::fmt::Display for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Init::Run(p) => write!(f, "run:{}", p.display()),
            Init::PyTorch(p) => write!(f, "pytorch:{}", p.display()),
            Init::Random => f.write_str("random"),
        }
    }
}

/// Everything a fine-tuning run depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    pub task: TaskKind,
    pub init: Init,
    /// Backbone architecture. Taken from the card when `init` is a pretraining run.
    pub arch: Depth,
    pub width: f32,
    pub stem: Stem,
    pub data: DataSource,
    pub synthetic: SyntheticOptions,
    /// Side of the square network input.
    pub image_size: usize,
    /// Taken from the card when `init` is a pretraining run.
    pub normalization: Normalization,
    /// Channels of the task head.
    pub head_channels: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate of the head (SGD, linear warm-up then cosine decay).
    pub lr: f64,
    /// The backbone's learning rate as a fraction of `lr`: 1 trains all layers alike, 0
    /// freezes the backbone (BatchNorm included).
    pub backbone_lr_scale: f64,
    /// Keep the backbone's BatchNorm layers fixed (running statistics and affine parameters),
    /// as detection fine-tuning usually does with small batches.
    pub freeze_bn: bool,
    pub momentum: f64,
    pub weight_decay: f64,
    pub seed: u64,
    pub workers: usize,
    pub device: String,
    pub checkpoint_every: usize,
    pub keep_checkpoints: usize,
    pub log_every: usize,
    pub on_bad_image: BadImagePolicy,
    /// Stop this invocation after this many steps (checkpointed; continue with `--resume`).
    /// Not saved: a resumed run goes to the end unless told otherwise again.
    #[serde(skip)]
    pub max_steps: Option<usize>,
}

impl FinetuneConfig {
    /// Defaults sized for the built-in data on a CPU: a ResNet-18 at a quarter width with the
    /// small stem, 64 px inputs, 8 epochs of 2000 images.
    pub fn defaults(task: TaskKind) -> Self {
        Self {
            task,
            init: Init::Random,
            arch: Depth::ResNet18,
            width: 0.25,
            stem: Stem::Small,
            data: task.default_data(),
            synthetic: SyntheticOptions {
                train_size: 2000,
                val_size: 500,
                // Not the pretraining seed: transfer is measured on images pretraining never saw.
                seed: 1,
                identities: 100,
            },
            image_size: 64,
            normalization: Normalization::default(),
            head_channels: 32,
            epochs: 8,
            batch_size: 32,
            lr: 0.02,
            backbone_lr_scale: 1.0,
            freeze_bn: false,
            momentum: 0.9,
            weight_decay: 1e-4,
            seed: 0,
            workers: 2,
            device: "cpu".into(),
            checkpoint_every: 200,
            keep_checkpoints: 2,
            log_every: 20,
            on_bad_image: BadImagePolicy::Skip,
            max_steps: None,
        }
    }

    /// Checks values that would otherwise fail deep inside training.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("epochs", self.epochs),
            ("batch-size", self.batch_size),
            ("image-size", self.image_size),
            ("head-channels", self.head_channels),
            ("checkpoint-every", self.checkpoint_every),
            ("log-every", self.log_every),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("--{name} must be at least 1"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err("--lr must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.backbone_lr_scale) {
            return Err("--backbone-lr-scale must lie in [0, 1] (0 freezes the backbone)".into());
        }
        if self.width <= 0.0 || !self.width.is_finite() {
            return Err("--width must be positive".into());
        }
        if self.task == TaskKind::Detection {
            let stride = exemplar_models::ResNetConfig::new(self.arch)
                .with_stem(self.stem)
                .stage_strides()[0];
            if !self.image_size.is_multiple_of(stride) {
                return Err(format!(
                    "--image-size {} must be a multiple of the detector's stride {stride}",
                    self.image_size
                ));
            }
        }
        Ok(())
    }

    /// The backbone the task's model is built on. Segmentation with the ImageNet stem dilates
    /// the last stage, so DeepLabv3's ASPP sees output stride 16 as in the paper, not 32; the
    /// small stem's last stage is already at stride 8.
    pub fn backbone_config(&self) -> exemplar_models::ResNetConfig {
        exemplar_models::ResNetConfig::new(self.arch)
            .with_width(self.width)
            .with_stem(self.stem)
            .with_dilated_last_stage(
                self.task == TaskKind::Segmentation && self.stem == exemplar_models::Stem::ImageNet,
            )
    }

    /// Reads a saved `config.toml`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        read_saved(path)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("the config serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_parses_its_forms() {
        assert_eq!("random".parse::<Init>().unwrap(), Init::Random);
        assert_eq!(
            "run:runs/a".parse::<Init>().unwrap(),
            Init::Run("runs/a".into())
        );
        assert_eq!(
            "moco_v2.pth".parse::<Init>().unwrap(),
            Init::PyTorch("moco_v2.pth".into())
        );
        let err = "imagenet".parse::<Init>().unwrap_err();
        assert!(err.contains("pytorch:FILE"), "{err}");
    }

    #[test]
    fn config_round_trips_through_toml() {
        let mut config = FinetuneConfig::defaults(TaskKind::Landmarks);
        config.init = Init::Run("runs/x".into());
        let back: FinetuneConfig = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(back, config);
        assert!(config.validate().is_ok());
        config.image_size = 31;
        config.task = TaskKind::Detection;
        assert!(config.validate().unwrap_err().contains("stride 2"));
    }
}

/// Command-line settings of `train finetune`; each overrides the task's default.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct FinetuneFlags {
    /// The downstream task
    #[arg(long, value_enum)]
    pub task: Option<TaskKind>,
    /// Initial backbone: a pretraining run directory (or run:DIR), a PyTorch .pth/.safetensors
    /// file with torchvision ResNet keys (or pytorch:FILE), or random [default: random]
    #[arg(long)]
    pub init: Option<Init>,
    /// Data: synthetic, synthetic-faces, voc:PATH, coco:PATH, cityscapes:PATH, celeba:PATH,
    /// pts:PATH, image-folder:PATH or idx:PATH [default: the built-in data of the task]
    #[arg(long)]
    pub data: Option<DataSource>,
    #[command(flatten)]
    pub backbone: BackboneFlags,
    /// Channels of the task head [default: 32]
    #[arg(long)]
    pub head_channels: Option<usize>,
    /// Peak learning rate (warm-up, then cosine) [default: 0.02]
    #[arg(long)]
    pub lr: Option<f64>,
    /// Backbone learning rate as a fraction of --lr; 0 freezes the backbone [default: 1]
    #[arg(long)]
    pub backbone_lr_scale: Option<f64>,
    /// Freeze the backbone's BatchNorm layers (statistics and affine parameters)
    #[arg(long)]
    pub freeze_bn: bool,
    /// SGD momentum [default: 0.9]
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Weight decay [default: 1e-4]
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Seed of sample order and augmentation [default: 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Images in the built-in training split [default: 2000]
    #[arg(long)]
    pub synthetic_train_size: Option<usize>,
    /// Images in the built-in validation split [default: 500]
    #[arg(long)]
    pub synthetic_val_size: Option<usize>,
    /// Data-loading threads [default: 2]
    #[arg(long)]
    pub workers: Option<usize>,
    /// Compute device: cpu, wgpu, vulkan or cuda:N [default: cpu]
    #[arg(long)]
    pub device: Option<String>,
    /// Write a checkpoint every this many steps [default: 200]
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Checkpoints to keep [default: 2]
    #[arg(long)]
    pub keep_checkpoints: Option<usize>,
    /// Log line every this many steps [default: 20]
    #[arg(long)]
    pub log_every: Option<usize>,
    /// What to do with an unreadable image: skip (report and use the next) or fail [default: skip]
    #[arg(long, value_enum)]
    pub on_bad_image: Option<BadImagePolicy>,
    /// Stop after this many steps in total (a checkpoint is written; continue with --resume)
    #[arg(long)]
    pub max_steps: Option<usize>,
}

impl FinetuneFlags {
    /// The task's defaults ← the config `file` ← the given flags, validated.
    pub fn resolve(&self, file: Option<&Path>) -> Result<FinetuneConfig, ConfigError> {
        let table = file
            .map(|path| read_table(path).map(|t| (path, t)))
            .transpose()?;
        // The task picks the defaults, so it is settled first: flag, then file.
        let from_file = match &table {
            Some((path, table)) => value::<TaskKind>(path, table, "task")?,
            None => None,
        };
        let task = self.task.or(from_file).ok_or_else(|| {
            ConfigError::Invalid("--task is required (or `task` in the --config file)".into())
        })?;
        let mut config = FinetuneConfig::defaults(task);
        if let Some((path, mut table)) = table {
            table.insert("task".into(), toml::Value::String(task.name().into()));
            config = overlay(&config, path, table)?;
        }
        if let Some(init) = &self.init {
            config.init = init.clone();
        }
        if matches!(config.init, Init::Run(_)) {
            let given: Vec<&str> = [
                ("--arch", self.backbone.arch.is_some()),
                ("--width", self.backbone.width.is_some()),
                ("--stem", self.backbone.stem.is_some()),
            ]
            .iter()
            .filter(|(_, g)| *g)
            .map(|(n, _)| *n)
            .collect();
            if !given.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "{} conflict with --init {}: the pretraining run's card fixes the architecture",
                    given.join(", "),
                    config.init
                )));
            }
        }
        set_backbone!(self.backbone => config);
        set_given!(self => config;
            data,
            head_channels,
            lr,
            backbone_lr_scale,
            momentum,
            weight_decay,
            seed
        );
        self.apply_runtime(&mut config);
        if let Some(v) = self.synthetic_train_size {
            config.synthetic.train_size = v;
        }
        if let Some(v) = self.synthetic_val_size {
            config.synthetic.val_size = v;
        }
        config.freeze_bn |= self.freeze_bn;
        config.validate().map_err(ConfigError::Invalid)?;
        Ok(config)
    }

    /// Flags that would change what a resumed run trains.
    pub fn training_flags_given(&self) -> Vec<&'static str> {
        let mut given = self.backbone.given();
        flags_given!(self => given;
            task => "--task", init => "--init", data => "--data",
            head_channels => "--head-channels", lr => "--lr",
            backbone_lr_scale => "--backbone-lr-scale", momentum => "--momentum",
            weight_decay => "--weight-decay", seed => "--seed",
            synthetic_train_size => "--synthetic-train-size", synthetic_val_size => "--synthetic-val-size",
        );
        if self.freeze_bn {
            given.push("--freeze-bn");
        }
        given
    }

    /// Flags that may change on `--resume` (how the run executes, not what it trains).
    pub fn apply_runtime(&self, config: &mut FinetuneConfig) {
        set_given!(self => config;
            workers,
            device,
            checkpoint_every,
            keep_checkpoints,
            log_every,
            on_bad_image
        );
        if self.max_steps.is_some() {
            config.max_steps = self.max_steps;
        }
    }
}

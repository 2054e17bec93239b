//! The study's arms (a method with an augmentation, on a corpus) and the configurations their
//! runs are trained with: everything but the method and augmentation is shared.

use std::path::PathBuf;

use exemplar_models::{Depth, Stem};

use super::budget::Budget;
use super::{Study, StudyOptions};
use crate::augment::AugmentPreset;
use crate::config::{BadImagePolicy, Method, PretrainConfig};
use crate::data::{DataSource, SyntheticOptions};
use crate::finetune::config::{FinetuneConfig, Init, TaskKind};

/// The images an arm pretrains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corpus {
    /// `--data` (Fashion-MNIST in the default study), at the budget's `image_size`.
    Main,
    /// The built-in colour scenes at `ablation_image_size`: the augmentation ablation, where
    /// colour jitter and grayscale have colour to act on.
    Scenes,
}

impl Corpus {
    pub fn name(self) -> &'static str {
        match self {
            Corpus::Main => "main",
            Corpus::Scenes => "scenes",
        }
    }
}

/// The built-in scenes as the ablation draws them.
pub fn scenes(budget: &Budget) -> SyntheticOptions {
    SyntheticOptions {
        train_size: budget.ablation_train,
        val_size: budget.ablation_val,
        ..PretrainConfig::defaults(Method::Supervised).synthetic
    }
}

/// One pretraining recipe: a method with an augmentation, on a corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arm {
    pub method: Method,
    pub augment: AugmentPreset,
    pub corpus: Corpus,
}

impl Arm {
    pub fn default_for(method: Method) -> Self {
        Self {
            method,
            augment: method.default_augment(),
            corpus: Corpus::Main,
        }
    }

    /// A step of the augmentation ablation.
    pub fn ablation(method: Method, augment: AugmentPreset) -> Self {
        Self {
            method,
            augment,
            corpus: Corpus::Scenes,
        }
    }

    /// Directory name: `moco-v2+aug-plus`, `scenes-moco-v2+crop`.
    pub fn slug(&self) -> String {
        let name = format!("{}+{}", self.method.name(), self.augment.name());
        match self.corpus {
            Corpus::Main => name,
            Corpus::Scenes => format!("scenes-{name}"),
        }
    }

    /// How the report names it.
    pub fn label(&self) -> &'static str {
        match self.method {
            Method::Supervised => "CE",
            Method::MocoV2 => "MoCo-v2",
            Method::ExemplarV2 => "Exemplar-v2",
            Method::MocoV1 => "MoCo-v1",
            Method::ExemplarV1 => "Exemplar-v1",
        }
    }
}

/// Study (a), in the report's order.
pub const METHODS: [Method; 5] = [
    Method::Supervised,
    Method::MocoV2,
    Method::ExemplarV2,
    Method::MocoV1,
    Method::ExemplarV1,
];
/// Study (b): the paper's augmentation ablation, one step more each time.
pub const ABLATION: [AugmentPreset; 5] = [
    AugmentPreset::Flip,
    AugmentPreset::Crop,
    AugmentPreset::Color,
    AugmentPreset::Grayscale,
    AugmentPreset::AugPlus,
];
/// The methods whose augmentation is ablated.
pub const ABLATED: [Method; 2] = [Method::MocoV2, Method::Supervised];
/// Study (c): backbones transferred (plus random initialisation).
pub const TRANSFERRED: [Method; 3] = [Method::Supervised, Method::MocoV2, Method::ExemplarV2];
pub const TASKS: [TaskKind; 3] = [
    TaskKind::Detection,
    TaskKind::Segmentation,
    TaskKind::Landmarks,
];

/// The pretraining arms the chosen studies need, without repeats.
pub fn arms(studies: &[Study]) -> Vec<Arm> {
    let mut arms: Vec<Arm> = Vec::new();
    let mut add = |arm: Arm| {
        if !arms.contains(&arm) {
            arms.push(arm);
        }
    };
    for study in studies {
        match study {
            Study::Methods => METHODS.map(Arm::default_for).into_iter().for_each(&mut add),
            Study::Augmentation => {
                for method in ABLATED {
                    for augment in ABLATION {
                        add(Arm::ablation(method, augment));
                    }
                }
            }
            Study::Transfer => TRANSFERRED
                .map(Arm::default_for)
                .into_iter()
                .for_each(&mut add),
            Study::Sweep => {}
        }
    }
    arms
}

/// One arm's pretraining configuration: everything but the method and augmentation is shared.
pub fn pretrain_config(
    options: &StudyOptions,
    budget: &Budget,
    arm: Arm,
    seed: u64,
) -> PretrainConfig {
    let mut config = PretrainConfig::defaults(arm.method);
    config.arch = Depth::ResNet18;
    config.width = budget.width;
    config.stem = Stem::Small;
    config.batch_size = budget.batch_size;
    config.queue_size = budget.queue_size;
    if arm.method != Method::Supervised {
        config.key_momentum = budget.key_momentum;
        config.bn_splits = budget.bn_splits;
        config.base_lr = budget.contrastive_lr;
    }
    config.augment = arm.augment.pipeline();
    config.seed = seed;
    match arm.corpus {
        Corpus::Main => {
            config.data = options.data.clone();
            config.image_size = budget.image_size;
            config.epochs = budget.epochs;
            config.train_subset = Some(budget.train_subset);
        }
        Corpus::Scenes => {
            config.data = DataSource::Synthetic;
            config.synthetic = scenes(budget);
            config.image_size = budget.ablation_image_size;
            config.epochs = budget.ablation_epochs;
            config.train_subset = None;
        }
    }
    config.checkpoint_every = usize::MAX;
    config.keep_checkpoints = 1;
    // The study scores every run itself, on the same features for kNN and the probe.
    config.knn_bank_size = 0;
    let images = config.train_subset.unwrap_or(config.synthetic.train_size);
    config.log_every = (images / budget.batch_size / 4).max(1);
    config.workers = options.workers;
    config.device = options.device.clone();
    config.on_bad_image = BadImagePolicy::Fail;
    config
}

pub(super) fn transfer_config(
    options: &StudyOptions,
    budget: &Budget,
    task: TaskKind,
    backbone: Option<PathBuf>,
    seed: u64,
) -> FinetuneConfig {
    let mut config = FinetuneConfig::defaults(task);
    config.init = backbone.map_or(Init::Random, Init::Run);
    config.arch = Depth::ResNet18;
    config.width = budget.width;
    config.stem = Stem::Small;
    config.image_size = budget.transfer_image_size;
    config.head_channels = 16;
    config.epochs = budget.transfer_epochs;
    config.synthetic.train_size = budget.transfer_train;
    config.synthetic.val_size = budget.transfer_val;
    config.seed = seed;
    config.checkpoint_every = usize::MAX;
    config.keep_checkpoints = 1;
    config.log_every = usize::MAX;
    config.workers = options.workers;
    config.device = options.device.clone();
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Budget;

    #[test]
    fn studies_share_runs_and_list_each_arm_once() {
        let all = arms(&[Study::Methods, Study::Augmentation, Study::Transfer]);
        // 5 methods on the main data + 5 ablation steps × 2 methods on the scenes; the
        // transferred backbones are three of the methods.
        assert_eq!(all.len(), 5 + 10);
        assert_eq!(arms(&[Study::Transfer]).len(), 3);
        assert!(arms(&[Study::Sweep]).is_empty());
    }

    #[test]
    fn only_the_contrastive_methods_take_the_shared_moco_settings() {
        let options = StudyOptions {
            studies: vec![Study::Methods],
            seeds: 1,
            settings: Budget::default(),
            scale: 1.0,
            data: DataSource::Synthetic,
            work: PathBuf::from("runs"),
            out: PathBuf::from("out"),
            command: String::new(),
            workers: 1,
            device: "cpu".into(),
        };
        let budget = Budget::default();
        let moco = pretrain_config(&options, &budget, Arm::default_for(Method::MocoV2), 0);
        assert_eq!((moco.key_momentum, moco.bn_splits), (0.99, 2));
        assert_eq!(moco.base_lr, budget.contrastive_lr);
        let ce = pretrain_config(&options, &budget, Arm::default_for(Method::Supervised), 0);
        assert_eq!(
            ce.base_lr,
            PretrainConfig::defaults(Method::Supervised).base_lr
        );
        let scenes = pretrain_config(
            &options,
            &budget,
            Arm::ablation(Method::MocoV2, AugmentPreset::Crop),
            0,
        );
        assert_eq!(scenes.data, DataSource::Synthetic);
        assert_eq!(scenes.image_size, budget.ablation_image_size);
        assert_eq!(scenes.synthetic.train_size, budget.ablation_train);
    }
}

//! The study's arms (a method with an augmentation, on a corpus) and the configurations their
//! runs are trained with: everything but the method and augmentation is shared.

use std::path::PathBuf;

use exemplar_models::{Depth, Stem};

use crate::budget::Budget;
use crate::{Study, StudyOptions};
use exemplar_data::augment::AugmentPreset;
use exemplar_data::{DataSource, SyntheticOptions};
use exemplar_train::config::{BadImagePolicy, Method, PretrainConfig};
use exemplar_train::finetune::config::{FinetuneConfig, Init, TaskKind};

/// The images an arm pretrains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corpus {
    /// `--data` (Fashion-MNIST in the default study), at the budget's `image_size`.
    Main,
    /// The built-in colour scenes at `ablation_image_size`: the augmentation ablation, where
    /// colour jitter and grayscale have colour to act on.
    Scenes,
    /// The built-in faces labelled by identity, at `ablation_image_size` with the ablation's
    /// image count and epochs: the misalignment study (identity labels → landmarks).
    Faces,
    /// The built-in textures labelled by family, sized like the scenes: the pretraining-data
    /// study's corpus out of every transfer task's domain (no shapes, no faces).
    Textures,
    /// A tenth of the main corpus's images, trained for as many steps as the main arms.
    Tenth,
    /// The main corpus's images of its first [`BASE_CLASSES`] classes only: the novel-class
    /// few-shot evaluation scores the other classes.
    Base,
}

/// The classes a [`Corpus::Base`] arm pretrains on (labels below it); the rest are novel.
pub const BASE_CLASSES: usize = 5;

impl Corpus {
    pub fn name(self) -> &'static str {
        match self {
            Corpus::Main => "main",
            Corpus::Scenes => "scenes",
            Corpus::Faces => "faces",
            Corpus::Textures => "textures",
            Corpus::Tenth => "tenth",
            Corpus::Base => "base",
        }
    }

    /// How the report names it.
    pub fn title(self) -> &'static str {
        match self {
            Corpus::Main => "main data",
            Corpus::Scenes => "scenes",
            Corpus::Faces => "faces (identities)",
            Corpus::Textures => "textures",
            Corpus::Tenth => "10% of the main data",
            Corpus::Base => "base classes of the main data",
        }
    }
}

/// The pretraining-data study's corpora, the main data first (the reference).
pub const DATA_CORPORA: [Corpus; 5] = [
    Corpus::Main,
    Corpus::Textures,
    Corpus::Faces,
    Corpus::Tenth,
    Corpus::Base,
];

/// The built-in scenes as the ablation draws them.
pub fn scenes(budget: &Budget) -> SyntheticOptions {
    SyntheticOptions {
        train_size: budget.ablation_train,
        val_size: budget.ablation_val,
        ..PretrainConfig::defaults(Method::Supervised).synthetic
    }
}

/// Identities of the faces the misalignment study pretrains on: enough that telling them apart
/// is a fine-grained task, as face identification is (CelebA has 10 177).
pub const FACE_IDENTITIES: usize = 100;

/// The built-in faces as the misalignment study draws them: sized like the ablation's scenes.
pub fn faces(budget: &Budget) -> SyntheticOptions {
    SyntheticOptions {
        identities: FACE_IDENTITIES,
        ..scenes(budget)
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

    /// A method with its own augmentation on `corpus`.
    pub fn on(method: Method, corpus: Corpus) -> Self {
        Self {
            corpus,
            ..Self::default_for(method)
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
            other => format!("{}-{name}", other.name()),
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

/// Study (a), in the report's order: the methods study's three, then the v1 study's two.
pub const METHODS: [Method; 5] = [
    Method::Supervised,
    Method::MocoV2,
    Method::ExemplarV2,
    Method::MocoV1,
    Method::ExemplarV1,
];
/// The v1 study's methods.
pub const V1_METHODS: [Method; 2] = [Method::MocoV1, Method::ExemplarV1];
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
/// The inversion study's backbones are pretrained on the colour scenes, whose pictures they
/// reconstruct (the paper inverts ImageNet backbones on ImageNet pictures).
pub const INVERTED_CORPUS: Corpus = Corpus::Scenes;
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
            // The three methods on the main data: scored, transferred, their detectors' errors.
            Study::Methods | Study::Transfer | Study::DetectionErrors => TRANSFERRED
                .map(Arm::default_for)
                .into_iter()
                .for_each(&mut add),
            Study::V1 => V1_METHODS
                .map(Arm::default_for)
                .into_iter()
                .for_each(&mut add),
            Study::Augmentation => {
                for method in ABLATED {
                    for augment in ABLATION {
                        add(Arm::ablation(method, augment));
                    }
                }
            }
            Study::Misalignment => TRANSFERRED
                .map(|m| Arm::on(m, Corpus::Faces))
                .into_iter()
                .for_each(&mut add),
            Study::PretrainingData => {
                for corpus in DATA_CORPORA {
                    TRANSFERRED
                        .map(|m| Arm::on(m, corpus))
                        .into_iter()
                        .for_each(&mut add);
                }
            }
            Study::FewShot => {
                for corpus in [Corpus::Main, Corpus::Base] {
                    TRANSFERRED
                        .map(|m| Arm::on(m, corpus))
                        .into_iter()
                        .for_each(&mut add);
                }
            }
            Study::Inversion => TRANSFERRED
                .map(|m| Arm::on(m, INVERTED_CORPUS))
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
        Corpus::Scenes | Corpus::Faces | Corpus::Textures => {
            (config.data, config.synthetic) = match arm.corpus {
                Corpus::Faces => (DataSource::SyntheticFaces, faces(budget)),
                Corpus::Textures => (DataSource::SyntheticTextures, scenes(budget)),
                _ => (DataSource::Synthetic, scenes(budget)),
            };
            config.image_size = budget.ablation_image_size;
            config.epochs = budget.ablation_epochs;
            config.train_subset = None;
        }
        Corpus::Tenth => {
            let (images, _) = tenth(budget);
            config.data = options.data.clone();
            config.image_size = budget.image_size;
            config.train_subset = Some(images);
            // As many steps as the main arms.
            let batches = images / budget.batch_size;
            config.epochs =
                (budget.train_subset / budget.batch_size * budget.epochs).div_ceil(batches);
        }
        Corpus::Base => {
            config.data = options.data.clone();
            config.image_size = budget.image_size;
            config.epochs = budget.epochs;
            config.train_subset = Some(budget.train_subset);
            config.base_classes = Some(BASE_CLASSES);
        }
    }
    config.checkpoint_every = usize::MAX;
    config.keep_checkpoints = 1;
    // The study scores every run itself, on the same features for kNN and the probe.
    config.knn_bank_size = 0;
    let images = config.train_subset.unwrap_or(config.synthetic.train_size);
    config.queue_size = fitted_queue(budget, images);
    config.log_every = (images / budget.batch_size / 4).max(1);
    config.workers = options.workers;
    config.device = options.device.clone();
    config.on_bad_image = BadImagePolicy::Fail;
    config
}

/// A [`Corpus::Tenth`] arm's images (a tenth of the main arms', at least two batches) and
/// queue ([`fitted_queue`]).
pub fn tenth(budget: &Budget) -> (usize, usize) {
    let images = (budget.train_subset / 10).max(budget.batch_size * 2);
    (images, fitted_queue(budget, images))
}

/// The budget's queue cut to at most half of `images` (a whole number of batches, at least
/// one). A queue as long as the training set holds a query's own key from the previous epoch
/// for half of the images; at half the set, for an eighth of them (for the main arms, K = 4096
/// of 12 000 images, about 6%). Pretraining refuses a queue longer than the training set.
pub fn fitted_queue(budget: &Budget, images: usize) -> usize {
    let batches = budget.queue_size.min(images / 2) / budget.batch_size;
    batches.max(1) * budget.batch_size
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
    use crate::Budget;

    fn options(study: Study, data: DataSource) -> StudyOptions {
        StudyOptions {
            studies: vec![study],
            seeds: 1,
            settings: Budget::default(),
            scale: 1.0,
            data,
            work: PathBuf::from("runs"),
            out: PathBuf::from("out"),
            command: String::new(),
            workers: 1,
            device: "cpu".into(),
        }
    }

    #[test]
    fn studies_share_runs_and_list_each_arm_once() {
        let all = arms(&[Study::Methods, Study::Augmentation, Study::Transfer]);
        // 3 methods on the main data + 5 ablation steps × 2 methods on the scenes; the
        // transferred backbones are the methods study's three.
        assert_eq!(all.len(), 3 + 10);
        assert_eq!(arms(&[Study::Transfer]).len(), 3);
        assert_eq!(arms(&[Study::Methods, Study::V1]).len(), 5);
        assert!(arms(&[Study::Sweep]).is_empty());
    }

    #[test]
    fn only_the_contrastive_methods_take_the_shared_moco_settings() {
        let options = options(Study::Methods, DataSource::Synthetic);
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

    #[test]
    fn the_data_studys_corpora_change_only_the_data() {
        let options = options(Study::PretrainingData, DataSource::Idx("fashion".into()));
        let budget = Budget::default();
        let config =
            |corpus| pretrain_config(&options, &budget, Arm::on(Method::MocoV2, corpus), 0);
        let main = config(Corpus::Main);
        let steps = |c: &PretrainConfig| c.train_subset.unwrap() / c.batch_size * c.epochs;
        // A tenth of the images, as many steps (within one epoch), a queue that fits them.
        let tenth = config(Corpus::Tenth);
        assert_eq!(tenth.train_subset, Some(1200));
        assert!(
            steps(&tenth).abs_diff(steps(&main)) < 1200 / 128,
            "{}",
            steps(&tenth)
        );
        assert!(tenth.queue_size * 2 <= 1200 && tenth.queue_size % tenth.batch_size == 0);
        // The out-of-domain corpus: the textures, sized like the scenes; every queue fits its
        // images (the faces' and textures' 2 048).
        let textures = config(Corpus::Textures);
        assert_eq!(textures.data, DataSource::SyntheticTextures);
        assert_eq!(textures.synthetic.train_size, budget.ablation_train);
        for corpus in [Corpus::Textures, Corpus::Faces] {
            let c = config(corpus);
            assert!(
                c.queue_size * 2 <= c.synthetic.train_size,
                "{corpus:?}: {}",
                c.queue_size
            );
        }
        // The base classes: the same images drawn from the first classes only.
        let base = config(Corpus::Base);
        assert_eq!(base.base_classes, Some(BASE_CLASSES));
        assert_eq!(
            (base.train_subset, base.epochs),
            (main.train_subset, main.epochs)
        );
        assert!(
            !main.to_toml().contains("base_classes"),
            "older runs keep their identity"
        );
        let faces = config(Corpus::Faces);
        assert_eq!(faces.data, DataSource::SyntheticFaces);
        assert_eq!(faces.synthetic.identities, FACE_IDENTITIES);
        for c in [&tenth, &base, &faces] {
            assert_eq!(
                (c.width, c.key_momentum, c.base_lr),
                (main.width, main.key_momentum, main.base_lr)
            );
            c.validate().unwrap();
        }
        assert_eq!(
            Arm::on(Method::Supervised, Corpus::Tenth).slug(),
            "tenth-supervised+supervised"
        );
    }
}

//! exemplar-train: the training engine. Pretraining (Exemplar-v2/v1, MoCo v2/v1, supervised
//! cross-entropy), fine-tuning on the transfer tasks (detection, segmentation, landmarks,
//! classification), checkpoints and evaluation. The data comes from `exemplar-data`; the study
//! that compares the methods is `exemplar-study`; the `train` binary (`train-cli/`) is a thin
//! command line over the three.

pub mod allocator;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod eval;
pub mod finetune;
pub mod pretrain;
pub mod progress;
pub mod run;

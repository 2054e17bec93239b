//! exemplar-train: pretraining (Exemplar-v2/v1, MoCo v2/v1, supervised cross-entropy),
//! fine-tuning on the transfer tasks (detection, segmentation, landmarks, classification), the
//! data pipeline, checkpoints and evaluation. The `train` binary is a thin command line over it.

pub mod allocator;
pub mod analyze;
pub mod augment;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod eval;
pub mod experiment;
pub mod finetune;
pub mod loader;
pub mod pretrain;
pub mod progress;
pub mod run;
